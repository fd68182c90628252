/**
 * Helpers the benchmark suites share (the leading underscore keeps this file out
 * of the suite list in bench/main.ts).
 */
import { readFileSync } from "node:fs";

/** The text after `--name=`, or undefined when the flag is absent. */
export function stringFlag(args: string[], name: string): string | undefined {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** `--name=N`, a positive integer, else `fallback`. */
export function intFlag(args: string[], name: string, fallback: number): number {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  const n = hit ? Number(hit.split("=")[1]) : fallback;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

/**
 * CPU time (user + system, ms) process `pid` has used so far, from /proc (Linux);
 * undefined where /proc cannot tell.
 */
export function processCpuMs(pid: number): number | undefined {
  try {
    // Fields after the command name: state is the 1st, utime the 12th, stime the 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/** USER_HZ on Linux (what /proc/<pid>/stat counts in); 100 on every mainstream kernel. */
const CLOCK_TICKS_PER_SECOND = 100;

/** The p-th percentile of ascending samples (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Runs `op(i)` for i = 0.. with `concurrency` in flight until `total` ops ran or
 * `seconds` passed (no new op starts after that); returns completed ops per second.
 */
export async function opsPerSecond(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
  seconds = Number.POSITIVE_INFINITY,
): Promise<number> {
  let next = 0;
  let done = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total && performance.now() < deadline) {
        await op(next++);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}
