/**
 * Every bench suite loads outside vitest, as `npm run bench` runs it: a module the
 * suites pull in through test_support/ that needs vitest (a fuzz helper did) breaks
 * `npm run bench` while every test still passes. The env is cleared of VITEST so the
 * child is a plain tsx process.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { repoRoot, runCommand } from "../test_support/index.js";

const suites = readdirSync(new URL(".", import.meta.url)).filter(
  (f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && f !== "main.ts",
);

describe("bench suites", () => {
  it("load in plain Node with tsx, outside vitest", async () => {
    const imports = suites.map((f) => `await import("./bench/${f}");`).join(" ");
    const r = await runCommand(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", `${imports} console.log("loaded");`],
      {
        cwd: repoRoot,
        env: { VITEST: "", VITEST_WORKER_ID: "", VITEST_POOL_ID: "" },
        timeoutMs: 60_000,
      },
    );
    expect(r.stderr).not.toMatch(/Vitest failed to access its internal state/);
    expect(r.stdout.trim()).toBe("loaded");
  }, 90_000);
});
