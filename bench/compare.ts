/**
 * `npm run bench -- compare`: streamkv against the reference systems in the same run.
 * For each system (streamkv, NATS JetStream KV, etcd), one node and three nodes on
 * loopback, all driven from this process through the system's own Node client, with the
 * same workload: 100-byte values, 1000 keys, one connection to the leader.
 *
 * Workloads (`--workloads=` picks some; bench/README.md says exactly what each measures):
 * - put1: puts with one in flight: ops/s, p50, p99, p999
 * - put64: puts with 64 in flight: ops/s, p50, p99; the servers' CPU per put and cores
 * - get: gets with 64 in flight, linearizable (streamkv ReadIndex, etcd's default range;
 *   NATS KV has none) and stale/serializable/direct; ops/s and CPU per get for each
 * - mixed: 90% get (linearizable where the system has one, else its direct get) and
 *   10% put, 64 in flight: ops/s, p99, CPU per op
 * - cas: compare-and-set ops/s with 64 in flight, a create of a fresh key and an update
 *   at the revision it returned (no contention)
 * - contention: 16 workers on 8 counter keys, each a loop of read, then update at the
 *   read revision to the read count + 1: ok/s, conflicts/s, and lost updates (successes
 *   minus how much the counters grew)
 * - watch: 100 watchers on one prefix in this process, then puts one at a time; for each
 *   put and watcher, the time the event arrives minus the time the put's ack arrived
 * The servers' peak RSS is sampled every 50 ms for the whole measurement.
 *
 * Durability, printed with the table: streamkv fsyncs before every ack (group commit);
 * etcd fsyncs its WAL before every ack (default); nats-server 2.9 cannot (no
 * `sync_interval` option; see bench/reference/nats.ts). The disk's raw fsync rate is
 * measured in the same run.
 *
 * `--repeat=N` runs everything N times, rotating the order of the systems, and each cell
 * is the median with the min-max spread. Results: the table on stdout, and
 * bench/results/compare-<date>.{json,md} plus compare-latest.md.
 */
import {
  closeSync,
  copyFileSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Etcd3 } from "etcd3";
import { KvWatchInclude, connect as natsConnect } from "nats";
import { connect, isKvError } from "../client/index.js";
import { LocalCluster } from "../cluster-tests/harness/cluster.js";
import { removeDir, repoRoot, startServer, tempDir } from "../test_support/index.js";
import {
  CLOCK_TICKS_PER_SECOND,
  intFlag,
  median,
  opsPerSecond,
  PeakRssSampler,
  percentile,
  processesCpuMs,
  stringFlag,
  timedOps,
} from "./_measure.js";
import { ETCD_INSTALL_HINT, startEtcd } from "./reference/etcd.js";
import { NATS_DURABILITY_NOTE, NATS_INSTALL_HINT, startNats } from "./reference/nats.js";
import { findBinary, killOnExit } from "./reference/process.js";

type SystemName = "streamkv" | "nats" | "etcd";
const systemNames: SystemName[] = ["streamkv", "nats", "etcd"];

const workloadNames = ["put1", "put64", "get", "mixed", "cas", "contention", "watch"] as const;
type WorkloadName = (typeof workloadNames)[number];

/** A value with the revision to update it at. */
interface Versioned {
  value: Uint8Array;
  revision: number;
}

/** One system's client, reduced to the operations the workloads use. */
interface Driver {
  put(key: string, value: Uint8Array): Promise<unknown>;
  /** undefined when the system has no linearizable read. */
  getLinearizable: ((key: string) => Promise<Uint8Array | null>) | undefined;
  getLocal(key: string): Promise<Uint8Array | null>;
  /** The read of a compare-and-set loop: linearizable where the system has it. */
  read(key: string): Promise<Versioned | null>;
  /** Creates `key` (fails if it exists); returns the revision to update at. */
  create(key: string, value: Uint8Array): Promise<number>;
  /**
   * Writes `key` only if its revision is `last`: true if written, false if the revision
   * had moved (the system's own conflict answer); throws on any other failure.
   */
  update(key: string, value: Uint8Array, last: number): Promise<boolean>;
  /** Calls `onValue` with the value of every put under `prefix` from now on; resolves once watching. */
  watch(prefix: string, onValue: (value: Uint8Array) => void): Promise<() => void>;
}

/** A started system with a client on its leader; `stop` ends both. */
interface Running {
  driver: Driver;
  version: string;
  /** Every server process of the system, node order. */
  pids: number[];
  stop(): Promise<void>;
}

/** One measured run of one system and size; undefined = not measured or n/a. */
type Figures = Partial<Record<MetricKey, number>>;

interface RunRecord {
  repeat: number;
  size: number;
  system: SystemName;
  figures?: Figures;
  /** Peak VmRSS of each server process, MiB, node order. */
  rssPeakPerNodeMiB?: number[];
  /** The contention and watch workloads' own counts, for the JSON. */
  detail?: Record<string, number>;
  seconds: number;
  failed?: string;
}

interface Params {
  seconds: number;
  /** Seconds of puts and gets before anything is timed (the JIT's warm-up). */
  warmupSeconds: number;
  latencyOps: number;
  puts: number;
  gets: number;
  mixedOps: number;
  casPairs: number;
  casWorkers: number;
  casKeys: number;
  watchers: number;
  watchPuts: number;
  repeat: number;
  workloads: WorkloadName[];
}

const keyCount = 1000;
const concurrency = 64;
const valueBytes = 100;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---- what is reported ----

interface Metric {
  readonly label: string;
  /** The workload that measures it; undefined: every run. */
  readonly workload?: WorkloadName;
  readonly digits: number;
  /** Which way is better, for the "ahead of etcd" count; undefined: neither. */
  readonly better?: "higher" | "lower";
  /** False where a ratio means nothing (this process's CPU, counts, signed latencies). */
  readonly ratio?: boolean;
}

const metrics = {
  put1PerSec: { label: "put, 1 in flight: ops/s", workload: "put1", digits: 0, better: "higher" },
  put1P50Ms: { label: "put, 1 in flight: p50 ms", workload: "put1", digits: 2, better: "lower" },
  put1P99Ms: { label: "put, 1 in flight: p99 ms", workload: "put1", digits: 2, better: "lower" },
  put1P999Ms: { label: "put, 1 in flight: p999 ms", workload: "put1", digits: 2, better: "lower" },
  put64PerSec: {
    label: "put, 64 in flight: ops/s",
    workload: "put64",
    digits: 0,
    better: "higher",
  },
  put64P50Ms: { label: "put, 64 in flight: p50 ms", workload: "put64", digits: 2, better: "lower" },
  put64P99Ms: { label: "put, 64 in flight: p99 ms", workload: "put64", digits: 2, better: "lower" },
  put64CpuMs: {
    label: "put64: server CPU ms per put",
    workload: "put64",
    digits: 3,
    better: "lower",
  },
  put64Cores: { label: "put64: server cores used", workload: "put64", digits: 2 },
  getLinPerSec: {
    label: "get linearizable, 64: ops/s",
    workload: "get",
    digits: 0,
    better: "higher",
  },
  getLinCpuMs: {
    label: "get lin.: server CPU ms per get",
    workload: "get",
    digits: 3,
    better: "lower",
  },
  getLinCores: { label: "get lin.: server cores used", workload: "get", digits: 2 },
  getLocalPerSec: {
    label: "get stale/serial./direct: ops/s",
    workload: "get",
    digits: 0,
    better: "higher",
  },
  getLocalCpuMs: {
    label: "get stale: server CPU ms per get",
    workload: "get",
    digits: 3,
    better: "lower",
  },
  getLocalCores: { label: "get stale: server cores used", workload: "get", digits: 2 },
  mixedPerSec: { label: "mixed 90/10, 64: ops/s", workload: "mixed", digits: 0, better: "higher" },
  mixedP99Ms: { label: "mixed 90/10, 64: p99 ms", workload: "mixed", digits: 2, better: "lower" },
  mixedCpuMs: {
    label: "mixed: server CPU ms per op",
    workload: "mixed",
    digits: 3,
    better: "lower",
  },
  mixedCores: { label: "mixed: server cores used", workload: "mixed", digits: 2 },
  casPerSec: {
    label: "CAS create+update, 64: ops/s",
    workload: "cas",
    digits: 0,
    better: "higher",
  },
  contentionOkPerSec: {
    label: "CAS 16 workers/8 keys: ok/s",
    workload: "contention",
    digits: 0,
    better: "higher",
  },
  contentionConflictsPerSec: {
    label: "CAS 16 workers/8 keys: conflicts/s",
    workload: "contention",
    digits: 0,
  },
  contentionLost: {
    label: "CAS 16 workers/8 keys: LOST updates",
    workload: "contention",
    digits: 0,
    better: "lower",
    ratio: false,
  },
  watchP50Ms: {
    label: "watch x100: delivery p50 ms",
    workload: "watch",
    digits: 2,
    better: "lower",
    ratio: false,
  },
  watchP99Ms: {
    label: "watch x100: delivery p99 ms",
    workload: "watch",
    digits: 2,
    better: "lower",
    ratio: false,
  },
  watchSendP99Ms: {
    label: "watch x100: p99 ms after the put's send",
    workload: "watch",
    digits: 2,
    better: "lower",
  },
  watchMissing: { label: "watch x100: events missing", workload: "watch", digits: 0, ratio: false },
  rssPeakMiB: { label: "peak RSS MiB, largest node", digits: 0, better: "lower" },
  clientPut64Pct: {
    label: "bench client CPU %, put64",
    workload: "put64",
    digits: 0,
    ratio: false,
  },
  clientGetLinPct: {
    label: "bench client CPU %, get lin.",
    workload: "get",
    digits: 0,
    ratio: false,
  },
  clientGetLocalPct: {
    label: "bench client CPU %, get stale",
    workload: "get",
    digits: 0,
    ratio: false,
  },
  clientMixedPct: {
    label: "bench client CPU %, mixed",
    workload: "mixed",
    digits: 0,
    ratio: false,
  },
  clientContentionPct: {
    label: "bench client CPU %, contention",
    workload: "contention",
    digits: 0,
    ratio: false,
  },
  clientWatchPct: {
    label: "bench client CPU %, watch puts",
    workload: "watch",
    digits: 0,
    ratio: false,
  },
} satisfies Record<string, Metric>;
type MetricKey = keyof typeof metrics;
const metricKeys = Object.keys(metrics) as MetricKey[];

// ---- the workloads ----

/** Server CPU (summed over every server process) and this process's CPU over a phase. */
async function withCpu<T extends { ops: number; seconds: number }>(
  pids: number[],
  phase: () => Promise<T>,
): Promise<T & { cpuMsPerOp?: number; cores?: number; clientPct: number }> {
  const before = processesCpuMs(pids);
  const clientBefore = process.cpuUsage();
  const r = await phase();
  const client = process.cpuUsage(clientBefore);
  const after = processesCpuMs(pids);
  const clientPct = (100 * (client.user + client.system)) / 1000 / (r.seconds * 1000);
  if (!before || !after || r.ops === 0) return { ...r, clientPct };
  const used = after.reduce((sum, a, i) => sum + a - before[i]!, 0);
  return { ...r, cpuMsPerOp: used / r.ops, cores: used / 1000 / r.seconds, clientPct };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** 16 workers, 8 counters, read then update at that revision; counts and lost updates. */
async function contention(d: Driver, p: Params, run: string) {
  const keys = Array.from({ length: p.casKeys }, (_, i) => `cnt.${run}.${i}`);
  for (const k of keys) await d.put(k, encoder.encode("0"));
  const sum = async () => {
    let total = 0;
    for (const k of keys) {
      const e = await d.read(k);
      if (!e) throw new Error(`contention: ${k} vanished`);
      total += Number(decoder.decode(e.value));
    }
    return total;
  };
  const initial = await sum();
  let ok = 0;
  let conflicts = 0;
  let errors = 0;
  let firstError: unknown;
  const started = performance.now();
  const deadline = started + p.seconds * 1000;
  await Promise.all(
    Array.from({ length: p.casWorkers }, async (_, w) => {
      for (let n = 0; performance.now() < deadline; n++) {
        const k = keys[(w + n) % keys.length]!;
        try {
          const e = await d.read(k);
          if (!e) throw new Error(`contention: ${k} vanished`);
          const count = Number(decoder.decode(e.value));
          if (await d.update(k, encoder.encode(String(count + 1)), e.revision)) ok++;
          else conflicts++;
        } catch (err) {
          errors++;
          firstError ??= err;
          // A failure whose outcome is unknown spoils the lost-update count; many mean
          // the system is broken, not contended.
          if (errors > 100) throw new Error(`contention: over 100 errors; first: ${firstError}`);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  // A direct get (NATS) may be answered by a replica still applying the last writes:
  // read until two sums 200 ms apart agree (at most 3 s).
  let final = await sum();
  for (let i = 0; i < 15; i++) {
    await sleep(200);
    const again = await sum();
    if (again === final) break;
    final = again;
  }
  return { ok, conflicts, errors, seconds, lost: ok - (final - initial), grew: final - initial };
}

/**
 * `watchers` watchers on one prefix, then puts one in flight whose value is their
 * sequence number; latency = event arrival at a watcher minus the put's ack arrival.
 */
async function watchLatency(d: Driver, p: Params) {
  const arrivals: number[][] = Array.from({ length: p.watchPuts }, () => []);
  const ackAt: number[] = [];
  const sentAt: number[] = [];
  let ready = 0;
  const stops: (() => void)[] = [];
  try {
    for (let w = 0; w < p.watchers; w++) {
      let seen = false;
      stops.push(
        await d.watch("w.", (value) => {
          const t = performance.now();
          const seq = Number(decoder.decode(value));
          if (seq < 0) {
            if (!seen) ready++;
            seen = true;
          } else if (Number.isSafeInteger(seq) && seq < arrivals.length) arrivals[seq]!.push(t);
        }),
      );
    }
    // Every watcher is live once each has seen this put; then the timed puts start.
    await d.put("w.ready", encoder.encode("-1"));
    if (!(await until(() => ready === p.watchers, 15_000)))
      throw new Error(`watch: only ${ready} of ${p.watchers} watchers live after 15 s`);
    const clientBefore = process.cpuUsage();
    const started = performance.now();
    const deadline = started + p.seconds * 1000;
    for (let i = 0; i < p.watchPuts && performance.now() < deadline; i++) {
      sentAt.push(performance.now());
      await d.put(`w.${i % 10}`, encoder.encode(String(i)));
      ackAt.push(performance.now());
    }
    const puts = ackAt.length;
    await until(() => arrivals.slice(0, puts).every((a) => a.length >= p.watchers), 5000);
    // This process's CPU from the first put until every event arrived (or 5 s passed).
    const client = process.cpuUsage(clientBefore);
    const clientPct = (100 * (client.user + client.system)) / 1000 / (performance.now() - started);
    const lat: number[] = [];
    const fromSend: number[] = [];
    for (let i = 0; i < puts; i++) {
      for (const t of arrivals[i]!) {
        lat.push(t - ackAt[i]!);
        fromSend.push(t - sentAt[i]!);
      }
    }
    lat.sort((a, b) => a - b);
    fromSend.sort((a, b) => a - b);
    return { puts, lat, fromSend, missing: puts * p.watchers - lat.length, clientPct };
  } finally {
    for (const stop of stops) stop();
  }
}

async function measure(
  running: Running,
  p: Params,
  run: string,
): Promise<{ figures: Figures; rssPeakPerNodeMiB: number[]; detail: Record<string, number> }> {
  const d = running.driver;
  const f: Figures = {};
  const detail: Record<string, number> = {};
  const want = (w: WorkloadName) => p.workloads.includes(w);
  const value = new Uint8Array(valueBytes).fill(7);
  const key = (i: number) => `k.${i % keyCount}`;
  const rss = new PeakRssSampler(running.pids, 50);
  try {
    // Every key the reads use exists before anything is timed; this also warms the
    // connection, the server and the JIT on both sides.
    const filled = await opsPerSecond(keyCount, concurrency, (i) => d.put(key(i), value), 30);
    if (filled * 30 < keyCount) throw new Error("could not write the key set within 30 s");
    // A server measured cold is measured compiling: V8 spends its first tens of thousands
    // of requests optimizing the hot paths (a quarter of streamkv's server CPU per put in
    // a profile of the first 3,000), and a database runs for days. So every system gets
    // the same --warmup seconds of puts and gets (half of them one at a time) first.
    const warmEnd = performance.now() + p.warmupSeconds * 1000;
    await opsPerSecond(
      1_000_000,
      concurrency,
      (i) => (i % 2 === 0 ? d.put(key(i), value) : d.getLocal(key(i))),
      p.warmupSeconds / 2,
    );
    for (let i = 0; performance.now() < warmEnd && i < 100_000; i++) await d.put(key(i), value);

    if (want("put1")) {
      const r = await timedOps(p.latencyOps, 1, (i) => d.put(`lat.${i % 100}`, value), p.seconds);
      f.put1PerSec = r.perSec;
      f.put1P50Ms = percentile(r.latMs, 50);
      f.put1P99Ms = percentile(r.latMs, 99);
      f.put1P999Ms = percentile(r.latMs, 99.9);
      detail.put1Samples = r.ops;
    }
    const phase = (ops: number, op: (i: number) => Promise<unknown>) =>
      withCpu(running.pids, () => timedOps(ops, concurrency, op, p.seconds));
    if (want("put64")) {
      const r = await phase(p.puts, (i) => d.put(key(i), value));
      f.put64PerSec = r.perSec;
      f.put64P50Ms = percentile(r.latMs, 50);
      f.put64P99Ms = percentile(r.latMs, 99);
      f.put64CpuMs = r.cpuMsPerOp;
      f.put64Cores = r.cores;
      f.clientPut64Pct = r.clientPct;
    }
    const found = (v: Uint8Array | null, k: string) => {
      if (v === null || v.length !== valueBytes)
        throw new Error(`get ${k}: no ${valueBytes}-byte value`);
    };
    const getLin = d.getLinearizable;
    if (want("get")) {
      if (getLin) {
        const r = await phase(p.gets, async (i) => found(await getLin(key(i)), key(i)));
        f.getLinPerSec = r.perSec;
        f.getLinCpuMs = r.cpuMsPerOp;
        f.getLinCores = r.cores;
        f.clientGetLinPct = r.clientPct;
      }
      const r = await phase(p.gets, async (i) => found(await d.getLocal(key(i)), key(i)));
      f.getLocalPerSec = r.perSec;
      f.getLocalCpuMs = r.cpuMsPerOp;
      f.getLocalCores = r.cores;
      f.clientGetLocalPct = r.clientPct;
    }
    if (want("mixed")) {
      const get = getLin ?? ((k: string) => d.getLocal(k));
      const r = await phase(p.mixedOps, async (i) => {
        // Every tenth op a put, spread over the keys the gets read.
        if (i % 10 === 0) await d.put(key(i * 7), value);
        else found(await get(key(i)), key(i));
      });
      f.mixedPerSec = r.perSec;
      f.mixedP99Ms = percentile(r.latMs, 99);
      f.mixedCpuMs = r.cpuMsPerOp;
      f.mixedCores = r.cores;
      f.clientMixedPct = r.clientPct;
    }
    if (want("cas")) {
      const pairs = await opsPerSecond(
        p.casPairs,
        concurrency,
        async (i) => {
          const k = `cas.${run}.${i}`;
          const rev = await d.create(k, value);
          if (!(await d.update(k, value, rev)))
            throw new Error(`CAS ${k}: conflict on a fresh key`);
        },
        p.seconds,
      );
      f.casPerSec = 2 * pairs;
    }
    if (want("contention")) {
      const r = await withCpu(running.pids, () =>
        contention(d, p, run).then((c) => ({ ...c, ops: c.ok + c.conflicts })),
      );
      f.clientContentionPct = r.clientPct;
      f.contentionOkPerSec = r.ok / r.seconds;
      f.contentionConflictsPerSec = r.conflicts / r.seconds;
      f.contentionLost = r.lost;
      Object.assign(detail, {
        contentionOk: r.ok,
        contentionConflicts: r.conflicts,
        contentionErrors: r.errors,
        contentionCountersGrew: r.grew,
      });
    }
    if (want("watch")) {
      const r = await watchLatency(d, p);
      f.clientWatchPct = r.clientPct;
      if (r.lat.length > 0) {
        f.watchP50Ms = percentile(r.lat, 50);
        f.watchP99Ms = percentile(r.lat, 99);
        f.watchSendP99Ms = percentile(r.fromSend, 99);
      }
      f.watchMissing = r.missing;
      Object.assign(detail, {
        watchPuts: r.puts,
        watchEvents: r.lat.length,
        watchMinMs: r.lat[0] ?? Number.NaN,
        watchMaxMs: r.lat.at(-1) ?? Number.NaN,
      });
    }
  } finally {
    rss.stop();
  }
  const rssPeakPerNodeMiB = rss.peakBytes.map((b) => b / 2 ** 20);
  f.rssPeakMiB = Math.max(...rssPeakPerNodeMiB);
  return { figures: f, rssPeakPerNodeMiB, detail };
}

// ---- the systems ----

/** `--cpu-prof=DIR`: every streamkv server runs under V8's profiler, its profile kept there. */
let cpuProfDir: string | undefined;

/**
 * Names the main-thread profile of each server pid (V8 writes `CPU.<date>.<pid>.0.*`)
 * `streamkv-<size>n-<role>-<pid>.cpuprofile`, so a flame graph (Chrome DevTools, speedscope)
 * says whose it is; worker-thread profiles are dropped.
 */
function nameProfiles(dir: string, size: number, roles: Map<number, string>): void {
  for (const f of readdirSync(dir)) {
    const m = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(f);
    if (!m) continue;
    const role = roles.get(Number(m[1]));
    if (role === undefined) continue;
    if (m[2] === "0")
      renameSync(join(dir, f), join(dir, `streamkv-${size}n-${role}-${m[1]}.cpuprofile`));
    else rmSync(join(dir, f));
  }
}

async function startStreamkv(size: number): Promise<Running> {
  let url: string;
  let pids: number[];
  let stopServers: () => Promise<void>;
  const profDir = cpuProfDir;
  const nodeArgs = profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : undefined;
  if (size === 1) {
    const dataDir = tempDir("streamkv-bench-");
    const server = await startServer({ dataDir, ...(nodeArgs ? { nodeArgs } : {}) });
    const release = killOnExit(server.proc.pid!);
    url = server.url;
    pids = [server.proc.pid!];
    stopServers = async () => {
      // SIGTERM: a profiled server writes its profile on the way out.
      await server.stop("SIGTERM");
      release();
      removeDir(dataDir);
      if (profDir) nameProfiles(profDir, size, new Map([[pids[0]!, "single"]]));
    };
  } else {
    const c = await LocalCluster.start({ size, ...(nodeArgs ? { nodeArgs } : {}) });
    pids = c.nodes.map((n) => n.proc!.proc.pid!);
    const releases = pids.map((pid) => killOnExit(pid));
    let leader = -1;
    stopServers = async () => {
      if (profDir) for (let i = 0; i < c.nodes.length; i++) await c.kill(i, "SIGTERM");
      await c.destroy();
      for (const release of releases) release();
      if (profDir) {
        nameProfiles(
          profDir,
          size,
          new Map(pids.map((pid, i) => [pid, i === leader ? "leader" : "follower"])),
        );
      }
    };
    try {
      leader = await c.waitForLeader();
      url = c.nodes[leader]!.url;
    } catch (err) {
      await stopServers();
      throw err;
    }
  }
  try {
    const nc = await connect({ servers: url, timeoutMs: 30_000 });
    try {
      const kv = await nc.createKeyValue({ bucket: "bench", history: 1 });
      const valueIn = (e: { value: Uint8Array } | null) => (e ? e.value : null);
      const driver: Driver = {
        put: (k, v) => kv.put(k, v),
        getLinearizable: async (k) => valueIn(await kv.get(k)),
        getLocal: async (k) => valueIn(await kv.get(k, { stale: true })),
        read: (k) => kv.get(k),
        create: (k, v) => kv.create(k, v),
        update: async (k, v, last) => {
          try {
            await kv.update(k, v, last);
            return true;
          } catch (err) {
            if (isKvError(err) && err.code === "WRONG_LAST_REVISION") return false;
            throw err;
          }
        },
        watch: async (prefix, onValue) => {
          const w = await kv.watch(`${prefix}>`, { updatesOnly: true });
          void (async () => {
            for await (const e of w) if (e && e.operation === "PUT") onValue(e.value);
          })().catch(() => undefined);
          return () => w.stop();
        },
      };
      return {
        driver,
        version: "this tree",
        pids,
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

/** JetStream's "wrong last sequence" (API error 10071): the expected revision moved. */
function isNatsWrongLast(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string } | undefined;
  return e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(e?.message ?? "");
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
      const putEntry = <E extends { operation: string }>(e: E | null) =>
        e && e.operation === "PUT" ? e : null;
      const driver: Driver = {
        put: (k, v) => kv.put(k, v),
        getLinearizable: undefined,
        getLocal: async (k) => putEntry(await kv.get(k))?.value ?? null,
        read: async (k) => putEntry(await kv.get(k)),
        create: (k, v) => kv.create(k, v),
        update: async (k, v, last) => {
          try {
            await kv.update(k, v, last);
            return true;
          } catch (err) {
            if (isNatsWrongLast(err)) return false;
            throw err;
          }
        },
        watch: async (prefix, onValue) => {
          const w = await kv.watch({ key: `${prefix}>`, include: KvWatchInclude.UpdatesOnly });
          void (async () => {
            for await (const e of w) if (e.operation === "PUT") onValue(e.value);
          })().catch(() => undefined);
          return () => w.stop();
        },
      };
      return {
        driver,
        version: ref.version,
        pids: ref.nodes.map((n) => n.proc.pid),
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
      read: async (k) => {
        const kv = (await client.get(k).exec()).kvs[0];
        if (!kv) return null;
        const revision = Number(kv.mod_revision);
        if (!Number.isSafeInteger(revision)) throw new Error(`etcd get ${k}: bad mod_revision`);
        return { value: kv.value, revision };
      },
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
        (
          await client
            .if(k, "Mod", "==", last)
            .then(client.put(k).value(Buffer.from(v)))
            .commit()
        ).succeeded,
      watch: async (prefix, onValue) => {
        const w = await client.watch().prefix(prefix).create();
        w.on("put", (kv) => onValue(kv.value));
        return () => void w.cancel().catch(() => undefined);
      },
    };
    return {
      driver,
      version: ref.version,
      pids: ref.nodes.map((n) => n.proc.pid),
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

// ---- the summary, targets and tables ----

interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

type Summary = Record<string, Partial<Record<SystemName, Partial<Record<MetricKey, Spread>>>>>;

function summarize(runs: RunRecord[], sizes: number[], systems: SystemName[]): Summary {
  const out: Summary = {};
  for (const size of sizes) {
    const bySystem: Summary[string] = {};
    for (const s of systems) {
      const figs = runs
        .filter((r) => r.size === size && r.system === s && r.figures)
        .map((r) => r.figures!);
      const cells: Partial<Record<MetricKey, Spread>> = {};
      for (const m of metricKeys) {
        const vs = figs.map((f) => f[m]).filter((v): v is number => Number.isFinite(v));
        if (vs.length > 0)
          cells[m] = {
            median: median(vs),
            min: Math.min(...vs),
            max: Math.max(...vs),
            n: vs.length,
          };
      }
      bySystem[s] = cells;
    }
    out[String(size)] = bySystem;
  }
  return out;
}

interface Target {
  target: string;
  met: boolean | undefined;
  detail: string;
}

/** Issue 11's targets, on the medians of the size given (three nodes). */
function evaluateTargets(summary: Summary, size: number): Target[] {
  const at = (s: SystemName, m: MetricKey) => summary[String(size)]?.[s]?.[m]?.median;
  const fmt = (v: number | undefined, m: MetricKey) =>
    v === undefined ? "n/a" : v.toFixed(metrics[m].digits);
  const check = (
    target: string,
    parts: { m: MetricKey; ref: SystemName; refM?: MetricKey; factor: number; cmp: "ge" | "le" }[],
    extra?: { met: boolean | undefined; detail: string },
  ): Target => {
    let met: boolean | undefined = true;
    const details: string[] = [];
    for (const p of parts) {
      const ours = at("streamkv", p.m);
      const refM = p.refM ?? p.m;
      const theirs = at(p.ref, refM);
      const needs =
        p.factor === 1 || theirs === undefined
          ? ""
          : ` (needs ${p.cmp === "ge" ? ">=" : "<="} ${fmt(p.factor * theirs, refM)})`;
      details.push(`streamkv ${fmt(ours, p.m)} vs ${p.ref} ${fmt(theirs, refM)}${needs}`);
      if (ours === undefined || theirs === undefined) met = met === false ? false : undefined;
      else if (p.cmp === "ge" ? ours < p.factor * theirs : ours > p.factor * theirs) met = false;
    }
    if (extra) {
      details.push(extra.detail);
      if (extra.met === false) met = false;
      else if (extra.met === undefined && met === true) met = undefined;
    }
    return { target, met, detail: details.join("; ") };
  };
  const lostMax = summary[String(size)]?.streamkv?.contentionLost?.max;
  return [
    check("put, 64 in flight: ops/s >= 2x etcd", [
      { m: "put64PerSec", ref: "etcd", factor: 2, cmp: "ge" },
    ]),
    check("put, 1 in flight: p50 and p99 <= etcd", [
      { m: "put1P50Ms", ref: "etcd", factor: 1, cmp: "le" },
      { m: "put1P99Ms", ref: "etcd", factor: 1, cmp: "le" },
    ]),
    check("server CPU per put (64 in flight) <= etcd", [
      { m: "put64CpuMs", ref: "etcd", factor: 1, cmp: "le" },
    ]),
    check("linearizable get, 64: >= 2x etcd and >= NATS direct get", [
      { m: "getLinPerSec", ref: "etcd", factor: 2, cmp: "ge" },
      { m: "getLinPerSec", ref: "nats", refM: "getLocalPerSec", factor: 1, cmp: "ge" },
    ]),
    check(
      "CAS contention: ok/s >= 2x etcd, 0 lost",
      [{ m: "contentionOkPerSec", ref: "etcd", factor: 2, cmp: "ge" }],
      {
        met: lostMax === undefined ? undefined : lostMax === 0,
        detail: `streamkv lost ${lostMax === undefined ? "n/a" : lostMax} (worst run)`,
      },
    ),
    check("watch delivery p99 (100 watchers) <= etcd", [
      { m: "watchP99Ms", ref: "etcd", factor: 1, cmp: "le" },
    ]),
  ];
}

/** How many figures of one size streamkv has at least as good as etcd's (medians). */
function aheadOfEtcd(
  summary: Summary,
  size: number,
): { ahead: number; of: number; behind: string[] } {
  let ahead = 0;
  let of = 0;
  const behind: string[] = [];
  for (const m of metricKeys) {
    const better = (metrics[m] as Metric).better;
    const ours = summary[String(size)]?.streamkv?.[m]?.median;
    const theirs = summary[String(size)]?.etcd?.[m]?.median;
    if (!better || ours === undefined || theirs === undefined) continue;
    of++;
    if (better === "higher" ? ours >= theirs : ours <= theirs) ahead++;
    else behind.push(metrics[m].label);
  }
  return { ahead, of, behind };
}

const mark = (met: boolean | undefined) => (met === undefined ? "n/a " : met ? "pass" : "FAIL");

function cellText(c: Spread | undefined, digits: number, state: string | undefined): string {
  if (state) return state;
  if (!c) return "n/a";
  const v = (x: number) => x.toFixed(digits);
  return c.n > 1 ? `${v(c.median)} (${v(c.min)}–${v(c.max)})` : v(c.median);
}

function ratioText(m: MetricKey, ours: Spread | undefined, theirs: Spread | undefined): string {
  if ((metrics[m] as Metric).ratio === false || !ours || !theirs || theirs.median === 0) return "-";
  return `${(ours.median / theirs.median).toFixed(2)}x`;
}

/** Table rows of one size: label, then streamkv, NATS, sk/NATS, etcd, sk/etcd. */
function tableRows(
  summary: Summary,
  runs: RunRecord[],
  size: number,
  systems: SystemName[],
  workloads: WorkloadName[],
): string[][] {
  // A system with no figures shows why in every cell: "skipped" or "failed".
  const state = (s: SystemName): string | undefined => {
    if (!systems.includes(s)) return "skipped";
    const rs = runs.filter((r) => r.size === size && r.system === s);
    if (rs.length === 0) return "skipped";
    return rs.every((r) => r.failed) ? "failed" : undefined;
  };
  const rows: string[][] = [];
  for (const m of metricKeys) {
    const w = (metrics[m] as Metric).workload;
    if (w && !workloads.includes(w)) continue;
    const c = (s: SystemName) => summary[String(size)]?.[s]?.[m];
    const d = metrics[m].digits;
    rows.push([
      metrics[m].label,
      cellText(c("streamkv"), d, state("streamkv")),
      cellText(c("nats"), d, state("nats")),
      ratioText(m, c("streamkv"), c("nats")),
      cellText(c("etcd"), d, state("etcd")),
      ratioText(m, c("streamkv"), c("etcd")),
    ]);
  }
  if (size === 1) return rows;
  // Peak RSS of every node (medians over the repeats), node order.
  const perNode = (s: SystemName) => {
    const rs = runs.filter((r) => r.size === size && r.system === s && r.rssPeakPerNodeMiB);
    if (rs.length === 0) return state(s) ?? "n/a";
    return Array.from({ length: size }, (_, i) =>
      median(rs.map((r) => r.rssPeakPerNodeMiB![i] ?? Number.NaN)).toFixed(0),
    ).join("/");
  };
  rows.push([
    "peak RSS MiB, each node",
    perNode("streamkv"),
    perNode("nats"),
    "",
    perNode("etcd"),
    "",
  ]);
  return rows;
}

const header = ["", "streamkv", "NATS KV*", "sk/NATS", "etcd", "sk/etcd"];

function printTable(rows: string[][], title: string): void {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cols: string[]) =>
    console.log(cols.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  "));
  console.log(`-- ${title} --`);
  line(header);
  for (const r of rows) line(r);
}

function markdownTable(rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, "\\|");
  return [
    `| ${["workload", ...header.slice(1)].join(" | ")} |`,
    `|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

function listFlag(args: string[], name: string, fallback: string[]): string[] {
  const hit = stringFlag(args, name);
  return hit === undefined ? fallback : hit.split(",").filter((s) => s !== "");
}

export async function run(args: string[]): Promise<void> {
  const workloads = listFlag(args, "workloads", [...workloadNames]);
  for (const w of workloads) {
    if (!(workloadNames as readonly string[]).includes(w))
      throw new Error(`--workloads: unknown workload ${w} (${workloadNames.join(",")})`);
  }
  const p: Params = {
    seconds: intFlag(args, "seconds", 3),
    warmupSeconds: intFlag(args, "warmup", 5),
    latencyOps: intFlag(args, "latency", 5000),
    puts: intFlag(args, "puts", 50_000),
    gets: intFlag(args, "gets", 100_000),
    mixedOps: intFlag(args, "mixed", 100_000),
    casPairs: intFlag(args, "cas", 20_000),
    casWorkers: intFlag(args, "cas-workers", 16),
    casKeys: intFlag(args, "cas-keys", 8),
    watchers: intFlag(args, "watchers", 100),
    watchPuts: intFlag(args, "watch-puts", 300),
    repeat: intFlag(args, "repeat", 1),
    workloads: workloads as WorkloadName[],
  };
  const prof = stringFlag(args, "cpu-prof");
  if (prof !== undefined) {
    cpuProfDir = resolve(prof);
    mkdirSync(cpuProfDir, { recursive: true });
  }
  const systems = listFlag(args, "systems", systemNames);
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

  const startedAt = new Date();
  const loadStart = loadavg();
  const syncsBefore = fsyncRate(3000, Math.min(p.seconds, 2));
  const versions: Partial<Record<SystemName, string>> = {};
  const runs: RunRecord[] = [];
  const suiteStarted = performance.now();
  for (let rep = 0; rep < p.repeat; rep++) {
    for (const size of sizes) {
      // Each repeat rotates the order, so no system always runs first (or after another).
      const order = wanted.map((_, i) => wanted[(i + rep) % wanted.length]!);
      for (const s of order) {
        const t = performance.now();
        const record: RunRecord = { repeat: rep + 1, size, system: s, seconds: 0 };
        let running: Running | undefined;
        try {
          running = await starters[s](size);
          versions[s] = running.version;
          Object.assign(record, await measure(running, p, `${s}${size}r${rep}`));
          const f = record.figures!;
          const pct = (v: number | undefined) => (v === undefined ? "-" : `${v.toFixed(0)}%`);
          console.log(
            `[${rep + 1}/${p.repeat}] ${s}, ${size} node(s): done in ${((performance.now() - t) / 1000).toFixed(1)} s` +
              ` (bench client process CPU, % of one core: put64 ${pct(f.clientPut64Pct)},` +
              ` get ${pct(f.clientGetLinPct)}/${pct(f.clientGetLocalPct)}, mixed ${pct(f.clientMixedPct)})`,
          );
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          record.failed = msg;
          console.log(
            `[${rep + 1}/${p.repeat}] ${s}, ${size} node(s): FAILED: ${msg.split("\n")[0]}`,
          );
        } finally {
          await running?.stop();
          record.seconds = (performance.now() - t) / 1000;
          runs.push(record);
        }
      }
    }
  }
  const syncsAfter = fsyncRate(3000, Math.min(p.seconds, 2));
  const loadEnd = loadavg();
  const suiteSeconds = (performance.now() - suiteStarted) / 1000;

  const summary = summarize(runs, sizes, wanted);
  const targetSize = sizes.includes(3) ? 3 : sizes.find((n) => n > 1);
  const targets = targetSize === undefined ? [] : evaluateTargets(summary, targetSize);
  const ahead = sizes.includes(1) ? aheadOfEtcd(summary, 1) : undefined;

  const notes = [
    `disk: ${syncsBefore.toFixed(0)} fsyncs/s before, ${syncsAfter.toFixed(0)} after (512 B write + fsync of one file in ${tmpdir()}, where every data dir is)`,
    `load average (1 min): ${loadStart[0]!.toFixed(2)} at start, ${loadEnd[0]!.toFixed(2)} at end; ${cpus().length} cores`,
    "durability: streamkv fsyncs before every ack (group commit)",
    ...(versions.etcd
      ? [`            etcd ${versions.etcd}: WAL fsynced before every ack (default)`]
      : []),
    ...(versions.nats
      ? [
          `            nats-server ${versions.nats}: * ${NATS_DURABILITY_NOTE} (acks from the page cache;` +
            " fsync every 2 min; 2.9 has no sync_interval/always option)",
        ]
      : []),
    "reads: linearizable = streamkv ReadIndex, etcd default range (quorum); NATS KV has none (n/a)",
    "       stale/serial./direct = streamkv {stale:true}, etcd serializable, NATS KV get (direct get)",
    "       mixed and the CAS loop's read use the linearizable get where there is one, else NATS's direct get",
    "CPU: utime+stime of all the system's server processes over the phase (/proc/<pid>/stat), per op; cores = CPU s / wall s",
    "watch: event arrival at each of the watchers minus the arrival of the put's ack (negative: the event came first)",
    "ratio = streamkv / reference (of the medians): latency > 1x means streamkv slower; throughput < 1x means slower",
    `cells: ${p.repeat > 1 ? `median (min–max) of ${p.repeat} runs` : "one run"}; ${valueBytes}-byte values, ${keyCount} keys, ` +
      `${concurrency} in flight on one connection per system, clients on the leader; each figure capped at ${p.seconds} s; ` +
      `suite ${suiteSeconds.toFixed(0)} s`,
  ];
  const tables = sizes.map((size) => ({
    size,
    title: size === 1 ? "1 node" : `${size} nodes`,
    rows: tableRows(summary, runs, size, wanted, p.workloads),
  }));
  const targetLines = targets.map((t) => `${mark(t.met)}  ${t.target}: ${t.detail}`);
  const aheadLine =
    ahead && ahead.of > 0
      ? `1 node: streamkv at least as good as etcd in ${ahead.ahead} of ${ahead.of} figures` +
        (ahead.behind.length > 0 ? `; behind in: ${ahead.behind.join(", ")}` : "")
      : undefined;

  console.log("");
  for (const n of notes) console.log(n);
  for (const t of tables) {
    console.log("");
    printTable(t.rows, t.title);
  }
  if (targetLines.length > 0) {
    console.log("");
    console.log(`-- issue 11 targets (${targetSize} nodes, medians) --`);
    for (const l of targetLines) console.log(l);
  }
  if (aheadLine) console.log(`\n${aheadLine}`);
  for (const r of runs)
    if (r.failed) console.log(`run ${r.repeat} ${r.system}/${r.size}: failed: ${r.failed}`);

  if (args.includes("--no-write")) return;
  const dir = join(repoRoot, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const stamp = `compare-${startedAt
    .toISOString()
    .replace(/:\d\d\.\d+Z$/, "Z")
    .replace(/:/g, "")}`;
  const report = {
    suite: "compare",
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    args,
    params: { ...p, keyCount, concurrency, valueBytes, sizes, systems: wanted },
    versions: { ...versions, node: process.version },
    fsyncPerSec: { before: syncsBefore, after: syncsAfter },
    loadAverage: { start: loadStart, end: loadEnd },
    cores: cpus().length,
    clockTicksPerSecond: CLOCK_TICKS_PER_SECOND,
    suiteSeconds,
    metrics,
    runs,
    summary,
    targets: targetSize === undefined ? undefined : { size: targetSize, checks: targets },
    aheadOfEtcdOneNode: ahead,
  };
  const md = [
    `# compare: streamkv, NATS JetStream KV, etcd (${startedAt.toISOString()})`,
    "",
    "`npm run bench -- compare " +
      args.join(" ") +
      "` (bench/README.md says what each row measures)",
    "",
    ...notes.map((n) => `    ${n}`),
    ...tables.flatMap((t) => ["", `## ${t.title}`, "", markdownTable(t.rows)]),
    ...(targetLines.length > 0
      ? [
          "",
          `## issue 11 targets (${targetSize} nodes, medians)`,
          "",
          ...targetLines.map((l) => `- ${l}`),
        ]
      : []),
    ...(aheadLine ? ["", aheadLine] : []),
    ...runs
      .filter((r) => r.failed)
      .map((r) => `\nrun ${r.repeat} ${r.system}/${r.size} failed: ${r.failed}`),
    "",
  ].join("\n");
  const json = join(dir, `${stamp}.json`);
  const mdFile = join(dir, `${stamp}.md`);
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(mdFile, md);
  copyFileSync(mdFile, join(dir, "compare-latest.md"));
  console.log(`\nwrote ${json}, ${mdFile}, ${join(dir, "compare-latest.md")}`);
}
