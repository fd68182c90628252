/**
 * Chaos in real containers (streamkv:local, one container per node, testcontainers):
 * the chaos workload (put / get / create / update / delete, CAS counters, three
 * clients) while a nemesis strikes the leader again and again:
 *
 * - kill -9 of the leader's container, then `docker start` on its volume;
 * - the leader cut off from its peers by iptables in its network namespace, healed;
 * - one way: only what the leader sends is dropped;
 * - a rolling restart: each node in turn `docker stop` (SIGTERM, must exit 0) and
 *   started again, under load, as an upgrade does;
 * - the leader frozen by `docker pause` past the election timeout, then unpaused;
 * - a bridge: the leader and one follower cut apart, both still see the third node;
 * - flapping: the leader cut off and healed five times within seconds, then cut;
 * - kill -9 of a random node (seeded: 30 picks n3 twice, so a follower dies at least
 *   once in the two quick cycles), then `docker start`.
 *
 * Two watchers of every key (watchAll with notices, on their own connections given
 * every node) run all along and are checked by watch_chaos's `checkWatchRun`.
 *
 * Each time the leader is struck a new one must take over, and the struck node
 * rejoins; afterwards every
 * node has the same log, no acked write is lost, the history is linearizable
 * (cluster-tests/lincheck), counters are exact. Results per run in
 * .tmp/chaos-results/ (history.jsonl, report.json), printed and kept.
 */
import { describe, expect, it } from "vitest";
import { describeReport, type Nemesis, runChaos, targetLosesLead } from "../harness/chaos.js";
import { scenarioBudget } from "./budget.js";
import { dockerClusterPerTest } from "./fixture.js";

const SCENARIOS: { name: string; nemesis: Nemesis; seed: number }[] = [
  { name: "containers-kill-leader", nemesis: "kill-leader", seed: 21 },
  { name: "containers-partition-leader", nemesis: "partition-leader", seed: 22 },
  { name: "containers-partition-leader-outbound", nemesis: "partition-leader-outbound", seed: 23 },
  { name: "containers-rolling-restart", nemesis: "rolling-restart", seed: 24 },
  { name: "containers-pause-leader", nemesis: "pause-leader", seed: 25 },
  { name: "containers-bridge-partition", nemesis: "bridge-partition", seed: 26 },
  { name: "containers-flapping-partition", nemesis: "flapping-partition", seed: 27 },
  { name: "containers-kill-random", nemesis: "kill-random", seed: 30 },
];
const budget = scenarioBudget(SCENARIOS.length);

describe("chaos in containers", () => {
  const startCluster = dockerClusterPerTest();

  for (const s of SCENARIOS) {
    it(
      `${s.nemesis}: a leader serves through every fault, the struck node rejoins, nothing acked is lost`,
      async () => {
        const cluster = await startCluster(3);
        // A rolling restart goes round every node at least once.
        const cycles =
          s.nemesis === "rolling-restart"
            ? Math.ceil(Math.max(budget.cycles, 3) / 3) * 3
            : budget.cycles;
        const report = await runChaos(cluster, {
          name: s.name,
          nemesis: s.nemesis,
          cycles,
          ...(budget.nemesisMs === undefined ? {} : { nemesisMs: budget.nemesisMs }),
          clients: 3,
          maxOpsPerClient: budget.maxOpsPerClient,
          durationMs: budget.durationMs,
          seed: s.seed,
          watchers: 2,
        });
        console.log(describeReport(report));
        expect(report.anomalies).toEqual([]);
        // A soak stops starting cycles when its time is up; --quick runs every one.
        if (budget.nemesisMs === undefined) expect(report.faults).toHaveLength(cycles);
        else expect(report.faults.length).toBeGreaterThanOrEqual(Math.min(cycles, 2));
        for (const f of report.faults) {
          if (targetLosesLead(s.nemesis, f.targetLed)) expect(f.newLeader).not.toBe(f.target);
        }
        if (s.nemesis === "rolling-restart" && report.faults.length >= 3) {
          expect(new Set(report.faults.map((f) => f.target)).size).toBe(3);
        }
        expect(report.acked).toBeGreaterThan(50);
      },
      budget.testTimeoutMs,
    );
  }
});
