/**
 * One deterministic run of the whole KV stack: every simulated node is the production
 * `RaftKvService` (forwarder, leader proposer, Raft driver, kvapi's state machine,
 * snapshots and compaction) on a real stream log in memory-level with power loss
 * (SimLevelDisk), a simulated Raft disk (raft/sim's SimDisk), node/'s Clock on the
 * event queue, and a simulated network that carries the peer port's bytes and frames.
 * Clients write and read through the same service methods the client port calls, with
 * request-id retries; a watcher on every node records what it delivers.
 *
 * One seed decides everything (the swarm, the faults, the workload, every latency), so
 * a failure replays exactly with `npm run sim:kv -- --seed N --verbose`.
 *
 * A run: the bucket is created, then a safety phase of phases with the seed's fault
 * families switched on and off, then a liveness phase: everything heals and restarts;
 * a leader must emerge, every client's operation must end, every member must apply
 * the leader's commit index, and then the checker (checker.ts) judges the result.
 */
import type { KvInput, KvOutput, Op } from "../cluster-tests/lincheck/index.js";
import { normalizeBucketConfig, streamOf } from "../kvapi/index.js";
import { StreamLog } from "../log/index.js";
import { type ForwardFrame, RaftKvService, silentLogger } from "../node/index.js";
import { isKvError } from "../proto/index.js";
import { chance, fork, intBetween, type Prng, pick, Sfc32 } from "../raft/index.js";
import { EventQueue } from "../raft/sim/event_queue.js";
import { SimDisk } from "../raft/sim/sim_disk.js";
import { checkKvRun, type StreamEntry } from "./checker.js";
import { SIM_BUCKET, SIM_HISTORY, SimClients, type WriteRecord } from "./clients.js";
import { SimNetwork } from "./network.js";
import { EventClock, SIM_EPOCH_MS } from "./sim_clock.js";
import { SimLevelDisk } from "./sim_level_disk.js";
import { describeSwarm, type FaultFamily, pickSwarm, type Swarm } from "./swarm.js";
import { SimWatchers } from "./watchers.js";

/** Deliberately broken behaviour the checker must catch (broken.test.ts). */
export interface KvUnsafe {
  skipDedupe?: boolean;
  casAtProposer?: boolean;
}

export interface KvSimOptions {
  seed: number;
  nodes?: 3 | 5;
  /** Virtual ms of faults and load (default 3000). */
  safetyMs?: number;
  /** Virtual ms the healed cluster has to converge (default 8000). */
  livenessMs?: number;
  unsafe?: KvUnsafe;
  verbose?: boolean;
  log?: (line: string) => void;
}

export interface KvSimResult {
  seed: number;
  nodes: number;
  swarm: string;
  simulatedMs: number;
  events: number;
  messages: number;
  faults: Record<string, number>;
  writes: Record<WriteRecord["outcome"], number>;
  readsOk: number;
  revisions: number;
  watchEntriesChecked: number;
  snapshotsInstalled: number;
  lincheckUnknown: boolean;
  /** Hash of the final stream: equal for equal seeds (determinism). */
  fingerprint: string;
  violations: string[];
}

interface KvSimNode {
  id: string;
  raftDisk: SimDisk;
  levelDisk: SimLevelDisk;
  service: RaftKvService | undefined;
  streamLog: StreamLog | undefined;
  incarnation: number;
  /** Stops so far (crashes and clean stops): every other one is clean. */
  stops: number;
  pausedUntilMs: number;
  skewMs: number;
}

const EVENTS_MAX = 3_000_000;

export class KvSimCluster {
  private readonly events = new EventQueue();
  private readonly prng: Prng;
  private readonly faultPrng: Prng;
  private readonly swarm: Swarm;
  private readonly nodes = new Map<string, KvSimNode>();
  private readonly ids: string[];
  private readonly net: SimNetwork;
  private readonly clients: SimClients;
  private readonly watchers: SimWatchers;
  private readonly violations: string[] = [];
  private readonly faults: Record<string, number> = {};
  private active = new Set<FaultFamily>();
  private faultsOn = false;
  private eventCount = 0;
  private snapshotsInstalled = 0;

  constructor(private readonly options: KvSimOptions) {
    this.prng = new Sfc32(options.seed);
    this.faultPrng = fork(this.prng);
    this.swarm = pickSwarm(fork(this.prng));
    this.ids = Array.from({ length: options.nodes ?? 3 }, (_, i) => `n${i + 1}`);
    this.net = new SimNetwork(this.events, fork(this.prng), this.swarm, {
      on: (f) => this.on(f),
      deliverRaft: (from, to, data) => this.nodes.get(to)?.service?.receive(from, data),
      deliverForward: (from, to, frame) => this.deliverForward(from, to, frame),
      pausedUntilMs: (id) => this.nodes.get(id)?.pausedUntilMs ?? 0,
      fail: (v) => this.fail(v),
      count: (f) => this.count(f),
    });
    const host = {
      fail: (v: string) => this.fail(v),
      count: (f: string) => this.count(f),
    };
    this.clients = new SimClients(this.events, fork(this.prng), this.swarm, {
      ...host,
      nodeIds: () => this.ids,
      serviceOf: (id) => this.nodes.get(id)?.service,
      incarnationOf: (id) => this.nodes.get(id)?.incarnation ?? 0,
      pausedUntilMs: (id) => this.nodes.get(id)?.pausedUntilMs ?? 0,
      nodeNowMs: (id) => SIM_EPOCH_MS + this.events.nowMs + (this.nodes.get(id)?.skewMs ?? 0),
    });
    this.watchers = new SimWatchers(this.events, {
      ...host,
      alive: (id, incarnation) => {
        const n = this.nodes.get(id);
        return n !== undefined && n.incarnation === incarnation && n.service !== undefined;
      },
    });
    const skewed = this.swarm.families.has("clock_skew");
    for (const id of this.ids) {
      const node: KvSimNode = {
        id,
        raftDisk: new SimDisk(this.events, fork(this.prng), { voters: this.ids, learners: [] }),
        levelDisk: new SimLevelDisk(this.events, fork(this.prng)),
        service: undefined,
        streamLog: undefined,
        incarnation: 0,
        stops: 0,
        pausedUntilMs: 0,
        skewMs: skewed ? intBetween(this.prng, -this.swarm.skewMsMax, this.swarm.skewMsMax) : 0,
      };
      const torn = this.swarm.families.has("torn_writes") ? this.swarm.tornKeepP : 0;
      node.raftDisk.tornKeepP = torn;
      node.levelDisk.tornKeepP = torn;
      this.nodes.set(id, node);
    }
  }

  private log(line: string): void {
    if (this.options.verbose) (this.options.log ?? console.log)(`${this.events.nowMs}ms ${line}`);
  }

  private fail(v: string): void {
    if (this.violations.length < 50) this.violations.push(`${this.events.nowMs}ms ${v}`);
  }

  private count(f: string): void {
    this.faults[f] = (this.faults[f] ?? 0) + 1;
  }

  private on(f: FaultFamily): boolean {
    return this.faultsOn && this.active.has(f);
  }

  // ----------------------------------------------------------------- nodes

  private async startNode(node: KvSimNode): Promise<void> {
    const incarnation = ++node.incarnation;
    const alive = () => node.incarnation === incarnation;
    const streamLog = await StreamLog.open(await node.levelDisk.open());
    if (!alive()) return;
    // After a clean stop the index comes from its checkpoint; after a crash, from the scan.
    const index = streamLog.opened.index;
    if (index.from === "checkpoint") this.count("index_from_checkpoint");
    if (index.from === "scan" && index.rejectedCheckpoint !== undefined) {
      this.fail(`${node.id}: index checkpoint rejected: ${index.rejectedCheckpoint}`);
    }
    const clock = new EventClock(
      this.events,
      { alive, pausedUntilMs: () => node.pausedUntilMs },
      node.skewMs,
    );
    const s = this.swarm;
    let service: RaftKvService;
    try {
      service = await RaftKvService.onStores(
        {
          id: node.id,
          peers: this.ids.map((id) => ({ id, host: "sim", port: 7001 })),
          log: this.options.verbose ? this.nodeLogger(node.id) : silentLogger,
          send: (to, data) => {
            if (alive()) this.net.sendRaft(node.id, to, data);
          },
          sendForward: (to, frame) => alive() && this.net.sendForward(node.id, to, frame),
          onFatal: (err) => {
            if (alive())
              this.fail(
                `${node.id} stopped on a fatal error: ${String((err as Error)?.stack ?? err)}`,
              );
          },
          clock,
          prng: fork(this.prng),
          tickMs: s.tickMs,
          electionTimeoutTicks: s.electionTicks,
          heartbeatTicks: s.heartbeatTicks,
          snapshotEntries: s.snapshotEntries,
          leaderWaitMs: 2000,
          writeTimeoutMs: 2500,
          core: {
            appendEntriesMax: s.appendEntriesMax,
            inflightCountMax: s.inflightCountMax,
            snapshotChunkBytes: s.snapshotChunkBytes,
          },
          ...(this.options.unsafe ? { unsafe: this.options.unsafe } : {}),
        },
        { streamLog, storage: node.raftDisk.open(), close: async () => {} },
      );
    } catch (err) {
      if (alive()) this.fail(`${node.id} did not open: ${String((err as Error)?.stack ?? err)}`);
      return;
    }
    if (!alive()) return;
    node.service = service;
    node.streamLog = streamLog;
    this.log(
      `${node.id} up (incarnation ${incarnation}, applied ${service.status().appliedIndex})`,
    );
    this.watchers.start(node.id, incarnation, service);
  }

  private nodeLogger(id: string) {
    const line = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
      this.log(`${id} ${level} ${msg}${fields ? ` ${JSON.stringify(fields)}` : ""}`);
    };
    return { debug() {}, info: line("info"), warn: line("warn"), error: line("error") };
  }

  /**
   * Ends the node's incarnation (nothing it sends counts from now on) and returns the
   * service it ran, or undefined when it was down.
   */
  private takeDown(node: KvSimNode): RaftKvService | undefined {
    const service = node.service;
    if (service === undefined) return undefined;
    this.checkNoRaftViolation(node);
    this.snapshotsInstalled += service.status().snapshot?.installed ?? 0;
    node.incarnation++;
    node.service = undefined;
    node.streamLog = undefined;
    return service;
  }

  /** Power loss: the process is gone; each disk keeps what was synced (or a torn prefix). */
  private crash(node: KvSimNode): void {
    if (this.takeDown(node) === undefined) return;
    node.raftDisk.crash();
    node.levelDisk.crash();
    this.log(`${node.id} crashed`);
  }

  /**
   * A clean stop (SIGTERM): the service closes, so the stream log writes its index
   * checkpoint and the next start loads it instead of scanning; the disks keep everything.
   */
  private async stopCleanly(node: KvSimNode): Promise<void> {
    // The old incarnation sends nothing more while it closes.
    const service = this.takeDown(node);
    if (service === undefined) return;
    this.log(`${node.id} stopping cleanly`);
    try {
      await service.close();
    } catch (err) {
      this.fail(`${node.id} did not stop cleanly: ${String((err as Error)?.stack ?? err)}`);
    }
  }

  private restartAfter(node: KvSimNode, ms: number): void {
    this.events.after(ms, () => {
      if (node.service === undefined) void this.startNode(node);
    });
  }

  private deliverForward(from: string, to: string, frame: ForwardFrame): void {
    this.nodes.get(to)?.service?.receiveForward(from, frame);
  }

  private leader(): KvSimNode | undefined {
    let best: KvSimNode | undefined;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      const st = n.service?.status();
      if (st?.role === "leader" && st.term > bestTerm) {
        best = n;
        bestTerm = st.term;
      }
    }
    return best;
  }

  // ---------------------------------------------------------------- faults

  private schedulePhases(untilMs: number): void {
    const s = this.swarm;
    const next = () => {
      if (!this.faultsOn || this.events.nowMs >= untilMs) return;
      this.active = new Set();
      // One phase in six is calm, so the cluster makes progress between storms.
      if (!chance(this.faultPrng, 1 / 6)) {
        for (const f of s.families) if (chance(this.faultPrng, 0.7)) this.active.add(f);
      }
      if (!this.active.has("partitions")) this.net.heal();
      this.log(`phase: ${[...this.active].join(" ") || "calm"}`);
      this.events.after(intBetween(this.faultPrng, s.phaseMsMin, s.phaseMsMax), next);
    };
    next();
  }

  private scheduleFaults(): void {
    const s = this.swarm;
    const every = (family: FaultFamily, periodMs: number, fn: () => void) => {
      if (!s.families.has(family)) return;
      const loop = () => {
        if (!this.faultsOn) return;
        if (this.active.has(family)) fn();
        this.events.after(intBetween(this.faultPrng, Math.floor(periodMs / 2), periodMs * 2), loop);
      };
      this.events.after(intBetween(this.faultPrng, Math.floor(periodMs / 2), periodMs * 2), loop);
    };
    const all = () => [...this.nodes.values()];
    every("partitions", s.partitionEveryMs, () => this.net.partition(this.ids));
    every("leader_isolation", s.isolateEveryMs, () => {
      const leader = this.leader();
      if (!leader) return;
      this.count("leader_isolated");
      const ms = intBetween(this.faultPrng, 50, s.isolationMsMax);
      this.log(`isolate ${leader.id} for ${ms}ms`);
      this.net.isolate([leader.id], ms);
    });
    const crashOne = (n: KvSimNode | undefined, what: string) => {
      if (!n?.service) return;
      const downMs = intBetween(this.faultPrng, 5, 1500);
      // Every other stop of a node is clean instead of a power loss (chosen by counting,
      // not by the PRNG, so a seed's draws stay what they were).
      if (n.stops++ % 2 === 1) {
        this.count(`${what === "crash" ? "" : "leader_"}clean_stop`);
        void this.stopCleanly(n).then(() => this.restartAfter(n, downMs));
        return;
      }
      this.count(what);
      this.crash(n);
      this.restartAfter(n, downMs);
    };
    every("crashes", s.crashEveryMs, () => crashOne(pick(this.faultPrng, all()), "crash"));
    every("leader_crashes", s.crashEveryMs, () => {
      if (chance(this.faultPrng, s.crashLeaderP)) crashOne(this.leader(), "leader_crash");
    });
    every("pauses", s.pauseEveryMs, () => {
      const n = pick(this.faultPrng, all());
      this.count("pause");
      n.pausedUntilMs = this.events.nowMs + intBetween(this.faultPrng, 20, 600);
    });
    every("slow_disks", s.slowDiskEveryMs, () => {
      const n = pick(this.faultPrng, all());
      this.count("slow_disk");
      for (const d of [n.raftDisk, n.levelDisk]) {
        d.fsyncMsMin = 10;
        d.fsyncMsMax = 80;
      }
      this.events.after(intBetween(this.faultPrng, 100, 800), () => {
        for (const d of [n.raftDisk, n.levelDisk]) {
          d.fsyncMsMin = 1;
          d.fsyncMsMax = 4;
        }
      });
    });
    every("transfers", s.transferEveryMs, () => {
      const leader = this.leader();
      if (!leader?.service) return;
      const to = pick(
        this.faultPrng,
        this.ids.filter((id) => id !== leader.id),
      );
      this.count("transfer");
      leader.service
        .transferLeadership(to, { deadlineMs: SIM_EPOCH_MS + this.events.nowMs + 2000 })
        .catch((err) => {
          if (!isKvError(err)) this.fail(`transfer failed with a non-KvError: ${String(err)}`);
        });
    });
  }

  // ------------------------------------------------------------ the run

  /** Runs events until `untilMs`, a violation, or `stop()`; bounded in event count. */
  private async runUntil(untilMs: number, stop?: () => boolean): Promise<void> {
    while (this.violations.length === 0 && this.eventCount < EVENTS_MAX) {
      if (stop?.()) return;
      let ev = this.events.pop();
      // Nothing scheduled yet: work in flight (an open, a disk read) may still schedule.
      for (let i = 0; !ev && i < 100; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        ev = this.events.pop();
      }
      if (!ev) return;
      if (ev.timeMs > untilMs) {
        this.events.at(ev.timeMs, ev.run);
        this.events.nowMs = untilMs;
        return;
      }
      this.eventCount++;
      ev.run();
      // Let the continuations run (memory-level yields on setImmediate, and
      // process.nextTick waits for a macrotask): their order is fixed by the program.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (this.eventCount >= EVENTS_MAX) this.fail(`the run exceeded ${EVENTS_MAX} events`);
  }

  /** Creates the bucket through any node until one answers (no faults yet). */
  private async createBucket(): Promise<void> {
    const config = normalizeBucketConfig({ bucket: SIM_BUCKET, history: SIM_HISTORY });
    for (let i = 0; i < 50; i++) {
      const id = pick(this.faultPrng, this.ids);
      const o = await this.clients.call(id, (s) => s.createBucket(config, "setup-bucket"));
      if (o.kind === "ok") return;
      await new Promise((r) => this.events.after(100, r));
    }
    this.fail("the bucket could not be created in a healthy cluster");
  }

  private caughtUp(): boolean {
    const leader = this.leader();
    if (!leader?.service) return false;
    const commit = leader.service.status().commitIndex;
    return [...this.nodes.values()].every((n) => {
      const st = n.service?.status();
      return st !== undefined && st.appliedIndex >= commit && st.commitIndex >= commit;
    });
  }

  private async streamOf(node: KvSimNode): Promise<StreamEntry[]> {
    const out: StreamEntry[] = [];
    const text = new TextDecoder();
    for await (const m of node.streamLog!.iterate(streamOf(SIM_BUCKET))) {
      out.push({
        revision: m.seq,
        key: m.subject,
        operation: m.operation,
        value: text.decode(m.payload),
        timestampMs: m.timestampMs,
      });
    }
    return out;
  }

  async run(): Promise<KvSimResult> {
    const safetyMs = this.options.safetyMs ?? 3000;
    const livenessMs = this.options.livenessMs ?? 8000;
    for (const n of this.nodes.values()) void this.startNode(n);
    let created = false;
    void this.createBucket().then(() => {
      created = true;
    });
    await this.runUntil(5000, () => created);
    const start = this.events.nowMs;
    const safetyEnd = start + safetyMs;
    this.faultsOn = true;
    this.schedulePhases(safetyEnd);
    this.scheduleFaults();
    this.clients.start(safetyEnd);
    await this.runUntil(safetyEnd);

    // Liveness: no more faults; heal, unpause and restart everyone.
    this.faultsOn = false;
    this.active.clear();
    this.net.heal();
    for (const n of this.nodes.values()) {
      n.pausedUntilMs = 0;
      for (const d of [n.raftDisk, n.levelDisk]) {
        d.fsyncMsMin = 1;
        d.fsyncMsMax = 4;
      }
      if (n.service === undefined) void this.startNode(n);
    }
    const deadline = this.events.nowMs + livenessMs;
    await this.runUntil(deadline, () => this.clients.idle());
    // Every key read once more through the leader, after every client finished.
    let finalReads = 0;
    let reading = false;
    const readAll = async () => {
      reading = true;
      for (const key of this.clients.keys()) {
        for (let i = 0; i < 20; i++) {
          const leader = this.leader();
          if (leader && (await this.clients.get(0, key, leader.id))) {
            finalReads++;
            break;
          }
          await new Promise((r) => this.events.after(50, r));
        }
      }
      reading = false;
    };
    void readAll();
    await this.runUntil(deadline, () => !reading);
    await this.runUntil(deadline, () => this.caughtUp());
    if (this.violations.length === 0) {
      if (!this.clients.idle())
        this.fail("liveness: client operations still pending after healing");
      else if (finalReads < this.clients.keys().length)
        this.fail("liveness: final reads did not all succeed");
      else if (!this.caughtUp())
        this.fail(`liveness: members did not catch up: ${this.describeNodes()}`);
    }
    return this.finish();
  }

  private describeNodes(): string {
    return [...this.nodes.values()]
      .map((n) => {
        const st = n.service?.status();
        return st
          ? `${n.id}:${st.role} t${st.term} commit=${st.commitIndex} applied=${st.appliedIndex}`
          : `${n.id}:down`;
      })
      .join("; ");
  }

  /** Correct nodes never send what a core drops as broken Raft (raft/core.ts violation). */
  private checkNoRaftViolation(node: KvSimNode): void {
    const n = node.service?.status().raftViolations ?? 0;
    if (n > 0) this.fail(`${node.id} dropped ${n} raft messages that broke raft`);
  }

  private async finish(): Promise<KvSimResult> {
    for (const n of this.nodes.values()) this.checkNoRaftViolation(n);
    let stream: StreamEntry[] = [];
    let lincheckUnknown = false;
    let watchEntriesChecked = 0;
    if (this.violations.length === 0) {
      const nodes = [...this.nodes.values()];
      const streams = await Promise.all(nodes.map((n) => this.streamOf(n)));
      stream = streams[0]!;
      const canonical = JSON.stringify(stream);
      for (let i = 1; i < nodes.length; i++) {
        if (JSON.stringify(streams[i]) !== canonical) {
          this.fail(
            `replicas differ: ${nodes[0]!.id} and ${nodes[i]!.id} hold different streams (${stream.length} vs ${streams[i]!.length} messages)`,
          );
        }
      }
      if (this.violations.length === 0) {
        const r = checkKvRun({
          stream,
          writes: this.clients.writes,
          history: this.clients.history as Op<KvInput, KvOutput>[],
          chains: this.watchers.chains,
        });
        for (const v of r.violations) this.fail(v);
        lincheckUnknown = r.lincheckUnknown;
        watchEntriesChecked = r.watchEntriesChecked;
      }
    }
    for (const n of this.nodes.values()) {
      this.snapshotsInstalled += n.service?.status().snapshot?.installed ?? 0;
    }
    const writes = { written: 0, rejected: 0, not_applied: 0, unknown: 0, pending: 0 };
    for (const w of this.clients.writes) writes[w.outcome]++;
    return {
      seed: this.options.seed,
      nodes: this.ids.length,
      swarm: describeSwarm(this.swarm),
      simulatedMs: this.events.nowMs,
      events: this.eventCount,
      messages: this.net.messages,
      faults: this.faults,
      writes,
      readsOk: this.clients.readsOk,
      revisions: stream.length,
      watchEntriesChecked,
      snapshotsInstalled: this.snapshotsInstalled,
      lincheckUnknown,
      fingerprint: fingerprint(stream),
      violations: this.violations,
    };
  }
}

function fingerprint(stream: StreamEntry[]): string {
  let h = 0x811c9dc5;
  const s = JSON.stringify(stream);
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

export function runKvSim(options: KvSimOptions): Promise<KvSimResult> {
  return new KvSimCluster(options).run();
}
