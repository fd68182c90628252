/**
 * A KV workload for the cluster tests: a few clients, each connected to every node
 * (starting at a different one), doing put / create / update / get on a small key set
 * with unique values, recorded with lincheck's HistoryRecorder. Writes that fail with
 * anything but a CAS answer are recorded as unknown (they may have been applied);
 * failed reads are left out (a read has no effect).
 *
 * Afterwards `readCommitted` reads a bucket's whole retained log from one node (a
 * watch with history, through the initial-done marker), and `checkRun` checks acked
 * writes against it and the history for linearizability.
 */
import { connect, isKvError, type KeyValue, type KvConnection } from "../../client/index.js";
import {
  type CommittedKvEntry,
  checkKvRevisions,
  checkLinearizable,
  HistoryRecorder,
  type KvInput,
  type KvOutput,
  kvModel,
  type Op,
  patchKvHistory,
} from "../lincheck/index.js";

export interface WorkloadOptions {
  urls: string[];
  bucket: string;
  clients: number;
  /** Most ops per client. */
  maxOps: number;
  /** Stop after this long even if `maxOps` was not reached. */
  durationMs: number;
  keys: number;
  /** Per-call timeout (client default 5000 ms). */
  timeoutMs?: number;
  /** Set to stop early (checked between ops). */
  stop?: { requested: boolean };
  /** Seed of the op mix (reproducible choice of ops; timing is not). */
  seed?: number;
}

export interface AckedWrite {
  key: string;
  value: string;
  revision: number;
  /** Date.now() when the ack arrived. */
  ackedAtMs: number;
}

export interface WorkloadResult {
  history: Op<KvInput, KvOutput>[];
  acked: AckedWrite[];
  unknownWrites: number;
  failedReads: number;
  ops: number;
  errors: Map<string, number>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** xorshift32: a reproducible op mix without Math.random. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

export async function runKvWorkload(o: WorkloadOptions): Promise<WorkloadResult> {
  const rec = new HistoryRecorder<KvInput, KvOutput>();
  const acked: AckedWrite[] = [];
  const errors = new Map<string, number>();
  let unknownWrites = 0;
  let failedReads = 0;
  let ops = 0;
  const until = Date.now() + o.durationMs;
  const conns: KvConnection[] = [];
  const noteError = (err: unknown) => {
    const code = isKvError(err) ? err.code : String(err);
    errors.set(code, (errors.get(code) ?? 0) + 1);
  };
  const client = async (c: number) => {
    const servers = o.urls.map((_, i) => o.urls[(i + c) % o.urls.length]!);
    const nc = await connect({ servers, timeoutMs: o.timeoutMs ?? 5000 });
    conns.push(nc);
    let kv: KeyValue | undefined;
    while (kv === undefined && Date.now() < until) {
      kv = await nc.keyValue(o.bucket).catch(() => undefined);
    }
    if (kv === undefined) throw new Error(`client ${c} could not bind ${o.bucket}`);
    const rand = prng((o.seed ?? 1) * 7919 + c);
    const lastSeen = new Map<string, number>();
    for (let n = 0; n < o.maxOps && Date.now() < until && !o.stop?.requested; n++) {
      ops++;
      const key = `k${Math.floor(rand() * o.keys)}`;
      const value = `c${c}-${n}`;
      const r = rand();
      if (r < 0.25) {
        const h = rec.call(c, { op: "get", key });
        try {
          const e = await kv.get(key);
          rec.ok(
            h,
            e
              ? { kind: "entry", value: dec.decode(e.value), revision: e.revision }
              : { kind: "absent" },
          );
          if (e) lastSeen.set(key, e.revision);
        } catch (err) {
          noteError(err);
          failedReads++;
          rec.failDefinitely(h);
        }
        continue;
      }
      let input: KvInput;
      let write: () => Promise<number>;
      if (r < 0.65) {
        input = { op: "put", key, value };
        write = () => kv.put(key, enc.encode(value));
      } else if (r < 0.8) {
        input = { op: "create", key, value };
        write = () => kv.create(key, enc.encode(value));
      } else {
        const last = lastSeen.get(key) ?? 0;
        input = { op: "update", key, value, last };
        write = () => kv.update(key, enc.encode(value), last);
      }
      const h = rec.call(c, input);
      try {
        const revision = await write();
        rec.ok(h, { kind: "written", revision });
        acked.push({ key, value, revision, ackedAtMs: Date.now() });
        lastSeen.set(key, revision);
      } catch (err) {
        noteError(err);
        if (isKvError(err, "KEY_EXISTS") || isKvError(err, "WRONG_LAST_REVISION")) {
          const current = err.details.currentRevision;
          rec.ok(h, {
            kind: "rejected",
            code: err.code as "KEY_EXISTS" | "WRONG_LAST_REVISION",
            ...(current === undefined ? {} : { currentRevision: current }),
          });
          if (current !== undefined) lastSeen.set(key, current);
        } else {
          unknownWrites++;
          rec.unknown(h);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  } finally {
    await Promise.all(conns.map((c) => c.close()));
  }
  return { history: rec.history(), acked, unknownWrites, failedReads, ops, errors };
}

export interface CommittedEntry extends CommittedKvEntry {
  operation: string;
}

/**
 * The bucket's retained log as node `url` has applied it: every entry (history
 * included) up to the initial-done marker, in revision order.
 */
export async function readCommitted(
  url: string,
  bucket: string,
  timeoutMs = 10_000,
): Promise<CommittedEntry[]> {
  const nc = await connect({ servers: url, timeoutMs });
  try {
    const kv = await nc.keyValue(bucket);
    const w = await kv.watch(">", { includeHistory: true, timeoutMs });
    const out: CommittedEntry[] = [];
    const deadline = Date.now() + timeoutMs;
    try {
      for await (const e of w) {
        if (e === null) break;
        out.push({
          key: e.key,
          revision: e.revision,
          value: e.operation === "PUT" ? dec.decode(e.value) : null,
          operation: e.operation,
        });
        if (Date.now() > deadline) throw new Error(`reading ${bucket} from ${url} took too long`);
      }
    } finally {
      w.stop();
    }
    return out;
  } finally {
    await nc.close();
  }
}

export interface RunVerdict {
  /** Acked writes missing from the committed log (must be empty). */
  lost: AckedWrite[];
  linearizable: string;
  revisions: string;
}

/** Checks acked writes against the final log, then the patched history with kvModel. */
export function checkRun(result: WorkloadResult, committed: CommittedEntry[]): RunVerdict {
  const byRevision = new Map(committed.map((e) => [e.revision, e]));
  const lost = result.acked.filter((a) => {
    const e = byRevision.get(a.revision);
    return e === undefined || e.key !== a.key || e.value !== a.value;
  });
  const patched = patchKvHistory(result.history, committed);
  const verdict = checkLinearizable(kvModel(), patched, { timeoutMs: 20_000 });
  const revisions = checkKvRevisions(patched);
  return {
    lost,
    linearizable:
      verdict.result === "ok"
        ? "ok"
        : verdict.result === "illegal"
          ? `illegal: ${verdict.explanation}`
          : `unknown (budget ${verdict.budget})`,
    revisions: revisions.result === "ok" ? "ok" : revisions.explanation,
  };
}
