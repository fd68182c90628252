/**
 * `npm run bench -- verify [--mib=N] [--dir=PATH] [--keep]`: how long LevelDB's own
 * checksums take to verify at a start (`verifyLevelDbFiles`: CURRENT, the MANIFEST, the
 * logs LevelDB replays, a stat per table) and as a whole (`verifyLevelDb`, what
 * `streamkv verify` and a scrub cycle read: every block of every table), on a LevelDB of
 * about N MiB (default 300) of random 1 KiB values, written as a node writes (default
 * options), closed and reopened once (its log went to tables), then 2 MiB more left in
 * the write-ahead log. Each figure is the median of 3 runs on a warm page cache (the
 * files were just written); a cold cache adds the disk's read time to the whole check
 * only. Also the time at which a scrub at the default 16 MiB/s completes a cycle.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { verifyLevelDb, verifyLevelDbFiles } from "../log/index.js";
import { stringFlag } from "./_measure.js";

const VALUE_BYTES = 1024;
const BATCH_VALUES = 1024;
const DEFAULT_SCRUB_BYTES_PER_SECOND = 16 * 1024 * 1024;

async function load(dir: string, mib: number): Promise<void> {
  let db = new ClassicLevel<string, Uint8Array>(dir, { valueEncoding: "view" });
  await db.open();
  const write = async (from: number, batches: number) => {
    for (let b = from; b < from + batches; b++) {
      const batch = db.batch();
      for (let i = 0; i < BATCH_VALUES; i++) {
        batch.put(`k${String(b).padStart(7, "0")}-${i}`, randomBytes(VALUE_BYTES));
      }
      await batch.write();
    }
  };
  // Bounded: `mib` batches of 1 MiB.
  await write(0, mib);
  await db.close();
  db = new ClassicLevel<string, Uint8Array>(dir, { valueEncoding: "view" });
  await db.open();
  await write(mib, 2);
  await db.close();
}

async function median<T>(runs: number, fn: () => Promise<T>): Promise<{ ms: number; last: T }> {
  const times: number[] = [];
  let last: T | undefined;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    last = await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { ms: times[runs >> 1]!, last: last! };
}

export async function run(flags: string[]): Promise<void> {
  const mib = Number(stringFlag(flags, "mib") ?? 300);
  if (!Number.isSafeInteger(mib) || mib < 1 || mib > 100_000) {
    throw new Error(`--mib=${mib}: a whole number of MiB from 1 to 100000`);
  }
  const base = stringFlag(flags, "dir") ?? tmpdir();
  const dir = mkdtempSync(join(base, "streamkv-bench-verify-"));
  try {
    const loadStart = performance.now();
    await load(dir, mib);
    console.log(
      `loaded ${mib + 2} MiB of values in ${((performance.now() - loadStart) / 1000).toFixed(1)} s into ${dir}`,
    );
    const start = await median(3, () => verifyLevelDbFiles(dir));
    const whole = await median(3, () => verifyLevelDb(dir));
    const mb = (n: number) => (n / (1024 * 1024)).toFixed(1);
    console.log(
      `start check (verifyLevelDbFiles)   ${start.ms.toFixed(1)} ms  ${start.last.files} files read, ${mb(start.last.bytes)} MiB`,
    );
    console.log(
      `whole check (verifyLevelDb)        ${whole.ms.toFixed(1)} ms  ${whole.last.files} files, ${whole.last.tables} tables, ${mb(whole.last.bytes)} MiB, ${whole.last.damage.length} damaged`,
    );
    console.log(
      `scrub cycle at ${mb(DEFAULT_SCRUB_BYTES_PER_SECOND)} MiB/s        ${(whole.last.bytes / DEFAULT_SCRUB_BYTES_PER_SECOND).toFixed(1)} s`,
    );
  } finally {
    if (!flags.includes("--keep")) rmSync(dir, { recursive: true, force: true });
  }
}
