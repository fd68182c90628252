/**
 * `npm run bench -- kvapi`: the KV state machine in-process (no network, no Raft).
 *
 * - applied puts/s: one Raft entry = one LogBatch (data + applied index + request
 *   window record), sequential (await each) and pipelined (the log groups
 *   concurrent commits into one LevelDB write), synced and unsynced;
 * - gets/s from the applied state;
 * - watch fan-out: time to deliver one update to 1, 100 and 10,000 watchers of
 *   which 1% match, through the subject-tree index and, as the reference in the
 *   same run, through a naive loop that tests every watcher's filter.
 *
 * Flags: --quick (smaller counts, for a smoke run).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { encodeCommand, KvStateMachine, normalizeBucketConfig } from "../kvapi/index.js";
import { WatchHub } from "../kvapi/watch/hub.js";
import { KvWatcher, type WatchEvent } from "../kvapi/watch/watcher.js";
import { compileFilter, StreamLog } from "../log/index.js";

const VALUE = new Uint8Array(100).fill(7);
const KEYS = 1_000;
/** Every phase stops at its count or this much time, whichever comes first. */
const PHASE_MAX_MS = 4_000;

interface Harness {
  dir: string;
  log: StreamLog;
  kv: KvStateMachine;
  index: number;
  nowMs: number;
}

async function open(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "streamkv-bench-kv-"));
  const log = await StreamLog.open(dir);
  const kv = await KvStateMachine.open(log);
  const h = { dir, log, kv, index: 0, nowMs: 1_700_000_000_000 };
  const config = normalizeBucketConfig({ bucket: "bench", history: 1 });
  await kv.apply(++h.index, encodeCommand({ type: "createBucket", config, timestampMs: h.nowMs }));
  return h;
}

async function close(h: Harness): Promise<void> {
  h.kv.close();
  await h.log.close();
  rmSync(h.dir, { recursive: true, force: true });
}

function putCommand(h: Harness, i: number): Uint8Array {
  return encodeCommand({
    type: "put",
    bucket: "bench",
    key: `k.${i % KEYS}`,
    value: VALUE,
    timestampMs: h.nowMs + i,
    request: { clientId: "bench", sequence: h.index + 1 },
  });
}

function rate(n: number, ms: number): string {
  return `${Math.round((n / ms) * 1000).toLocaleString("en-US")}/s`;
}

async function putsSequential(sync: boolean, count: number): Promise<string> {
  const h = await open();
  const start = performance.now();
  let n = 0;
  while (n < count && performance.now() - start < PHASE_MAX_MS) {
    const r = await h.kv.apply(++h.index, putCommand(h, n), { sync });
    if (!r.ok) throw r.error;
    n++;
  }
  const ms = performance.now() - start;
  await close(h);
  return `${rate(n, ms)} (${n} puts in ${ms.toFixed(0)} ms)`;
}

async function putsPipelined(sync: boolean, count: number, window: number): Promise<string> {
  const h = await open();
  const writesBefore = h.log.writeCount;
  const start = performance.now();
  const inflight = new Set<Promise<unknown>>();
  let n = 0;
  while (n < count && performance.now() - start < PHASE_MAX_MS) {
    const p = h.kv.apply(++h.index, putCommand(h, n), { sync }).then((r) => {
      if (!r.ok) throw r.error;
      inflight.delete(p);
    });
    inflight.add(p);
    n++;
    if (inflight.size >= window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  const ms = performance.now() - start;
  const writes = h.log.writeCount - writesBefore;
  await close(h);
  return `${rate(n, ms)} (${n} puts in ${ms.toFixed(0)} ms, ${writes} LevelDB writes)`;
}

async function gets(count: number): Promise<string> {
  const h = await open();
  const pending: Array<Promise<unknown>> = [];
  for (let i = 0; i < KEYS; i++)
    pending.push(h.kv.apply(++h.index, putCommand(h, i), { sync: false }));
  await Promise.all(pending);
  await h.log.flush();
  const start = performance.now();
  let n = 0;
  let x = 12345;
  while (n < count && performance.now() - start < PHASE_MAX_MS) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const e = await h.kv.get("bench", `k.${x % KEYS}`);
    if (e === null) throw new Error("missing key");
    n++;
  }
  const ms = performance.now() - start;
  await close(h);
  return `${rate(n, ms)} (${n} gets in ${ms.toFixed(0)} ms, ${KEYS} keys on disk)`;
}

/** Watchers of which 1% (at least one) match "hot.x"; the rest watch unrelated keys. */
function makeWatchers(count: number, onEnd: (w: KvWatcher) => void): KvWatcher[] {
  const matching = Math.max(1, Math.round(count / 100));
  const stride = Math.floor(count / matching);
  return Array.from(
    { length: count },
    (_, i) =>
      new KvWatcher({
        bucket: "bench",
        filter: i % stride === 0 && i / stride < matching ? "hot.*" : `cold.${i}.*`,
        boundary: 0,
        fromRevision: 1,
        ignoreDeletes: false,
        metaOnly: false,
        maxPending: 1 << 30,
        maxPendingBytes: 2 ** 52,
        initial: undefined,
        currentRevision: () => 0,
        onEnd,
      }),
  );
}

/** Mean time per update (µs) to find and enqueue to every matching watcher. */
function fanOut(
  watcherCount: number,
  updates: number,
): { indexUs: number; naiveUs: number; matched: number } {
  const hub = new WatchHub();
  const watchers = makeWatchers(watcherCount, (w) => hub.remove(w));
  for (const w of watchers) hub.add(w);
  const naive = watchers.map((w) => ({ w, match: compileFilter(w.filter) }));
  const event = (seq: number): WatchEvent => ({
    seq,
    subject: "hot.x",
    payload: VALUE,
    operation: "PUT",
    timestampMs: 0,
  });
  // Queues are left to grow (maxPending is huge): a few hundred thousand
  // references at most, and no consumer work is mixed into the measurement.
  const run = (deliver: (e: WatchEvent) => void, seq0: number): number => {
    for (let i = 0; i < 200; i++) deliver(event(seq0 + i));
    const start = performance.now();
    for (let i = 0; i < updates; i++) deliver(event(seq0 + 200 + i));
    return ((performance.now() - start) * 1000) / updates;
  };
  const indexUs = run((e) => hub.publish("bench", [e]), 1);
  const naiveUs = run(
    (e) => {
      for (const { w, match } of naive) if (match(e.subject)) w.push(e);
    },
    1 + 200 + updates,
  );
  const matched = watchers.filter((w) => w.filter === "hot.*").length;
  for (const w of watchers) w.stop();
  return { indexUs, naiveUs, matched };
}

/** One committed put reaching W real watchers through apply (updatesOnly watches, 1% matching). */
async function fanOutEndToEnd(watcherCount: number, puts: number): Promise<number> {
  const h = await open();
  const matching = Math.max(1, Math.round(watcherCount / 100));
  const stride = Math.floor(watcherCount / matching);
  const watchers = Array.from({ length: watcherCount }, (_, i) =>
    h.kv.watch("bench", i % stride === 0 && i / stride < matching ? "hot.*" : `cold.${i}.*`, {
      updatesOnly: true,
      maxPending: 1 << 20,
    }),
  );
  for (const w of watchers) await w.next();
  const hot = watchers.filter((_, i) => i % stride === 0 && i / stride < matching);
  const start = performance.now();
  for (let i = 0; i < puts; i++) {
    const data = encodeCommand({
      type: "put",
      bucket: "bench",
      key: "hot.x",
      value: VALUE,
      timestampMs: h.nowMs,
    });
    await h.kv.apply(++h.index, data, { sync: false });
    for (const w of hot) {
      const r = await w.next();
      if (r.done || r.value === null) throw new Error("watch did not deliver");
    }
  }
  const us = ((performance.now() - start) * 1000) / puts;
  for (const w of watchers) w.stop();
  await close(h);
  return us;
}

export async function run(flags: string[]): Promise<void> {
  const quick = flags.includes("--quick");
  const scale = quick ? 0.1 : 1;
  console.log("applied puts (100-byte values, 1000 keys, history 1, one Raft entry per batch):");
  console.log(
    `  sequential, sync:true     ${await putsSequential(true, Math.ceil(1_000 * scale))}`,
  );
  console.log(
    `  sequential, sync:false    ${await putsSequential(false, Math.ceil(20_000 * scale))}`,
  );
  console.log(
    `  pipelined 256, sync:true  ${await putsPipelined(true, Math.ceil(20_000 * scale), 256)}`,
  );
  console.log(
    `  pipelined 256, sync:false ${await putsPipelined(false, Math.ceil(20_000 * scale), 256)}`,
  );
  console.log(`gets (sequential await):    ${await gets(Math.ceil(50_000 * scale))}`);
  console.log("watch fan-out, one update to W watchers of which 1% match (mean per update):");
  console.log("  W        matched  subject tree   naive loop (reference)  ratio");
  for (const w of [1, 100, 10_000]) {
    const updates = quick ? 500 : w >= 10_000 ? 2_000 : 20_000;
    const r = fanOut(w, updates);
    console.log(
      `  ${String(w).padEnd(8)} ${String(r.matched).padEnd(8)} ${`${r.indexUs.toFixed(2)} µs`.padEnd(14)} ${`${r.naiveUs.toFixed(2)} µs`.padEnd(23)} ${(r.naiveUs / r.indexUs).toFixed(1)}x`,
    );
  }
  console.log("watch end to end: apply a put (sync:false) until every matching watcher has it:");
  for (const w of [1, 100, 10_000]) {
    const us = await fanOutEndToEnd(w, quick ? 50 : 500);
    console.log(`  W=${String(w).padEnd(7)} ${us.toFixed(0)} µs per put`);
  }
}
