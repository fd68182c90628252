import { describe, expect, it } from "vitest";
import { FAIL_POINTS } from "../driver.js";
import { runSim } from "./cluster.js";

// 200 seeds (alternating 3 and 5 nodes), each a 3 s safety phase with faults
// and a liveness phase; about 20 s on one core.
const SEEDS = 200;

describe("deterministic simulation", () => {
  it(`${SEEDS} seeds keep every invariant and converge after healing`, {
    timeout: 120_000,
  }, async () => {
    const failures: string[] = [];
    let elections = 0;
    let snapshots = 0;
    let acked = 0;
    let reads = 0;
    const faults: Record<string, number> = {};
    const checks: Record<string, number> = {};
    for (let seed = 1; seed <= SEEDS; seed++) {
      const nodes = seed % 2 === 0 ? 3 : 5;
      const r = await runSim({ seed, nodes });
      elections += r.elections;
      snapshots += r.snapshotsInstalled;
      acked += r.proposalsAcked;
      reads += r.readsChecked;
      for (const [f, n] of Object.entries(r.faults)) faults[f] = (faults[f] ?? 0) + n;
      for (const [c, n] of Object.entries(r.checks)) checks[c] = (checks[c] ?? 0) + n;
      if (r.violations.length > 0) {
        failures.push(`npm run sim -- --seed ${seed} --nodes ${nodes}: ${r.violations[0]}`);
      }
    }
    expect(failures).toEqual([]);
    // The runs must actually exercise the interesting paths...
    expect(elections).toBeGreaterThan(SEEDS * 2);
    expect(snapshots).toBeGreaterThan(SEEDS / 4);
    expect(acked).toBeGreaterThan(SEEDS * 10);
    expect(reads).toBeGreaterThan(SEEDS * 10);
    // ...the targeted faults must land...
    for (const f of ["crash_after_vote", "new_leader_isolated", "new_leader_crashed"]) {
      expect(faults[f] ?? 0, f).toBeGreaterThan(SEEDS / 4);
    }
    for (const point of FAIL_POINTS) {
      expect(faults[`crash_at_${point}`] ?? 0, point).toBeGreaterThan(0);
    }
    // ...and the costlier checks must run.
    expect(checks.potentialLeaders).toBeGreaterThan(SEEDS * 100);
    expect(checks.promisesAtCrash).toBeGreaterThan(SEEDS);
    expect(checks.appends).toBeGreaterThan(SEEDS * 100);
  });

  it("replays a seed exactly", async () => {
    const a = await runSim({ seed: 4242, nodes: 5 });
    const b = await runSim({ seed: 4242, nodes: 5 });
    expect(b).toEqual(a);
  });
});
