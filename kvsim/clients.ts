/**
 * The KV simulator's clients: each issues put/create/update/delete/purge and
 * linearizable gets to any node, through the same `KvService` methods the client port
 * calls. A write whose outcome is unknown (TIMEOUT, SHUTTING_DOWN, no answer before the
 * node died) is retried with the same request id on another node, as the SDK does; so
 * a request id may reach several nodes, several times.
 *
 * Everything is recorded: every operation as a history op for the linearizability
 * checker (cluster-tests/lincheck; an unknown write has no response), and every write
 * request with what its client learned, for the checks of the final state.
 */
import type { KvInput, KvOutput, Op } from "../cluster-tests/lincheck/index.js";
import type { RaftKvService } from "../node/index.js";
import { isKvError, type KvError, type WriteOpName } from "../proto/index.js";
import { chance, intBetween, type Prng, pick } from "../raft/index.js";
import type { EventQueue } from "../raft/sim/event_queue.js";
import type { Swarm } from "./swarm.js";

export const SIM_BUCKET = "b";
/** Write requests per key at most: with history 64 nothing is trimmed but by a purge. */
export const WRITES_PER_KEY_MAX = 40;
export const SIM_HISTORY = 64;

/** A write request and what its client learned of it. */
export interface WriteRecord {
  requestId: string;
  client: number;
  op: WriteOpName;
  key: string;
  /** The value of put/create/update; null for delete/purge. */
  value: string | null;
  last?: number;
  /**
   * written: acknowledged at `revision`; rejected: a CAS failure (`code`);
   * not_applied: every try was refused before it was proposed; unknown: some try's
   * fate is unknown (it may or may not have been applied).
   */
  outcome: "written" | "rejected" | "not_applied" | "unknown" | "pending";
  revision?: number;
  code?: string;
  attempts: number;
}

export interface ClientHost {
  nodeIds(): string[];
  /** The node's running service, or undefined while it is down. */
  serviceOf(id: string): RaftKvService | undefined;
  incarnationOf(id: string): number;
  pausedUntilMs(id: string): number;
  /** The node's own clock (epoch ms): request deadlines are computed on it, as on a node. */
  nodeNowMs(id: string): number;
  fail(violation: string): void;
  count(what: string): void;
}

type CallOutcome<T> =
  | { kind: "ok"; value: T }
  | { kind: "error"; error: KvError }
  /** No answer: the node died, or the client stopped waiting. */
  | { kind: "lost" }
  /** The node was down: nothing was sent. */
  | { kind: "down" };

/** Refused before it was proposed: certainly not applied. */
const NOT_APPLIED = new Set(["NOT_LEADER", "NO_LEADER", "OVERLOADED"]);
/** The outcome of this try is unknown. */
const UNKNOWN = new Set(["TIMEOUT", "SHUTTING_DOWN"]);
const CAS_REJECTIONS = new Set(["KEY_EXISTS", "WRONG_LAST_REVISION"]);

const ATTEMPTS_MAX = 4;
/** How long a client waits for one try (virtual ms). */
const ATTEMPT_MS = 3000;

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

export class SimClients {
  readonly history: Op<KvInput, KvOutput>[] = [];
  readonly writes: WriteRecord[] = [];
  private readonly writesPerKey = new Map<string, number>();
  /** The newest revision any client saw for a key (what an update's `last` names). */
  private readonly known = new Map<string, number>();
  private running = 0;
  private stopAtMs = 0;
  readsOk = 0;

  constructor(
    private readonly events: EventQueue,
    private readonly prng: Prng,
    private readonly swarm: Swarm,
    private readonly host: ClientHost,
  ) {}

  keys(): string[] {
    return Array.from({ length: this.swarm.keys }, (_, i) => `k${i}`);
  }

  /** Starts the clients; they issue operations until `untilMs`. */
  start(untilMs: number): void {
    this.stopAtMs = untilMs;
    for (let c = 1; c <= this.swarm.clients; c++) {
      this.running++;
      void this.runClient(c).finally(() => {
        this.running--;
      });
    }
  }

  /** No client has an operation in flight any more. */
  idle(): boolean {
    return this.running === 0;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.events.after(ms, resolve));
  }

  private async runClient(client: number): Promise<void> {
    let n = 0;
    while (this.events.nowMs < this.stopAtMs) {
      await this.sleep(intBetween(this.prng, 1, this.swarm.thinkMs * 2));
      if (this.events.nowMs >= this.stopAtMs) return;
      const key = pick(this.prng, this.keys());
      const full = (this.writesPerKey.get(key) ?? 0) >= WRITES_PER_KEY_MAX;
      if (full || chance(this.prng, this.swarm.readP)) await this.get(client, key);
      else await this.write(client, `c${client}-${++n}`, key);
    }
  }

  /** Calls `fn` on node `id`'s service; an answer counts only from the incarnation asked. */
  call<T>(
    id: string,
    fn: (s: RaftKvService) => Promise<T>,
    waitMs = ATTEMPT_MS,
  ): Promise<CallOutcome<T>> {
    const paused = this.host.pausedUntilMs(id);
    if (this.events.nowMs < paused) {
      // The request waits in the socket until the process runs again.
      return this.sleep(paused - this.events.nowMs).then(() => this.call(id, fn, waitMs));
    }
    const service = this.host.serviceOf(id);
    if (service === undefined) return Promise.resolve({ kind: "down" });
    const incarnation = this.host.incarnationOf(id);
    return new Promise((resolve) => {
      let done = false;
      const finish = (o: CallOutcome<T>) => {
        if (done) return;
        done = true;
        resolve(o);
      };
      this.events.after(waitMs, () => finish({ kind: "lost" }));
      const same = () => this.host.incarnationOf(id) === incarnation;
      fn(service).then(
        (value) => finish(same() ? { kind: "ok", value } : { kind: "lost" }),
        (err) => {
          if (!isKvError(err)) {
            this.host.fail(`a client got a non-KvError from ${id}: ${String(err?.stack ?? err)}`);
            finish({ kind: "lost" });
            return;
          }
          finish(same() ? { kind: "error", error: err } : { kind: "lost" });
        },
      );
    });
  }

  private noteRevision(key: string, revision: number): void {
    this.known.set(key, Math.max(this.known.get(key) ?? 0, revision));
  }

  private chooseWrite(client: number, requestId: string, key: string): WriteRecord {
    const base = { requestId, client, key, outcome: "pending" as const, attempts: 0 };
    const value = requestId;
    if (chance(this.prng, this.swarm.casP)) {
      if (chance(this.prng, 0.3)) return { ...base, op: "create", value };
      return { ...base, op: "update", value, last: this.known.get(key) ?? 0 };
    }
    const roll = intBetween(this.prng, 0, 99);
    if (roll < 75) return { ...base, op: "put", value };
    const guarded = chance(this.prng, 0.3) ? { last: this.known.get(key) ?? 0 } : {};
    return { ...base, op: roll < 90 ? "delete" : "purge", value: null, ...guarded };
  }

  private inputOf(w: WriteRecord): KvInput {
    switch (w.op) {
      case "put":
      case "create":
        return { op: w.op, key: w.key, value: w.value! };
      case "update":
        return { op: "update", key: w.key, value: w.value!, last: w.last ?? 0 };
      case "delete":
      case "purge":
        return { op: w.op, key: w.key, ...(w.last === undefined ? {} : { last: w.last }) };
    }
  }

  private async write(client: number, requestId: string, key: string): Promise<void> {
    const w = this.chooseWrite(client, requestId, key);
    this.writes.push(w);
    this.writesPerKey.set(key, (this.writesPerKey.get(key) ?? 0) + 1);
    const callTime = this.events.nowMs;
    let unknown = false;
    const ids = this.host.nodeIds();
    let target = pick(this.prng, ids);
    while (w.attempts < ATTEMPTS_MAX) {
      w.attempts++;
      const to = target;
      const outcome = await this.call(to, (s) =>
        s.write({
          bucket: SIM_BUCKET,
          key,
          op: w.op,
          value: w.value === null ? new Uint8Array(0) : bytes(w.value),
          ...(w.last === undefined ? {} : { last: w.last }),
          requestId,
          deadlineMs: this.host.nodeNowMs(to) + ATTEMPT_MS - 200,
        }),
      );
      if (outcome.kind === "ok") {
        w.outcome = "written";
        w.revision = outcome.value;
        this.noteRevision(key, outcome.value);
        this.record(client, w, callTime, { kind: "written", revision: outcome.value });
        return;
      }
      if (outcome.kind === "error") {
        const code = outcome.error.code;
        if (CAS_REJECTIONS.has(code)) {
          w.outcome = "rejected";
          w.code = code;
          this.record(client, w, callTime, { kind: "rejected", code: code as "KEY_EXISTS" });
          return;
        }
        if (UNKNOWN.has(code)) unknown = true;
        else if (!NOT_APPLIED.has(code)) {
          this.host.fail(
            `write ${requestId} (${w.op} ${key}) on ${to}: unexpected ${code}: ${outcome.error.message}`,
          );
          unknown = true;
          break;
        }
      } else if (outcome.kind === "lost") {
        unknown = true;
      }
      this.host.count(
        `client_retry_${outcome.kind === "error" ? outcome.error.code : outcome.kind}`,
      );
      // Another node next time, after a short pause (as the SDK's backoff).
      const others = ids.filter((id) => id !== to);
      target = pick(this.prng, others.length > 0 ? others : ids);
      await this.sleep(intBetween(this.prng, 10, 100));
    }
    w.outcome = unknown ? "unknown" : "not_applied";
    if (unknown) this.record(client, w, callTime, undefined);
  }

  private record(
    client: number,
    w: WriteRecord,
    callTime: number,
    output: KvOutput | undefined,
  ): void {
    this.history.push({
      clientId: client,
      input: this.inputOf(w),
      callTime,
      returnTime: output === undefined ? undefined : this.events.nowMs,
      ...(output === undefined ? {} : { output }),
    });
  }

  /** A linearizable get on a random node (or on `on`); recorded when answered. */
  async get(client: number, key: string, on?: string): Promise<boolean> {
    const id = on ?? pick(this.prng, this.host.nodeIds());
    const callTime = this.events.nowMs;
    const outcome = await this.call(id, (s) => s.get(SIM_BUCKET, key, undefined, { stale: false }));
    if (outcome.kind !== "ok") {
      if (
        outcome.kind === "error" &&
        !NOT_APPLIED.has(outcome.error.code) &&
        !UNKNOWN.has(outcome.error.code)
      ) {
        this.host.fail(
          `get ${key} on ${id}: unexpected ${outcome.error.code}: ${outcome.error.message}`,
        );
      }
      return false;
    }
    const e = outcome.value;
    this.readsOk++;
    if (e !== null) this.noteRevision(key, e.revision);
    this.history.push({
      clientId: client,
      input: { op: "get", key },
      callTime,
      returnTime: this.events.nowMs,
      output:
        e === null
          ? { kind: "absent" }
          : { kind: "entry", value: text(e.value), revision: e.revision },
    });
    return true;
  }
}
