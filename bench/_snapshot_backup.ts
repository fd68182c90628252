/**
 * The backup half of `npm run bench -- snapshot`: a three-node cluster of real `streamkv
 * server` processes holding `--keys` keys (default 100000) of `--value-bytes` bytes
 * (default 128) in one bucket, then `streamkv snapshot save` through a follower, `status`
 * of the file, and `restore` of a new three-node cluster from it (each member in turn),
 * started until every member has applied the backup's index. The CLI's own code runs
 * in this process (cli/snapshot.ts), so process start-up is not counted. The reference in
 * the same run: writing and fsyncing a file of the backup's size on the same disk.
 * Memory: the node's and this process's RSS over the save, and, with
 * `NODE_OPTIONS=--expose-gc`, what save and status keep alive after each forced GC.
 */
import { closeSync, fsyncSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { runSnapshot } from "../cli/snapshot.js";
import { connect } from "../client/index.js";
import { LocalCluster } from "../cluster-tests/harness/cluster.js";
import type { Io } from "../node/index.js";
import { RssSampler, rssBytes, tempDir } from "../test_support/index.js";
import { intFlag, opsPerSecond } from "./_measure.js";

const MiB = 1024 * 1024;

/** Runs one `streamkv snapshot ...` in this process; its stdout, or a thrown failure. */
async function cli(args: string[]): Promise<string> {
  let out = "";
  let err = "";
  const io: Io = {
    stdout: { write: (c) => (out += String(c)) },
    stderr: { write: (c) => (err += String(c)) },
    stdin: (async function* () {})(),
    env: {},
    interrupted: () => new Promise(() => {}),
  };
  await runSnapshot(args, io);
  if (err !== "") throw new Error(`streamkv snapshot ${args[0]}: ${err}`);
  return out;
}

/** Writes and fsyncs `bytes` bytes in 1 MiB writes: the disk's own rate, for reference. */
function fsyncedWriteMs(path: string, bytes: number): number {
  const block = Buffer.alloc(MiB, 1);
  const t = performance.now();
  const fd = openSync(path, "w");
  try {
    for (let left = bytes; left > 0; left -= MiB) writeSync(fd, block, 0, Math.min(MiB, left));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return performance.now() - t;
}

/**
 * What one CLI command keeps alive (heap and buffers after a full GC, sampled every 20 ms,
 * peak minus before), run again apart from the timed run since the forced GCs slow it
 * down. Undefined without --expose-gc. RSS alone also counts garbage not yet collected.
 */
async function retainedOver(args: string[]): Promise<number | undefined> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return undefined;
  const live = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  gc();
  const before = live();
  let peak = before;
  const timer = setInterval(() => {
    gc();
    peak = Math.max(peak, live());
  }, 20);
  try {
    await cli(args);
  } finally {
    clearInterval(timer);
  }
  return peak - before;
}

export async function runBackupBench(flags: string[]): Promise<void> {
  const keys = intFlag(flags, "keys", 100_000);
  const valueBytes = intFlag(flags, "value-bytes", 128);
  const dir = tempDir("streamkv-bench-backup-");
  let source: LocalCluster | undefined;
  let restored: LocalCluster | undefined;
  try {
    source = await LocalCluster.start();
    const leader = await source.waitForLeader();
    const follower = source.nodes[(leader + 1) % 3]!;
    const nc = await connect({ servers: source.nodes[leader]!.url, timeoutMs: 30_000 });
    try {
      const kv = await nc.createKeyValue({ bucket: "bench" });
      const value = new Uint8Array(valueBytes).fill(120);
      const rate = await opsPerSecond(keys, 256, (i) => kv.put(`k.${i}`, value), 600);
      const stored = (await kv.status()).values;
      if (stored !== keys) throw new Error(`only ${stored} of ${keys} keys written in 600 s`);
      console.log(
        `keys written           ${keys} of ${valueBytes} B (${rate.toFixed(0)} puts/s, 256 in flight)`,
      );
    } finally {
      await nc.close();
    }
    const file = join(dir, "bench.snap");
    // Memory while saving: the node's RSS and this process's (the CLI's code) over the save.
    const nodePid = follower.proc!.proc.pid!;
    const nodeBefore = rssBytes(nodePid);
    const nodeRss = new RssSampler(nodePid);
    const cliBefore = process.memoryUsage().rss;
    const cliRss = new RssSampler(process.pid);
    let t = performance.now();
    await cli(["save", file, "-s", follower.url, "--timeout", "60000"]);
    const saveMs = performance.now() - t;
    const nodeGrowth = nodeRss.stop() - nodeBefore;
    const cliGrowth = cliRss.stop() - cliBefore;
    const retained = await retainedOver(["save", `${file}.again`, "-s", follower.url]);
    const size = statSync(file).size;
    t = performance.now();
    const status = JSON.parse(await cli(["status", file, "--json"]));
    const statusMs = performance.now() - t;
    const statusRetained = await retainedOver(["status", file]);
    const restoreMs: number[] = [];
    let ready = 0;
    restored = await LocalCluster.start({
      prepare: async (nodes, peers) => {
        for (const n of nodes) {
          const r0 = performance.now();
          await cli(["restore", file, "--data", n.dataDir, "--id", n.id, "--peers", peers]);
          restoreMs.push(performance.now() - r0);
        }
        ready = performance.now();
      },
    });
    for (let i = 0; i < 3; i++) await restored.waitForApplied(i, status.header.raftIndex, 120_000);
    const startMs = performance.now() - ready;
    const referenceMs = fsyncedWriteMs(join(dir, "reference.bin"), size);
    const mib = size / MiB;
    console.log(
      `backup file            ${mib.toFixed(1)} MiB (${(size / keys).toFixed(0)} B per key), ${status.chunks} chunks, raft index ${status.header.raftIndex}`,
    );
    console.log(
      `save (via a follower)  ${saveMs.toFixed(0)} ms (${(mib / (saveMs / 1000)).toFixed(1)} MiB/s)`,
    );
    console.log(
      `RSS growth over save   node ${(nodeGrowth / MiB).toFixed(1)} MiB, CLI ${(cliGrowth / MiB).toFixed(1)} MiB (image ${mib.toFixed(1)} MiB)`,
    );
    console.log(
      retained === undefined
        ? "retained over save     n/a (run with NODE_OPTIONS=--expose-gc to measure)"
        : `retained (after GC)    save ${(retained / MiB).toFixed(1)} MiB, status ${((statusRetained ?? 0) / MiB).toFixed(1)} MiB at most in the CLI (each run again apart)`,
    );
    console.log(`status (read + check)  ${statusMs.toFixed(0)} ms`);
    console.log(`restore, per member    ${restoreMs.map((m) => `${m.toFixed(0)} ms`).join(", ")}`);
    console.log(
      `start restored cluster ${startMs.toFixed(0)} ms until every member applied the backup's index`,
    );
    console.log(
      `write+fsync reference  ${referenceMs.toFixed(0)} ms for the same bytes (${(mib / (referenceMs / 1000)).toFixed(1)} MiB/s)`,
    );
  } finally {
    await source?.destroy();
    await restored?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
