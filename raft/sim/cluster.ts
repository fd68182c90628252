/**
 * One deterministic simulation run: a whole cluster of real RaftDrivers in one
 * process, on virtual time, with a simulated network and disks. One seed
 * derives the fault parameters (swarm testing), the workload and the schedule.
 *
 * A run is a safety phase (faults: partitions of several shapes, loss, delay,
 * reordering, duplication, crashes that lose unsynced writes, crashes at named
 * failure points, slow disks, pauses; load: proposals, ReadIndex reads,
 * membership changes, leadership transfers, compaction) followed by a liveness
 * phase (heal everything, restart everyone) in which a leader must emerge, a
 * new proposal must commit and every member must catch up within a bound.
 */
import { isKvError } from "../../proto/errors.js";
import type { RaftConfig } from "../core.js";
import { type FailPointName, FailPoints, InjectedCrash, RaftDriver } from "../driver.js";
import { chance, fork, intBetween, type Prng, pick, Sfc32 } from "../prng.js";
import type { ConfState, Entry, NodeId } from "../storage.js";
import type { Message } from "../types.js";
import { Checker } from "./checker.js";
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
  violations: string[];
}

const TICK_MS = 10;
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
const FAIL_POINT_NAMES: FailPointName[] = [
  "raft_before_persist",
  "raft_before_send",
  "apply_before_commit_batch",
  "raft_before_advance",
  "raft_after_snapshot_restore",
];

interface Swarm {
  lossP: number;
  dupP: number;
  delayMsMax: number;
  partitionEveryMs: number;
  crashEveryMs: number;
  pauseEveryMs: number;
  slowDiskEveryMs: number;
  clientEveryMs: number;
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
  held: Message[];
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
  private faultsOn = true;
  private valueCounter = 0;
  private eventCount = 0;
  readonly faults: Record<string, number> = {};
  private readsChecked = 0;
  private membershipChanges = 0;
  private transfers = 0;
  private adminBusy = false;

  constructor(private readonly options: SimOptions) {
    this.prng = new Sfc32(options.seed);
    this.netPrng = fork(this.prng);
    this.faultPrng = fork(this.prng);
    this.clientPrng = fork(this.prng);
    const p = this.prng;
    this.swarm = {
      lossP: intBetween(p, 0, 10) / 100,
      dupP: intBetween(p, 0, 5) / 100,
      delayMsMax: intBetween(p, 1, 30),
      partitionEveryMs: intBetween(p, 150, 800),
      crashEveryMs: intBetween(p, 200, 1200),
      pauseEveryMs: intBetween(p, 400, 2000),
      slowDiskEveryMs: intBetween(p, 300, 2000),
      clientEveryMs: intBetween(p, 2, 15),
      readP: intBetween(p, 10, 40) / 100,
      adminEveryMs: intBetween(p, 150, 600),
      compactEveryMs: intBetween(p, 50, 300),
    };
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

  // ----------------------------------------------------------------- nodes

  private createNode(id: NodeId, conf: ConfState): SimNode {
    const node: SimNode = {
      id,
      disk: new SimDisk(this.events, fork(this.prng), conf),
      sm: new SimStateMachine(),
      driver: null,
      incarnation: 0,
      pausedUntilMs: 0,
      tickMs: TICK_MS - 1 + intBetween(this.prng, 0, 2),
      retired: false,
      held: [],
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
    if (this.faultsOn && chance(this.faultPrng, 0.3)) {
      // Crash this incarnation the n-th time it passes a named failure point.
      const name = pick(this.faultPrng, FAIL_POINT_NAMES);
      let left = intBetween(this.faultPrng, 1, 200);
      failPoints.enable(name, () => {
        if (this.faultsOn && --left === 0) throw new InjectedCrash(name);
      });
    }
    const driver = await RaftDriver.open<number>({
      id: node.id,
      storage: node.disk,
      stateMachine: node.sm,
      prng: fork(this.prng),
      electionTimeoutTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      requestTimeoutTicks: ELECTION_TICKS * 5,
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
          this.events.after(intBetween(this.faultPrng, 20, 300), () => this.restart(node));
        } else {
          this.checker.fail(`${node.id} stopped on a fatal error: ${String(err)}`);
        }
      },
      core: {
        appendEntriesMax: 8,
        inflightCountMax: 4,
        snapshotChunkBytes: 64,
        ...this.options.core,
        ...(this.options.unsafe ? { unsafe: this.options.unsafe } : {}),
      },
    });
    if (node.incarnation !== incarnation || node.retired) {
      driver.stop();
      return;
    }
    node.driver = driver;
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

  private crash(node: SimNode): void {
    if (!node.driver) return;
    node.driver.stop();
    node.driver = null;
    node.incarnation++;
    node.disk.crash();
    node.held = [];
    this.log(`${node.id} crashed`);
  }

  private restart(node: SimNode): void {
    if (node.driver || node.retired) return;
    void this.startNode(node);
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

  private send(m: Message): void {
    if (this.blocked.has(`${m.from}|${m.to}`)) return;
    if (this.faultsOn && chance(this.netPrng, this.swarm.lossP)) return;
    const copies = this.faultsOn && chance(this.netPrng, this.swarm.dupP) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      // Independent delays per message reorder them.
      const delay = 1 + (this.faultsOn ? intBetween(this.netPrng, 0, this.swarm.delayMsMax) : 1);
      this.events.after(delay, () => this.deliver(m));
    }
  }

  private deliver(m: Message): void {
    const node = this.nodes.get(m.to);
    if (!node?.driver) return;
    if (this.blocked.has(`${m.from}|${m.to}`)) return;
    if (this.events.nowMs < node.pausedUntilMs) {
      this.events.at(node.pausedUntilMs, () => this.deliver(m));
      return;
    }
    node.driver.receive(m);
  }

  // ---------------------------------------------------------------- faults

  private scheduleFaults(): void {
    const s = this.swarm;
    const every = (periodMs: number, fn: () => void) => {
      const loop = () => {
        if (!this.faultsOn) return;
        fn();
        this.events.after(intBetween(this.faultPrng, periodMs / 2, periodMs * 2), loop);
      };
      this.events.after(intBetween(this.faultPrng, periodMs / 2, periodMs * 2), loop);
    };
    every(s.partitionEveryMs, () => this.partition());
    every(s.crashEveryMs, () => {
      const n = pick(this.faultPrng, this.members());
      if (!n.driver) return;
      this.count("crash");
      this.crash(n);
      this.events.after(intBetween(this.faultPrng, 10, 400), () => this.restart(n));
    });
    every(s.pauseEveryMs, () => {
      const n = pick(this.faultPrng, this.members());
      this.count("pause");
      n.pausedUntilMs = this.events.nowMs + intBetween(this.faultPrng, 20, 300);
    });
    every(s.slowDiskEveryMs, () => {
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
    const n = pick(this.clientPrng, this.members());
    if (!n.driver || this.events.nowMs < n.pausedUntilMs) return;
    const driver = n.driver;
    const issuedMs = this.events.nowMs;
    if (chance(this.clientPrng, this.swarm.readP)) {
      driver.readIndex().then(
        () => {
          this.readsChecked++;
          this.checker.checkRead(n.id, issuedMs, n.sm.valueSet);
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
        const applied = n.sm.values.includes(value);
        if (!applied)
          this.checker.fail(`ack of ${value} at ${index} on ${n.id} but not in its state`);
        this.checker.onAck(value, index, this.events.nowMs, undefined);
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
    for (const n of this.nodes.values()) {
      if (n.driver) this.checker.observe(n.id, `${n.id}#${n.incarnation}`, n.driver);
    }
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
      if (this.eventCount % 256 === 0) this.checkLogs();
      if (stop?.()) break;
    }
  }

  async run(): Promise<SimResult> {
    const safetyMs = this.options.safetyMs ?? 3000;
    const livenessMs = this.options.livenessMs ?? 4000;
    this.scheduleFaults();
    this.scheduleClients(safetyMs);
    await this.runUntil(safetyMs);

    // Liveness: no more faults; heal, unpause and restart everyone.
    this.faultsOn = false;
    this.blocked.clear();
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

  /** Every member that is a voter or learner has applied the leader's commit index. */
  private caughtUp(): boolean {
    const leader = this.leader();
    if (!leader) return false;
    const status = leader.driver!.status();
    const members = new Set([...status.conf.voters, ...status.conf.learners]);
    for (const id of members) {
      const n = this.nodes.get(id);
      if (!n?.driver || n.sm.appliedIndex() < status.commitIndex) return false;
    }
    return true;
  }
}

export async function runSim(options: SimOptions): Promise<SimResult> {
  return new SimCluster(options).run();
}
