/**
 * Helpers the benchmark suites share (the leading underscore keeps this file out
 * of the suite list in bench/main.ts).
 */
import { execFileSync } from "node:child_process";
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

/**
 * USER_HZ (what /proc/<pid>/stat counts in): `getconf CLK_TCK`, else 100, which every
 * mainstream Linux kernel uses.
 */
export const CLOCK_TICKS_PER_SECOND = ((): number => {
  try {
    const n = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** CPU ms used so far by each of `pids`; undefined if /proc cannot tell for one of them. */
export function processesCpuMs(pids: readonly number[]): number[] | undefined {
  const all = pids.map(processCpuMs);
  return all.every((v) => v !== undefined) ? (all as number[]) : undefined;
}

/** VmRSS of `pid` in bytes from /proc/<pid>/status; undefined once it is gone. */
export function processRssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples the RSS of several processes every `intervalMs` until stopped; keeps each peak. */
export class PeakRssSampler {
  /** Highest VmRSS seen per process, bytes, in the order of `pids` (0: never read). */
  readonly peakBytes: number[];
  private readonly timer: ReturnType<typeof setInterval>;
  constructor(
    private readonly pids: readonly number[],
    intervalMs = 50,
  ) {
    this.peakBytes = pids.map(() => 0);
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }
  private sample(): void {
    this.pids.forEach((pid, i) => {
      const rss = processRssBytes(pid);
      if (rss !== undefined && rss > this.peakBytes[i]!) this.peakBytes[i] = rss;
    });
  }
  stop(): number[] {
    clearInterval(this.timer);
    this.sample();
    return this.peakBytes;
  }
}

/** The p-th percentile of ascending samples (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The median of samples in any order (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** What `timedOps` measured: completed ops, their wall time, and each op's latency. */
export interface TimedRun {
  ops: number;
  seconds: number;
  perSec: number;
  /** Latency of every completed op in ms, ascending. */
  latMs: number[];
}

/**
 * Runs `op(i)` for i = 0.. with `concurrency` loops until `total` ops ran or `seconds`
 * passed (no new op starts after that), keeping each op's latency (send to completion, ms).
 */
export async function timedOps(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
  seconds = Number.POSITIVE_INFINITY,
): Promise<TimedRun> {
  let next = 0;
  const latMs: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total && performance.now() < deadline) {
        const t = performance.now();
        await op(next++);
        latMs.push(performance.now() - t);
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  latMs.sort((a, b) => a - b);
  return { ops: latMs.length, seconds: wall, perSec: latMs.length / wall, latMs };
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
  return (await timedOps(total, concurrency, op, seconds)).perSec;
}
