/**
 * `npm run bench -- cluster`: a three-node cluster of real `streamkv server` processes
 * on loopback (Raft over the peer port, LevelDB with fsync on every node), driven
 * through the client SDK; the single-node suite (bench/node.ts) runs first in the same
 * process as the reference.
 *
 * Figures:
 * - put latency p50/p99, one in flight, on the leader and through a follower (forwarded)
 * - puts/s with 64 in flight, on the leader and through a follower, and the servers' CPU
 *   time per put on the leader run (from /proc/<pid>/stat: CPU is this machine's limit)
 * - gets/s with 64 in flight: linearizable (ReadIndex) and stale, on the leader and on
 *   a follower
 * - failover: time from SIGKILL of the leader to the first acknowledged write sent
 *   after the kill (median of `--failovers` runs; the client talks to the survivors)
 *
 * Flags: --puts N (default 3000), --gets N (default 5000), --latency N (default 300),
 * --failovers N (default 3), --no-reference (skip the single-node suite).
 */
import { connect, type KeyValue } from "../client/index.js";
import { LocalCluster } from "../cluster-tests/harness/cluster.js";
import { intFlag, opsPerSecond, percentile, processCpuMs } from "./_measure.js";
import { run as runSingleNode } from "./node.js";

const ms = (v: number) => `${v.toFixed(2)} ms`;

/** "leader X ms, each follower Y ms, all nodes Z ms" of CPU per op, or why not. */
function cpuPerOp(
  before: (number | undefined)[],
  after: (number | undefined)[],
  ops: number,
  leader: number,
): string {
  const used = before.map((b, i) =>
    b === undefined || after[i] === undefined ? NaN : after[i]! - b,
  );
  if (used.some(Number.isNaN)) return "n/a (no /proc here)";
  const per = used.map((u) => u / ops);
  const followers = per.filter((_, i) => i !== leader);
  const all = per.reduce((a, b) => a + b, 0);
  return (
    `leader ${per[leader]!.toFixed(3)} ms, followers ${followers.map((f) => f.toFixed(3)).join("/")} ms, ` +
    `all nodes ${all.toFixed(3)} ms (CPU time of the server processes / puts)`
  );
}

async function latency(n: number, op: (i: number) => Promise<unknown>): Promise<string> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op(i);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  return `p50 ${ms(percentile(lat, 50))}  p99 ${ms(percentile(lat, 99))}`;
}

/**
 * Kills the leader while one client writes (one in flight) through the survivors;
 * returns ms from the kill to the first ack of a write sent after it.
 */
async function failover(c: LocalCluster): Promise<number> {
  const leader = await c.waitForLeader();
  const survivors = c.nodes.filter((n) => n.index !== leader).map((n) => n.url);
  const nc = await connect({ servers: survivors, timeoutMs: 10_000 });
  try {
    const kv = await nc.keyValue("bench");
    const value = new Uint8Array(100).fill(3);
    let killedAt = Number.POSITIVE_INFINITY;
    let firstAckMs: number | undefined;
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 100_000; i++) {
        const sentAt = performance.now();
        await kv.put(`fo.${i % 100}`, value).catch(() => undefined);
        if (sentAt > killedAt && firstAckMs === undefined)
          firstAckMs = performance.now() - killedAt;
      }
    })();
    await kv.put("fo.warm", value);
    killedAt = performance.now();
    await c.kill(leader, "SIGKILL");
    const deadline = Date.now() + 20_000;
    while (firstAckMs === undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    writing = false;
    await writer;
    if (firstAckMs === undefined) throw new Error("no write was acknowledged within 20 s");
    await c.startNode(leader);
    await c.waitForLeader();
    return firstAckMs;
  } finally {
    await nc.close();
  }
}

export async function run(args: string[]): Promise<void> {
  const puts = intFlag(args, "puts", 3000);
  const gets = intFlag(args, "gets", 5000);
  const latencyOps = intFlag(args, "latency", 300);
  const failovers = intFlag(args, "failovers", 3);
  if (!args.includes("--no-reference")) {
    console.log("-- reference: one node (bench/node.ts), same run --");
    await runSingleNode(args.filter((a) => !a.startsWith("--failovers")));
  }
  console.log("-- three nodes on loopback --");
  const c = await LocalCluster.start();
  try {
    const leader = await c.waitForLeader();
    const follower = (leader + 1) % 3;
    const onLeader = await connect({ servers: c.nodes[leader]!.url, timeoutMs: 30_000 });
    const onFollower = await connect({ servers: c.nodes[follower]!.url, timeoutMs: 30_000 });
    try {
      await onLeader.createKeyValue({ bucket: "bench", history: 1 });
      const kvL: KeyValue = await onLeader.keyValue("bench");
      const kvF: KeyValue = await onFollower.keyValue("bench");
      const value = new Uint8Array(100).fill(7);
      await kvL.put("warm", value);
      await kvF.put("warm", value);

      const latL = await latency(latencyOps, (i) => kvL.put(`lat.${i % 100}`, value));
      const latF = await latency(latencyOps, (i) => kvF.put(`lat.${i % 100}`, value));
      console.log(`put latency, 1 in flight:  leader ${latL}   via follower ${latF}`);

      const pids = c.nodes.map((n) => n.proc!.proc.pid!);
      const cpuBefore = pids.map(processCpuMs);
      const putL = await opsPerSecond(puts, 64, (i) => kvL.put(`k.${i % 1000}`, value));
      const cpuAfter = pids.map(processCpuMs);
      const putF = await opsPerSecond(puts, 64, (i) => kvF.put(`k.${i % 1000}`, value));
      console.log(
        `puts/s, 64 in flight:      leader ${putL.toFixed(0)}   via follower ${putF.toFixed(0)}`,
      );
      console.log(
        `server CPU per put (64 in flight on the leader): ${cpuPerOp(cpuBefore, cpuAfter, puts, leader)}`,
      );

      const getL = await opsPerSecond(gets, 64, (i) => kvL.get(`k.${i % 1000}`));
      const staleL = await opsPerSecond(gets, 64, (i) => kvL.get(`k.${i % 1000}`, { stale: true }));
      const getF = await opsPerSecond(gets, 64, (i) => kvF.get(`k.${i % 1000}`));
      const staleF = await opsPerSecond(gets, 64, (i) => kvF.get(`k.${i % 1000}`, { stale: true }));
      console.log(
        `gets/s, 64 in flight:      leader ${getL.toFixed(0)} linearizable, ${staleL.toFixed(0)} stale` +
          `   follower ${getF.toFixed(0)} linearizable, ${staleF.toFixed(0)} stale`,
      );
    } finally {
      await onLeader.close();
      await onFollower.close();
    }

    const times: number[] = [];
    for (let i = 0; i < failovers; i++) times.push(await failover(c));
    times.sort((a, b) => a - b);
    console.log(
      `failover, SIGKILL of the leader -> first acked write: median ${ms(percentile(times, 50))}` +
        `  (runs: ${times.map((t) => t.toFixed(0)).join(", ")} ms; election timeout 10 ticks x 50 ms, randomized)`,
    );
    console.log(
      `(${puts} puts, ${gets} gets per figure, 100-byte values, fresh data dirs, 2 shared cores)`,
    );
  } finally {
    await c.destroy();
  }
}
