/**
 * The checkers catch a broken build in containers: every node started with
 * STREAMKV_UNSAFE_TEST_FAULT=cas-at-proposer (node/replica.ts's planted bug: the leader
 * decides create/update on what it has applied so far and proposes a plain put, so two
 * increments read at the same revision and in flight together both win), then the
 * chaos run of chaos.test.ts with kill -9 of the leader, on few counters hit by many
 * clients, so CAS increments race all the time and a new leader decides them too.
 *
 * Each lost update leaves a counter below its acked increments, which `checkCounters`
 * reports whatever the timing, and lincheck finds no order for the two acked updates of
 * one revision. The test requires at least one anomaly of those kinds (not a fixed
 * count), in a run bounded in ops and time; the results folder is kept and printed.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { describeReport, runChaos } from "../harness/chaos.js";
import { dockerClusterPerTest } from "./fixture.js";

const run = promisify(execFile);

describe("a broken build in containers", () => {
  const startCluster = dockerClusterPerTest();

  it("cas-at-proposer: the checkers report lost updates (counters, linearizability)", async () => {
    const c = await startCluster(3, { STREAMKV_UNSAFE_TEST_FAULT: "cas-at-proposer" });
    // Each node said at start that it runs a broken build (stderr, which docker logs keeps).
    for (let i = 0; i < 3; i++) {
      const out = await run("docker", ["logs", c.containerId(i)], { timeout: 30_000 });
      expect(out.stdout + out.stderr).toContain("deliberately broken build for tests");
    }
    const report = await runChaos(c, {
      name: "containers-broken-cas-at-proposer",
      nemesis: "kill-leader",
      cycles: 1,
      clients: 6,
      // Half the ops increment one of 12 counters: increments of a counter overlap all the
      // time (a first run with 2 counters lost half of them), while no counter gets near
      // the history limit of 64 writes (which would void the lost-write check): at most
      // 6 x 150 x 0.5 = 450 increments, about 38 per counter. (8 counters and 200 ops
      // each, about 75 per counter, reached the limit once the machine was idle enough
      // to run every op.)
      counters: 12,
      counterShare: 0.5,
      maxOpsPerClient: 150,
      durationMs: 90_000,
      seed: 41,
    });
    console.log(describeReport(report));
    console.log(`anomalies found (expected):\n  ${report.anomalies.slice(0, 5).join("\n  ")}`);
    // The run itself worked: the anomalies are the checkers' verdicts, not a harness failure.
    expect(report.anomalies.filter((a) => a.startsWith("run failed"))).toEqual([]);
    expect(report.faults).toHaveLength(1);
    expect(report.anomalies.filter((a) => a.includes("history limit"))).toEqual([]);
    const caught = report.anomalies.filter(
      (a) => a.startsWith("counter ") || a.startsWith("linearizability:"),
    );
    expect(caught.length).toBeGreaterThanOrEqual(1);
    expect(report.resultsDir).toBeTruthy();
  }, 180_000);
});
