/**
 * `npm run bench -- node`: a single streamkv node (a real `streamkv server` child
 * process, Raft with one voter, LevelDB with fsync) driven through the client SDK.
 *
 * Figures, each with a reference from the same run:
 * - put latency p50/p99 with one write in flight   (ref: ping round trip on the same connection)
 * - puts/s with 64 in flight                         (ref: raw fsyncs/s of this disk, one file)
 * - gets/s with 64 in flight, linearizable and stale
 *
 * Flags: --puts N (default 3000), --gets N (default 5000), --latency N (default 300).
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../client/index.js";
import { removeDir, startServer, tempDir } from "../test_support/index.js";
import { intFlag, opsPerSecond, percentile } from "./_measure.js";

function fsyncRate(dir: string, count: number): number {
  const fd = openSync(join(dir, "fsync.bench"), "w");
  const block = Buffer.alloc(512, 1);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    writeSync(fd, block);
    fsyncSync(fd);
  }
  closeSync(fd);
  return count / ((performance.now() - started) / 1000);
}

export async function run(args: string[]): Promise<void> {
  const puts = intFlag(args, "puts", 3000);
  const gets = intFlag(args, "gets", 5000);
  const latencyOps = intFlag(args, "latency", 300);
  const dataDir = tempDir("streamkv-bench-");
  const server = await startServer({ dataDir });
  const nc = await connect({ servers: server.url, timeoutMs: 30_000 });
  try {
    const kv = await nc.createKeyValue({ bucket: "bench", history: 1 });
    const value = new Uint8Array(100).fill(7);
    await kv.put("warm", value);

    const ping: number[] = [];
    const lat: number[] = [];
    for (let i = 0; i < latencyOps; i++) {
      let t = performance.now();
      await nc.clusterStatus();
      ping.push(performance.now() - t);
      t = performance.now();
      await kv.put(`lat.${i % 100}`, value);
      lat.push(performance.now() - t);
    }
    ping.sort((a, b) => a - b);
    lat.sort((a, b) => a - b);
    const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
    console.log(
      `put latency, 1 in flight:  p50 ${fmt(percentile(lat, 50))}  p99 ${fmt(percentile(lat, 99))}` +
        `   (ref: status round trip p50 ${fmt(percentile(ping, 50))}  p99 ${fmt(percentile(ping, 99))})`,
    );

    const putRate = await opsPerSecond(puts, 64, (i) => kv.put(`k.${i % 1000}`, value));
    const syncs = fsyncRate(dataDir, 200);
    console.log(
      `puts/s, 64 in flight:      ${putRate.toFixed(0)}   (ref: ${syncs.toFixed(0)} fsyncs/s of one file on this disk)`,
    );

    const getRate = await opsPerSecond(gets, 64, (i) => kv.get(`k.${i % 1000}`));
    const staleRate = await opsPerSecond(gets, 64, (i) => kv.get(`k.${i % 1000}`, { stale: true }));
    console.log(
      `gets/s, 64 in flight:      ${getRate.toFixed(0)} linearizable (ReadIndex), ${staleRate.toFixed(0)} stale`,
    );
    console.log(`(${puts} puts, ${gets} gets per figure, 100-byte values, a fresh data dir)`);
  } finally {
    await nc.close();
    await server.stop();
    removeDir(dataDir);
  }
}
