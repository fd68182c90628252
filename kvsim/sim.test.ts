import { describe, expect, it } from "vitest";
import { runKvSim } from "./cluster.js";

// 200 seeds (alternating 3 and 5 nodes) of the whole KV stack: each a 3 s safety
// phase with the seed's faults under client load, then healing and the checker;
// about 20 s on one core. A failure prints the command that replays it.
const SEEDS = 200;

describe("the KV stack in deterministic simulation", () => {
  it(`${SEEDS} seeds: acked writes kept, answers truthful, applied once, linearizable, identical replicas, gapless watches`, {
    timeout: 180_000,
  }, async () => {
    const failures: string[] = [];
    const totals = { acked: 0, rejected: 0, reads: 0, watched: 0, snapshots: 0, inconclusive: 0 };
    const faults: Record<string, number> = {};
    for (let seed = 1; seed <= SEEDS; seed++) {
      const nodes = seed % 2 === 0 ? 3 : 5;
      const r = await runKvSim({ seed, nodes });
      totals.acked += r.writes.written;
      totals.rejected += r.writes.rejected;
      totals.reads += r.readsOk;
      totals.watched += r.watchEntriesChecked;
      totals.snapshots += r.snapshotsInstalled;
      if (r.lincheckUnknown) totals.inconclusive++;
      for (const [f, n] of Object.entries(r.faults)) faults[f] = (faults[f] ?? 0) + n;
      if (r.violations.length > 0) {
        failures.push(`npm run sim:kv -- --seed ${seed} --nodes ${nodes}: ${r.violations[0]}`);
      }
    }
    expect(failures).toEqual([]);
    // The runs must exercise what the checks are about: CAS conflicts, reads, watches,
    // snapshot installs, and retries of a request whose first try had no answer.
    expect(totals.acked).toBeGreaterThan(SEEDS * 20);
    expect(totals.rejected).toBeGreaterThan(SEEDS * 2);
    expect(totals.reads).toBeGreaterThan(SEEDS * 20);
    expect(totals.watched).toBeGreaterThan(SEEDS * 50);
    expect(totals.snapshots).toBeGreaterThan(SEEDS / 20);
    expect(totals.inconclusive).toBeLessThan(SEEDS / 20);
    for (const f of ["crash", "leader_crash", "leader_isolated", "transfer", "client_retry_lost"]) {
      expect(faults[f] ?? 0, f).toBeGreaterThan(SEEDS / 4);
    }
  });

  it("replays a seed exactly", { timeout: 30_000 }, async () => {
    const a = await runKvSim({ seed: 4242, nodes: 5 });
    const b = await runKvSim({ seed: 4242, nodes: 5 });
    expect(b).toEqual(a);
    expect(a.revisions).toBeGreaterThan(0);
  });
});
