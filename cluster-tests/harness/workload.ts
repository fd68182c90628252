/**
 * A KV workload for the cluster tests: a few clients, each connected to every node
 * (starting at a different one), doing put / create / update / get on a small key set
 * with unique values, recorded with lincheck's HistoryRecorder. Writes that fail with
 * anything but a CAS answer are recorded as unknown (they may have been applied);
 * failed reads are left out (a read has no effect).
 *
 * With `deleteShare` some writes are deletes; with `counters`, some ops are CAS
 * increments of counter keys (`ctr<j>`: get, then update on the revision read, or
 * create when absent), whose values `<n>:<client>-<op>` stay unique per write, so the
 * same history checks them and `checkCounters` compares the final counts. Every op
 * is also journaled with monotonic timestamps (`journal`, for a results file).
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
  type KvCasCode,
  type KvInput,
  type KvOutput,
  kvModel,
  kvPerKeyModel,
  type Op,
  type OpHandle,
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
  /** Share of writes that are deletes (default 0). */
  deleteShare?: number;
  /** Counter keys for CAS increments (default 0: none). */
  counters?: number;
  /** Share of ops that are counter increments when `counters` > 0 (default 0.2). */
  counterShare?: number;
}

export interface AckedWrite {
  key: string;
  /** null for a delete (a DEL marker). */
  value: string | null;
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
  /** Every op with its outcome, in call order, timed by a monotonic clock. */
  journal: JournalLine[];
  /** Per counter key: increments acknowledged, and those whose outcome is unknown. */
  counters: Map<string, { acked: number; unknown: number }>;
}

export interface JournalLine {
  client: number;
  input: KvInput;
  outcome: "ok" | "failed" | "unknown";
  output?: KvOutput;
  error?: string;
  /** Milliseconds since the workload started (performance.now(): never goes back). */
  callMs: number;
  returnMs?: number;
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
  const journal: JournalLine[] = [];
  const counters = new Map<string, { acked: number; unknown: number }>();
  const startedMs = performance.now();
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
    const begin = (input: KvInput): { h: OpHandle; line: JournalLine } => {
      const line: JournalLine = {
        client: c,
        input,
        outcome: "unknown",
        callMs: performance.now() - startedMs,
      };
      journal.push(line);
      return { h: rec.call(c, input), line };
    };
    const finish = (line: JournalLine, outcome: JournalLine["outcome"], output?: KvOutput) => {
      line.outcome = outcome;
      line.returnMs = performance.now() - startedMs;
      if (output) line.output = output;
    };
    const increment = async (key: string, n: number) => {
      const tally = counters.get(key) ?? { acked: 0, unknown: 0 };
      counters.set(key, tally);
      const read = begin({ op: "get", key });
      let current: { count: number; revision: number } | undefined;
      try {
        const e = await kv.get(key);
        const value = e ? dec.decode(e.value) : undefined;
        const output: KvOutput = e
          ? { kind: "entry", value: value!, revision: e.revision }
          : { kind: "absent" };
        rec.ok(read.h, output);
        finish(read.line, "ok", output);
        current = { count: e ? Number(value!.split(":")[0]) : 0, revision: e?.revision ?? 0 };
      } catch (err) {
        noteError(err);
        failedReads++;
        rec.failDefinitely(read.h);
        finish(read.line, "failed");
        return;
      }
      const value = `${current.count + 1}:c${c}-${n}`;
      const input: KvInput =
        current.revision === 0
          ? { op: "create", key, value }
          : { op: "update", key, value, last: current.revision };
      const write = begin(input);
      try {
        const revision =
          input.op === "create"
            ? await kv.create(key, enc.encode(value))
            : await kv.update(key, enc.encode(value), current.revision);
        const output: KvOutput = { kind: "written", revision };
        rec.ok(write.h, output);
        finish(write.line, "ok", output);
        acked.push({ key, value, revision, ackedAtMs: Date.now() });
        tally.acked++;
      } catch (err) {
        noteError(err);
        if (isKvError(err, "KEY_EXISTS") || isKvError(err, "WRONG_LAST_REVISION")) {
          const output: KvOutput = { kind: "rejected", code: err.code as KvCasCode };
          rec.ok(write.h, output);
          finish(write.line, "ok", output);
        } else {
          unknownWrites++;
          tally.unknown++;
          rec.unknown(write.h);
          finish(write.line, "unknown");
          write.line.error = isKvError(err) ? err.code : String(err);
        }
      }
    };
    for (let n = 0; n < o.maxOps && Date.now() < until && !o.stop?.requested; n++) {
      ops++;
      if ((o.counters ?? 0) > 0 && rand() < (o.counterShare ?? 0.2)) {
        await increment(`ctr${Math.floor(rand() * o.counters!)}`, n);
        continue;
      }
      const key = `k${Math.floor(rand() * o.keys)}`;
      const value = `c${c}-${n}`;
      const r = rand();
      if (r < 0.25) {
        const { h, line } = begin({ op: "get", key });
        try {
          const e = await kv.get(key);
          const output: KvOutput = e
            ? { kind: "entry", value: dec.decode(e.value), revision: e.revision }
            : { kind: "absent" };
          rec.ok(h, output);
          finish(line, "ok", output);
          if (e) lastSeen.set(key, e.revision);
        } catch (err) {
          noteError(err);
          failedReads++;
          rec.failDefinitely(h);
          finish(line, "failed");
        }
        continue;
      }
      let input: KvInput;
      let write: () => Promise<number>;
      if (r >= 1 - (o.deleteShare ?? 0)) {
        input = { op: "delete", key };
        write = () => kv.delete(key);
      } else if (r < 0.65) {
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
      const { h, line } = begin(input);
      try {
        const revision = await write();
        rec.ok(h, { kind: "written", revision });
        finish(line, "ok", { kind: "written", revision });
        acked.push({
          key,
          value: input.op === "delete" ? null : value,
          revision,
          ackedAtMs: Date.now(),
        });
        lastSeen.set(key, revision);
      } catch (err) {
        noteError(err);
        if (isKvError(err, "KEY_EXISTS") || isKvError(err, "WRONG_LAST_REVISION")) {
          const current = err.details.currentRevision;
          const output: KvOutput = {
            kind: "rejected",
            code: err.code as KvCasCode,
            ...(current === undefined ? {} : { currentRevision: current }),
          };
          rec.ok(h, output);
          finish(line, "ok", output);
          if (current !== undefined) lastSeen.set(key, current);
        } else {
          unknownWrites++;
          rec.unknown(h);
          finish(line, "unknown");
          line.error = isKvError(err) ? err.code : String(err);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  } finally {
    await Promise.all(conns.map((c) => c.close()));
  }
  return {
    history: rec.history(),
    acked,
    unknownWrites,
    failedReads,
    ops,
    errors,
    journal,
    counters,
  };
}

export interface CommittedEntry extends CommittedKvEntry {
  operation: string;
  /** The entry's created time (epoch ms), with `readCommitted`'s `created` option. */
  createdMs?: number;
}

/**
 * The bucket's retained log as node `url` has applied it: every entry (history
 * included) up to the initial-done marker, in revision order; `created` adds each
 * entry's created time (replicated, so the same on every node).
 */
export async function readCommitted(
  url: string,
  bucket: string,
  timeoutMs = 10_000,
  options: { created?: boolean } = {},
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
          ...(options.created ? { createdMs: e.created.getTime() } : {}),
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

/**
 * Checks acked writes against the final log, then the patched history with kvModel
 * (exact), or with kvPerKeyModel for histories too long to search whole (`perKey`).
 */
export function checkRun(
  result: WorkloadResult,
  committed: CommittedEntry[],
  options: { perKey?: boolean } = {},
): RunVerdict {
  const byRevision = new Map(committed.map((e) => [e.revision, e]));
  const lost = result.acked.filter((a) => {
    const e = byRevision.get(a.revision);
    return e === undefined || e.key !== a.key || e.value !== a.value;
  });
  const patched = patchKvHistory(result.history, committed);
  const check = { timeoutMs: 20_000 };
  const verdict = options.perKey
    ? checkLinearizable(kvPerKeyModel(), patched, check)
    : checkLinearizable(kvModel(), patched, check);
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

/**
 * CAS counters: each acked increment is in the final count, and nothing else is
 * but increments whose outcome was unknown (acked <= final <= acked + unknown).
 * Returns one line per counter that breaks it (empty = ok).
 */
export function checkCounters(result: WorkloadResult, committed: CommittedEntry[]): string[] {
  const latest = new Map<string, CommittedEntry>();
  for (const e of committed) latest.set(e.key, e);
  const broken: string[] = [];
  for (const [key, { acked, unknown }] of result.counters) {
    const e = latest.get(key);
    const final = e?.value ? Number(e.value.split(":")[0]) : 0;
    if (final < acked || final > acked + unknown) {
      broken.push(`${key}: final ${final}, acked ${acked}, unknown ${unknown}`);
    }
  }
  return broken;
}
