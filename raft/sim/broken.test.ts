import { describe, expect, it } from "vitest";
import { runSim } from "./cluster.js";

// Shows that the checker has teeth: a core that grants votes without the
// up-to-date check of §5.4.1 must be caught within a bounded number of seeds.
describe("the simulator catches a broken core", () => {
  it("votes without the log check: caught within 40 seeds", { timeout: 60_000 }, async () => {
    let caught: string | null = null;
    for (let seed = 1; seed <= 40 && caught === null; seed++) {
      for (const nodes of [3, 5] as const) {
        const r = await runSim({ seed, nodes, unsafe: { voteWithoutLogCheck: true } });
        if (r.violations.length > 0) {
          caught = `seed ${seed} nodes ${nodes}: ${r.violations[0]}`;
          break;
        }
      }
    }
    expect(caught).not.toBeNull();
    expect(caught).toMatch(
      /leader completeness|state machine safety|lost write|fatal|log matching/,
    );
  });
});
