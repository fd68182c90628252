/**
 * How long the container scenarios run: `--quick` (the default, CI) or
 * `--minutes N` (a soak), passed by run.ts as STREAMKV_CHAOS_MINUTES.
 */
export interface ScenarioBudget {
  cycles: number;
  /** Soak only: no new fault cycle after this long (the workload runs on until the last heals). */
  nemesisMs?: number;
  durationMs: number;
  maxOpsPerClient: number;
  /** vitest's timeout for one scenario. */
  testTimeoutMs: number;
}

/** The budget of one of `scenarios` scenarios. */
export function scenarioBudget(scenarios: number): ScenarioBudget {
  const minutes = Number(process.env.STREAMKV_CHAOS_MINUTES ?? "0");
  if (!(minutes > 0)) {
    // Bounds well past what 2-3 cycles use (the workload stops with the nemesis): a
    // rolling restart ran about 900 ops per client in 3 cycles here, and 2,200 once
    // writes got faster (issue 11), which ran into the old bound of 2,000.
    return { cycles: 2, durationMs: 90_000, maxOpsPerClient: 12_000, testTimeoutMs: 180_000 };
  }
  const nemesisMs = (minutes * 60_000) / scenarios;
  return {
    // A fault cycle takes 10-15 s here: as many as fit, at least 2. The workload may
    // run a minute past the nemesis (the last cycle's heal); its op bound grows with
    // the time (about 165 ops/s per client here in a quick rolling restart, so a bound
    // of 250 ops/s per client of time leaves the nemesis, not the count, to end it).
    cycles: Math.max(2, Math.floor(nemesisMs / 10_000)),
    nemesisMs,
    durationMs: nemesisMs + 60_000,
    maxOpsPerClient: Math.ceil((nemesisMs + 60_000) / 4),
    testTimeoutMs: nemesisMs + 180_000,
  };
}
