/**
 * Watchers under faults, as a user runs them: writers overwrite a few keys fast enough
 * to overflow every key's history during a fault, watchers (`watchAll`, notices on, each
 * on its own connection given every server) keep a view of the bucket, and the node a
 * watcher is on is killed (SIGKILL, then restarted) or paused (SIGSTOP, then SIGCONT),
 * round after round. Measured: how long after each fault the watcher delivers a revision
 * it did not have (election and failover included). Checked (`checkWatchRun`): no
 * watcher ends, revisions strictly increase, every revision a watcher skipped lies in an
 * announced catch-up and was superseded there by a later entry of its key (or its key is
 * unknown: the write's outcome was never learned), and each watcher's final view equals
 * the cluster's state. Used by cluster-tests/watch_failover.test.ts and
 * `npm run bench -- watch-failover`.
 */
import type {
  ConnectOptions,
  Entry,
  KeyValue,
  KvConnection,
  WatchItem,
} from "../../client/index.js";
import { isKvError, isNotice } from "../../client/index.js";
import { seededRandom, waitFor } from "../../test_support/index.js";
import type { LocalCluster } from "./cluster.js";
import { str, text } from "./util.js";

export interface WatchChaosOptions {
  cluster: LocalCluster;
  /** Opens a client connection the caller closes after the run (a test fixture's). */
  connect: (options: ConnectOptions) => Promise<KvConnection>;
  bucket: string;
  /** Fault rounds; they alternate SIGKILL and SIGSTOP of a watcher's node. */
  rounds: number;
  watchers?: number;
  writers?: number;
  keys?: number;
  history?: number;
  /** How long a fault may take to be noticed and survived before the run fails. */
  recoverTimeoutMs?: number;
  seed?: number;
  log?: (line: string) => void;
}

interface CatchUpSpan {
  from: number;
  to: number;
  reset: boolean;
  /** Revision -> key of every entry delivered inside this catch-up. */
  keys: Map<number, string>;
}

/** One watcher's record. */
export interface WatcherRecord {
  name: string;
  delivered: Array<{ revision: number; key: string; at: number }>;
  catchUps: CatchUpSpan[];
  view: Map<string, string>;
  ended: string | undefined;
  server: string;
  failovers: number;
  /** What happened to the stream, in order (resumes, notices), for a failure's report. */
  events: Array<{ afterRevision: number; what: string }>;
}

export interface FaultRecord {
  round: number;
  kind: "kill" | "pause";
  node: string;
  watcher: string;
  /** ms from the fault until the watcher delivered a revision committed after it. */
  failoverMs: number;
}

export interface WatchChaosResult {
  faults: FaultRecord[];
  watchers: WatcherRecord[];
  /** Acknowledged writes: revision -> key. */
  acked: Map<number, string>;
  writesAcked: number;
  writesFailed: number;
  lastRevision: number;
  /** The cluster's state at the end (key -> value of keys that hold a PUT). */
  finalState: Map<string, string>;
}

/** A `watchAll({ notices: true })` that records what it delivers, for `checkWatchRun`. */
export class RecordingWatcher {
  readonly record: WatcherRecord;
  private current: CatchUpSpan | undefined;
  private resetView: Map<string, string> | undefined;
  private done: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;

  constructor(
    name: string,
    private readonly conn: KvConnection,
  ) {
    this.record = {
      name,
      delivered: [],
      catchUps: [],
      view: new Map(),
      ended: undefined,
      server: "",
      failovers: 0,
      events: [],
    };
  }

  start(kv: KeyValue, ready: () => void): void {
    this.done = (async () => {
      try {
        const w = await kv.watchAll({ notices: true });
        ready();
        for await (const item of w) this.onItem(item);
        this.record.ended = "done";
      } catch (err) {
        this.record.ended = isKvError(err) ? `${err.code}: ${err.message}` : String(err);
        ready();
      }
    })();
  }

  get serverId(): string {
    return this.conn.serverId;
  }

  get lastRevision(): number {
    return this.record.delivered.at(-1)?.revision ?? 0;
  }

  note(what: string): void {
    if (this.record.events.length < 5000) {
      this.record.events.push({ afterRevision: this.lastRevision, what });
    }
  }

  private onItem(item: WatchItem): void {
    if (item === null) return;
    if (isNotice(item)) {
      this.note(JSON.stringify(item));
      if (item.kind === "catch_up") {
        this.current = {
          from: item.fromRevision,
          to: item.toRevision,
          reset: item.reset,
          keys: new Map(),
        };
        this.record.catchUps.push(this.current);
        this.resetView = item.reset ? new Map() : undefined;
      } else if (item.kind === "caught_up") {
        if (this.resetView !== undefined) this.record.view = this.resetView;
        this.current = undefined;
        this.resetView = undefined;
      }
      return;
    }
    this.apply(item);
  }

  private apply(e: Entry): void {
    this.record.delivered.push({ revision: e.revision, key: e.key, at: performance.now() });
    this.current?.keys.set(e.revision, e.key);
    const view = this.resetView ?? this.record.view;
    if (e.operation === "PUT") view.set(e.key, str(e.value));
    else view.delete(e.key);
  }

  /** Closes the connection and waits for the watch to end (again: the same wait). */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.conn.close();
      await this.done;
    })();
    return this.stopped;
  }
}

/**
 * Opens a connection of its own to `servers` (the first tried first) and starts a
 * recording `watchAll({ notices: true })` on `bucket`; resolves once the watch is
 * set up (or ended). `stop()` closes the connection.
 */
export async function startRecordingWatcher(
  name: string,
  connect: (options: ConnectOptions) => Promise<KvConnection>,
  servers: string[],
  bucket: string,
): Promise<RecordingWatcher> {
  const holder: { w?: RecordingWatcher } = {};
  const conn = await connect({
    servers,
    timeoutMs: 8000,
    onEvent: (e) => {
      const w = holder.w;
      if (w === undefined) return;
      if (e.type === "connected") w.record.server = e.server;
      if (e.type === "failover") w.record.failovers++;
      if (e.type !== "reconnecting") w.note(JSON.stringify(e));
    },
  });
  const w = new RecordingWatcher(name, conn);
  holder.w = w;
  w.record.server = servers[0]!;
  const kv = await conn.keyValue(bucket);
  await new Promise<void>((resolve) => w.start(kv, resolve));
  return w;
}

/** Runs the workload and the faults; the caller checks the result (`checkWatchRun`). */
export async function runWatchChaos(o: WatchChaosOptions): Promise<WatchChaosResult> {
  const c = o.cluster;
  const log = o.log ?? (() => {});
  const random = seededRandom(o.seed ?? 1);
  const keys = o.keys ?? 10;
  const recoverTimeoutMs = o.recoverTimeoutMs ?? 20_000;
  const admin = await o.connect({ servers: c.urls, timeoutMs: 8000 });
  const history = o.history ?? 4;
  await admin.createKeyValue({ bucket: o.bucket, history });

  // Watchers: watcher i starts on node i % size, with the others after it.
  const watchers: RecordingWatcher[] = [];
  for (let i = 0; i < (o.watchers ?? 2); i++) {
    const first = i % c.nodes.length;
    const servers = [...c.urls.slice(first), ...c.urls.slice(0, first)];
    watchers.push(await startRecordingWatcher(`w${i + 1}`, o.connect, servers, o.bucket));
  }

  // Writers: overwrite and sometimes delete the keys as fast as the cluster takes them.
  const acked = new Map<number, string>();
  let writesAcked = 0;
  let writesFailed = 0;
  let writing = true;
  const writers: Promise<void>[] = [];
  for (let i = 0; i < (o.writers ?? 4); i++) {
    const first = i % c.nodes.length;
    const conn = await o.connect({
      servers: [...c.urls.slice(first), ...c.urls.slice(0, first)],
      timeoutMs: 8000,
    });
    const kv = await conn.keyValue(o.bucket);
    writers.push(
      (async () => {
        for (let n = 0; writing && n < 1_000_000; n++) {
          const key = `k.${Math.floor(random() * keys)}`;
          try {
            const rev =
              random() < 0.1
                ? await kv.delete(key, { timeoutMs: 4000 })
                : await kv.put(key, text(`w${i}-${n}`), { timeoutMs: 4000 });
            acked.set(rev, key);
            writesAcked++;
          } catch {
            writesFailed++;
          }
        }
      })(),
    );
  }

  const faults: FaultRecord[] = [];
  const bucket = await admin.keyValue(o.bucket);
  // Per node: a client of the other nodes only, for the writes during a fault of that node.
  const bursters = c.nodes.map((n) =>
    o
      .connect({ servers: c.urls.filter((_, i) => i !== n.index), timeoutMs: 8000 })
      .then((nc) => nc.keyValue(o.bucket)),
  );
  try {
    await waitFor(() => watchers.every((w) => w.lastRevision > 20), 15_000, "first deliveries");
    for (let round = 0; round < o.rounds; round++) {
      const w = watchers[round % watchers.length]!;
      // The node the watcher's connection is on now, as its hello named it.
      await waitFor(() => w.serverId !== "", recoverTimeoutMs, `${w.record.name} connected`);
      const node = c.nodes.findIndex((n) => n.id === w.serverId);
      if (node < 0) throw new Error(`${w.record.name} is on an unknown node ${w.serverId}`);
      const kind = round % 2 === 0 ? "kill" : "pause";
      // Revisions above this were committed after the fault (up to a read's round trip):
      // what the watcher already had on the wire does not count as recovered.
      const before = Math.max(w.lastRevision, (await bucket.status()).lastRevision);
      const t0 = performance.now();
      if (kind === "kill") await c.kill(node, "SIGKILL");
      else c.pause(node);
      // Enough writes through the other nodes to overflow every key's history while the
      // watcher is away (the writers alone may be slow on a loaded machine).
      const burst = (async () => {
        const kv = await bursters[node]!;
        for (let j = 0; j < keys * history + 2; j++) {
          const key = `k.${j % keys}`;
          try {
            acked.set(await kv.put(key, text(`burst-${round}-${j}`), { timeoutMs: 4000 }), key);
            writesAcked++;
          } catch {
            writesFailed++;
          }
        }
      })();
      await waitFor(
        () => w.record.ended !== undefined || w.lastRevision > before,
        recoverTimeoutMs,
        `${w.record.name} delivering again after ${kind} of ${c.nodes[node]!.id}`,
      );
      await burst;
      if (w.record.ended !== undefined)
        throw new Error(`${w.record.name} ended: ${w.record.ended}`);
      const first = w.record.delivered.find((d) => d.revision > before)!;
      const failoverMs = Math.max(0, first.at - t0);
      faults.push({ round, kind, node: c.nodes[node]!.id, watcher: w.record.name, failoverMs });
      log(
        `round ${round}: ${kind} ${c.nodes[node]!.id} under ${w.record.name}: ${failoverMs.toFixed(0)} ms`,
      );
      // Heal, and let the node catch up before the next fault.
      if (kind === "kill") await c.startNode(node);
      else c.resume(node);
      const leader = await c.waitForLeader(recoverTimeoutMs);
      const commit = (await c.status(leader))?.commitIndex ?? 0;
      await c.waitForApplied(node, commit, recoverTimeoutMs);
      const after = w.lastRevision;
      await waitFor(
        () => watchers.every((x) => x.record.ended !== undefined || x.lastRevision > after),
        recoverTimeoutMs,
        "deliveries after healing",
      );
    }
  } finally {
    writing = false;
    // A failed round may leave a node paused: nothing could close a connection to it.
    for (const n of c.nodes) if (n.paused) c.resume(n.index);
    await Promise.all(writers);
  }

  const status = await (await admin.keyValue(o.bucket)).status();
  const lastRevision = status.lastRevision;
  await waitFor(
    () => watchers.every((w) => w.record.ended !== undefined || w.lastRevision >= lastRevision),
    recoverTimeoutMs,
    "every watcher at the last revision",
  );
  const kv = await admin.keyValue(o.bucket);
  const finalState = new Map<string, string>();
  for (const key of await kv.keys()) {
    const e = await kv.get(key);
    if (e !== null) finalState.set(key, str(e.value));
  }
  for (const w of watchers) await w.stop();
  return {
    faults,
    watchers: watchers.map((w) => w.record),
    acked,
    writesAcked,
    writesFailed,
    lastRevision,
    finalState,
  };
}

/** What `checkWatchRun` needs of a run (any workload's, not only `runWatchChaos`'s). */
export type WatchRunFacts = Pick<WatchChaosResult, "watchers" | "acked" | "finalState">;

/**
 * Every violation of the watch guarantees in a run ([] when it held). `acked` maps a
 * revision to its key for every write whose revision is known (acked, or read back
 * from the final log); `finalState` is key -> value of the keys holding a PUT.
 */
export function checkWatchRun(r: WatchRunFacts): string[] {
  const problems: string[] = [];
  for (const w of r.watchers) {
    const where = w.name;
    if (w.ended !== undefined && w.ended !== "done") problems.push(`${where} ended: ${w.ended}`);
    const revs = w.delivered.map((d) => d.revision);
    const resets = w.catchUps.filter((c) => c.reset);
    if (resets.length === 0) {
      for (let i = 1; i < revs.length; i++) {
        if (revs[i]! <= revs[i - 1]!) {
          problems.push(`${where} delivered ${revs[i]} after ${revs[i - 1]}`);
          break;
        }
      }
    }
    // Every revision skipped between the first and the last delivery is announced.
    const got = new Set(revs);
    const first = revs[0] ?? 0;
    const last = revs.at(-1) ?? 0;
    let unannounced = 0;
    for (let rev = first + 1; rev < last; rev++) {
      if (got.has(rev)) continue;
      const span = w.catchUps.find((c) => c.from <= rev && rev <= c.to);
      if (span === undefined) {
        if (unannounced++ < 5) {
          const context = w.events
            .filter((e) => e.afterRevision >= rev - 50 && e.afterRevision <= rev + 5)
            .map((e) => `after ${e.afterRevision}: ${e.what}`);
          problems.push(
            `${where} skipped revision ${rev} (${r.acked.get(rev) ?? "key unknown"}) unannounced; ` +
              `delivered around it: ${revs.filter((x) => x > rev - 4 && x < rev + 4).join(",")}; ` +
              `stream events: ${context.join(" | ") || "none"}`,
          );
        }
        continue;
      }
      if (span.reset) continue;
      const key = r.acked.get(rev);
      if (key === undefined) continue;
      // Superseded inside the catch-up, or live right after it: a write racing the
      // catch-up's scan can trim the key's entries <= `to` before the scan reaches them;
      // that write is > `to`, so it reaches the watcher live instead (kvapi/watch/initial.ts).
      const superseded =
        [...span.keys].some(([at, k]) => k === key && at > rev && at <= span.to) ||
        w.delivered.some((d) => d.key === key && d.revision > span.to);
      if (!superseded)
        problems.push(`${where} skipped ${key}@${rev}, not superseded in its catch-up`);
    }
    const view = JSON.stringify([...w.view].sort());
    const state = JSON.stringify([...r.finalState].sort());
    if (view !== state)
      problems.push(`${where}'s final view differs from the cluster: ${view} vs ${state}`);
  }
  return problems;
}

/** p50 / p99 / max of the failover times, ms. */
export function failoverSummary(faults: FaultRecord[]): { p50: number; p99: number; max: number } {
  const ms = faults.map((f) => f.failoverMs).sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.ceil(q * ms.length) - 1)] ?? 0;
  return { p50: at(0.5), p99: at(0.99), max: ms.at(-1) ?? 0 };
}
