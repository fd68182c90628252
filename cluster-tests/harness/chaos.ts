/**
 * One chaos scenario, for any cluster that can be cut and killed: the bounded KV
 * workload (put / get / create / update / delete, CAS counters) runs while a nemesis
 * strikes `cycles` times (the leader cut off from its peers both ways or one way,
 * the leader killed with -9 and restarted, or each node in turn stopped cleanly and
 * started again), each time waiting for a leader among the others (a new one when
 * the leader was struck) and writes through it, then healing; afterwards every
 * node's log is read and the run is checked: same log everywhere, no acked write
 * lost, the history linearizable (lincheck), revisions consistent, counters exact
 * within the unknowns. The history (JSON lines) and the report go to a results
 * folder, printed on failure and kept.
 *
 * The same code drives processes in network namespaces (`npm test`) and containers
 * (`npm run test:containers`): only ChaosCluster differs.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "../../client/index.js";
import { repoRoot, seededRandom, waitFor } from "../../test_support/index.js";
import { type StatusSource, waitForLeaderAmong } from "./leader.js";
import { checkTtlProbe, startTtlProbe, type TtlProbe } from "./ttl_probe.js";
import { checkWatchRun, type RecordingWatcher, startRecordingWatcher } from "./watch_chaos.js";
import {
  checkCounters,
  checkRun,
  readCommitted,
  runKvWorkload,
  type WorkloadResult,
} from "./workload.js";

/** Retained entries per key in the chaos bucket (the most a bucket allows). */
const HISTORY = 64;

export interface ChaosCluster extends StatusSource {
  /** Client URLs the test reaches node `i` at. */
  readonly urls: readonly string[];
  /**
   * Cuts node `i` off from its peers (clients still reach it): both ways, or only
   * what it sends ("out") or only what it receives ("in").
   */
  isolate(i: number, direction?: "both" | "in" | "out"): Promise<void>;
  /** Removes every cut. */
  heal(): Promise<void>;
  /** SIGKILL of node `i`, returning once it is dead. */
  kill(i: number): Promise<void>;
  /** SIGTERM to node `i` (a clean shutdown, as an upgrade does), returning once it exited. */
  stop(i: number): Promise<void>;
  /** Starts node `i` again on its data. */
  restart(i: number): Promise<void>;
  /**
   * Cuts `a` and `b` off from each other both ways (each still reaches the rest):
   * for a bridge. Optional: the nemeses that need it fail without it.
   */
  cutBetween?(a: number, b: number): Promise<void>;
  /** Freezes node `i` (docker pause or SIGSTOP): alive, holding its sockets, silent. */
  pause?(i: number): Promise<void>;
  /** Lets a paused node `i` run again. */
  unpause?(i: number): Promise<void>;
  /**
   * Sets node `i`'s wall clock to real time + `offsetS`, running `rate` times as fast,
   * returning once the node shows it; `{ offsetS: 0 }` heals. Its monotonic clock (timers,
   * Raft's ticks) stays real.
   */
  setClock?(i: number, setting: { offsetS: number; rate?: number }): Promise<void>;
}

function need<T>(f: T | undefined, what: string): T {
  if (f === undefined) throw new Error(`this cluster cannot ${what}`);
  return f;
}

interface NemesisPlan {
  /** The node to strike in `cycle` (0-based) of a cluster of `size`; `random` is seeded. */
  target(leader: number, cycle: number, size: number, random: () => number): number;
  /** Strikes; may resolve with the time (Date.now()) the fault took its final shape. */
  strike(c: ChaosCluster, i: number, size: number): Promise<number | undefined | void>;
  heal(c: ChaosCluster, i: number): Promise<void>;
  /**
   * The nodes that must agree on a leader (one of them) while the fault holds
   * (default: all but the target, a new leader if the target led).
   */
  during?(target: number, size: number): number[];
}

/** Bridge: the target's two peers, `a` (sees both) and `c` (cut off from the target). */
const bridgeOf = (target: number, size: number) => ({
  a: (target + 1) % size,
  c: (target + 2) % size,
});

/**
 * Flapping: the target cut off and healed again this many ms each, quickly, some
 * cuts shorter than an election timeout and some longer, then cut for the hold.
 */
const FLAPS = [
  { cutMs: 300, healMs: 300 },
  { cutMs: 1500, healMs: 400 },
  { cutMs: 700, healMs: 200 },
  { cutMs: 2000, healMs: 300 },
  { cutMs: 400, healMs: 300 },
];

/** A fault's shape in time (a nemesis' choice, not a wait for a condition). */
const hold = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Clock faults, in order, on one node: an hour ahead, a day ahead, then straight to an
 * hour behind (a step back of 25 h), then running three times as fast (libfaketime
 * counts a rate from the process start, so that is first a step ahead of twice the
 * uptime), held for the fault. After each step the cluster must commit more entries.
 */
const CLOCK_STEPS = [
  { offsetS: 3600 },
  { offsetS: 86_400 },
  { offsetS: -3600 },
  { offsetS: 0, rate: 3 },
];

/** Until some node's commit index moved `entries` past the highest now (bounded). */
async function waitForCommits(c: ChaosCluster, entries: number, what: string): Promise<void> {
  const commit = async () =>
    Math.max(
      ...(await Promise.all(c.ids.map((_, i) => c.status(i)))).map((s) => s?.commitIndex ?? 0),
    );
  const base = await commit();
  await waitFor(async () => (await commit()) >= base + entries, 15_000, what, 100);
}

const NEMESES = {
  /** The leader cut off from its peers both ways (a 2|1 split, leader in the minority). */
  "partition-leader": {
    target: (leader) => leader,
    strike: (c, i) => c.isolate(i),
    heal: (c) => c.heal(),
  },
  /** One-way: what the leader sends is dropped; it still hears its peers. */
  "partition-leader-outbound": {
    target: (leader) => leader,
    strike: (c, i) => c.isolate(i, "out"),
    heal: (c) => c.heal(),
  },
  "kill-leader": {
    target: (leader) => leader,
    strike: (c, i) => c.kill(i),
    heal: (c, i) => c.restart(i),
  },
  /** Each node in turn stopped cleanly (SIGTERM) and started again: an upgrade. */
  "rolling-restart": {
    target: (_leader, cycle, size) => cycle % size,
    strike: (c, i) => c.stop(i),
    heal: (c, i) => c.restart(i),
  },
  /** kill -9 of a node chosen at random (seeded), leader or follower, and restart. */
  "kill-random": {
    target: (_leader, _cycle, size, random) => Math.floor(random() * size),
    strike: (c, i) => c.kill(i),
    heal: (c, i) => c.restart(i),
  },
  /** The leader frozen (docker pause / SIGSTOP) past the election timeout, then thawed. */
  "pause-leader": {
    target: (leader) => leader,
    strike: (c, i) => need(c.pause, "pause a node").call(c, i),
    heal: (c, i) => need(c.unpause, "unpause a node").call(c, i),
  },
  /**
   * Bridge: the leader and one follower `c` cut off from each other, both still see
   * the third node `a`. The leader keeps a majority with `a`; the others may elect
   * another leader, but one of the leader and `a` must lead with both agreeing.
   */
  "bridge-partition": {
    target: (leader) => leader,
    strike: (c, i, size) =>
      need(c.cutBetween, "cut two nodes apart").call(c, i, bridgeOf(i, size).c),
    heal: (c) => c.heal(),
    during: (i, size) => [i, bridgeOf(i, size).a],
  },
  /** The leader cut off both ways and healed several times quickly, then cut for the hold. */
  "flapping-partition": {
    target: (leader) => leader,
    strike: async (c, i) => {
      for (const f of FLAPS) {
        await c.isolate(i);
        await hold(f.cutMs);
        await c.heal();
        await hold(f.healMs);
      }
      await c.isolate(i);
      return Date.now();
    },
    heal: (c) => c.heal(),
  },
  /**
   * One node's wall clock stepped ahead, back and skewed (CLOCK_STEPS): the leader in
   * even cycles, a follower in odd ones. Nobody must lose the lead for it (Raft runs on
   * the monotonic clock); any node that leads meanwhile will do.
   */
  "clock-jumps": {
    target: (leader, cycle, size) => (cycle % 2 === 0 ? leader : (leader + 1) % size),
    strike: async (c, i) => {
      const setClock = need(c.setClock, "set a node's clock");
      for (const step of CLOCK_STEPS) {
        await setClock.call(c, i, step);
        await waitForCommits(c, 10, `commits with ${c.ids[i]}'s clock at ${JSON.stringify(step)}`);
      }
      return Date.now();
    },
    heal: (c, i) => need(c.setClock, "set a node's clock").call(c, i, { offsetS: 0 }),
    during: (_target, size) => Array.from({ length: size }, (_, k) => k),
  },
} satisfies Record<string, NemesisPlan>;

/** Nemeses after which the target must not lead while the fault holds. */
export function targetLosesLead(n: Nemesis, targetLed: boolean): boolean {
  if (n === "bridge-partition" || n === "clock-jumps") return false;
  if (n === "kill-random" || n === "rolling-restart") return targetLed;
  return true;
}

export type Nemesis = keyof typeof NEMESES;

export interface ChaosOptions {
  name: string;
  nemesis: Nemesis;
  /** Fault cycles: exactly this many, or fewer if `nemesisMs` runs out first. */
  cycles: number;
  /** No new cycle starts this long after the first (default: no limit; a soak sets it). */
  nemesisMs?: number;
  /**
   * Bounds of the workload: it also stops once the nemesis is done, so durationMs
   * must leave room for every cycle (about 10-15 s each here).
   */
  clients?: number;
  maxOpsPerClient?: number;
  durationMs?: number;
  seed?: number;
  /** Where results folders go (default .tmp/chaos-results in the repository). */
  resultsRoot?: string;
  /**
   * How long each fault lasts at least (default 4000 ms): longer than the workload's
   * call timeout, so calls that went to the struck node time out and are indeterminate.
   */
  faultHoldMs?: number;
  /** Remove the folder of a passing run (default: keep it). */
  removeOnPass?: boolean;
  /**
   * Watchers of every key (`watchAll({ notices: true })`, each on its own connection
   * given every node, starting at a different one), checked after the run by
   * `checkWatchRun` (default 0).
   */
  watchers?: number;
  /** Counter keys of the CAS increments, and their share of ops (default: 1 per 32 increments, 10 %). */
  counters?: number;
  counterShare?: number;
  /**
   * A TTL bucket beside the workload (harness/ttl_probe.ts): a key put every 200 ms, a
   * watcher; checked by `checkTtlProbe`, its log compared across nodes.
   */
  ttlMs?: number;
}

export interface FaultRecord {
  cycle: number;
  nemesis: Nemesis;
  target: string;
  /** Whether the target led when struck (then the others must elect a new leader). */
  targetLed: boolean;
  /** The leader during the fault, and how long after the strike the others agreed on it. */
  newLeader: string;
  electionMs: number;
  /** From the heal until every node named one leader and a write was acked. */
  recoveryMs: number;
}

export interface ChaosReport {
  name: string;
  nemesis: Nemesis;
  ops: number;
  ok: number;
  failed: number;
  indeterminate: number;
  acked: number;
  committed: number;
  faults: FaultRecord[];
  errors: Record<string, number>;
  /** Per watcher: entries delivered, announced catch-ups, failovers of its connection. */
  watchers: { name: string; delivered: number; catchUps: number; failovers: number }[];
  /** With `ttlMs`: puts acked, expired (and how many before their TTL by real time). */
  ttl?: {
    acked: number;
    expired: number;
    expiredEarlyRealTime: number;
    unmatched: number;
    unseen: number;
  };
  /** The last entry's created time minus the host's time when the log was read. */
  createdAheadMs?: number;
  /** Empty on a passing run. */
  anomalies: string[];
  resultsDir: string;
  wallMs: number;
}

/** Waits for the leader's commit index to move `entries` past where it is now. */
async function waitForProgress(c: ChaosCluster, leader: number, entries: number, what: string) {
  const base = (await c.status(leader))?.commitIndex ?? 0;
  await waitFor(
    async () => ((await c.status(leader))?.commitIndex ?? 0) >= base + entries,
    15_000,
    what,
    100,
  );
}

/** Until a write through any node is acked (the recovery probe, in its own bucket). */
async function waitForWrite(c: ChaosCluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let n = 0; ; n++) {
    // A fresh connection each try: the one that failed may be to a node still starting.
    const nc = await connect({ servers: [...c.urls], timeoutMs: 2000 }).catch(
      (err) => err as Error,
    );
    try {
      if (nc instanceof Error) throw nc;
      const kv = await nc.createKeyValue({ bucket: "chaos-probe" });
      await kv.putString("probe", String(n));
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`no write acked within ${timeoutMs} ms: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      if (!(nc instanceof Error)) await nc.close();
    }
  }
}

function summarize(result: WorkloadResult) {
  let ok = 0;
  let failed = 0;
  let indeterminate = 0;
  for (const line of result.journal) {
    if (line.outcome === "ok") ok++;
    else if (line.outcome === "failed") failed++;
    else indeterminate++;
  }
  return { ok, failed, indeterminate };
}

export async function runChaos(c: ChaosCluster, o: ChaosOptions): Promise<ChaosReport> {
  const startedAt = Date.now();
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const resultsDir = join(
    o.resultsRoot ?? join(repoRoot, ".tmp", "chaos-results"),
    `${stamp}-${o.name}`,
  );
  mkdirSync(resultsDir, { recursive: true });
  const all = c.ids.map((_, i) => i);
  // A bucket per scenario: runs on one cluster never see each other's keys.
  const bucket = `chaos-${o.name}`.replace(/[^a-zA-Z0-9_-]/g, "_");
  const admin = await connect({ servers: [...c.urls], timeoutMs: 5000 });
  const faults: FaultRecord[] = [];
  const anomalies: string[] = [];
  let result: WorkloadResult | undefined;
  let committed = 0;
  const watchers: RecordingWatcher[] = [];
  let ttlProbe: TtlProbe | undefined;
  let ttlReport: ChaosReport["ttl"];
  let createdAheadMs: number | undefined;
  const ttlBucket = `${bucket}-ttl`;
  try {
    // History 64 and enough keys that none gets near 64 writes (about 32 on average at
    // the op bound), so the final log holds every write and a missing one is lost.
    await admin.createKeyValue({ bucket, history: HISTORY });
    for (let i = 0; i < (o.watchers ?? 0); i++) {
      const servers = c.urls.map((_, k) => c.urls[(i + k) % c.urls.length]!);
      watchers.push(await startRecordingWatcher(`w${i + 1}`, connect, servers, bucket));
    }
    if (o.ttlMs !== undefined) {
      ttlProbe = await startTtlProbe(connect, [...c.urls], ttlBucket, o.ttlMs);
    }
    const clients = o.clients ?? 3;
    const maxOps = o.maxOpsPerClient ?? 2000;
    const stop = { requested: false };
    const work = runKvWorkload({
      urls: [...c.urls],
      bucket,
      clients,
      maxOps,
      durationMs: o.durationMs ?? 60_000,
      keys: Math.max(24, Math.ceil((clients * maxOps * 0.9 * 0.75) / 32)),
      timeoutMs: 3000,
      seed: o.seed ?? 1,
      deleteShare: 0.05,
      counters: o.counters ?? Math.max(4, Math.ceil((clients * maxOps * 0.1) / 32)),
      counterShare: o.counterShare ?? 0.1,
      stop,
    });
    let workDone = false;
    const done = () => {
      workDone = true;
    };
    work.then(done, done);
    const plan: NemesisPlan = NEMESES[o.nemesis];
    const random = seededRandom(o.seed ?? 1);
    let struck: number | undefined;
    try {
      const nemesisUntil = Date.now() + (o.nemesisMs ?? Number.POSITIVE_INFINITY);
      for (let cycle = 0; cycle < o.cycles && Date.now() < nemesisUntil; cycle++) {
        if (workDone) {
          throw new Error(
            `the workload reached its bound before fault ${cycle + 1}: raise maxOpsPerClient or durationMs`,
          );
        }
        const leader = await waitForLeaderAmong(c, all, 30_000);
        await waitForProgress(c, leader, 30, `writes before fault ${cycle + 1}`);
        const target = plan.target(leader, cycle, all.length, random);
        let struckAt = Date.now();
        struck = target;
        const shaped = await plan.strike(c, target, all.length);
        if (typeof shaped === "number") struckAt = shaped;
        const during = plan.during?.(target, all.length) ?? all.filter((i) => i !== target);
        const next = await waitForLeaderAmong(
          c,
          during,
          30_000,
          during.includes(target) || target !== leader ? undefined : leader,
        );
        const electionMs = Date.now() - struckAt;
        await waitForProgress(c, next, 20, `writes under fault ${cycle + 1}`);
        const holdMs = (o.faultHoldMs ?? 4000) - (Date.now() - struckAt);
        // The fault's length is the scenario's choice, not a wait for a condition.
        if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
        const healedAt = Date.now();
        await plan.heal(c, target);
        struck = undefined;
        await waitForLeaderAmong(c, all, 30_000);
        await waitForWrite(c, 30_000);
        faults.push({
          cycle: cycle + 1,
          nemesis: o.nemesis,
          target: c.ids[target]!,
          targetLed: target === leader,
          newLeader: c.ids[next]!,
          electionMs,
          recoveryMs: Date.now() - healedAt,
        });
      }
    } finally {
      // A cycle that failed half way still heals, so the checks below see a whole cluster.
      if (struck !== undefined) await plan.heal(c, struck).catch(() => undefined);
      stop.requested = true;
      result = await work;
    }
    const ttlFacts = await ttlProbe?.stop();
    ttlProbe = undefined;

    // A write of the final leader's term commits everything before it; then each node
    // must have applied through that commit index before its log is read.
    const leader = await waitForLeaderAmong(c, all, 30_000);
    const barrier = await admin.createKeyValue({ bucket: "chaos-barrier" });
    await barrier.putString("barrier", o.name);
    const commit = (await c.status(leader))!.commitIndex;
    await Promise.all(
      all.map((i) =>
        waitFor(
          async () => ((await c.status(i))?.appliedIndex ?? -1) >= commit,
          30_000,
          `${c.ids[i]} applied through ${commit}`,
          100,
        ),
      ),
    );
    const logs = await Promise.all(
      c.urls.map((u) => readCommitted(u, bucket, 10_000, { created: true })),
    );
    const readAtMs = Date.now();
    const log = logs[0]!;
    committed = log.length;
    // Created times are replicated (the leader's stamp, applied alike): compared too.
    logs.forEach((other, i) => {
      if (JSON.stringify(other) !== JSON.stringify(log)) {
        anomalies.push(`${c.ids[i]}'s log differs from ${c.ids[0]}'s`);
      }
    });
    // The replicated clock never goes back (kvapi applies max(clock, the leader's stamp);
    // log/batch.ts's expiry relies on it), whatever any node's clock did.
    for (let k = 1; k < log.length; k++) {
      const [a, b] = [log[k - 1]!.createdMs!, log[k]!.createdMs!];
      if (b < a) {
        anomalies.push(
          `created time went back ${a - b} ms from revision ${log[k - 1]!.revision} to ${log[k]!.revision}`,
        );
      }
    }
    if (log.length > 0) createdAheadMs = log.at(-1)!.createdMs! - readAtMs;
    if (ttlFacts !== undefined) {
      const v = checkTtlProbe(ttlFacts);
      for (const line of v.anomalies) anomalies.push(line);
      const { anomalies: _a, ...counts } = v;
      ttlReport = { acked: ttlFacts.acked.size, ...counts };
      // Expiry is a replicated step: every node removed the same entries. The leader may
      // expire more between two nodes' reads, so read again until they agree (bounded).
      let differ: string[] = [];
      await waitFor(
        async () => {
          const ttlLogs = await Promise.all(
            c.urls.map((u) => readCommitted(u, ttlBucket, 10_000, { created: true })),
          );
          const first = JSON.stringify(ttlLogs[0]);
          differ = c.ids.filter((_, i) => JSON.stringify(ttlLogs[i]) !== first);
          return differ.length === 0;
        },
        20_000,
        `the same log of ${ttlBucket} on every node`,
        200,
      ).catch(() =>
        anomalies.push(`${differ.join(", ")}'s log of ${ttlBucket} differs from ${c.ids[0]}'s`),
      );
    }
    const perKey = new Map<string, number>();
    for (const e of log) perKey.set(e.key, (perKey.get(e.key) ?? 0) + 1);
    for (const [key, n] of perKey) {
      if (n >= HISTORY) anomalies.push(`${key} reached the history limit: raise the key count`);
    }
    if (log.some((e, i) => e.revision !== i + 1)) anomalies.push("revisions of the log have a gap");
    // The exact model is cheap on patched histories of a few thousand ops; beyond,
    // check per key (sound, weaker across keys) with the cross-key revision facts.
    const verdict = checkRun(result, log, { perKey: result.history.length > 4000 });
    for (const a of verdict.lost) anomalies.push(`acked write lost: ${JSON.stringify(a)}`);
    if (verdict.linearizable !== "ok") anomalies.push(`linearizability: ${verdict.linearizable}`);
    if (verdict.revisions !== "ok") anomalies.push(`revisions: ${verdict.revisions}`);
    for (const line of checkCounters(result, log)) anomalies.push(`counter ${line}`);
    if (watchers.length > 0) {
      // Every watcher must reach the end of the log (or have ended: an anomaly below).
      const last = log.at(-1)?.revision ?? 0;
      await waitFor(
        () => watchers.every((w) => w.record.ended !== undefined || w.lastRevision >= last),
        30_000,
        `every watcher at revision ${last}`,
        100,
      ).catch((err: Error) => anomalies.push(`watch: ${err.message}`));
      // The final log names the key of every revision, unknown writes' included.
      const keyOf = new Map(log.map((e) => [e.revision, e.key] as const));
      const finalState = new Map<string, string>();
      for (const e of log) {
        if (e.value === null) finalState.delete(e.key);
        else finalState.set(e.key, e.value);
      }
      for (const w of watchers) await w.stop();
      const facts = { watchers: watchers.map((w) => w.record), acked: keyOf, finalState };
      for (const line of checkWatchRun(facts)) anomalies.push(`watch: ${line}`);
    }
  } catch (err) {
    anomalies.push(`run failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    for (const w of watchers) await w.stop().catch(() => undefined);
    await ttlProbe?.stop().catch(() => undefined);
    await admin.close();
  }
  const counts = result ? summarize(result) : { ok: 0, failed: 0, indeterminate: 0 };
  const report: ChaosReport = {
    name: o.name,
    nemesis: o.nemesis,
    ops: result?.journal.length ?? 0,
    ...counts,
    acked: result?.acked.length ?? 0,
    committed,
    faults,
    errors: Object.fromEntries(result?.errors ?? []),
    watchers: watchers.map((w) => ({
      name: w.record.name,
      delivered: w.record.delivered.length,
      catchUps: w.record.catchUps.length,
      failovers: w.record.failovers,
    })),
    ...(ttlReport === undefined ? {} : { ttl: ttlReport }),
    ...(createdAheadMs === undefined ? {} : { createdAheadMs }),
    anomalies,
    resultsDir,
    wallMs: Date.now() - startedAt,
  };
  if (result) {
    writeFileSync(
      join(resultsDir, "history.jsonl"),
      result.journal.map((l) => JSON.stringify(l)).join("\n") + (result.journal.length ? "\n" : ""),
    );
  }
  writeFileSync(join(resultsDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  if (anomalies.length > 0) {
    console.error(`chaos ${o.name}: ${anomalies.length} anomalies, results kept in ${resultsDir}`);
  } else if (o.removeOnPass) {
    rmSync(resultsDir, { recursive: true, force: true });
  } else {
    console.log(`chaos ${o.name}: results in ${resultsDir}`);
  }
  return report;
}

/** One line of figures for the test log. */
export function describeReport(r: ChaosReport): string {
  const faults = r.faults
    .map(
      (f) => `${f.target}->${f.newLeader} elected ${f.electionMs} ms, recovered ${f.recoveryMs} ms`,
    )
    .join("; ");
  const watchers = r.watchers
    .map(
      (w) =>
        `${w.name} ${w.delivered} delivered, ${w.catchUps} catch-ups, ${w.failovers} failovers`,
    )
    .join("; ");
  const ttl = r.ttl
    ? `; ttl: ${r.ttl.acked} put, ${r.ttl.expired} expired (${r.ttl.expiredEarlyRealTime} before their ttl by real time)`
    : "";
  const ahead =
    r.createdAheadMs === undefined
      ? ""
      : `; last created ${r.createdAheadMs} ms ahead of real time`;
  return `${r.name}: ${r.ops} ops (${r.ok} ok, ${r.failed} failed, ${r.indeterminate} indeterminate), ${r.acked} acked, ${r.committed} committed, anomalies ${r.anomalies.length}; ${faults}; ${watchers || "no watchers"}${ttl}${ahead}; ${r.wallMs} ms`;
}
