/**
 * One deterministic simulation run: a whole cluster of real RaftDrivers in one
 * process, on virtual time, with a simulated network and disks. One seed
 * derives everything: the swarm (which fault families this run uses, their
 * rates, the election timeout), the phases, the workload and the schedule.
 *
 * A run is a safety phase followed by a liveness phase. The safety phase is a
 * sequence of shorter phases, each with its own subset of the run's fault
 * families switched on (TigerBeetle's swarm testing: a bug that needs two
 * faults at once and a third one absent is found by some seed's mix). The
 * families aim where Raft bugs live: crashes right after a node grants a vote,
 * crashes and isolation of a leader right after its election (it has
 * replicated to a minority at most), rapid leader churn, links slow enough
 * that a deposed leader's AppendEntries arrive late, loss, duplication,
 * reordering, partitions of several shapes, crashes at every named failure
 * point, crashes that lose (or tear) unsynced writes, slow disks, pauses.
 * Load: proposals, ReadIndex reads, membership changes with fresh learners,
 * leadership transfers, compaction so InstallSnapshot happens. In the liveness
 * phase everything is healed and restarted; a leader must emerge, a new
 * proposal must commit and every member must catch up within a bound.
 */
import { isKvError } from "../../proto/index.js";
import type { RaftConfig } from "../core.js";
import { FAIL_POINTS, FailPoints, InjectedCrash, RaftDriver } from "../driver.js";
import { chance, fork, intBetween, type Prng, pick, Sfc32 } from "../prng.js";
import type { ConfState, Entry, NodeId } from "../storage.js";
import type { Message } from "../types.js";
import { Checker, type ElectorView, type LogImage } from "./checker.js";
import { EventQueue } from "./event_queue.js";
import { SimDisk } from "./sim_disk.js";
import { SimStateMachine } from "./sim_state_machine.js";

export interface SimOptions {
  seed: number;
  nodes: 3 | 5;
  safetyMs?: number;
  livenessMs?: number;
  verbose?: boolean;
  /** Deliberately broken core behaviour (tests of the checker only). */
  unsafe?: RaftConfig["unsafe"];
  /**
   * Check at every crash that the disk holds what the node promised in its
   * messages (default true). Off, a core that forgets votes must be caught by
   * its consequences (two votes or two leaders in a term) instead.
   */
  checkDurability?: boolean;
  /** Core tuning overrides (e.g. one entry per AppendEntries). */
  core?: Partial<Pick<RaftConfig, "appendEntriesMax" | "inflightCountMax" | "snapshotChunkBytes">>;
  log?: (line: string) => void;
}

export interface SimResult {
  seed: number;
  nodes: number;
  simulatedMs: number;
  elections: number;
  faults: Record<string, number>;
  proposalsAcked: number;
  readsChecked: number;
  entriesCommitted: number;
  snapshotsInstalled: number;
  membershipChanges: number;
  transfers: number;
  /** The fault families this seed's swarm switched on, and its election timeout. */
  swarm: string;
  /** How many times the checker's costlier checks ran. */
  checks: Record<string, number>;
  violations: string[];
}

const TICK_MS = 10;

/** Fault families a swarm picks from. */
const FAULT_FAMILIES = [
  "loss",
  "duplication",
  "reordering",
  "slow_links",
  "partitions",
  "leader_churn",
  "crashes",
  "vote_crashes",
  "leader_crashes",
  "fail_points",
  "pauses",
  "slow_disks",
  "torn_writes",
] as const;
type FaultFamily = (typeof FAULT_FAMILIES)[number];

interface Swarm {
  families: Set<FaultFamily>;
  electionTicks: number;
  heartbeatTicks: number;
  /** Core tuning: small batches make a new leader's catch-up span several round trips. */
  appendEntriesMax: number;
  inflightCountMax: number;
  snapshotChunkBytes: number;
  phaseMsMin: number;
  phaseMsMax: number;
  lossP: number;
  dupP: number;
  delayMsMax: number;
  slowLinkP: number;
  slowLinkMsMax: number;
  partitionEveryMs: number;
  churnEveryMs: number;
  /** Longest blip of the periodic leader isolation ("rapid leader churn"). */
  isolationMsMax: number;
  /** Longest isolation of a leader cut off right after its election. */
  ghostIsolationMsMax: number;
  isolateNewLeaderP: number;
  crashEveryMs: number;
  crashLeaderP: number;
  voteCrashP: number;
  crashNewLeaderP: number;
  failPointP: number;
  pauseEveryMs: number;
  slowDiskEveryMs: number;
  tornKeepP: number;
  clientEveryMs: number;
  /** Share of client requests sent to a node that believes it leads. */
  leaderAffinityP: number;
  readP: number;
  adminEveryMs: number;
  compactEveryMs: number;
}

interface SimNode {
  id: NodeId;
  disk: SimDisk;
  sm: SimStateMachine;
  driver: RaftDriver<number> | null;
  incarnation: number;
  pausedUntilMs: number;
  tickMs: number;
  /** Removed from the cluster for good: stays down and out of the final checks. */
  retired: boolean;
  /** The term this incarnation last led (to notice a fresh election). */
  ledTerm: number;
  /** A dropped broken-Raft message was reported (once per incarnation is enough). */
  violationReported?: boolean;
  /** Membership on its durable disk, read when it went down. */
  downConf: ConfState;
}

/** A set of nodes cut off from everyone else until `untilMs`. */
interface Island {
  members: Set<NodeId>;
  untilMs: number;
}

export class SimCluster {
  readonly events = new EventQueue();
  readonly checker = new Checker();
  private readonly prng: Prng;
  private readonly netPrng: Prng;
  private readonly faultPrng: Prng;
  private readonly clientPrng: Prng;
  private readonly swarm: Swarm;
  private readonly nodes = new Map<NodeId, SimNode>();
  private nextNodeNumber: number;
  /** Directed links that drop everything ("a|b" = a cannot reach b). */
  private readonly blocked = new Set<string>();
  private islands: Island[] = [];
  /** Fault families on in the current phase. */
  private active = new Set<FaultFamily>();
  private phases = 0;
  private faultsOn = true;
  private valueCounter = 0;
  private eventCount = 0;
  readonly faults: Record<string, number> = {};
  private readsChecked = 0;
  private membershipChanges = 0;
  private transfers = 0;
  private adminBusy = false;
  private lastFingerprint = 0;

  constructor(private readonly options: SimOptions) {
    this.prng = new Sfc32(options.seed);
    this.netPrng = fork(this.prng);
    this.faultPrng = fork(this.prng);
    this.clientPrng = fork(this.prng);
    this.swarm = pickSwarm(fork(this.prng));
    const ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
    this.nextNodeNumber = options.nodes + 1;
    const conf: ConfState = { voters: ids, learners: [] };
    for (const id of ids) this.createNode(id, conf);
  }

  private log(line: string): void {
    if (this.options.verbose) (this.options.log ?? (() => {}))(`${this.events.nowMs}ms ${line}`);
  }

  private count(fault: string): void {
    this.faults[fault] = (this.faults[fault] ?? 0) + 1;
  }

  private on(family: FaultFamily): boolean {
    return this.faultsOn && this.active.has(family);
  }

  // ----------------------------------------------------------------- nodes

  private createNode(id: NodeId, conf: ConfState): SimNode {
    const disk = new SimDisk(this.events, fork(this.prng), conf);
    disk.tornKeepP = this.swarm.families.has("torn_writes") ? this.swarm.tornKeepP : 0;
    disk.observer = {
      onAppend: (entries, prevTerms) => this.checker.onAppend(id, entries, prevTerms),
      onSync: (before, after) => this.checker.onSync(id, before, after),
    };
    const node: SimNode = {
      id,
      disk,
      sm: new SimStateMachine(),
      driver: null,
      incarnation: 0,
      pausedUntilMs: 0,
      tickMs: TICK_MS - 2 + intBetween(this.prng, 0, 4),
      retired: false,
      ledTerm: 0,
      downConf: { voters: [...conf.voters], learners: [...conf.learners] },
    };
    node.sm.onApply = (e: Entry) => this.checker.onApply(id, e);
    this.nodes.set(id, node);
    void this.startNode(node);
    return node;
  }

  private async startNode(node: SimNode): Promise<void> {
    node.incarnation++;
    const incarnation = node.incarnation;
    const failPoints = new FailPoints();
    if (
      this.faultsOn &&
      this.swarm.families.has("fail_points") &&
      chance(this.faultPrng, this.swarm.failPointP)
    ) {
      // Crash this incarnation the n-th time it passes a named failure point.
      const name = pick(this.faultPrng, FAIL_POINTS);
      // Points passed once per snapshot or compaction must fire early to fire at all.
      const rare = name === "raft_after_snapshot_restore" || name === "raft_before_compact";
      let left = intBetween(this.faultPrng, 1, rare ? 2 : 150);
      failPoints.enable(name, () => {
        if (this.faultsOn && --left === 0) throw new InjectedCrash(name);
      });
    }
    const { electionTicks, heartbeatTicks } = this.swarm;
    const driver = await RaftDriver.open<number>({
      id: node.id,
      storage: node.disk.open(),
      stateMachine: node.sm,
      prng: fork(this.prng),
      electionTimeoutTicks: electionTicks,
      heartbeatTicks,
      requestTimeoutTicks: Math.max(50, electionTicks * 5),
      failPoints,
      transport: { send: (m) => this.send(m) },
      ticker: {
        start: (onTick) => this.scheduleTick(node, incarnation, onTick),
        stop: () => {},
      },
      onFatal: (err) => {
        if (err instanceof InjectedCrash) {
          this.count(`crash_at_${err.message}`);
          this.crash(node);
          this.restartAfter(node, intBetween(this.faultPrng, 5, 300));
        } else {
          this.checker.fail(`${node.id} stopped on a fatal error: ${String(err)}`);
        }
      },
      core: {
        appendEntriesMax: this.swarm.appendEntriesMax,
        inflightCountMax: this.swarm.inflightCountMax,
        snapshotChunkBytes: this.swarm.snapshotChunkBytes,
        ...this.options.core,
        ...(this.options.unsafe ? { unsafe: this.options.unsafe } : {}),
      },
    });
    if (node.incarnation !== incarnation || node.retired) {
      driver.stop();
      return;
    }
    node.driver = driver;
    node.ledTerm = 0;
    driver.start();
    this.log(`${node.id} started (incarnation ${incarnation}, applied ${node.sm.appliedIndex()})`);
  }

  private scheduleTick(node: SimNode, incarnation: number, onTick: () => void): void {
    this.events.after(node.tickMs, () => {
      if (node.incarnation !== incarnation || !node.driver) return;
      if (this.events.nowMs >= node.pausedUntilMs) onTick();
      this.scheduleTick(node, incarnation, onTick);
    });
  }

  /** Power loss: the process stops, the disk keeps only what was synced (or a torn prefix). */
  private crash(node: SimNode): void {
    if (!node.driver) return;
    node.driver.stop();
    node.driver = null;
    node.incarnation++;
    const unsynced = node.disk.unsyncedCount();
    node.disk.crash();
    node.downConf = node.disk.initialState().conf;
    if (this.options.checkDurability !== false) {
      this.checker.onCrash(node.id, node.disk.durableImage(), node.sm.appliedIndex());
    }
    this.log(`${node.id} crashed (${unsynced} unsynced writes)`);
  }

  private restart(node: SimNode): void {
    if (node.driver || node.retired) return;
    void this.startNode(node);
  }

  private restartAfter(node: SimNode, delayMs: number): void {
    this.events.after(delayMs, () => this.restart(node));
  }

  private live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.driver !== null);
  }

  private members(): SimNode[] {
    return [...this.nodes.values()].filter((n) => !n.retired);
  }

  private leader(): SimNode | null {
    let best: SimNode | null = null;
    let bestTerm = -1;
    for (const n of this.live()) {
      const s = n.driver!.summary();
      if (s.role === "leader" && s.term > bestTerm) {
        best = n;
        bestTerm = s.term;
      }
    }
    return best;
  }

  // --------------------------------------------------------------- network

  private linkDown(from: NodeId, to: NodeId): boolean {
    if (this.blocked.has(`${from}|${to}`)) return true;
    const now = this.events.nowMs;
    for (const island of this.islands) {
      if (island.untilMs > now && island.members.has(from) !== island.members.has(to)) return true;
    }
    return false;
  }

  private send(m: Message): void {
    this.checker.onSent(m);
    if (m.type === "MsgVoteResp" && !m.reject && this.on("vote_crashes")) {
      if (chance(this.faultPrng, this.swarm.voteCrashP)) {
        // Right after the vote leaves, before anything later reaches the disk.
        const voter = this.nodes.get(m.from)!;
        const incarnation = voter.incarnation;
        this.events.after(0, () => {
          if (voter.incarnation !== incarnation || !voter.driver) return;
          this.count("crash_after_vote");
          this.crash(voter);
          this.restartAfter(voter, intBetween(this.faultPrng, 1, 40));
        });
      }
    }
    if (this.linkDown(m.from, m.to)) return;
    if (this.on("loss") && chance(this.netPrng, this.swarm.lossP)) return;
    const copies = this.on("duplication") && chance(this.netPrng, this.swarm.dupP) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      // Independent delays per message reorder them.
      let delay =
        1 + (this.on("reordering") ? intBetween(this.netPrng, 0, this.swarm.delayMsMax) : 1);
      if (this.on("slow_links") && chance(this.netPrng, this.swarm.slowLinkP)) {
        // Long enough that a deposed leader's AppendEntries arrive after newer terms began.
        delay += intBetween(this.netPrng, 40, this.swarm.slowLinkMsMax);
      }
      this.events.after(delay, () => this.deliver(m));
    }
  }

  private deliver(m: Message): void {
    const node = this.nodes.get(m.to);
    if (!node?.driver) return;
    if (this.linkDown(m.from, m.to)) return;
    if (this.events.nowMs < node.pausedUntilMs) {
      this.events.at(node.pausedUntilMs, () => this.deliver(m));
      return;
    }
    node.driver.receive(m);
  }

  // ---------------------------------------------------------------- faults

  private schedulePhases(untilMs: number): void {
    const s = this.swarm;
    const next = () => {
      if (!this.faultsOn || this.events.nowMs >= untilMs) return;
      this.phases++;
      this.active = new Set();
      // One phase in six is calm, so the cluster makes progress between storms.
      if (!chance(this.faultPrng, 1 / 6)) {
        for (const f of s.families) if (chance(this.faultPrng, 0.7)) this.active.add(f);
      }
      if (!this.active.has("partitions")) this.blocked.clear();
      this.log(`phase ${this.phases}: ${[...this.active].join(" ") || "calm"}`);
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
        this.events.after(intBetween(this.faultPrng, periodMs / 2, periodMs * 2), loop);
      };
      this.events.after(intBetween(this.faultPrng, periodMs / 2, periodMs * 2), loop);
    };
    every("partitions", s.partitionEveryMs, () => this.partition());
    every("leader_churn", s.churnEveryMs, () => {
      const leader = this.leader();
      if (!leader) return;
      this.count("leader_isolated");
      this.isolate(leader, intBetween(this.faultPrng, 20, s.isolationMsMax));
    });
    every("crashes", s.crashEveryMs, () => {
      const leader = this.leader();
      const n =
        leader && chance(this.faultPrng, s.crashLeaderP)
          ? leader
          : pick(this.faultPrng, this.members());
      if (!n.driver) return;
      this.count("crash");
      this.crash(n);
      this.restartAfter(n, intBetween(this.faultPrng, 5, 400));
    });
    every("pauses", s.pauseEveryMs, () => {
      const n = pick(this.faultPrng, this.members());
      this.count("pause");
      n.pausedUntilMs = this.events.nowMs + intBetween(this.faultPrng, 20, 300);
    });
    every("slow_disks", s.slowDiskEveryMs, () => {
      const n = pick(this.faultPrng, this.members());
      this.count("slow_disk");
      n.disk.fsyncMsMin = 10;
      n.disk.fsyncMsMax = 60;
      this.events.after(intBetween(this.faultPrng, 100, 600), () => {
        n.disk.fsyncMsMin = 1;
        n.disk.fsyncMsMax = 4;
      });
    });
  }

  /** A node just became leader: maybe cut it off or crash it before it replicates to a majority. */
  private onNewLeader(n: SimNode): void {
    const s = this.swarm;
    if (this.on("leader_churn") && chance(this.faultPrng, s.isolateNewLeaderP)) {
      const incarnation = n.incarnation;
      // Often at once (its no-op reached nobody), else once it reached a few.
      const delayMs = chance(this.faultPrng, 0.5) ? 0 : intBetween(this.faultPrng, 1, 15);
      this.events.after(delayMs, () => {
        if (n.incarnation !== incarnation || !this.on("leader_churn")) return;
        this.count("new_leader_isolated");
        // Long enough that the others elect someone else and move on without it.
        this.isolate(n, intBetween(this.faultPrng, 100, s.ghostIsolationMsMax));
      });
    }
    if (this.on("leader_crashes") && chance(this.faultPrng, s.crashNewLeaderP)) {
      const incarnation = n.incarnation;
      // Before or after its no-op reached its own disk; before it reached a majority.
      const delayMs = chance(this.faultPrng, 0.5) ? 0 : intBetween(this.faultPrng, 1, 20);
      this.events.after(delayMs, () => {
        if (n.incarnation !== incarnation || !n.driver || !this.on("leader_crashes")) return;
        this.count("new_leader_crashed");
        this.crash(n);
        this.restartAfter(n, intBetween(this.faultPrng, 5, s.ghostIsolationMsMax));
      });
    }
  }

  /** Cuts `n` (and, half the time, one follower, if the two stay a minority) off for a while. */
  private isolate(n: SimNode, durationMs: number): void {
    const members = new Set([n.id]);
    const all = this.members();
    if (all.length >= 5 && chance(this.faultPrng, 0.5)) {
      const others = all.filter((m) => m.id !== n.id);
      members.add(pick(this.faultPrng, others).id);
    }
    const now = this.events.nowMs;
    this.islands = this.islands.filter((i) => i.untilMs > now);
    this.islands.push({ members, untilMs: now + durationMs });
    this.log(`isolate ${[...members].join("+")} for ${durationMs}ms`);
  }

  private partition(): void {
    this.blocked.clear();
    const ids = this.members().map((n) => n.id);
    const kind = intBetween(this.faultPrng, 0, 4);
    const side = new Set(ids.filter(() => chance(this.faultPrng, 0.5)));
    const cut = (a: NodeId, b: NodeId) => this.blocked.add(`${a}|${b}`);
    if (kind === 0) {
      this.count("heal");
      return;
    }
    if (kind === 1) {
      this.count("partition_symmetric");
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) cut(a, b);
    } else if (kind === 2) {
      this.count("partition_asymmetric");
      for (const a of ids) for (const b of ids) if (side.has(a) && !side.has(b)) cut(a, b);
    } else if (kind === 3) {
      this.count("partition_bridge");
      const bridge = pick(this.faultPrng, ids);
      for (const a of ids) {
        for (const b of ids) {
          if (a === bridge || b === bridge) continue;
          if (side.has(a) !== side.has(b)) cut(a, b);
        }
      }
    } else {
      this.count("partition_isolate");
      const lonely = pick(this.faultPrng, ids);
      for (const b of ids) {
        if (b === lonely) continue;
        cut(lonely, b);
        cut(b, lonely);
      }
    }
  }

  // -------------------------------------------------------------- workload

  private scheduleClients(untilMs: number): void {
    const loop = () => {
      if (this.events.nowMs >= untilMs) return;
      this.clientOp();
      this.events.after(intBetween(this.clientPrng, 1, this.swarm.clientEveryMs * 2), loop);
    };
    this.events.after(1, loop);
    const admin = () => {
      if (this.events.nowMs >= untilMs) return;
      this.adminOp();
      this.events.after(
        intBetween(this.clientPrng, this.swarm.adminEveryMs / 2, this.swarm.adminEveryMs * 2),
        admin,
      );
    };
    this.events.after(this.swarm.adminEveryMs, admin);
    const compact = () => {
      if (this.events.nowMs >= untilMs) return;
      const n = pick(this.clientPrng, this.members());
      if (n.driver) void n.driver.compact(intBetween(this.clientPrng, 0, 20));
      this.events.after(this.swarm.compactEveryMs, compact);
    };
    this.events.after(this.swarm.compactEveryMs, compact);
  }

  private clientOp(): void {
    // Clients mostly talk to a node that believes it leads (a deposed leader
    // that has not noticed yet included); the rest go anywhere and are redirected.
    const leaders = this.live().filter((m) => m.driver!.summary().role === "leader");
    const n =
      leaders.length > 0 && chance(this.clientPrng, this.swarm.leaderAffinityP)
        ? pick(this.clientPrng, leaders)
        : pick(this.clientPrng, this.members());
    if (!n.driver || this.events.nowMs < n.pausedUntilMs) return;
    const driver = n.driver;
    const issuedMs = this.events.nowMs;
    if (chance(this.clientPrng, this.swarm.readP)) {
      driver.readIndex().then(
        (readIndex) => {
          this.readsChecked++;
          this.checker.checkRead(n.id, issuedMs, readIndex, n.sm.appliedIndex());
        },
        (err) => this.expectKvError(err),
      );
      return;
    }
    const value = `v${++this.valueCounter}`;
    this.propose(driver, n, value);
  }

  private propose(driver: RaftDriver<number>, n: SimNode, value: string): Promise<boolean> {
    return driver.propose(new TextEncoder().encode(value)).then(
      ({ index }) => {
        if (!n.sm.valueSet.has(value))
          this.checker.fail(`ack of ${value} at ${index} on ${n.id} but not in its state`);
        this.checker.onAck(value, index, this.events.nowMs);
        return true;
      },
      (err) => {
        this.expectKvError(err);
        return false;
      },
    );
  }

  private expectKvError(err: unknown): void {
    if (!isKvError(err)) this.checker.fail(`client got a non-KvError: ${String(err)}`);
  }

  private adminOp(): void {
    const leader = this.leader();
    if (!leader || this.adminBusy) return;
    const driver = leader.driver!;
    const conf = driver.status().conf;
    const roll = intBetween(this.clientPrng, 0, 3);
    if (roll === 0) {
      const others = conf.voters.filter((v) => v !== leader.id);
      if (others.length === 0) return;
      const to = pick(this.clientPrng, others);
      this.transfers++;
      this.log(`transfer ${leader.id} -> ${to}`);
      driver.transferLeadership(to).catch((err) => this.expectKvError(err));
      return;
    }
    this.adminBusy = true;
    const done = (ok: boolean) => {
      this.adminBusy = false;
      if (ok) this.membershipChanges++;
    };
    if (conf.learners.length > 0) {
      const learner = conf.learners[0]!;
      this.log(`promote ${learner}`);
      driver.promote(learner).then(
        () => done(true),
        (err) => {
          this.expectKvError(err);
          done(false);
        },
      );
    } else if (conf.voters.length > this.options.nodes) {
      const victim = pick(this.clientPrng, conf.voters);
      this.log(`remove ${victim}`);
      driver.removeServer(victim).then(
        () => {
          const n = this.nodes.get(victim);
          if (n) {
            // Retire it for good: it leaves the cluster and the final checks.
            n.retired = true;
            this.crash(n);
          }
          done(true);
        },
        (err) => {
          this.expectKvError(err);
          done(false);
        },
      );
    } else {
      const id = `n${this.nextNodeNumber++}`;
      this.log(`add learner ${id}`);
      this.createNode(id, { voters: [], learners: [] });
      driver.addLearner(id).then(
        () => done(true),
        (err) => {
          this.expectKvError(err);
          done(false);
        },
      );
    }
  }

  // ------------------------------------------------------------ the run

  private observeAll(): void {
    let fp = this.checker.committedCount();
    for (const n of this.nodes.values()) {
      if (n.retired) continue;
      const durable = n.disk.durableImage();
      const dLast = durable.lastIndex();
      fp = mix(mix(fp, dLast), durable.term(dLast) ?? 0);
      if (!n.driver) continue;
      const s = n.driver.summary();
      if (s.violations > 0 && !n.violationReported) {
        // Correct nodes never send what a core drops as broken Raft (core.ts violation).
        n.violationReported = true;
        this.checker.fail(
          `${n.id} dropped a message that broke Raft: ${n.driver.status().violations.last}`,
        );
      }
      this.checker.observe(n.id, `${n.id}#${n.incarnation}`, n.driver);
      fp = mix(mix(mix(fp, s.lastIndex), n.driver.termAt(s.lastIndex) ?? 0), s.firstIndex);
      if (s.role === "leader" && n.ledTerm !== s.term) {
        n.ledTerm = s.term;
        this.onNewLeader(n);
      }
    }
    // Re-check who could win an election whenever a log or the commit point moved.
    if (fp !== this.lastFingerprint) {
      this.lastFingerprint = fp;
      this.checker.checkPotentialLeaders(this.electorViews());
    }
  }

  private electorViews(): Map<NodeId, ElectorView> {
    const views = new Map<NodeId, ElectorView>();
    for (const n of this.nodes.values()) {
      if (n.retired) continue;
      const durable = n.disk.durableImage();
      if (n.driver) {
        const driver = n.driver;
        const s = driver.summary();
        const running: LogImage = {
          firstIndex: () => s.firstIndex,
          lastIndex: () => s.lastIndex,
          term: (i) => driver.termAt(i),
        };
        views.set(n.id, {
          voters: driver.status().conf.voters,
          candidate: running,
          voterLogs: [running, durable],
        });
      } else {
        views.set(n.id, { voters: n.downConf.voters, candidate: durable, voterLogs: [durable] });
      }
    }
    return views;
  }

  private checkLogs(): void {
    const live = this.live();
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) {
        this.checker.checkLogMatching(live[i]!.id, live[i]!.driver!, live[j]!.id, live[j]!.driver!);
      }
    }
  }

  /** Runs events until `untilMs` or a violation; bounded in event count. */
  private async runUntil(untilMs: number, stop?: () => boolean): Promise<void> {
    const eventsMax = 2_000_000;
    while (this.checker.violations.length === 0 && this.eventCount < eventsMax) {
      const ev = this.events.pop();
      if (!ev) break;
      if (ev.timeMs > untilMs) {
        this.events.at(ev.timeMs, ev.run);
        this.events.nowMs = untilMs;
        break;
      }
      this.eventCount++;
      ev.run();
      // Let promise continuations (persist -> send -> apply) run; their order
      // is fixed by the program, so this stays deterministic.
      for (let i = 0; i < 6; i++) await Promise.resolve();
      this.observeAll();
      if (this.eventCount % 1024 === 0) this.checkLogs();
      if (stop?.()) break;
    }
  }

  async run(): Promise<SimResult> {
    const safetyMs = this.options.safetyMs ?? 3000;
    const livenessMs = this.options.livenessMs ?? 4000;
    this.schedulePhases(safetyMs);
    this.scheduleFaults();
    this.scheduleClients(safetyMs);
    await this.runUntil(safetyMs);

    // Liveness: no more faults; heal, unpause and restart everyone.
    this.faultsOn = false;
    this.active.clear();
    this.blocked.clear();
    this.islands = [];
    for (const n of this.members()) {
      n.pausedUntilMs = 0;
      n.disk.fsyncMsMin = 1;
      n.disk.fsyncMsMax = 4;
      if (!n.driver) this.restart(n);
    }
    const deadline = this.events.nowMs + livenessMs;
    let committed = false;
    let attempt = 0;
    const tryPropose = () => {
      if (committed || this.events.nowMs >= deadline) return;
      const leader = this.leader();
      if (leader?.driver) {
        const value = `live${++attempt}`;
        this.propose(leader.driver, leader, value).then((ok) => {
          if (ok) committed = true;
        });
      }
      this.events.after(50, tryPropose);
    };
    this.events.after(1, tryPropose);
    await this.runUntil(deadline, () => committed && this.caughtUp());
    if (this.checker.violations.length === 0) {
      if (!committed) {
        this.checker.fail(
          `liveness: no proposal committed within ${livenessMs}ms after healing: ${this.describeNodes()}`,
        );
      } else if (!this.caughtUp()) {
        this.checker.fail(
          `liveness: members did not catch up within ${livenessMs}ms: ${this.describeNodes()}`,
        );
      } else {
        this.checkLogs();
        const conf = this.leader()!.driver!.status().conf;
        for (const id of [...conf.voters, ...conf.learners]) {
          this.checker.checkFinal(id, this.nodes.get(id)!.sm.valueSet);
        }
      }
    }
    for (const n of this.nodes.values()) n.driver?.stop();
    return {
      seed: this.options.seed,
      nodes: this.options.nodes,
      simulatedMs: this.events.nowMs,
      elections: this.checker.elections,
      faults: this.faults,
      proposalsAcked: this.checker.acked.length,
      readsChecked: this.readsChecked,
      entriesCommitted: this.checker.committedCount(),
      snapshotsInstalled: [...this.nodes.values()].reduce((sum, n) => sum + n.sm.restores, 0),
      membershipChanges: this.membershipChanges,
      transfers: this.transfers,
      swarm: describeSwarm(this.swarm),
      checks: { ...this.checker.checks },
      violations: this.checker.violations,
    };
  }

  private describeNodes(): string {
    const parts: string[] = [];
    for (const n of this.nodes.values()) {
      if (n.retired) continue;
      if (!n.driver) {
        parts.push(`${n.id}:down`);
        continue;
      }
      const s = n.driver.status();
      const pr = Object.entries(s.progress)
        .map(([id, p]) => `${id}=${p.state}/${p.match}/${p.next}${p.recentActive ? "" : "?"}`)
        .join(",");
      parts.push(
        `${n.id}:${s.role} t${s.term} lead=${s.leaderId} commit=${s.commitIndex} applied=${n.sm.appliedIndex()} log=${s.firstIndex}..${s.lastIndex} conf=${s.conf.voters.join("+")}/${s.conf.learners.join("+")}${pr ? ` [${pr}]` : ""}`,
      );
    }
    return parts.join("; ");
  }

  /**
   * The leader has committed every acknowledged write (a new leader may not
   * have yet) and every member that is a voter or learner has applied its
   * commit index.
   */
  private caughtUp(): boolean {
    const leader = this.leader();
    if (!leader) return false;
    const status = leader.driver!.status();
    if (status.commitIndex < this.checker.ackedIndexMaxSoFar()) return false;
    const members = new Set([...status.conf.voters, ...status.conf.learners]);
    for (const id of members) {
      const n = this.nodes.get(id);
      if (!n?.driver || n.sm.appliedIndex() < status.commitIndex) return false;
    }
    return true;
  }
}

/** The seed's swarm: which fault families are on, at what rates, and the election timeout. */
function pickSwarm(p: Prng): Swarm {
  const families = new Set<FaultFamily>();
  for (const f of FAULT_FAMILIES) if (chance(p, 0.6)) families.add(f);
  const electionTicks = pick(p, [5, 6, 8, 10, 10, 12, 15, 20]);
  const appendEntriesMax = pick(p, [1, 2, 4, 8, 8, 32]);
  // At least four entries per round trip, or catching up a long log outlasts the liveness bound.
  const inflightCountMax = Math.max(pick(p, [1, 2, 4, 4, 16]), Math.ceil(4 / appendEntriesMax));
  return {
    families,
    electionTicks,
    heartbeatTicks: electionTicks >= 8 ? 2 : 1,
    appendEntriesMax,
    inflightCountMax,
    snapshotChunkBytes: pick(p, [16, 64, 64, 1024]),
    phaseMsMin: intBetween(p, 100, 300),
    phaseMsMax: intBetween(p, 400, 1200),
    lossP: intBetween(p, 1, 25) / 100,
    dupP: intBetween(p, 1, 10) / 100,
    delayMsMax: intBetween(p, 2, 40),
    slowLinkP: intBetween(p, 2, 20) / 100,
    slowLinkMsMax: intBetween(p, 80, 500),
    partitionEveryMs: intBetween(p, 100, 800),
    churnEveryMs: intBetween(p, 60, 400),
    isolationMsMax: intBetween(p, 100, 400),
    ghostIsolationMsMax: intBetween(p, 300, 1200),
    isolateNewLeaderP: intBetween(p, 40, 95) / 100,
    crashEveryMs: intBetween(p, 100, 1000),
    crashLeaderP: intBetween(p, 0, 60) / 100,
    voteCrashP: intBetween(p, 10, 70) / 100,
    crashNewLeaderP: intBetween(p, 10, 60) / 100,
    failPointP: intBetween(p, 20, 70) / 100,
    pauseEveryMs: intBetween(p, 300, 2000),
    slowDiskEveryMs: intBetween(p, 300, 2000),
    tornKeepP: intBetween(p, 20, 100) / 100,
    clientEveryMs: intBetween(p, 2, 15),
    leaderAffinityP: intBetween(p, 30, 95) / 100,
    readP: intBetween(p, 10, 40) / 100,
    adminEveryMs: intBetween(p, 150, 600),
    compactEveryMs: intBetween(p, 50, 300),
  };
}

function describeSwarm(s: Swarm): string {
  const tuning = `election=${s.electionTicks}/${s.heartbeatTicks} batch=${s.appendEntriesMax} window=${s.inflightCountMax}`;
  return `${tuning} ${[...s.families].join(" ")}`;
}

function mix(h: number, x: number): number {
  return (Math.imul(h, 0x01000193) ^ x) | 0;
}

export async function runSim(options: SimOptions): Promise<SimResult> {
  return new SimCluster(options).run();
}
