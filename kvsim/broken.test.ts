import { describe, expect, it } from "vitest";
import { type KvUnsafe, runKvSim } from "./cluster.js";

// Shows that the KV simulator has teeth: each planted bug must be caught within a
// bounded number of seeds (alternating 3 and 5 nodes, as sim.test.ts). The bounds
// are several times the seed that catches each today; runs stop at the first
// violation.

async function firstCaught(unsafe: KvUnsafe, seedsMax: number) {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const nodes = seed % 2 === 0 ? 3 : 5;
    const r = await runKvSim({ seed, nodes, unsafe });
    if (r.violations.length > 0) return { seed, violations: r.violations.join("\n") };
  }
  return null;
}

describe("the KV simulator catches a planted bug", () => {
  it("dedupe turned off: a retried request id applied twice", { timeout: 60_000 }, async () => {
    const caught = await firstCaught({ skipDedupe: true }, 10);
    expect(caught).not.toBeNull();
    expect(caught!.violations).toMatch(/applied more than once|not linearizable|answered/);
  });

  it("CAS decided at the proposer instead of at apply: lost updates", {
    timeout: 60_000,
  }, async () => {
    const caught = await firstCaught({ casAtProposer: true }, 10);
    expect(caught).not.toBeNull();
    expect(caught!.violations).toMatch(
      /not linearizable|answered WRONG_LAST_REVISION|answered KEY_EXISTS/,
    );
  });
});
