/**
 * `npm run bench -- log-index [--keys=N] [--dir=PATH]`: what the stream log's in-memory
 * index costs per key, and how long an open takes from the index checkpoint a clean
 * close writes versus the full scan a crash leaves to do (log/README.md). The log
 * alone, in this process: no server, no Raft, so the figures are the index's own.
 *
 *   heap per key        heap after GC, before and after loading N keys (128 B values)
 *   close               drain + write the checkpoint
 *   open (checkpoint)   StreamLog.open of the db after that close
 *   open (scan)         the same db with the checkpoint dropped first, as after a crash
 *
 * Two layouts: history 1 with one write per key, and history 16 with 8 writes per key
 * (8 messages per key), so the growth with history shows.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ClassicLevel } from "classic-level";
import { deleteIndexCheckpoint, StreamLog } from "../log/index.js";
import { stringFlag } from "./_measure.js";

const VIEW = { keyEncoding: "view", valueEncoding: "view" } as const;
const BATCH = 1000;

/** A full GC (the bench runs without --expose-gc, so it asks V8 for the hook). */
function heapAfterGc(): number {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

interface Figures {
  layout: string;
  keys: number;
  messages: number;
  heapPerKey: number;
  closeMs: number;
  openCheckpointMs: number;
  openScanMs: number;
}

async function measure(
  root: string,
  keys: number,
  history: number,
  writesPerKey: number,
): Promise<Figures> {
  const dir = mkdtempSync(join(root, "log-index-"));
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, VIEW);
  await db.open();
  try {
    let log = await StreamLog.open(db as never);
    await log.createStream({
      name: "b",
      maxMsgsPerSubject: history,
      maxAgeMs: 0,
      maxBytes: -1,
      maxMsgs: -1,
      maxMsgSize: -1,
      discard: "old",
    });
    const payload = new Uint8Array(128);
    const before = heapAfterGc();
    for (let w = 0; w < writesPerKey; w++) {
      for (let first = 0; first < keys; first += BATCH) {
        const batch = log.batch();
        for (let i = first; i < Math.min(keys, first + BATCH); i++) {
          batch.append("b", { subject: `k.${i % 100}.${i}`, payload, timestampMs: 1 + w });
        }
        await batch.commit({ sync: false });
      }
    }
    const heapPerKey = (heapAfterGc() - before) / keys;
    const messages = log.state("b").messages;
    let started = performance.now();
    await log.close();
    const closeMs = performance.now() - started;
    started = performance.now();
    log = await StreamLog.open(db as never);
    const openCheckpointMs = performance.now() - started;
    if (log.opened.index.from !== "checkpoint") throw new Error("the checkpoint was not used");
    // Dropped as a crash would leave it: the next open must scan.
    await log.close();
    await deleteIndexCheckpoint(db as never);
    started = performance.now();
    log = await StreamLog.open(db as never);
    const openScanMs = performance.now() - started;
    await log.close();
    return {
      layout: `history ${history}, ${writesPerKey} write${writesPerKey > 1 ? "s" : ""}/key`,
      keys,
      messages,
      heapPerKey,
      closeMs,
      openCheckpointMs,
      openScanMs,
    };
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(flags: string[]): Promise<void> {
  if (flags.includes("--help")) {
    console.log("usage: npm run bench -- log-index [--keys=N (default 200000)] [--dir=PATH]");
    return;
  }
  const keys = Number(stringFlag(flags, "keys") ?? 200_000);
  if (!Number.isSafeInteger(keys) || keys < 1000) throw new Error("--keys must be >= 1000");
  const root = stringFlag(flags, "dir") ?? tmpdir();
  const rows: Figures[] = [];
  rows.push(await measure(root, keys, 1, 1));
  rows.push(await measure(root, Math.max(1000, Math.floor(keys / 4)), 16, 8));
  console.log("| layout | keys | messages | heap/key | close | open (checkpoint) | open (scan) |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.layout} | ${r.keys} | ${r.messages} | ${r.heapPerKey.toFixed(0)} B | ${r.closeMs.toFixed(0)} ms | ${r.openCheckpointMs.toFixed(0)} ms | ${r.openScanMs.toFixed(0)} ms |`,
    );
  }
}
