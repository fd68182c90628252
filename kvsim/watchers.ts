/**
 * One watcher per node incarnation on the whole bucket, as a cache or config client
 * would run: started when the node is up, resumed after SLOW_CONSUMER (a snapshot
 * replaced the node's state) or NO_LEADER (the node lost touch with its leader) from
 * the last revision it received, in the strict mode (no catch-up), restarted after
 * REVISION_COMPACTED. What each chain of resumed watches delivered is kept for the
 * checker: in order, no duplicate, no gap against the final stream, same content.
 */
import type { RaftKvService } from "../node/index.js";
import { isKvError } from "../proto/index.js";
import type { EventQueue } from "../raft/sim/event_queue.js";
import { SIM_BUCKET } from "./clients.js";

export interface Delivered {
  revision: number;
  key: string;
  operation: string;
  value: string;
}

/** Watches resumed one after the other on one node incarnation, without a jump. */
export interface WatchChain {
  node: string;
  incarnation: number;
  entries: Delivered[];
  /** How the chain ended (undefined while it runs or when its node died). */
  end?: string;
}

export interface WatchHost {
  alive(id: string, incarnation: number): boolean;
  fail(violation: string): void;
  count(what: string): void;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

export class SimWatchers {
  readonly chains: WatchChain[] = [];

  constructor(
    private readonly events: EventQueue,
    private readonly host: WatchHost,
  ) {}

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.events.after(ms, resolve));
  }

  /** Watches on node `id` while its incarnation `incarnation` lives. */
  start(id: string, incarnation: number, service: RaftKvService): void {
    void this.run(id, incarnation, service);
  }

  private async run(id: string, incarnation: number, service: RaftKvService): Promise<void> {
    const alive = () => this.host.alive(id, incarnation);
    let chain: WatchChain = { node: id, incarnation, entries: [] };
    this.chains.push(chain);
    let tries = 0;
    while (alive() && tries++ < 200) {
      const last = chain.entries[chain.entries.length - 1]?.revision;
      let w: Awaited<ReturnType<RaftKvService["watch"]>>;
      try {
        w = await service.watch(
          SIM_BUCKET,
          ">",
          last === undefined
            ? { updatesOnly: true, maxPending: 100_000 }
            : { includeHistory: true, resumeFromRevision: last + 1, maxPending: 100_000 },
        );
      } catch (err) {
        if (!alive()) return;
        if (!isKvError(err)) {
          this.host.fail(`watch on ${id} failed with a non-KvError: ${String(err)}`);
          return;
        }
        if (err.code === "REVISION_COMPACTED") {
          chain.end = "REVISION_COMPACTED";
          chain = { node: id, incarnation, entries: [] };
          this.chains.push(chain);
        }
        // No leader yet, or this node cannot confirm it is caught up: try again soon.
        await this.sleep(50);
        continue;
      }
      try {
        for (;;) {
          const r = await w.next();
          if (!alive()) return;
          if (r.done) {
            chain.end = "done";
            return;
          }
          const e = r.value;
          if (e === null) continue;
          chain.entries.push({
            revision: e.revision,
            key: e.key,
            operation: e.operation,
            value: text(e.value),
          });
        }
      } catch (err) {
        if (!alive()) return;
        if (!isKvError(err)) {
          this.host.fail(`watch on ${id} ended with a non-KvError: ${String(err)}`);
          return;
        }
        this.host.count(`watch_end_${err.code}`);
        // SLOW_CONSUMER: a snapshot replaced the node's state; NO_LEADER: the node lost
        // touch with its leader (a real client would move to another node).
        if (err.code !== "SLOW_CONSUMER" && err.code !== "NO_LEADER") {
          this.host.fail(`watch on ${id} ended with ${err.code}: ${err.message}`);
          return;
        }
        // Resumed from the last revision received: the chain goes on.
      }
    }
  }
}
