/**
 * How long the container scenarios run: `--quick` (the default, CI) or
 * `--minutes N` (a soak), passed by run.ts as STREAMKV_CHAOS_MINUTES.
 */
export interface ScenarioBudget {
  cycles: number;
  durationMs: number;
  maxOpsPerClient: number;
  /** vitest's timeout for one scenario. */
  testTimeoutMs: number;
}

/** The budget of one of `scenarios` scenarios. */
export function scenarioBudget(scenarios: number): ScenarioBudget {
  const minutes = Number(process.env.STREAMKV_CHAOS_MINUTES ?? "0");
  if (!(minutes > 0)) {
    return { cycles: 2, durationMs: 60_000, maxOpsPerClient: 800, testTimeoutMs: 150_000 };
  }
  const durationMs = (minutes * 60_000) / scenarios;
  return {
    // A fault cycle takes 10-15 s here; the workload's op bound grows with the time.
    cycles: Math.max(2, Math.floor(durationMs / 15_000)),
    durationMs,
    maxOpsPerClient: Math.ceil(durationMs / 10),
    testTimeoutMs: durationMs + 120_000,
  };
}
