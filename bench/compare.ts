/**
 * `npm run bench -- compare`: streamkv against the reference systems in the same run.
 * For each system (streamkv, NATS JetStream KV, etcd), one node and three nodes on
 * loopback, all driven from this process through the system's own Node client, with the
 * same workload: 100-byte values, 1000 keys, one connection, the same concurrency.
 *
 * Rows (each a ratio streamkv/reference; for latency > 1 means streamkv is slower, for
 * throughput < 1 means streamkv is slower):
 * - put latency p50/p99 with one put in flight
 * - puts/s with 64 in flight
 * - gets/s with 64 in flight, linearizable: streamkv ReadIndex, etcd's default (quorum)
 *   range; NATS KV has no linearizable get (n/a)
 * - gets/s with 64 in flight, not linearizable: streamkv `stale`, etcd `serializable`,
 *   NATS KV `get` (a direct get, which any replica of the stream may answer)
 * - compare-and-set ops/s with 64 in flight: each op pair is a create of a fresh key
 *   and an update of it at the revision the create returned (no contention)
 *
 * Durability, printed with the table: streamkv fsyncs before every ack (group commit);
 * etcd fsyncs its WAL before every ack (default); nats-server 2.9 cannot (no
 * `sync_interval` option; see bench/reference/nats.ts). The disk's raw fsync rate is
 * measured in the same run.
 *
 * Three-node clients talk to the leader (streamkv's Raft leader, etcd's leader, the
 * KV stream's leader for NATS), so no row pays a forwarding hop the others do not.
 * A missing reference binary prints how to install it, and that system is skipped.
 *
 * Flags: --seconds=N cap per measurement (default 3), --latency=N (300), --puts=N (5000),
 * --gets=N (10000), --cas=N op pairs (2000), --systems=streamkv,nats,etcd, --sizes=1,3.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { connect as natsConnect } from "nats";
import { connect } from "../client/index.js";
import { LocalCluster } from "../cluster-tests/harness/cluster.js";
import { removeDir, startServer, tempDir } from "../test_support/index.js";
import { intFlag, opsPerSecond, percentile } from "./_measure.js";
import { ETCD_INSTALL_HINT, startEtcd } from "./reference/etcd.js";
import { NATS_DURABILITY_NOTE, NATS_INSTALL_HINT, startNats } from "./reference/nats.js";
import { findBinary, killOnExit } from "./reference/process.js";

type SystemName = "streamkv" | "nats" | "etcd";

/** One system's client, reduced to the operations the rows measure. */
interface Driver {
  put(key: string, value: Uint8Array): Promise<unknown>;
  /** undefined when the system has no linearizable read. */
  getLinearizable: ((key: string) => Promise<Uint8Array | null>) | undefined;
  getLocal(key: string): Promise<Uint8Array | null>;
  /** Creates `key` (fails if it exists); returns the revision to update at. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes `key` only if its revision is `last`; returns the new revision. */
  update(key: string, value: Uint8Array, last: number): Promise<number>;
  close(): Promise<void>;
}

/** A started system with a client on its leader; `stop` ends both. */
interface Running {
  driver: Driver;
  version: string;
  stop(): Promise<void>;
}

interface Figures {
  putP50Ms: number;
  putP99Ms: number;
  putsPerSec: number;
  getsLinearizablePerSec: number | undefined;
  getsLocalPerSec: number;
  casPerSec: number;
}

interface Params {
  seconds: number;
  latencyOps: number;
  puts: number;
  gets: number;
  casPairs: number;
}

const keyCount = 1000;
const concurrency = 64;
const valueBytes = 100;

function listFlag(args: string[], name: string, fallback: string[]): string[] {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3).split(",") : fallback;
}

async function measure(d: Driver, p: Params, run: string): Promise<Figures> {
  const value = new Uint8Array(valueBytes).fill(7);
  const key = (i: number) => `k.${i % keyCount}`;
  // Every key the reads use exists before anything is timed; this also warms the
  // connection, the server and the JIT on both sides.
  const filled = await opsPerSecond(keyCount, concurrency, (i) => d.put(key(i), value), 30);
  if (filled * 30 < keyCount) throw new Error("could not write the key set within 30 s");

  const lat: number[] = [];
  const latDeadline = performance.now() + p.seconds * 1000;
  for (let i = 0; i < p.latencyOps && performance.now() < latDeadline; i++) {
    const t = performance.now();
    await d.put(`lat.${i % 100}`, value);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);

  const putsPerSec = await opsPerSecond(
    p.puts,
    concurrency,
    (i) => d.put(key(i), value),
    p.seconds,
  );

  const found = (v: Uint8Array | null, k: string) => {
    if (v === null || v.length !== valueBytes)
      throw new Error(`get ${k}: no ${valueBytes}-byte value`);
  };
  const getLin = d.getLinearizable;
  const getsLinearizablePerSec = getLin
    ? await opsPerSecond(
        p.gets,
        concurrency,
        async (i) => found(await getLin(key(i)), key(i)),
        p.seconds,
      )
    : undefined;
  const getsLocalPerSec = await opsPerSecond(
    p.gets,
    concurrency,
    async (i) => found(await d.getLocal(key(i)), key(i)),
    p.seconds,
  );

  const casPerSec =
    2 *
    (await opsPerSecond(
      p.casPairs,
      concurrency,
      async (i) => {
        const k = `cas.${run}.${i}`;
        const rev = await d.create(k, value);
        await d.update(k, value, rev);
      },
      p.seconds,
    ));

  return {
    putP50Ms: percentile(lat, 50),
    putP99Ms: percentile(lat, 99),
    putsPerSec,
    getsLinearizablePerSec,
    getsLocalPerSec,
    casPerSec,
  };
}

// ---- the systems ----

async function startStreamkv(size: number): Promise<Running> {
  let url: string;
  let stopServers: () => Promise<void>;
  if (size === 1) {
    const dataDir = tempDir("streamkv-bench-");
    const server = await startServer({ dataDir });
    const release = killOnExit(server.proc.pid!);
    url = server.url;
    stopServers = async () => {
      await server.stop();
      release();
      removeDir(dataDir);
    };
  } else {
    const c = await LocalCluster.start({ size });
    const releases = c.nodes.flatMap((n) =>
      n.proc?.proc.pid ? [killOnExit(n.proc.proc.pid)] : [],
    );
    stopServers = async () => {
      await c.destroy();
      for (const release of releases) release();
    };
    try {
      url = c.nodes[await c.waitForLeader()]!.url;
    } catch (err) {
      await stopServers();
      throw err;
    }
  }
  try {
    const nc = await connect({ servers: url, timeoutMs: 30_000 });
    try {
      const kv = await nc.createKeyValue({ bucket: "bench", history: 1 });
      const putValue = (e: { value: Uint8Array } | null) => (e ? e.value : null);
      const driver: Driver = {
        put: (k, v) => kv.put(k, v),
        getLinearizable: async (k) => putValue(await kv.get(k)),
        getLocal: async (k) => putValue(await kv.get(k, { stale: true })),
        create: (k, v) => kv.create(k, v),
        update: (k, v, last) => kv.update(k, v, last),
        close: () => nc.close(),
      };
      return {
        driver,
        version: "this tree",
        stop: async () => {
          await nc.close();
          await stopServers();
        },
      };
    } catch (err) {
      await nc.close();
      throw err;
    }
  } catch (err) {
    await stopServers();
    throw err;
  }
}

async function retry<T>(what: string, timeoutMs: number, f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function startNatsKv(size: number): Promise<Running> {
  const ref = await startNats({ size });
  try {
    // Create the bucket (JetStream may still be electing its meta leader), then find
    // the server leading the bucket's stream and talk to it alone.
    const setup = await natsConnect({ servers: ref.nodes.map((n) => n.url) });
    let leaderName: string | undefined;
    try {
      await retry("create NATS KV bucket", 15_000, () =>
        setup.jetstream().views.kv("bench", { history: 1, replicas: size }),
      );
      const jsm = await setup.jetstreamManager();
      leaderName = await retry("find the KV stream leader", 15_000, async () => {
        const info = await jsm.streams.info("KV_bench");
        const name = size === 1 ? ref.nodes[0]!.name : info.cluster?.leader;
        if (!name) throw new Error("no stream leader yet");
        return name;
      });
    } finally {
      await setup.close();
    }
    const node = ref.nodes.find((n) => n.name === leaderName);
    if (!node) throw new Error(`unknown NATS stream leader ${leaderName}`);
    const nc = await natsConnect({ servers: node.url });
    try {
      const kv = await nc.jetstream().views.kv("bench");
      const putValue = (e: { value: Uint8Array; operation: string } | null) =>
        e && e.operation === "PUT" ? e.value : null;
      const driver: Driver = {
        put: (k, v) => kv.put(k, v),
        getLinearizable: undefined,
        getLocal: async (k) => putValue(await kv.get(k)),
        create: (k, v) => kv.create(k, v),
        update: (k, v, last) => kv.update(k, v, last),
        close: () => nc.close(),
      };
      return {
        driver,
        version: ref.version,
        stop: async () => {
          await nc.close();
          await ref.stop();
        },
      };
    } catch (err) {
      await nc.close();
      throw err;
    }
  } catch (err) {
    await ref.stop();
    throw err;
  }
}

async function startEtcdKv(size: number): Promise<Running> {
  const ref = await startEtcd({ size });
  try {
    const leader = ref.nodes[await ref.leaderIndex()]!;
    const client = new Etcd3({ hosts: leader.url });
    const revisionOf = (r: { succeeded: boolean; header: { revision: string } }, what: string) => {
      if (!r.succeeded) throw new Error(`etcd ${what} failed its compare`);
      const rev = Number(r.header.revision);
      if (!Number.isSafeInteger(rev)) throw new Error(`etcd ${what}: bad revision`);
      return rev;
    };
    const driver: Driver = {
      put: (k, v) => client.put(k).value(Buffer.from(v)).exec(),
      getLinearizable: (k) => client.get(k).buffer(),
      getLocal: (k) => client.get(k).serializable(true).buffer(),
      // A create is a txn "create_revision == 0 then put", an update "mod_revision ==
      // last then put": etcd's compare-and-set; the new mod_revision is the txn's revision.
      create: async (k, v) =>
        revisionOf(
          await client
            .if(k, "Create", "==", 0)
            .then(client.put(k).value(Buffer.from(v)))
            .commit(),
          "create",
        ),
      update: async (k, v, last) =>
        revisionOf(
          await client
            .if(k, "Mod", "==", last)
            .then(client.put(k).value(Buffer.from(v)))
            .commit(),
          "update",
        ),
      close: async () => client.close(),
    };
    return {
      driver,
      version: ref.version,
      stop: async () => {
        client.close();
        await ref.stop();
      },
    };
  } catch (err) {
    await ref.stop();
    throw err;
  }
}

const starters: Record<SystemName, (size: number) => Promise<Running>> = {
  streamkv: startStreamkv,
  nats: startNatsKv,
  etcd: startEtcdKv,
};

/** The write+fsync rate of one file in the temp dir, where every data dir lives. */
function fsyncRate(count: number, seconds: number): number {
  const dir = mkdtempSync(join(tmpdir(), "streamkv-bench-fsync-"));
  try {
    const fd = openSync(join(dir, "fsync.bench"), "w");
    const block = Buffer.alloc(512, 1);
    const started = performance.now();
    let done = 0;
    try {
      while (done < count && performance.now() - started < seconds * 1000) {
        writeSync(fd, block);
        fsyncSync(fd);
        done++;
      }
    } finally {
      closeSync(fd);
    }
    return done / ((performance.now() - started) / 1000);
  } finally {
    removeDir(dir);
  }
}

// ---- the table ----

const rows: { label: string; pick: (f: Figures) => number | undefined; ms?: boolean }[] = [
  { label: "put p50 ms, 1 in flight", pick: (f) => f.putP50Ms, ms: true },
  { label: "put p99 ms, 1 in flight", pick: (f) => f.putP99Ms, ms: true },
  { label: "puts/s, 64 in flight", pick: (f) => f.putsPerSec },
  { label: "gets/s linearizable", pick: (f) => f.getsLinearizablePerSec },
  { label: "gets/s stale/serial./direct", pick: (f) => f.getsLocalPerSec },
  { label: "CAS ops/s (create+update)", pick: (f) => f.casPerSec },
];

function cell(v: number | string | undefined, ms: boolean | undefined): string {
  if (typeof v === "string") return v;
  if (v === undefined) return "n/a";
  return ms ? v.toFixed(2) : v.toFixed(0);
}

function ratio(ours: number | string | undefined, theirs: number | string | undefined): string {
  if (typeof ours !== "number" || typeof theirs !== "number" || theirs === 0) return "-";
  return `${(ours / theirs).toFixed(2)}x`;
}

type Outcome = Figures | { failed: string };

function printTable(sizes: number[], results: Map<string, Outcome>): void {
  const w = [33, 10, 10, 8, 10, 8];
  const line = (cols: string[]) =>
    console.log(cols.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(" "));
  line(["", "streamkv", "NATS KV*", "sk/NATS", "etcd", "sk/etcd"]);
  for (const size of sizes) {
    // A system without figures shows why in every cell: "skipped" or "failed".
    const get = (s: SystemName): Figures | string => {
      const o = results.get(`${s}/${size}`);
      if (o === undefined) return "skipped";
      return "failed" in o ? "failed" : o;
    };
    const ours = get("streamkv");
    const nats = get("nats");
    const etcd = get("etcd");
    const pick = (f: Figures | string, r: (typeof rows)[number]) =>
      typeof f === "string" ? f : r.pick(f);
    for (const r of rows) {
      const a = pick(ours, r);
      const b = pick(nats, r);
      const c = pick(etcd, r);
      const label = `${size === 1 ? "1 node " : `${size} nodes`} ${r.label}`;
      line([label, cell(a, r.ms), cell(b, r.ms), ratio(a, b), cell(c, r.ms), ratio(a, c)]);
    }
  }
}

export async function run(args: string[]): Promise<void> {
  const p: Params = {
    seconds: intFlag(args, "seconds", 3),
    latencyOps: intFlag(args, "latency", 300),
    puts: intFlag(args, "puts", 5000),
    gets: intFlag(args, "gets", 10_000),
    casPairs: intFlag(args, "cas", 2000),
  };
  const systems = listFlag(args, "systems", ["streamkv", "nats", "etcd"]);
  for (const s of systems) {
    if (!(s in starters)) throw new Error(`--systems: unknown system ${s}`);
  }
  const sizes = listFlag(args, "sizes", ["1", "3"]).map(Number);
  for (const n of sizes) {
    if (!Number.isSafeInteger(n) || n < 1 || n > 7) throw new Error("--sizes: 1..7");
  }

  const wanted = systems.filter((s): s is SystemName => {
    if (s === "nats" && !findBinary("nats-server", "NATS_SERVER_BIN")) {
      console.log(`NATS skipped: nats-server not found; ${NATS_INSTALL_HINT}`);
      return false;
    }
    if (s === "etcd" && !findBinary("etcd", "ETCD_BIN")) {
      console.log(`etcd skipped: etcd not found; ${ETCD_INSTALL_HINT}`);
      return false;
    }
    return true;
  });

  const syncsBefore = fsyncRate(300, p.seconds);
  const versions = new Map<SystemName, string>();
  const results = new Map<string, Outcome>();
  const suiteStarted = performance.now();
  for (const size of sizes) {
    for (const s of wanted) {
      const t = performance.now();
      let running: Running | undefined;
      try {
        running = await starters[s](size);
        versions.set(s, running.version);
        // This process runs only the clients, so its CPU use shows when a client, not
        // the server, may be what limits a figure (both share the 2 cores).
        const cpuBefore = process.cpuUsage();
        const measuredAt = performance.now();
        results.set(`${s}/${size}`, await measure(running.driver, p, `${s}${size}`));
        const cpu = process.cpuUsage(cpuBefore);
        const busy = (cpu.user + cpu.system) / 1000 / (performance.now() - measuredAt);
        console.log(
          `${s}, ${size} node(s): done in ${((performance.now() - t) / 1000).toFixed(1)} s` +
            ` (bench client process CPU while measuring: ${(100 * busy).toFixed(0)}% of one core)`,
        );
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        results.set(`${s}/${size}`, { failed: msg });
        console.log(`${s}, ${size} node(s): FAILED: ${msg.split("\n")[0]}`);
      } finally {
        await running?.stop();
      }
    }
  }

  const syncsAfter = fsyncRate(300, p.seconds);
  console.log("");
  console.log(
    `disk: ${syncsBefore.toFixed(0)} fsyncs/s before, ${syncsAfter.toFixed(0)} after (512 B write + fsync of one file in ${tmpdir()}, where every data dir is)`,
  );
  console.log("durability: streamkv fsyncs before every ack (group commit)");
  if (versions.has("etcd"))
    console.log(`            etcd ${versions.get("etcd")}: WAL fsynced before every ack (default)`);
  if (versions.has("nats"))
    console.log(
      `            nats-server ${versions.get("nats")}: * ${NATS_DURABILITY_NOTE} (acks from the page cache;` +
        " fsync every 2 min; 2.9 has no sync_interval/always option)",
    );
  console.log(
    "reads: linearizable = streamkv ReadIndex, etcd default range (quorum); NATS KV has none (n/a)",
  );
  console.log(
    "       stale/serial./direct = streamkv {stale:true}, etcd serializable, NATS KV get (direct get)",
  );
  console.log(
    "ratio = streamkv / reference: latency > 1x means streamkv slower; throughput < 1x means slower",
  );
  console.log("");
  printTable(sizes, results);
  for (const [k, o] of results) if ("failed" in o) console.log(`${k}: failed: ${o.failed}`);
  console.log(
    `(${valueBytes}-byte values, ${keyCount} keys, ${concurrency} in flight on one connection per system,` +
      ` 3-node clients on the leader; each figure capped at ${p.seconds} s; ` +
      `suite ${((performance.now() - suiteStarted) / 1000).toFixed(0)} s)`,
  );
}
