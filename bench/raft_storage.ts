/**
 * `npm run bench -- raft-storage [--seconds=N]`: synced appends through
 * LevelRaftStorage (raftstore/level_raft_storage.ts), for batches of 1, 64 and 1024 entries
 * of 128 bytes, awaited one at a time and with many persists in flight (group
 * commit). The reference is the disk's raw fsync rate, measured in the same
 * directory right before each case (1 s of appending 128 bytes + fdatasync, what
 * LevelDB does for a `{ sync: true }` write), because on a shared machine the
 * rate drifts by 2x within a minute. "x fsync" = persists/s ÷ that rate: above 1
 * only if several persists share one sync.
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Entry, EntryType } from "../raft/index.js";
import { LevelRaftStorage } from "../raftstore/index.js";

const ENTRY_BYTES = 128;
/** Upper bound on persists per case, whatever the disk's speed. */
const MAX_PERSISTS_PER_CASE = 200_000;

function secondsFlag(flags: string[]): number {
  const flag = flags.find((f) => f.startsWith("--seconds="));
  const seconds = flag ? Number(flag.slice("--seconds=".length)) : 3;
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 60) {
    throw new Error(`--seconds must be in (0, 60], got ${flag}`);
  }
  return seconds;
}

/** Raw fdatasync rate of the directory's disk: fsyncs per second. */
function fsyncRate(dir: string, seconds: number): number {
  const fd = openSync(join(dir, "fsync-probe"), "a");
  const block = Buffer.alloc(ENTRY_BYTES, 7);
  const start = performance.now();
  const endMs = start + seconds * 1000;
  let count = 0;
  try {
    while (performance.now() < endMs && count < MAX_PERSISTS_PER_CASE) {
      writeSync(fd, block);
      fdatasyncSync(fd);
      count++;
    }
  } finally {
    closeSync(fd);
  }
  return count / ((performance.now() - start) / 1000);
}

function makeBatch(first: number, size: number, term: number, payload: Uint8Array): Entry[] {
  const batch: Entry[] = [];
  for (let i = 0; i < size; i++) {
    batch.push({ index: first + i, term, type: EntryType.Normal, data: payload });
  }
  return batch;
}

interface CaseResult {
  name: string;
  fsyncsPerSec: number;
  persistsPerSec: number;
  entriesPerSec: number;
  syncs: number;
  requestsPerSync: number;
}

async function runCase(
  dir: string,
  batchSize: number,
  inflight: number,
  seconds: number,
): Promise<CaseResult> {
  const fsyncsPerSec = fsyncRate(dir, 1);
  const caseDir = await mkdtemp(join(dir, "case-"));
  const storage = await LevelRaftStorage.open(join(caseDir, "db"));
  const payload = new Uint8Array(ENTRY_BYTES).fill(42);
  const syncsBefore = storage.stats().syncs;
  let next = storage.lastIndex() + 1;
  let persists = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const endMs = start + seconds * 1000;
  while (performance.now() < endMs && persists < MAX_PERSISTS_PER_CASE) {
    pending.push(
      storage.persist({
        entries: makeBatch(next, batchSize, 1, payload),
        hardState: { currentTerm: 1, votedFor: "bench", commitIndex: next - 1 },
      }),
    );
    next += batchSize;
    persists++;
    if (pending.length >= inflight) await pending.shift();
  }
  await Promise.all(pending);
  const elapsedSec = (performance.now() - start) / 1000;
  const syncs = storage.stats().syncs - syncsBefore;
  await storage.close();
  await rm(caseDir, { recursive: true, force: true });
  return {
    name: `${batchSize} x ${ENTRY_BYTES} B, ${inflight === 1 ? "sequential" : `${inflight} in flight`}`,
    fsyncsPerSec,
    persistsPerSec: persists / elapsedSec,
    entriesPerSec: (persists * batchSize) / elapsedSec,
    syncs,
    requestsPerSync: persists / Math.max(1, syncs),
  };
}

export async function run(flags: string[]): Promise<void> {
  const seconds = secondsFlag(flags);
  const dir = await mkdtemp(join(tmpdir(), "bench-raft-storage-"));
  try {
    console.log(`directory: ${dir}; ${seconds} s per case; ${ENTRY_BYTES} B entries`);
    console.log(
      "reference: raw fsyncs/s = append 128 B + fdatasync in a loop, 1 s before each case",
    );
    const rows: CaseResult[] = [];
    for (const batchSize of [1, 64, 1024]) {
      rows.push(await runCase(dir, batchSize, 1, seconds));
      // Bound the entries in flight (memory) while keeping many persists queued.
      const inflight = Math.max(8, Math.min(256, Math.floor(16_384 / batchSize)));
      rows.push(await runCase(dir, batchSize, inflight, seconds));
    }
    const columns: [string, number][] = [
      ["case", -30],
      ["persists/s", 12],
      ["entries/s", 11],
      ["MB/s", 7],
      ["syncs", 7],
      ["req/sync", 9],
      ["raw fsyncs/s", 13],
      ["x fsync", 8],
    ];
    const line = (cells: string[]) =>
      cells
        .map((c, i) => {
          const width = columns[i]![1];
          return width < 0 ? c.padEnd(-width) : c.padStart(width);
        })
        .join("");
    console.log(line(columns.map(([name]) => name)));
    for (const r of rows) {
      console.log(
        line([
          r.name,
          r.persistsPerSec.toFixed(0),
          r.entriesPerSec.toFixed(0),
          ((r.entriesPerSec * ENTRY_BYTES) / 1e6).toFixed(1),
          String(r.syncs),
          r.requestsPerSync.toFixed(1),
          r.fsyncsPerSec.toFixed(0),
          (r.persistsPerSec / r.fsyncsPerSec).toFixed(2),
        ]),
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
