/**
 * `npm run bench -- watch-failover [--rounds=24] [--runs=1]`: how long a watcher is
 * without news when the node it is on is SIGKILLed (then restarted) or SIGSTOPped (then
 * resumed), on three real nodes with writers overflowing a history of 4 (see
 * cluster-tests/harness/watch_chaos.ts). Prints each round, then p50/p99/max of the time
 * from the fault to the watcher's first new revision (election and failover included)
 * per fault kind, and whether every watch guarantee held (it must).
 */
import { connect, type KvConnection } from "../client/index.js";
import { LocalCluster } from "../cluster-tests/harness/cluster.js";
import {
  checkWatchRun,
  type FaultRecord,
  failoverSummary,
  runWatchChaos,
} from "../cluster-tests/harness/watch_chaos.js";
import { intFlag } from "./_measure.js";

export async function run(args: string[]): Promise<void> {
  const rounds = intFlag(args, "rounds", 24);
  const runs = intFlag(args, "runs", 1);
  const all: FaultRecord[] = [];
  let failed = false;
  for (let i = 0; i < runs; i++) {
    const cluster = await LocalCluster.start();
    const conns: KvConnection[] = [];
    try {
      const r = await runWatchChaos({
        cluster,
        connect: async (o) => {
          const nc = await connect(o);
          conns.push(nc);
          return nc;
        },
        bucket: "wf",
        rounds,
        seed: 100 + i,
        log: (line) => console.log(`  run ${i + 1} ${line}`),
      });
      all.push(...r.faults);
      const problems = checkWatchRun(r);
      console.log(
        `run ${i + 1}: ${r.writesAcked} writes acked (${r.writesFailed} failed), last revision ${r.lastRevision}, ` +
          `catch-ups ${r.watchers.map((w) => w.catchUps.length).join("/")}, failovers ${r.watchers.map((w) => w.failovers).join("/")}, ` +
          (problems.length === 0
            ? "every guarantee held"
            : `VIOLATIONS:\n  ${problems.join("\n  ")}`),
      );
      if (problems.length > 0) failed = true;
    } finally {
      await Promise.all(conns.map((c) => c.close()));
      await cluster.destroy();
    }
  }
  for (const kind of ["kill", "pause"] as const) {
    const faults = all.filter((f) => f.kind === kind);
    const s = failoverSummary(faults);
    console.log(
      `${kind === "kill" ? "SIGKILL" : "SIGSTOP"} of the watcher's node, ${faults.length} faults: ` +
        `p50 ${s.p50.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms, max ${s.max.toFixed(0)} ms`,
    );
  }
  const s = failoverSummary(all);
  console.log(
    `all ${all.length} faults: p50 ${s.p50.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms, max ${s.max.toFixed(0)} ms`,
  );
  if (failed) process.exitCode = 1;
}
