/**
 * `npm run bench -- scale`: streamkv with a large bucket (issue 10), beside etcd 3.4 at
 * the same key counts in the same run. For each N of the growth series it loads N keys
 * of 128-byte values (incompressible) into one node and into a three-node cluster of
 * real `streamkv server` processes on 127.0.0.1, with history 1 and with history 16 and
 * 8 writes per key, 256 puts in flight through the SDK, then measures through public
 * surfaces only (the SDK, /v1/status, /readyz, /proc, du): load rate, RSS at rest and
 * peak, restart to ready, keys() and its first page, listKeys in a child process (its
 * own RSS), a 1%-prefix keys, watchAll initial values, get p50/p99, follower catch-up
 * by snapshot, data-dir size. Writes JSON, Markdown and an SVG plot to bench/results/.
 *
 * Every phase has a timeout; a figure that times out or fails is recorded as such and
 * the run goes on. Every process and temp dir started here is removed at the end, on a
 * failure, and on Ctrl-C (bench/reference/process.ts kills the tracked PIDs on exit).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { connect, type KeyValue, type KvConnection } from "../client/index.js";
import { waitForLeaderAmong } from "../cluster-tests/harness/leader.js";
import type { NodeStatus } from "../proto/index.js";
import {
  collectOutput,
  exitOf,
  freePorts,
  RssSampler,
  repoRoot,
  runCommand,
  type ServerProcess,
  seededRandom,
  startServer,
  tempDir,
  waitFor,
} from "../test_support/index.js";
import { percentile } from "./_measure.js";
import { LIST_CHILD_MARKER } from "./_scale_list_child.js";
import { ETCD_INSTALL_HINT, type EtcdReference, startEtcd } from "./reference/etcd.js";
import { findBinary, killOnExit } from "./reference/process.js";

// ---- options ----

export type Topology = "single" | "cluster";
export type SystemName = "streamkv" | "etcd";

export interface HistoryPlan {
  history: number;
  writesPerKey: number;
}

export interface ScaleOptions {
  sizes: number[];
  topologies: Topology[];
  histories: HistoryPlan[];
  systems: SystemName[];
  /** etcd also for plans with several writes per key (it keeps every revision). */
  etcdAllHistories: boolean;
  inFlight: number;
  getSamples: number;
  /** Overrides every phase's computed timeout when set. */
  phaseTimeoutS: number | undefined;
  /** Idle time before RSS counts as at rest (REST_IDLE_MS unless `--rest-idle`). */
  restIdleMs: number;
  /** Where results go; undefined writes nothing. */
  outDir: string | undefined;
  /** Progress lines (load progress, phase names) go here. */
  log: (line: string) => void;
}

export const USAGE = `usage: npm run bench -- scale [flags]

Loads N keys of 128-byte values into streamkv (one node, and three nodes on 127.0.0.1)
and into etcd 3.4, and measures each (issue 10). Results: bench/results/scale-<date>.{json,md,svg}
and scale-latest.{md,svg}; the table is printed too, with the issue's targets marked.

  --sizes=A,B,C       key counts of the growth series (default 100000,300000,1000000)
  --keys=N            one key count instead of the series
  --quick             100000 keys, one node, history 1 only (unless --full)
  --full              with --quick: every topology and history plan
  --topologies=L      single,cluster (default both)
  --histories=L       history plans as H or H:W (history H, W writes per key);
                      default 1:1,16:8
  --systems=L         streamkv,etcd (default both; etcd is skipped if not installed)
  --etcd-all          etcd also for plans with several writes per key (slow at 1M)
  --in-flight=N       puts in flight while loading (default 256)
  --get-samples=N     gets timed one at a time (default 2000, at most 20 s)
  --phase-timeout=S   the timeout of every phase, seconds (default: by N, see README)
  --rest-idle=S       idle seconds before RSS counts as at rest (default 120, see README)
  --out=DIR           results directory (default bench/results); --no-write for none
  --merge=A.json,B.json  measure nothing: one report (scale-merged-<date>.*, scale-latest.*)
                      from several runs' JSON, e.g. a growth series measured in parts
  --help              this text

The streamkv servers run from dist/ when its build is fresh (npm run build:cli), else
through tsx (slower to start); the run says which.`;

function flagValue(args: string[], name: string): string | undefined {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? undefined : hit.slice(name.length + 3);
}

function positiveInt(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${what} must be a positive integer`);
  return n;
}

export function parseScaleArgs(args: string[]): ScaleOptions {
  const known = [
    "sizes",
    "keys",
    "quick",
    "full",
    "topologies",
    "histories",
    "systems",
    "etcd-all",
    "in-flight",
    "get-samples",
    "phase-timeout",
    "rest-idle",
    "out",
    "no-write",
    "merge",
    "help",
  ];
  for (const a of args) {
    const name = a.replace(/^--?/, "").split("=")[0]!;
    if (!known.includes(name) && name !== "h") throw new Error(`scale: unknown flag ${a}`);
  }
  const quick = args.includes("--quick");
  const full = args.includes("--full");
  const sizesText = flagValue(args, "sizes");
  const keysText = flagValue(args, "keys");
  let sizes = [100_000, 300_000, 1_000_000];
  if (quick) sizes = [100_000];
  if (sizesText !== undefined)
    sizes = sizesText.split(",").map((s) => positiveInt(s, "--sizes entries"));
  if (keysText !== undefined) sizes = [positiveInt(keysText, "--keys")];
  sizes = [...new Set(sizes)].sort((a, b) => a - b);

  let topologies: Topology[] = quick && !full ? ["single"] : ["single", "cluster"];
  const topText = flagValue(args, "topologies");
  if (topText !== undefined) {
    topologies = topText.split(",").map((t) => {
      if (t !== "single" && t !== "cluster") throw new Error(`--topologies: unknown ${t}`);
      return t;
    });
  }
  let histories: HistoryPlan[] =
    quick && !full
      ? [{ history: 1, writesPerKey: 1 }]
      : [
          { history: 1, writesPerKey: 1 },
          { history: 16, writesPerKey: 8 },
        ];
  const histText = flagValue(args, "histories");
  if (histText !== undefined) {
    histories = histText.split(",").map((h) => {
      const [hs, ws] = h.split(":");
      const history = positiveInt(hs!, "--histories history");
      if (history > 64) throw new Error("--histories: history is at most 64");
      return { history, writesPerKey: ws === undefined ? 1 : positiveInt(ws, "--histories W") };
    });
  }
  let systems: SystemName[] = ["streamkv", "etcd"];
  const sysText = flagValue(args, "systems");
  if (sysText !== undefined) {
    systems = sysText.split(",").map((s) => {
      if (s !== "streamkv" && s !== "etcd") throw new Error(`--systems: unknown ${s}`);
      return s;
    });
  }
  const inFlightText = flagValue(args, "in-flight");
  const samplesText = flagValue(args, "get-samples");
  const timeoutText = flagValue(args, "phase-timeout");
  const restIdleText = flagValue(args, "rest-idle");
  const out = flagValue(args, "out");
  return {
    sizes,
    topologies,
    histories,
    systems,
    etcdAllHistories: args.includes("--etcd-all"),
    inFlight: inFlightText === undefined ? 256 : positiveInt(inFlightText, "--in-flight"),
    getSamples: samplesText === undefined ? 2000 : positiveInt(samplesText, "--get-samples"),
    restIdleMs:
      restIdleText === undefined ? REST_IDLE_MS : positiveInt(restIdleText, "--rest-idle") * 1000,
    phaseTimeoutS:
      timeoutText === undefined ? undefined : positiveInt(timeoutText, "--phase-timeout"),
    outDir: args.includes("--no-write") ? undefined : (out ?? join(repoRoot, "bench", "results")),
    log: (line) => console.log(line),
  };
}

// ---- the workload ----

const BUCKET = "scale";
const VALUE_BYTES = 128;
const PREFIXES = 100;
/** Keys `k.<p>.<n>`: 100 prefixes, so `k.7.>` holds 1% of them. */
const keyOf = (i: number) => `k.${i % PREFIXES}.${Math.floor(i / PREFIXES)}`;
const PREFIX_FILTER = "k.7.>";
const PREFIX_ETCD = "k.7.";
const prefixCount = (n: number) => Math.floor((n - 7 - 1) / PREFIXES) + 1;

/** Random bytes, sliced per write, so LevelDB's and bbolt's sizes are not of compressed zeros. */
const valuePool = (() => {
  const rnd = seededRandom(10);
  const b = new Uint8Array(64 * 1024);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
  return b;
})();
const valueAt = (j: number) => {
  const at = (j * 131) % (valuePool.length - VALUE_BYTES);
  return valuePool.subarray(at, at + VALUE_BYTES);
};

/** Timeouts by phase, from N (or `--phase-timeout`). */
function timeouts(opts: ScaleOptions, keys: number, writesPerKey: number) {
  const fixed = opts.phaseTimeoutS === undefined ? undefined : opts.phaseTimeoutS * 1000;
  return {
    // 250 puts/s at worst (a cluster on 2 cores shared with other work); a load that
    // stalls (no put acknowledged for a minute) fails sooner, in runOps.
    loadMs: fixed ?? 60_000 + 4 * keys * writesPerKey,
    phaseMs: fixed ?? 30_000 + keys / 5, // 230 s at 1M
  };
}

class PhaseTimeout extends Error {
  override readonly name = "PhaseTimeout";
}

/** `p`, or a PhaseTimeout naming `what` after `ms` (then `onTimeout` cleans up). */
async function within<T>(
  what: string,
  ms: number,
  p: Promise<T>,
  onTimeout?: () => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new PhaseTimeout(`${what}: no result within ${(ms / 1000).toFixed(0)} s`));
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A load in which no op completes for this long has hung. */
const STALL_MS = 60_000;

/**
 * Runs op(0..total-1) with `concurrency` in flight; stops at the first error (thrown),
 * after `timeoutMs`, or when no op completed for STALL_MS. Prints progress every 15 s.
 */
async function runOps(
  total: number,
  concurrency: number,
  op: (j: number) => Promise<unknown>,
  timeoutMs: number,
  log: (line: string) => void,
  what: string,
): Promise<{ done: number; seconds: number }> {
  let next = 0;
  let done = 0;
  let failure: unknown;
  const started = performance.now();
  const deadline = started + timeoutMs;
  let lastDoneAt = started;
  let lastLogAt = started;
  const watchdog = setInterval(() => {
    const now = performance.now();
    if (now - lastDoneAt > STALL_MS)
      failure ??= new PhaseTimeout(`${what}: no op completed for ${STALL_MS / 1000} s`);
    if (now - lastLogAt >= 15_000) {
      lastLogAt = now;
      log(`  ${what}: ${done}/${total} after ${((now - started) / 1000).toFixed(0)} s`);
    }
  }, 1000);
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (failure === undefined && next < total && performance.now() < deadline) {
          const j = next++;
          try {
            await op(j);
            done++;
            lastDoneAt = performance.now();
          } catch (err) {
            failure ??= err;
          }
        }
      }),
    );
  } finally {
    clearInterval(watchdog);
  }
  if (failure !== undefined) throw failure;
  const seconds = (performance.now() - started) / 1000;
  if (done < total)
    throw new PhaseTimeout(`${what}: ${done}/${total} within ${(timeoutMs / 1000).toFixed(0)} s`);
  return { done, seconds };
}

// ---- /proc ----

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no ${field} for ${pid}`);
  return Number(m[1]);
}
const mb = (kb: number) => kb / 1024;

/**
 * RSS (MB) of each pid once it stopped moving: polled every 500 ms until three samples
 * in a row are within 1% of the one before, at most `maxMs`.
 */
async function settledRssMb(pids: number[], maxMs = 15_000): Promise<number[]> {
  const deadline = Date.now() + maxMs;
  let prev = pids.map((p) => statusKb(p, "VmRSS"));
  let steady = 0;
  while (steady < 3 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const cur = pids.map((p) => statusKb(p, "VmRSS"));
    steady = cur.every((c, i) => Math.abs(c - prev[i]!) <= prev[i]! * 0.01) ? steady + 1 : 0;
    prev = cur;
  }
  return prev.map(mb);
}

/**
 * How long a node idles before its RSS counts as "at rest". V8 returns the garbage of a
 * burst (a load, an open) to the OS only once its memory reducer finds the heap idle:
 * 30 to 60 s after the burst on one node (a 1M-key load left the heap at 330 MB for
 * about 30 s after the last put, then 104 MB), and up to 80 s on a node of three, whose
 * Raft heartbeats keep allocating a little (300k keys: 290, 230, 198, 168 MB at 0, 20,
 * 60 and 80 s, heap used 46 to 57 MB throughout).
 */
export const REST_IDLE_MS = 120_000;

/** RSS (MB) of each pid at rest: the median of the last 10 s of `idleMs` idling. */
async function restingRssMb(pids: number[], idleMs: number): Promise<number[]> {
  const samples: number[][] = [];
  const end = Date.now() + idleMs;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(1000, idleMs)));
    if (end - Date.now() <= 10_000) samples.push(pids.map((p) => statusKb(p, "VmRSS")));
  }
  return pids.map((_, i) => {
    const sorted = samples.map((s) => s[i]!).sort((a, b) => a - b);
    return mb(sorted[Math.floor(sorted.length / 2)] ?? statusKb(pids[i]!, "VmRSS"));
  });
}

async function duMb(dir: string): Promise<number> {
  const r = await runCommand("du", ["-sk", dir], { timeoutMs: 60_000 });
  const kb = Number(r.stdout.split(/\s/)[0]);
  if (r.code !== 0 || !Number.isFinite(kb)) throw new Error(`du ${dir}: ${r.stderr}`);
  return kb / 1024;
}

// ---- temp dirs and processes ----

const liveDirs = new Set<string>();
let dirHookInstalled = false;
function trackedTempDir(prefix: string): string {
  if (!dirHookInstalled) {
    dirHookInstalled = true;
    process.on("exit", () => {
      for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  const d = tempDir(prefix);
  liveDirs.add(d);
  return d;
}
function removeTrackedDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  liveDirs.delete(d);
}

/** PIDs this module started, so the smoke test can check none outlives the run. */
export const startedPids: number[] = [];

interface SkNode {
  index: number;
  id: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  url: string;
  proc: ServerProcess | undefined;
  release: (() => void) | undefined;
}

/** One or three `streamkv server` processes on fixed loopback ports (restarts keep them). */
class Servers {
  private constructor(
    readonly nodes: SkNode[],
    private readonly peersFlag: string | undefined,
  ) {}

  static async start(size: number, startTimeoutMs: number): Promise<Servers> {
    const ports = await freePorts(size * 2);
    const nodes: SkNode[] = Array.from({ length: size }, (_, i) => ({
      index: i,
      id: `n${i + 1}`,
      clientPort: ports[2 * i]!,
      peerPort: ports[2 * i + 1]!,
      dataDir: trackedTempDir("streamkv-scale-"),
      url: `ws://127.0.0.1:${ports[2 * i]!}`,
      proc: undefined,
      release: undefined,
    }));
    const peers =
      size === 1 ? undefined : nodes.map((n) => `${n.id}=127.0.0.1:${n.peerPort}`).join(",");
    const s = new Servers(nodes, peers);
    try {
      await Promise.all(nodes.map((n) => s.startNode(n.index, startTimeoutMs)));
      await s.leader(startTimeoutMs);
    } catch (err) {
      await s.destroy();
      throw err;
    }
    return s;
  }

  async startNode(i: number, startTimeoutMs: number): Promise<void> {
    const n = this.nodes[i]!;
    n.proc = await startServer({
      dataDir: n.dataDir,
      clientPort: n.clientPort,
      peerPort: n.peerPort,
      args: this.peersFlag === undefined ? [] : ["--id", n.id, "--peers", this.peersFlag],
      startTimeoutMs,
    });
    startedPids.push(n.proc.proc.pid!);
    n.release = killOnExit(n.proc.proc.pid!);
  }

  async stopNode(i: number): Promise<void> {
    const n = this.nodes[i]!;
    await n.proc?.stop("SIGTERM", 20_000);
    n.release?.();
    n.proc = undefined;
  }

  pid(i: number): number {
    const p = this.nodes[i]!.proc?.proc.pid;
    if (p === undefined) throw new Error(`${this.nodes[i]!.id} is not running`);
    return p;
  }

  pids(): number[] {
    return this.nodes.map((n) => this.pid(n.index));
  }

  async http(i: number, path: string): Promise<{ status: number; body: string } | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.nodes[i]!.clientPort}${path}`, {
        signal: AbortSignal.timeout(2000),
      });
      return { status: res.status, body: await res.text() };
    } catch {
      return undefined;
    }
  }

  async status(i: number): Promise<NodeStatus | undefined> {
    const r = await this.http(i, "/v1/status");
    return r?.status === 200 ? (JSON.parse(r.body) as NodeStatus) : undefined;
  }

  get ids(): string[] {
    return this.nodes.map((n) => n.id);
  }

  leader(timeoutMs: number): Promise<number> {
    if (this.nodes.length === 1) return Promise.resolve(0);
    const live = this.nodes.filter((n) => n.proc).map((n) => n.index);
    return waitForLeaderAmong(this, live, timeoutMs);
  }

  /** Waits until every running node applied the leader's commit index. */
  async allApplied(leader: number, timeoutMs: number): Promise<void> {
    const commit = (await this.status(leader))?.commitIndex ?? 0;
    await waitFor(
      async () => {
        const all = await Promise.all(
          this.nodes.filter((n) => n.proc).map((n) => this.status(n.index)),
        );
        return all.every((s) => s !== undefined && s.appliedIndex >= commit);
      },
      timeoutMs,
      `every node applied through ${commit}`,
      100,
    );
  }

  async destroy(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        await n.proc?.stop("SIGKILL", 5000);
        n.release?.();
        n.proc = undefined;
        removeTrackedDir(n.dataDir);
      }),
    );
  }
}

// ---- figures ----

export interface Figures {
  loadOpsPerSec?: number;
  loadSeconds?: number;
  /** Max over nodes, with the bucket created and empty, settled. */
  rssEmptyMb?: number;
  /** (RSS at rest - RSS empty) / keys, bytes. */
  restBytesPerKey?: number;
  /** Max over nodes, right after the load, settled (at most 15 s). */
  rssAfterLoadMb?: number;
  /** Max over nodes, after the load and `--rest-idle` (REST_IDLE_MS) of idling. */
  rssRestMb?: number;
  /** Max over nodes, after the restart and a settle. */
  rssRestAfterRestartMb?: number;
  /** Max over nodes of VmHWM after the load (the process started just before it). */
  rssPeakLoadMb?: number;
  /** The answering server's peak RSS while keys() ran. */
  rssPeakKeysMb?: number;
  getP50Ms?: number;
  getP99Ms?: number;
  keysMs?: number;
  keysFirstPageMs?: number;
  countMs?: number;
  listKeysMs?: number;
  listKeysClientPeakMb?: number;
  listKeysClientBaseMb?: number;
  prefixKeysMs?: number;
  watchInitialMs?: number;
  restartListenMs?: number;
  restartReadyMs?: number;
  catchupMs?: number;
  catchupViaSnapshot?: boolean;
  catchupLeaderPeakMb?: number;
  catchupFollowerPeakMb?: number;
  dataDirMb?: number;
}

export interface ScaleResult {
  system: SystemName;
  topology: Topology;
  history: number;
  writesPerKey: number;
  keys: number;
  figures: Figures;
  /** Figures that failed or timed out, with why. */
  errors: Record<string, string>;
  /** The whole configuration failed (start or load): why. */
  failed?: string;
  seconds: number;
  /** The machine's 1-minute load average at the start and at the end (2 shared cores). */
  loadAverage: [number, number];
}

async function figure<T>(
  r: ScaleResult,
  name: string,
  log: (line: string) => void,
  f: () => Promise<T>,
): Promise<T | undefined> {
  const t = performance.now();
  try {
    const v = await f();
    log(`  ${name}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    return v;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    r.errors[name] = msg.split("\n")[0]!;
    log(`  ${name}: FAILED: ${r.errors[name]}`);
    return undefined;
  }
}

function latencies(samples: number[]): { p50: number; p99: number } {
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

async function timedGets(
  get: (key: string) => Promise<boolean>,
  keys: number,
  samples: number,
): Promise<{ p50: number; p99: number }> {
  const rnd = seededRandom(keys);
  const lat: number[] = [];
  const deadline = performance.now() + 20_000;
  for (let i = 0; i < samples && performance.now() < deadline; i++) {
    const k = keyOf(Math.floor(rnd() * keys));
    const t = performance.now();
    if (!(await get(k))) throw new Error(`get ${k}: no value`);
    lat.push(performance.now() - t);
  }
  return latencies(lat);
}

/** A fresh SDK connection to `url` for one phase; closed after `f`, also on a timeout. */
async function withConnection<T>(
  url: string,
  callTimeoutMs: number,
  f: (kv: KeyValue, nc: KvConnection) => Promise<T>,
  createWithHistory?: number,
): Promise<T> {
  const nc = await connect({ servers: url, timeoutMs: callTimeoutMs });
  try {
    const kv =
      createWithHistory === undefined
        ? await nc.keyValue(BUCKET)
        : await nc.createKeyValue({ bucket: BUCKET, history: createWithHistory });
    return await f(kv, nc);
  } finally {
    await nc.close();
  }
}

/** The listing client's script: bundled with esbuild to plain JS if it can, else tsx. */
async function listChildCommand(): Promise<string[]> {
  const entry = join(repoRoot, "bench", "_scale_list_child.ts");
  try {
    const esbuild = await import("esbuild");
    // Inside the repo so `ws` resolves from node_modules (packages stay imports).
    const outfile = join(repoRoot, ".tmp", `scale-list-child-${process.pid}.mjs`);
    mkdirSync(join(repoRoot, ".tmp"), { recursive: true });
    await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: "node",
      format: "esm",
      packages: "external",
      logLevel: "error",
    });
    liveDirs.add(outfile);
    return [outfile];
  } catch {
    return ["--import", "tsx", entry];
  }
}

interface ChildList {
  count: number;
  ms: number;
  firstKeyMs: number;
  rssBeforeKb: number;
  hwmKb: number;
}

async function listInChild(script: string[], url: string, timeoutMs: number): Promise<ChildList> {
  const proc = spawn(
    process.execPath,
    [...script, LIST_CHILD_MARKER, url, BUCKET, ">", String(timeoutMs)],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
  );
  startedPids.push(proc.pid!);
  const release = killOnExit(proc.pid!);
  const out = collectOutput(proc);
  const exited = exitOf(proc);
  try {
    const code = await within("listKeys child", timeoutMs, exited, () => proc.kill("SIGKILL"));
    if (code !== 0) throw new Error(`listKeys child exited ${code}: ${out.stderr().slice(-500)}`);
    return JSON.parse(out.stdout().trim().split("\n").pop()!) as ChildList;
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await exited;
    release();
  }
}

async function measureStreamkv(
  opts: ScaleOptions,
  r: ScaleResult,
  listScript: string[],
): Promise<void> {
  const { loadMs, phaseMs } = timeouts(opts, r.keys, r.writesPerKey);
  const log = opts.log;
  const f = r.figures;
  const size = r.topology === "single" ? 1 : 3;
  const servers = await Servers.start(size, phaseMs);
  try {
    const leader = await servers.leader(phaseMs);
    const follower = size === 1 ? 0 : (leader + 1) % size;
    const leaderUrl = servers.nodes[leader]!.url;
    const readerUrl = servers.nodes[follower]!.url;
    const callMs = phaseMs;

    await withConnection(leaderUrl, 30_000, async () => undefined, r.history);
    f.rssEmptyMb = Math.max(...(await settledRssMb(servers.pids())));

    // Load: every key once per pass, `writesPerKey` passes; VmHWM is the peak since start.
    await withConnection(leaderUrl, 30_000, async (kv) => {
      const total = r.keys * r.writesPerKey;
      const { seconds } = await runOps(
        total,
        opts.inFlight,
        (j) => kv.put(keyOf(j % r.keys), valueAt(j), { timeoutMs: 60_000 }),
        loadMs,
        log,
        "load",
      );
      f.loadSeconds = seconds;
      f.loadOpsPerSec = total / seconds;
      log(`  load: ${total} puts in ${seconds.toFixed(1)} s`);
    });
    f.rssPeakLoadMb = Math.max(...servers.pids().map((p) => mb(statusKb(p, "VmHWM"))));
    await within("replication", phaseMs, servers.allApplied(leader, phaseMs));
    f.rssAfterLoadMb = Math.max(...(await settledRssMb(servers.pids())));
    f.rssRestMb = Math.max(...(await restingRssMb(servers.pids(), opts.restIdleMs)));
    f.dataDirMb = Math.max(...(await Promise.all(servers.nodes.map((n) => duMb(n.dataDir)))));

    await figure(r, "get p50/p99", log, () =>
      withConnection(leaderUrl, 10_000, async (kv) => {
        const l = await timedGets(async (k) => (await kv.get(k)) !== null, r.keys, opts.getSamples);
        f.getP50Ms = l.p50;
        f.getP99Ms = l.p99;
      }),
    );

    await figure(r, "keys first page", log, () =>
      withConnection(readerUrl, callMs, async (kv) => {
        const t = performance.now();
        const it = kv.listKeys(">", { timeoutMs: callMs })[Symbol.asyncIterator]();
        const first = await within("keys first page", phaseMs, it.next());
        f.keysFirstPageMs = performance.now() - t;
        if (first.done || first.value !== "k.0.0") throw new Error(`first key ${first.value}`);
        await it.return?.();
      }),
    );

    await figure(r, "keys()", log, () =>
      withConnection(readerUrl, callMs, async (kv, nc) => {
        const sampler = new RssSampler(servers.pid(follower));
        try {
          const t = performance.now();
          const all = await within("keys()", phaseMs, kv.keys(">", { timeoutMs: callMs }), () => {
            void nc.close();
          });
          f.keysMs = performance.now() - t;
          if (all.length !== r.keys) throw new Error(`keys(): ${all.length} keys, not ${r.keys}`);
        } finally {
          f.rssPeakKeysMb = sampler.stop() / 1024 / 1024;
        }
      }),
    );

    await figure(r, "listKeys (child process)", log, async () => {
      const c = await listInChild(listScript, readerUrl, phaseMs);
      if (c.count !== r.keys) throw new Error(`listKeys: ${c.count} keys, not ${r.keys}`);
      f.listKeysMs = c.ms;
      f.listKeysClientPeakMb = mb(c.hwmKb);
      f.listKeysClientBaseMb = mb(c.rssBeforeKb);
    });

    await figure(r, "keys 1% prefix", log, () =>
      withConnection(readerUrl, callMs, async (kv, nc) => {
        const t = performance.now();
        const some = await within(
          "prefix keys",
          phaseMs,
          kv.keys(PREFIX_FILTER, { timeoutMs: callMs }),
          () => {
            void nc.close();
          },
        );
        f.prefixKeysMs = performance.now() - t;
        if (some.length !== prefixCount(r.keys))
          throw new Error(`keys(${PREFIX_FILTER}): ${some.length}, not ${prefixCount(r.keys)}`);
      }),
    );

    await figure(r, "watchAll initial values", log, () =>
      withConnection(readerUrl, callMs, async (kv) => {
        const t = performance.now();
        const w = await kv.watchAll();
        let n = 0;
        const drain = (async () => {
          for await (const e of w) {
            if (e === null) return;
            n++;
          }
          throw new Error("watch ended before its initial values did");
        })();
        try {
          await within("watchAll initial values", phaseMs, drain, () => w.stop());
        } finally {
          w.stop();
        }
        f.watchInitialMs = performance.now() - t;
        if (n !== r.keys) throw new Error(`watchAll: ${n} initial values, not ${r.keys}`);
      }),
    );

    // Restart to ready: SIGTERM, start again on the same ports, until /readyz is 200
    // and a linearizable get works through a fresh connection (the restarted node is
    // the follower in a cluster). /readyz caches its answer for 1 s (node/client_server.ts).
    await figure(r, "restart to ready", log, async () => {
      const i = follower;
      await servers.stopNode(i);
      const t = performance.now();
      await servers.startNode(i, phaseMs);
      f.restartListenMs = performance.now() - t;
      await waitFor(
        async () => (await servers.http(i, "/readyz"))?.status === 200,
        phaseMs,
        "/readyz 200 after restart",
        20,
      );
      await withConnection(servers.nodes[i]!.url, 10_000, async (kv) => {
        if ((await kv.get(keyOf(0))) === null) throw new Error("no value after restart");
      });
      f.restartReadyMs = performance.now() - t;
      f.rssRestAfterRestartMb = Math.max(...(await restingRssMb(servers.pids(), opts.restIdleMs)));
    });

    if (size > 1) {
      await figure(r, "follower catch-up by snapshot", log, () =>
        snapshotCatchup(servers, r, phaseMs, log),
      );
    }
  } finally {
    await servers.destroy();
  }
}

/**
 * Stops a follower, writes until the leader's Raft log starts past everything the
 * follower has (overwrites of existing keys, so N stays), starts it again and times it
 * to applied == the leader's commit index, sampling both RSS meanwhile.
 */
async function snapshotCatchup(
  servers: Servers,
  r: ScaleResult,
  phaseMs: number,
  log: (line: string) => void,
): Promise<void> {
  const f = r.figures;
  const leader = await servers.leader(phaseMs);
  const follower = (leader + 2) % 3;
  const before = await servers.status(follower);
  if (!before) throw new Error("no status from the follower");
  const followerApplied = before.appliedIndex;
  const installedBefore = before.snapshot?.installed ?? 0;
  await servers.stopNode(follower);
  await withConnection(servers.nodes[leader]!.url, 30_000, async (kv) => {
    // One put at a time first: the leader's in-flight window to the stopped follower
    // fills with one-entry messages, so what follows reaches it only by snapshot.
    for (let j = 0; j < 100; j++) await kv.put(keyOf(j), valueAt(j));
    const deadline = performance.now() + phaseMs;
    for (let round = 0; round < 40; round++) {
      const s = await servers.status(leader);
      if ((s?.snapshot?.firstIndex ?? 0) > followerApplied + 200) return;
      if (performance.now() > deadline) break;
      await runOps(
        5000,
        64,
        (j) => kv.put(keyOf((round * 5000 + j) % r.keys), valueAt(j)),
        phaseMs,
        log,
        "writes past compaction",
      );
    }
    throw new Error("the leader did not compact past the stopped follower's log");
  });
  const leaderSampler = new RssSampler(servers.pid(leader));
  const t = performance.now();
  let followerSampler: RssSampler | undefined;
  try {
    await servers.startNode(follower, phaseMs);
    followerSampler = new RssSampler(servers.pid(follower));
    const commit = (await servers.status(leader))!.commitIndex;
    await waitFor(
      async () => ((await servers.status(follower))?.appliedIndex ?? -1) >= commit,
      phaseMs,
      `the follower applied through ${commit}`,
      50,
    );
    f.catchupMs = performance.now() - t;
    const after = await servers.status(follower);
    f.catchupViaSnapshot = (after?.snapshot?.installed ?? 0) > installedBefore;
  } finally {
    f.catchupLeaderPeakMb = leaderSampler.stop() / 1024 / 1024;
    if (followerSampler) f.catchupFollowerPeakMb = followerSampler.stop() / 1024 / 1024;
  }
}

async function measureEtcd(opts: ScaleOptions, r: ScaleResult): Promise<void> {
  const { loadMs, phaseMs } = timeouts(opts, r.keys, r.writesPerKey);
  const log = opts.log;
  const f = r.figures;
  const size = r.topology === "single" ? 1 : 3;
  const ref: EtcdReference = await startEtcd({ size, startTimeoutMs: phaseMs });
  for (const n of ref.nodes) startedPids.push(n.proc.pid);
  liveDirs.add(ref.dataDir);
  const clients: Etcd3[] = [];
  // A keys-only range of 1M keys is tens of MB: above grpc-js's 4 MiB default.
  const client = (url: string) => {
    const c = new Etcd3({
      hosts: url,
      grpcOptions: { "grpc.max_receive_message_length": 1024 * 1024 * 1024 },
      defaultCallOptions: () => ({ deadline: Date.now() + phaseMs }),
    });
    clients.push(c);
    return c;
  };
  try {
    const leader = await ref.leaderIndex();
    const follower = size === 1 ? 0 : (leader + 1) % size;
    const w = client(ref.nodes[leader]!.url);
    const pids = () => ref.nodes.map((n) => n.proc.pid);
    f.rssEmptyMb = Math.max(...(await settledRssMb(pids())));
    const total = r.keys * r.writesPerKey;
    const { seconds } = await runOps(
      total,
      opts.inFlight,
      (j) =>
        w
          .put(keyOf(j % r.keys))
          .value(Buffer.from(valueAt(j)))
          .exec(),
      loadMs,
      log,
      "etcd load",
    );
    f.loadSeconds = seconds;
    f.loadOpsPerSec = total / seconds;
    f.rssPeakLoadMb = Math.max(...pids().map((p) => mb(statusKb(p, "VmHWM"))));
    f.rssAfterLoadMb = Math.max(...(await settledRssMb(pids())));
    f.rssRestMb = Math.max(...(await restingRssMb(pids(), opts.restIdleMs)));
    f.dataDirMb = Math.max(
      ...(await Promise.all(ref.nodes.map((n) => duMb(join(ref.dataDir, n.name))))),
    );
    const reader = client(ref.nodes[follower]!.url);

    await figure(r, "get p50/p99", log, async () => {
      const l = await timedGets(
        async (k) => (await w.get(k).buffer()) !== null,
        r.keys,
        opts.getSamples,
      );
      f.getP50Ms = l.p50;
      f.getP99Ms = l.p99;
    });
    await figure(r, "keys first page (limit 1000)", log, async () => {
      const t = performance.now();
      const page = await reader.getAll().limit(1000).keys();
      f.keysFirstPageMs = performance.now() - t;
      if (page.length !== Math.min(1000, r.keys)) throw new Error(`first page: ${page.length}`);
    });
    await figure(r, "keys-only range", log, async () => {
      const sampler = new RssSampler(ref.nodes[follower]!.proc.pid);
      try {
        const t = performance.now();
        const all = await within("keys-only range", phaseMs, reader.getAll().keys());
        f.keysMs = performance.now() - t;
        if (all.length !== r.keys) throw new Error(`range: ${all.length} keys, not ${r.keys}`);
      } finally {
        f.rssPeakKeysMb = sampler.stop() / 1024 / 1024;
      }
    });
    await figure(r, "count", log, async () => {
      const t = performance.now();
      const n = await reader.getAll().count();
      f.countMs = performance.now() - t;
      if (n !== r.keys) throw new Error(`count ${n}, not ${r.keys}`);
    });
    await figure(r, "prefix range 1%", log, async () => {
      const t = performance.now();
      const some = await reader.getAll().prefix(PREFIX_ETCD).keys();
      f.prefixKeysMs = performance.now() - t;
      if (some.length !== prefixCount(r.keys)) throw new Error(`prefix: ${some.length}`);
    });
    await figure(r, "restart to ready", log, async () => {
      const t = performance.now();
      await ref.restart(follower, phaseMs);
      startedPids.push(ref.nodes[follower]!.proc.pid);
      const c = client(ref.nodes[follower]!.url);
      await waitFor(
        async () =>
          (await c
            .get(keyOf(0))
            .buffer()
            .catch(() => null)) !== null,
        phaseMs,
        "a get after the etcd restart",
        20,
      );
      f.restartReadyMs = performance.now() - t;
      f.rssRestAfterRestartMb = Math.max(...(await restingRssMb(pids(), opts.restIdleMs)));
    });
  } finally {
    for (const c of clients) c.close();
    await ref.stop();
    liveDirs.delete(ref.dataDir);
  }
}

// ---- the run ----

export interface ScaleReport {
  startedAt: string;
  machine: {
    cpus: number;
    memTotalMb: number;
    serverBuild: string;
    etcdVersion?: string;
    /** When the report merges runs: when each started. */
    merged?: string[];
  };
  options: Omit<ScaleOptions, "log">;
  results: ScaleResult[];
  targets: TargetRow[];
  files: string[];
  seconds: number;
}

function serverBuild(): string {
  try {
    const { sourcesAtMs, sources } = JSON.parse(
      readFileSync(join(repoRoot, "dist", "streamkv.json"), "utf8"),
    ) as { sourcesAtMs: number; sources: string[] };
    const fresh = sources.every(
      (s) => existsSync(join(repoRoot, s)) && statSync(join(repoRoot, s)).mtimeMs <= sourcesAtMs,
    );
    return fresh ? "dist/ (plain Node)" : "tsx (dist/ is stale)";
  } catch {
    return "tsx (no dist/ build)";
  }
}

export async function runScale(opts: ScaleOptions): Promise<ScaleReport> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const log = opts.log;
  const systems = opts.systems.filter((s) => {
    if (s === "etcd" && !findBinary("etcd", "ETCD_BIN")) {
      log(`etcd skipped: etcd not found; ${ETCD_INSTALL_HINT}`);
      return false;
    }
    return true;
  });
  const report: ScaleReport = {
    startedAt,
    machine: {
      cpus: cpus().length,
      memTotalMb: Math.round(totalmem() / 1024 / 1024),
      serverBuild: serverBuild(),
    },
    options: { ...opts, log: undefined } as unknown as Omit<ScaleOptions, "log">,
    results: [],
    targets: [],
    files: [],
    seconds: 0,
  };
  delete (report.options as { log?: unknown }).log;
  log(`streamkv servers run from ${report.machine.serverBuild}`);
  if (systems.includes("etcd")) {
    const v = await runCommand(findBinary("etcd", "ETCD_BIN")!, ["--version"]).catch(
      () => undefined,
    );
    report.machine.etcdVersion = /etcd Version: (\S+)/.exec(v?.stdout ?? "")?.[1];
  }
  // Rewritten after every configuration, so a run stopped midway keeps what it measured.
  const save = () => {
    report.targets = evaluateTargets(report.results);
    report.seconds = (performance.now() - started) / 1000;
    if (opts.outDir !== undefined) report.files = writeResults(report, opts.outDir);
  };
  const listScript = await listChildCommand();
  try {
    for (const keys of opts.sizes) {
      for (const topology of opts.topologies) {
        for (const plan of opts.histories) {
          for (const system of systems) {
            if (system === "etcd" && plan.writesPerKey > 1 && !opts.etcdAllHistories) continue;
            const r: ScaleResult = {
              system,
              topology,
              history: plan.history,
              writesPerKey: plan.writesPerKey,
              keys,
              figures: {},
              errors: {},
              seconds: 0,
              loadAverage: [loadavg()[0]!, 0],
            };
            log(
              `-- ${system} ${topology === "single" ? "1 node" : "3 nodes"}, ${keys} keys, history ${plan.history}, ${plan.writesPerKey} write(s) per key --`,
            );
            const t = performance.now();
            try {
              if (system === "streamkv") await measureStreamkv(opts, r, listScript);
              else await measureEtcd(opts, r);
            } catch (err) {
              r.failed = (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
              log(`  FAILED: ${r.failed}`);
            }
            r.figures.restBytesPerKey = perKeyBytes(r.figures, keys);
            r.seconds = (performance.now() - t) / 1000;
            r.loadAverage[1] = loadavg()[0]!;
            report.results.push(r);
            save();
          }
        }
      }
    }
  } finally {
    for (const d of liveDirs) if (d.endsWith(".mjs")) removeTrackedDir(d);
  }
  save();
  return report;
}

// ---- targets (issue 10) ----

export interface TargetRow {
  target: string;
  where: string;
  measured: string;
  pass: boolean | undefined;
}

type Pick = (f: Figures) => number | undefined;

function find(
  results: ScaleResult[],
  system: SystemName,
  topology: Topology,
  history: number,
  keys: number,
): ScaleResult | undefined {
  return results.find(
    (r) =>
      r.system === system &&
      r.topology === topology &&
      r.history === history &&
      r.keys === keys &&
      !r.failed,
  );
}

const restRss: Pick = (f) =>
  f.rssRestMb === undefined && f.rssRestAfterRestartMb === undefined
    ? undefined
    : Math.max(f.rssRestMb ?? 0, f.rssRestAfterRestartMb ?? 0);

export function evaluateTargets(results: ScaleResult[]): TargetRow[] {
  const rows: TargetRow[] = [];
  const sk = results.filter((r) => r.system === "streamkv");
  if (sk.length === 0) return rows;
  // Each topology at the largest N it was measured at (a run may hold 1M keys on one
  // node and fewer in a cluster).
  const largest = (topology: Topology) =>
    Math.max(0, ...sk.filter((r) => r.topology === topology && !r.failed).map((r) => r.keys));
  const where = (topology: Topology, history = 1) => {
    const n = largest(topology);
    const at = n === 1_000_000 ? "" : ` (targets are for 1M keys; measured at ${n})`;
    return `${topology === "single" ? "1 node" : "3 nodes"}, h${history}, ${n} keys${at}`;
  };
  const check = (
    target: string,
    topology: Topology,
    pick: Pick,
    limit: number,
    unit: string,
    history = 1,
  ) => {
    const r = find(results, "streamkv", topology, history, largest(topology));
    if (!r) return;
    const v = pick(r.figures);
    rows.push({
      target,
      where: where(topology, history),
      measured:
        v === undefined
          ? `not measured (${Object.values(r.errors)[0] ?? "n/a"})`
          : `${fmt(v)} ${unit}`,
      pass: v === undefined ? false : v <= limit,
    });
  };
  for (const t of ["single", "cluster"] as const) {
    check("RSS at rest <= 300 MB per node", t, restRss, 300, "MB");
    check("keys() of all keys <= 3 s", t, (f) => msToS(f.keysMs), 3, "s");
    check("keys() first page <= 50 ms", t, (f) => f.keysFirstPageMs, 50, "ms");
    check("listKeys client peak RSS <= 100 MB", t, (f) => f.listKeysClientPeakMb, 100, "MB");
    check("1%-prefix keys <= 100 ms", t, (f) => f.prefixKeysMs, 100, "ms");
    check("watchAll initial values <= 5 s", t, (f) => msToS(f.watchInitialMs), 5, "s");
    check("restart to ready <= 5 s", t, (f) => msToS(f.restartReadyMs), 5, "s");
    check("restart to ready <= 5 s, history 16", t, (f) => msToS(f.restartReadyMs), 5, "s", 16);
    const h1 = find(results, "streamkv", t, 1, largest(t));
    const h16 = find(results, "streamkv", t, 16, largest(t));
    const a = h1?.figures.restBytesPerKey;
    const b = h16?.figures.restBytesPerKey;
    if (a !== undefined && b !== undefined) {
      rows.push({
        target: "RSS per live key does not grow with history (h16 <= 1.2 x h1)",
        where: where(t),
        measured: `${fmt(b)} B/key at h16 vs ${fmt(a)} B/key at h1 (${(b / a).toFixed(2)}x)`,
        pass: b <= 1.2 * a,
      });
    }
  }
  for (const r of sk) {
    const e = find(results, "etcd", r.topology, r.history, r.keys);
    if (!e || r.failed || r.writesPerKey !== e.writesPerKey) continue;
    const worse = FIGURE_ROWS.filter((row) => row.better !== undefined).flatMap((row) => {
      const a = row.pick(r.figures);
      const b = row.pick(e.figures);
      if (typeof a !== "number" || typeof b !== "number") return [];
      const ok = row.better === "lower" ? a <= b : a >= b;
      return ok ? [] : [row.label];
    });
    rows.push({
      target: "every figure at least as good as etcd's",
      where: `${r.topology === "single" ? "1 node" : "3 nodes"}, h${r.history}, ${r.keys} keys`,
      measured: worse.length === 0 ? "none worse" : `worse: ${worse.join("; ")}`,
      pass: worse.length === 0,
    });
  }
  return rows;
}

/** (RSS at rest - RSS empty) / keys, bytes: what a live key costs in memory. */
function perKeyBytes(f: Figures, keys: number): number | undefined {
  const rest = restRss(f);
  if (rest === undefined || f.rssEmptyMb === undefined) return undefined;
  return ((rest - f.rssEmptyMb) * 1024 * 1024) / keys;
}

const msToS = (v: number | undefined) => (v === undefined ? undefined : v / 1000);

// ---- output ----

interface FigureRow {
  label: string;
  pick: (f: Figures) => number | string | undefined;
  better?: "lower" | "higher";
  errorKey?: string;
}

const FIGURE_ROWS: FigureRow[] = [
  { label: "load, puts/s (256 in flight)", pick: (f) => f.loadOpsPerSec, better: "higher" },
  {
    label: "RSS right after load, MB (max node, settled)",
    pick: (f) => f.rssAfterLoadMb,
    better: "lower",
  },
  { label: "RSS at rest after load, MB (max node)", pick: (f) => f.rssRestMb, better: "lower" },
  {
    label: "RSS at rest after restart, MB (max node)",
    pick: (f) => f.rssRestAfterRestartMb,
    better: "lower",
    errorKey: "restart to ready",
  },
  { label: "RSS empty (bucket created), MB", pick: (f) => f.rssEmptyMb },
  {
    label: "bytes per live key at rest ((rest - empty) / N)",
    pick: (f) => f.restBytesPerKey,
    better: "lower",
  },
  { label: "RSS peak during load, MB (VmHWM)", pick: (f) => f.rssPeakLoadMb, better: "lower" },
  {
    label: "restart to ready, s",
    pick: (f) => msToS(f.restartReadyMs),
    better: "lower",
    errorKey: "restart to ready",
  },
  { label: "  of which to listening, s", pick: (f) => msToS(f.restartListenMs) },
  {
    label: "keys() all, s (follower in 3 nodes)",
    pick: (f) => msToS(f.keysMs),
    better: "lower",
    errorKey: "keys()",
  },
  { label: "  server peak RSS during keys(), MB", pick: (f) => f.rssPeakKeysMb },
  {
    label: "keys() first page, ms",
    pick: (f) => f.keysFirstPageMs,
    better: "lower",
    errorKey: "keys first page",
  },
  { label: "count, ms (etcd count-only range)", pick: (f) => f.countMs },
  {
    label: "listKeys (child), s",
    pick: (f) => msToS(f.listKeysMs),
    errorKey: "listKeys (child process)",
  },
  {
    label: "listKeys client peak RSS, MB (base)",
    pick: (f) =>
      f.listKeysClientPeakMb === undefined
        ? undefined
        : `${fmt(f.listKeysClientPeakMb)} (${fmt(f.listKeysClientBaseMb ?? Number.NaN)})`,
    errorKey: "listKeys (child process)",
  },
  {
    label: "keys on a 1% prefix, ms",
    pick: (f) => f.prefixKeysMs,
    better: "lower",
    errorKey: "keys 1% prefix",
  },
  {
    label: "watchAll initial values, s",
    pick: (f) => msToS(f.watchInitialMs),
    errorKey: "watchAll initial values",
  },
  {
    label: "get p50, ms (linearizable)",
    pick: (f) => f.getP50Ms,
    better: "lower",
    errorKey: "get p50/p99",
  },
  { label: "get p99, ms", pick: (f) => f.getP99Ms, better: "lower", errorKey: "get p50/p99" },
  {
    label: "snapshot catch-up, s",
    pick: (f) =>
      f.catchupMs === undefined
        ? undefined
        : `${fmt(f.catchupMs / 1000)}${f.catchupViaSnapshot ? "" : " (no snapshot!)"}`,
    errorKey: "follower catch-up by snapshot",
  },
  {
    label: "  peak RSS leader / follower, MB",
    pick: (f) =>
      f.catchupLeaderPeakMb === undefined
        ? undefined
        : `${fmt(f.catchupLeaderPeakMb)} / ${fmt(f.catchupFollowerPeakMb ?? Number.NaN)}`,
  },
  { label: "data dir, MB (du, max node)", pick: (f) => f.dataDirMb, better: "lower" },
];

/** Rows about the run, not the system: shown under the figures. */
const RUN_ROWS: { label: string; pick: (r: ScaleResult) => string }[] = [
  {
    label: "machine load average, start / end",
    pick: (r) => r.loadAverage.map((v) => v.toFixed(1)).join(" / "),
  },
  { label: "configuration took, s", pick: (r) => r.seconds.toFixed(0) },
];

function fmt(v: number): string {
  if (!Number.isFinite(v)) return "?";
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function cell(r: ScaleResult | undefined, row: FigureRow): string {
  if (!r) return "";
  if (r.failed) return "failed";
  const v = row.pick(r.figures);
  if (v === undefined) {
    if (row.errorKey && r.errors[row.errorKey])
      return /no result within/.test(r.errors[row.errorKey]!) ? "timeout" : "failed";
    return "n/a";
  }
  return typeof v === "string" ? v : fmt(v);
}

const kLabel = (n: number) =>
  n >= 1_000_000 && n % 1_000_000 === 0
    ? `${n / 1_000_000}M`
    : n >= 1000 && n % 1000 === 0
      ? `${n / 1000}k`
      : String(n);

export function renderMarkdown(report: ScaleReport): string {
  const out: string[] = [];
  const rs = report.results;
  out.push(`# scale bench, ${report.startedAt}`);
  out.push("");
  out.push(
    `Machine: ${report.machine.cpus} cores, ${report.machine.memTotalMb} MB; streamkv servers from ${report.machine.serverBuild}; etcd ${report.machine.etcdVersion ?? "not run"}. ` +
      `128-byte random values, keys \`k.<p>.<n>\` (100 prefixes), ${report.options.inFlight} puts in flight through one client connection. Run took ${(report.seconds / 60).toFixed(1)} min.`,
  );
  const groups = new Map<string, ScaleResult[]>();
  for (const r of rs) {
    const g = `${r.topology}/${r.history}/${r.writesPerKey}`;
    groups.set(g, [...(groups.get(g) ?? []), r]);
  }
  for (const [g, list] of groups) {
    const [topology, history, wpk] = g.split("/");
    out.push("");
    out.push(
      `## ${topology === "single" ? "one node" : "three nodes (reads through a follower)"}, history ${history}, ${wpk} write(s) per key`,
    );
    out.push("");
    const sizes = [...new Set(list.map((r) => r.keys))].sort((a, b) => a - b);
    const cols: { label: string; r: (n: number) => ScaleResult | undefined }[] = [];
    for (const n of sizes) {
      cols.push({
        label: `streamkv ${kLabel(n)}`,
        r: (k) => list.find((x) => x.system === "streamkv" && x.keys === k),
      });
      if (list.some((x) => x.system === "etcd" && x.keys === n))
        cols.push({
          label: `etcd ${kLabel(n)}`,
          r: (k) => list.find((x) => x.system === "etcd" && x.keys === k),
        });
    }
    const colSizes = cols.map((c, i) => ({
      ...c,
      n: sizes.find((n) => c.label.endsWith(` ${kLabel(n)}`)) ?? sizes[i]!,
    }));
    out.push(`| figure | ${colSizes.map((c) => c.label).join(" | ")} |`);
    out.push(`|---|${colSizes.map(() => "---:").join("|")}|`);
    for (const row of FIGURE_ROWS) {
      const cells = colSizes.map((c) => cell(c.r(c.n), row));
      if (cells.every((c) => c === "n/a" || c === "")) continue;
      out.push(`| ${row.label} | ${cells.join(" | ")} |`);
    }
    for (const row of RUN_ROWS) {
      const cells = colSizes.map((c) => {
        const r = c.r(c.n);
        return r?.loadAverage ? row.pick(r) : "";
      });
      if (cells.every((c) => c === "")) continue;
      out.push(`| ${row.label} | ${cells.join(" | ")} |`);
    }
  }
  out.push("");
  out.push("## targets of issue 10");
  out.push("");
  out.push("| target | where | measured | |");
  out.push("|---|---|---|---|");
  for (const t of report.targets)
    out.push(
      `| ${t.target} | ${t.where} | ${t.measured} | ${t.pass === undefined ? "" : t.pass ? "pass" : "FAIL"} |`,
    );
  const errs = rs.flatMap((r) => [
    ...(r.failed ? [`${r.system} ${r.topology} h${r.history} ${r.keys}: ${r.failed}`] : []),
    ...Object.entries(r.errors).map(
      ([k, v]) => `${r.system} ${r.topology} h${r.history} ${r.keys}: ${k}: ${v}`,
    ),
  ]);
  if (errs.length > 0) {
    out.push("");
    out.push("## failures and timeouts");
    out.push("");
    for (const e of errs) out.push(`- ${e}`);
  }
  out.push("");
  out.push(
    "Notes: etcd's keys() is one keys-only range of every key (its cheapest way; streamkv pages by 1000), its first page a keys-only range with limit 1000, " +
      "its restart a SIGTERM and start of the member until a get works. streamkv's restart is to /readyz 200 and a get (/readyz caches its answer for 1 s). " +
      `RSS at rest is VmRSS idle: the median over the last 10 s of ${(report.options.restIdleMs ?? REST_IDLE_MS) / 1000} s without requests (V8's memory reducer returns a burst's garbage only after 30 to 90 s idle); "right after load" is VmRSS once it stopped moving (1% over 1.5 s, at most 15 s). The listKeys client is a child process (esbuild bundle of bench/_scale_list_child.ts); base is its RSS before listing.`,
  );
  return `${out.join("\n")}\n`;
}

/** RSS at rest and keys() time against N (log scale), streamkv and etcd, as an SVG. */
export function renderSvg(report: ScaleReport): string {
  const series = [
    { system: "streamkv" as const, topology: "single" as const, color: "#1f77b4", dash: "" },
    { system: "streamkv" as const, topology: "cluster" as const, color: "#1f77b4", dash: "6,4" },
    { system: "etcd" as const, topology: "single" as const, color: "#d62728", dash: "" },
    { system: "etcd" as const, topology: "cluster" as const, color: "#d62728", dash: "6,4" },
  ];
  const panels: { title: string; pick: (f: Figures) => number | undefined; unit: string }[] = [
    { title: "RSS at rest per node (MB)", pick: restRss, unit: "MB" },
    { title: "keys() of all keys (s)", pick: (f) => msToS(f.keysMs), unit: "s" },
  ];
  const h1 = report.results.filter((r) => r.history === 1 && r.writesPerKey === 1 && !r.failed);
  const sizes = [...new Set(h1.map((r) => r.keys))].sort((a, b) => a - b);
  const W = 440;
  const H = 300;
  const m = { l: 55, r: 15, t: 30, b: 45 };
  const parts: string[] = [];
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  panels.forEach((p, pi) => {
    const x0 = pi * W;
    const pts = series.map((s) =>
      sizes.flatMap((n) => {
        const r = h1.find(
          (x) => x.system === s.system && x.topology === s.topology && x.keys === n,
        );
        const v = r ? p.pick(r.figures) : undefined;
        return v === undefined ? [] : [{ n, v }];
      }),
    );
    const maxV = Math.max(1e-9, ...pts.flat().map((q) => q.v)) * 1.1;
    const lo = Math.log10(sizes[0] ?? 1);
    const hi = Math.log10(sizes[sizes.length - 1] ?? 10);
    const span = hi - lo || 1;
    const xOf = (n: number) => x0 + m.l + ((Math.log10(n) - lo) / span) * (W - m.l - m.r);
    const yOf = (v: number) => m.t + (1 - v / maxV) * (H - m.t - m.b);
    parts.push(
      `<text x="${x0 + W / 2}" y="18" text-anchor="middle" font-size="14">${esc(p.title)}</text>`,
    );
    parts.push(
      `<line x1="${x0 + m.l}" y1="${H - m.b}" x2="${x0 + W - m.r}" y2="${H - m.b}" stroke="#000"/>`,
    );
    parts.push(
      `<line x1="${x0 + m.l}" y1="${m.t}" x2="${x0 + m.l}" y2="${H - m.b}" stroke="#000"/>`,
    );
    for (const n of sizes) {
      parts.push(
        `<text x="${xOf(n).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle" font-size="11">${kLabel(n)}</text>`,
      );
    }
    parts.push(
      `<text x="${x0 + W / 2}" y="${H - 8}" text-anchor="middle" font-size="11">keys (log scale)</text>`,
    );
    for (let k = 0; k <= 4; k++) {
      const v = (maxV / 4) * k;
      parts.push(
        `<text x="${x0 + m.l - 5}" y="${(yOf(v) + 4).toFixed(1)}" text-anchor="end" font-size="10">${fmt(v)}</text>`,
      );
      parts.push(
        `<line x1="${x0 + m.l}" y1="${yOf(v).toFixed(1)}" x2="${x0 + W - m.r}" y2="${yOf(v).toFixed(1)}" stroke="#ddd"/>`,
      );
    }
    series.forEach((s, si) => {
      const q = pts[si]!;
      if (q.length === 0) return;
      const d = q.map((pt) => `${xOf(pt.n).toFixed(1)},${yOf(pt.v).toFixed(1)}`).join(" ");
      parts.push(
        `<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`,
      );
      for (const pt of q)
        parts.push(
          `<circle cx="${xOf(pt.n).toFixed(1)}" cy="${yOf(pt.v).toFixed(1)}" r="3" fill="${s.color}"/>`,
        );
    });
  });
  series.forEach((s, si) => {
    const y = H + 18 + si * 16;
    parts.push(
      `<line x1="20" y1="${y - 4}" x2="50" y2="${y - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`,
    );
    parts.push(
      `<text x="58" y="${y}" font-size="11">${s.system} ${s.topology === "single" ? "1 node" : "3 nodes"}, history 1</text>`,
    );
  });
  const totalH = H + 18 + series.length * 16;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${totalH}" viewBox="0 0 ${2 * W} ${totalH}" font-family="sans-serif">\n<title>streamkv scale bench ${report.startedAt}: RSS at rest and keys() time against N</title>\n<rect width="100%" height="100%" fill="#fff"/>\n${parts.join("\n")}\n</svg>\n`;
}

function writeResults(report: ScaleReport, dir: string, name = "scale"): string[] {
  mkdirSync(dir, { recursive: true });
  const stamp = `${name}-${report.startedAt.replace(/:\d\d\.\d+Z$/, "Z").replace(/:/g, "")}`;
  const md = renderMarkdown(report);
  const svg = renderSvg(report);
  const files = [
    join(dir, `${stamp}.json`),
    join(dir, `${stamp}.md`),
    join(dir, `${stamp}.svg`),
    join(dir, "scale-latest.md"),
    join(dir, "scale-latest.svg"),
  ];
  report.files = files;
  writeFileSync(files[0]!, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files[1]!, md);
  writeFileSync(files[2]!, svg);
  writeFileSync(files[3]!, md);
  writeFileSync(files[4]!, svg);
  return files;
}

/**
 * One report from the JSON of several runs (`--merge=a.json,b.json`): a growth series
 * measured in parts. A configuration measured twice keeps the later file's result.
 */
export function mergeReports(reports: ScaleReport[]): ScaleReport {
  const byConfig = new Map<string, ScaleResult>();
  for (const rep of reports)
    for (const r of rep.results)
      byConfig.set(`${r.system}/${r.topology}/${r.history}/${r.writesPerKey}/${r.keys}`, r);
  const results = [...byConfig.values()].sort(
    (a, b) =>
      (a.topology === b.topology ? 0 : a.topology === "single" ? -1 : 1) ||
      a.history - b.history ||
      a.keys - b.keys,
  );
  const last = reports[reports.length - 1]!;
  return {
    ...last,
    startedAt: new Date().toISOString(),
    machine: { ...last.machine, merged: reports.map((r) => r.startedAt) },
    results,
    targets: evaluateTargets(results),
    files: [],
    seconds: reports.reduce((a, r) => a + r.seconds, 0),
  };
}

export async function run(args: string[]): Promise<void> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return;
  }
  const merge = args.find((a) => a.startsWith("--merge="));
  if (merge !== undefined) {
    const inputs = merge.slice("--merge=".length).split(",");
    const report = mergeReports(
      inputs.map((f) => JSON.parse(readFileSync(f, "utf8")) as ScaleReport),
    );
    const out = flagValue(args, "out") ?? join(repoRoot, "bench", "results");
    report.files = writeResults(report, out, "scale-merged");
    console.log(renderMarkdown(report));
    for (const f of report.files) console.log(`wrote ${f}`);
    return;
  }
  const opts = parseScaleArgs(args);
  const report = await runScale(opts);
  console.log("");
  console.log(renderMarkdown(report));
  for (const f of report.files) console.log(`wrote ${f}`);
}
