/**
 * Helpers the benchmark suites share (the leading underscore keeps this file out
 * of the suite list in bench/main.ts).
 */

/** `--name=N`, a positive integer, else `fallback`. */
export function intFlag(args: string[], name: string, fallback: number): number {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  const n = hit ? Number(hit.split("=")[1]) : fallback;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

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
