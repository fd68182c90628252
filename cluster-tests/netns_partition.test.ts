/**
 * The leader partitioned from its peers by iptables, on real processes in network
 * namespaces (cluster-tests/nemesis/netns.ts): each node is its own host on a private
 * bridge, the test's clients reach all three, and the leader is cut off from the
 * other two twice while three clients run the chaos workload, then healed.
 *
 * - the two others elect a new leader each time, and writes go on through them;
 * - after the heal the old leader follows again (every node names one leader, and
 *   its log is the others' log);
 * - no acked write is lost, the history is linearizable, counters are exact.
 *
 * And the checkers can fail: the same scenario with stale reads (a broken build on
 * purpose) is judged not linearizable.
 *
 * Needs root, iproute2 and iptables; elsewhere it is skipped, saying why. The
 * container suite (npm run test:containers) runs the same scenario in Docker.
 */
import { readFileSync, rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { describeReport, runChaos } from "./harness/chaos.js";
import { NetnsLab, netnsUnavailable } from "./nemesis/netns.js";
import { NetnsCluster } from "./nemesis/netns_cluster.js";

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`netns_partition.test.ts skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("leader partitioned in network namespaces", () => {
  let lab: NetnsLab | undefined;
  let cluster: NetnsCluster | undefined;
  afterAll(async () => {
    await cluster?.destroy();
    await lab?.destroy();
  });

  it("fails over, lets the old leader rejoin, and loses nothing", async () => {
    lab = await NetnsLab.create(3);
    cluster = await NetnsCluster.start(lab);
    // The server itself is the tracked process (ip netns exec execs it), so a SIGKILL
    // by PID reaches the server and nothing is left behind.
    expect(readFileSync(`/proc/${cluster.pid(0)}/comm`, "utf8").trim()).toBe("node");

    const report = await runChaos(cluster, {
      name: "netns-partition-leader",
      nemesis: "partition-leader",
      cycles: 2,
      clients: 3,
      maxOpsPerClient: 600,
      durationMs: 45_000,
      seed: 13,
      removeOnPass: true,
    });
    console.log(describeReport(report));
    expect(report.anomalies).toEqual([]);
    expect(report.faults).toHaveLength(2);
    for (const f of report.faults) expect(f.newLeader).not.toBe(f.target);
    expect(report.acked).toBeGreaterThan(50);
  }, 90_000);

  // The checkers must be able to fail: with stale reads (served from a node's own
  // state, so the cut-off old leader answers with what it had), the same scenario
  // must be judged not linearizable.
  it("catches a broken build: stale reads on the cut-off leader are not linearizable", async () => {
    if (!lab) lab = await NetnsLab.create(3);
    if (!cluster) cluster = await NetnsCluster.start(lab);
    const report = await runChaos(cluster, {
      name: "netns-partition-leader-stale-reads",
      nemesis: "partition-leader",
      cycles: 2,
      clients: 3,
      maxOpsPerClient: 600,
      durationMs: 45_000,
      seed: 14,
      faultHoldMs: 6000,
      staleReads: true,
      removeOnPass: true,
    });
    console.log(describeReport(report));
    expect(report.anomalies.some((a) => a.startsWith("linearizability: illegal"))).toBe(true);
    // Failing here is the expected outcome: its results folder is not a failure to keep.
    rmSync(report.resultsDir, { recursive: true, force: true });
  }, 90_000);
});
