/**
 * `npm run bench -- log [--seconds=N] [--dir=PATH]`: the stream log's write and
 * read rates, next to the raw fsync rate of the same disk measured in the same
 * run (a synced batch can be no faster than one fsync).
 *
 *   raw syncs/s           append 128 B + fdatasync on a file in the bench dir (what
 *                         LevelDB does per synced write), measured in slices that
 *                         alternate with each figure's own slices (the disk is shared
 *                         and noisy); overwrite + fsync is printed once for context
 *   sync appends/s, N     one LogBatch of N appends, commit({ sync: true }), awaited
 *   pipelined             8 single-append commits in flight (group commit merges them)
 *   reads/s               getBySeq / lastBySubject, awaited one by one and 16 in flight
 */
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StreamLog } from "../log/index.js";
import { stringFlag } from "./_measure.js";

const PAYLOAD_BYTES = 100;
const SUBJECTS = 1000;

/** Appends 128 B + fdatasync to a probe file: what LevelDB's log does on a synced write. */
class SyncProbe {
  private readonly fd: number;
  private readonly block = Buffer.alloc(128, 7);

  constructor(dir: string) {
    this.fd = openSync(join(dir, "sync-probe"), "w");
  }

  /** Syncs done in `ms` milliseconds. */
  runFor(ms: number): number {
    const end = performance.now() + ms;
    let count = 0;
    while (performance.now() < end && count < 10_000_000) {
      writeSync(this.fd, this.block);
      fdatasyncSync(this.fd);
      count++;
    }
    return count;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Overwrites one 4 KiB block + fsync for `ms`; a second, different raw figure. */
function overwriteFsyncRate(dir: string, ms: number): number {
  const fd = openSync(join(dir, "fsync-probe"), "w");
  const block = Buffer.alloc(4096, 7);
  const end = performance.now() + ms;
  let count = 0;
  try {
    while (performance.now() < end && count < 10_000_000) {
      writeSync(fd, block, 0, block.length, 0);
      fsyncSync(fd);
      count++;
    }
  } finally {
    closeSync(fd);
  }
  return count / (ms / 1000);
}

interface Paired {
  /** Units of work per second (from `step`'s return values). */
  rate: number;
  /** Calls of `step` per second. */
  callsPerSecond: number;
  /** Raw syncs per second measured in the slices interleaved with this figure. */
  rawSyncsPerSecond: number;
}

/**
 * Measures `step` in slices interleaved with equal slices of the raw sync
 * probe, so a noisy shared disk affects the figure and its reference alike.
 */
async function paired(
  seconds: number,
  probe: SyncProbe,
  step: () => Promise<number>,
): Promise<Paired> {
  const sliceMs = 200;
  const slices = Math.max(1, Math.round((seconds * 1000) / (2 * sliceMs)));
  let raw = 0;
  let done = 0;
  let calls = 0;
  let stepMs = 0;
  for (let i = 0; i < slices; i++) {
    raw += probe.runFor(sliceMs);
    const start = performance.now();
    const end = start + sliceMs;
    while (performance.now() < end && calls < 10_000_000) {
      done += await step();
      calls++;
    }
    stepMs += performance.now() - start;
  }
  return {
    rate: done / (stepMs / 1000),
    callsPerSecond: calls / (stepMs / 1000),
    rawSyncsPerSecond: raw / ((slices * sliceMs) / 1000),
  };
}

async function timed(seconds: number, step: () => Promise<number>): Promise<number> {
  const start = performance.now();
  const end = start + seconds * 1000;
  let done = 0;
  let rounds = 0;
  while (performance.now() < end && rounds < 10_000_000) {
    done += await step();
    rounds++;
  }
  return done / ((performance.now() - start) / 1000);
}

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");

export async function run(flags: string[]): Promise<void> {
  const seconds = Number(stringFlag(flags, "seconds") ?? "2");
  const dir = mkdtempSync(join(stringFlag(flags, "dir") ?? tmpdir(), "streamkv-bench-log-"));
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(42);
  let seq = 0;
  const append = (b: ReturnType<StreamLog["batch"]>) =>
    b.append("bench", { subject: `key.${seq++ % SUBJECTS}`, payload, timestampMs: seq });
  const log = await StreamLog.open(join(dir, "db"));
  try {
    console.log(`dir ${dir}, ${seconds}s per figure, payload ${PAYLOAD_BYTES} B`);
    const probe = new SyncProbe(dir);
    try {
      console.log(
        `raw: overwrite 4 KiB + fsync ${fmt(overwriteFsyncRate(dir, 500))}/s; ` +
          `append 128 B + fdatasync ${fmt(probe.runFor(500) * 2)}/s (LevelDB syncs with fdatasync)`,
      );
      await log.createStream(
        {
          name: "bench",
          maxMsgsPerSubject: -1,
          maxAgeMs: 0,
          maxBytes: -1,
          maxMsgs: -1,
          maxMsgSize: -1,
          discard: "old",
        },
        { sync: true },
      );
      const unsynced = await timed(seconds / 4, async () => {
        const b = log.batch();
        append(b);
        await b.commit();
        return 1;
      });
      console.log(`no sync, batch of 1  : ${fmt(unsynced)} appends/s (the CPU ceiling)`);
      for (const size of [1, 16, 256]) {
        const r = await paired(seconds, probe, async () => {
          const b = log.batch();
          for (let i = 0; i < size; i++) append(b);
          await b.commit({ sync: true });
          return size;
        });
        console.log(
          `sync batch of ${String(size).padEnd(3)}  : ${fmt(r.rate)} appends/s, ` +
            `${fmt(r.callsPerSecond)} batches/s vs ${fmt(r.rawSyncsPerSecond)} raw fdatasyncs/s ` +
            `interleaved = ${(r.callsPerSecond / r.rawSyncsPerSecond).toFixed(2)}`,
        );
      }
      const inFlight = 8;
      const writesBefore = log.writeCount;
      let commits = 0;
      const r = await paired(seconds, probe, async () => {
        const pending: Promise<void>[] = [];
        for (let i = 0; i < inFlight; i++) {
          const b = log.batch();
          append(b);
          pending.push(b.commit({ sync: true }));
        }
        await Promise.all(pending);
        commits += inFlight;
        return inFlight;
      });
      const writes = log.writeCount - writesBefore;
      console.log(
        `pipelined, ${inFlight} single-append sync commits in flight: ${fmt(r.rate)} appends/s ` +
          `vs ${fmt(r.rawSyncsPerSecond)} raw fdatasyncs/s interleaved ` +
          `(${(commits / Math.max(1, writes)).toFixed(1)} commits per LevelDB write)`,
      );
    } finally {
      probe.close();
    }

    const lastSeq = log.state("bench").lastSeq;
    const randomSeq = () => 1 + Math.floor(Math.random() * lastSeq);
    const randomSubject = () => `key.${Math.floor(Math.random() * SUBJECTS)}`;
    console.log(`stream holds ${fmt(lastSeq)} messages`);
    const readers: Array<[string, () => Promise<unknown>]> = [
      ["getBySeq", () => log.getBySeq("bench", randomSeq())],
      ["lastBySubject", () => log.lastBySubject("bench", randomSubject())],
    ];
    for (const [name, read] of readers) {
      const serial = await timed(seconds / 2, async () => {
        await read();
        return 1;
      });
      const parallel = await timed(seconds / 2, async () => {
        await Promise.all(Array.from({ length: 16 }, read));
        return 16;
      });
      console.log(
        `${name.padEnd(13)}: ${fmt(serial)} reads/s one at a time, ${fmt(parallel)} reads/s 16 in flight`,
      );
    }
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
