import { describe, expect, it } from "vitest";
import { runSim } from "./cluster.js";

// 200 seeds (alternating 3 and 5 nodes), each a 3 s safety phase with faults
// and a liveness phase; about 12 s on one core.
const SEEDS = 200;

describe("deterministic simulation", () => {
  it(`${SEEDS} seeds keep every invariant and converge after healing`, {
    timeout: 120_000,
  }, async () => {
    const failures: string[] = [];
    let elections = 0;
    let snapshots = 0;
    let acked = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const nodes = seed % 2 === 0 ? 3 : 5;
      const r = await runSim({ seed, nodes });
      elections += r.elections;
      snapshots += r.snapshotsInstalled;
      acked += r.proposalsAcked;
      if (r.violations.length > 0) {
        failures.push(`npm run sim -- --seed ${seed} --nodes ${nodes}: ${r.violations[0]}`);
      }
    }
    expect(failures).toEqual([]);
    // The runs must actually exercise the interesting paths.
    expect(elections).toBeGreaterThan(SEEDS);
    expect(snapshots).toBeGreaterThan(SEEDS / 4);
    expect(acked).toBeGreaterThan(SEEDS * 10);
  });

  it("replays a seed exactly", async () => {
    const a = await runSim({ seed: 4242, nodes: 5 });
    const b = await runSim({ seed: 4242, nodes: 5 });
    expect(b).toEqual(a);
  });
});
