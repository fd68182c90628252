/**
 * Crash test: a child process appends with sync and is killed with SIGKILL at
 * a random point; after reopening, every acknowledged batch is present, the
 * applied meta record matches the data (one atomic write), seqs are contiguous,
 * and state() matches a scan. Kill points come from a seeded PRNG; set
 * LOG_CRASH_SEED to replay a run.
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { seededRandom } from "../test_support/index.js";
import { batchSize, HISTORY, histSubject, payloadFor, plainSubject } from "./crash_child.js";
import { StreamLog } from "./stream_log.js";
import { collect, tempDir, text } from "./test_helpers.js";

const RUNS = 20;
const here = dirname(fileURLToPath(import.meta.url));

/** Runs the child until `killAfterMs` past "ready", SIGKILLs it; returns the highest acked batch. */
function runChild(dir: string, killAfterMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(here, "crash_child.ts"), dir], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let killTimer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (killTimer === undefined && out.includes("ready\n")) {
        killTimer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (_code, signal) => {
      clearTimeout(guard);
      clearTimeout(killTimer);
      if (signal !== "SIGKILL" || !out.includes("ready\n")) {
        reject(new Error(`child ended unexpectedly (signal ${signal}): ${err}`));
        return;
      }
      let acked = 0;
      for (const line of out.split("\n")) {
        const m = /^ok (\d+)$/.exec(line);
        if (m) acked = Math.max(acked, Number(m[1]));
      }
      resolve(acked);
    });
  });
}

async function check(dir: string, acked: number): Promise<{ applied: number }> {
  const log = await StreamLog.open(dir);
  try {
    const applied = Number(text(await log.getMeta("applied")) ?? "0");
    expect(applied).toBeGreaterThanOrEqual(acked);
    let total = 0;
    for (let n = 1; n <= applied; n++) total += batchSize(n);

    const plain = await collect(log.iterate("plain"));
    expect(plain.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    for (const m of plain) {
      expect(m.subject).toBe(plainSubject(m.seq));
      expect(m.payload).toEqual(payloadFor(m.seq));
    }
    const bytes = plain.reduce((sum, m) => sum + m.payload.length, 0);
    expect(log.state("plain")).toEqual({
      firstSeq: 1,
      lastSeq: total,
      messages: total,
      bytes,
      subjects: Math.min(total, 3),
    });

    const hist = await collect(log.iterate("hist"));
    const expected: number[] = [];
    for (let seq = total; seq >= 1; seq--) {
      const subject = histSubject(seq);
      if (expected.filter((s) => histSubject(s) === subject).length < HISTORY) expected.push(seq);
    }
    expected.sort((a, b) => a - b);
    expect(hist.map((m) => m.seq)).toEqual(expected);
    for (const m of hist) expect(m.payload).toEqual(payloadFor(m.seq));
    const state = log.state("hist");
    expect(state).toEqual({
      firstSeq: expected[0] ?? total + 1,
      lastSeq: total,
      messages: hist.length,
      bytes: hist.reduce((sum, m) => sum + m.payload.length, 0),
      subjects: new Set(hist.map((m) => m.subject)).size,
    });
    return { applied };
  } finally {
    await log.close();
  }
}

describe("crash safety", () => {
  it(`keeps every acknowledged append across ${RUNS} SIGKILLs`, { timeout: 60_000 }, async () => {
    const seed = Number(process.env.LOG_CRASH_SEED ?? Date.now() % 2 ** 31);
    console.log(`log crash test seed ${seed} (replay: LOG_CRASH_SEED=${seed})`);
    const random = seededRandom(seed);
    let totalAcked = 0;
    for (let run = 0; run < RUNS; run++) {
      const dir = tempDir("streamkv-crash-");
      try {
        const killAfterMs = Math.floor(random() * 300);
        const acked = await runChild(dir.path, killAfterMs);
        const { applied } = await check(dir.path, acked);
        totalAcked += acked;
        expect(
          applied - acked,
          `run ${run}: applied ${applied} acked ${acked}`,
        ).toBeLessThanOrEqual(3);
      } finally {
        dir.remove();
      }
    }
    console.log(`log crash test: ${totalAcked} acknowledged batches checked over ${RUNS} runs`);
    expect(totalAcked).toBeGreaterThan(0);
  });
});
