/**
 * Watches under faults of the node they are on (issue: watches that never die): three
 * real nodes, writers overflowing a history of 4 during every fault, two watchers with
 * notices. Each round SIGKILLs (then restarts) or SIGSTOPs (then SIGCONTs) the node a
 * watcher is on. No watcher ends, every skipped revision is inside an announced catch-up
 * where a later entry of its key superseded it, and every final view equals the
 * cluster's. Failover times are printed; `npm run bench -- watch-failover` runs more
 * rounds and reports p50/p99.
 */
import { describe, expect, it } from "vitest";
import { clusterFixture } from "./harness/fixture.js";
import { checkWatchRun, failoverSummary, runWatchChaos } from "./harness/watch_chaos.js";

const fx = clusterFixture();

describe("watchers when the node they are on is killed or paused", () => {
  it("never end, never skip unannounced, and end with the cluster's state", async () => {
    const cluster = await fx.start();
    const r = await runWatchChaos({
      cluster,
      connect: (o) => fx.connect(o),
      bucket: "wf",
      rounds: 4,
      seed: 7,
    });
    const summary = failoverSummary(r.faults);
    console.log(
      `watch failover over ${r.faults.length} faults: p50 ${summary.p50.toFixed(0)} ms, max ${summary.max.toFixed(0)} ms; ` +
        `${r.writesAcked} writes acked, ${r.writesFailed} failed, last revision ${r.lastRevision}; ` +
        `catch-ups ${r.watchers.map((w) => w.catchUps.length).join("/")}, failovers ${r.watchers.map((w) => w.failovers).join("/")}`,
    );
    expect(checkWatchRun(r).join("\n")).toBe("");
    expect(r.faults.length).toBe(4);
    // History 4 over 10 keys overflows during a fault: the catch-up path really ran.
    expect(r.watchers.some((w) => w.catchUps.length > 0)).toBe(true);
  }, 180_000);
});
