/**
 * One replica of the KV store: kvapi's state machine on the stream log, the Raft driver
 * that feeds it, and the write path above the driver, composed once, for production
 * (node/raft_service.ts opens LevelDB and the Raft storage, then this) and for the
 * simulator (memory-level, a simulated disk, virtual time) alike.
 *
 *   Forwarder -> LeaderProposer -> RaftDriver -> RaftCore
 *                                      |
 *                     KvRaftStateMachine -> KvStateMachine -> StreamLog
 *
 * `Replica.open` builds everything in dependency order (nothing wired in two phases);
 * `start()` starts ticking; `close()` stops in reverse order.
 */
import { KvStateMachine, type NodeLimits, type UnstampedCommand } from "../kvapi/index.js";
import type { StreamLog } from "../log/index.js";
import { KvError } from "../proto/index.js";
import {
  encodeMessage,
  type FailPoints,
  type Message,
  type Prng,
  type RaftConfig,
  RaftDriver,
  type RaftStorage,
  type RaftTicker,
} from "../raft/index.js";
import type { Cancel, Clock } from "./clock.js";
import { Compactor } from "./compactor.js";
import type { ForwardFrame } from "./forward_wire.js";
import { Forwarder } from "./forwarding.js";
import { LeaderProposer, type RaftKvDriver } from "./leader_proposer.js";
import type { Logger } from "./log.js";
import { type KvApplyResult, KvRaftStateMachine } from "./raft_state_machine.js";
import { type ReplicaObserver, timedStateMachine, timedStorage } from "./replica_observer.js";
import { KvSnapshotStore } from "./snapshot_store.js";

export interface ReplicaOptions {
  id: string;
  streamLog: StreamLog;
  /** The Raft log and hard state, opened (LevelDB in production, SimDisk in the simulator). */
  storage: RaftStorage;
  ticker: RaftTicker;
  prng: Prng;
  clock: Clock;
  log: Logger;
  /** Sends a Raft message to a peer, best effort. */
  sendRaft: (message: Message) => void;
  /** Sends a forwarded write or its answer to a peer; false if dropped (see forwarding.ts). */
  sendForward: (to: string, frame: ForwardFrame) => boolean;
  /** The node must stop (a failed write, an assertion). */
  onFatal: (err: unknown) => void;
  electionTimeoutTicks: number;
  heartbeatTicks: number;
  /** Applied entries between Raft log compactions (default 10000; see compactor.ts). */
  snapshotEntries?: number;
  /** Node-wide quotas the leader stamps on client commands (none by default). */
  limits?: NodeLimits;
  /** How long a write may take, forwarding to the leader and retries included (default 4 s). */
  writeTimeoutMs?: number;
  /** Writes forwarded from this node at once (default 1024). */
  maxForwardsInFlight?: number;
  /** How often the leader advances the TTL clock when a bucket has a ttl (default 1 s). */
  ttlTickMs?: number;
  failPoints?: FailPoints;
  /** Told persist and apply durations, snapshot transfers and leader changes (metrics). */
  observer?: ReplicaObserver;
  /** A committed membership change named a member's peer address (raft_state_machine.ts). */
  onMemberAddress?: (id: string, address: string) => void;
  core?: Partial<Pick<RaftConfig, "appendEntriesMax" | "inflightCountMax" | "snapshotChunkBytes">>;
  /**
   * Deliberately broken behaviour that the KV simulator's checker must catch
   * (kvsim/broken.test.ts); never set in production.
   */
  unsafe?: {
    /** kvapi applies a retried request id again. */
    skipDedupe?: boolean;
    /** create/update decided by the leader before proposing, then proposed as a plain put. */
    casAtProposer?: boolean;
  };
}

/** Encodes Raft messages for a byte transport (the peer port). */
export function encodingSender(
  send: (to: string, data: Uint8Array) => void,
  log: Logger,
): (message: Message) => void {
  return (m) => {
    try {
      send(m.to, encodeMessage(m));
    } catch (err) {
      log.warn("cannot send a raft message", { to: m.to, error: String(err) });
    }
  };
}

/**
 * The planted bug `casAtProposer`: the leader checks create/update against what it has
 * applied so far and proposes an unconditional put. Two updates of the same revision
 * in flight together both pass (the first is not applied yet): a lost update.
 */
function casAtProposer(kv: KvStateMachine): (c: UnstampedCommand) => Promise<UnstampedCommand> {
  return async (c) => {
    if (c.type !== "create" && c.type !== "update") return c;
    const history = await kv.history(c.bucket, c.key);
    const latest = history[history.length - 1];
    if (c.type === "create" && latest !== undefined && latest.operation === "PUT") {
      throw new KvError("KEY_EXISTS", `key ${c.key} exists (decided at the proposer)`);
    }
    if (c.type === "update" && (latest?.revision ?? 0) !== c.last) {
      throw new KvError("WRONG_LAST_REVISION", `wrong last revision (decided at the proposer)`);
    }
    const { type: _t, ...rest } = c;
    const { last: _l, ...put } = rest as typeof rest & { last?: number };
    return { ...put, type: "put" };
  };
}

export class Replica {
  private ttlTicking = false;
  private cancelTtl: Cancel | undefined;
  private stopLeaderLog: (() => void) | undefined;
  private closed = false;

  private constructor(
    private readonly opts: ReplicaOptions,
    readonly kv: KvStateMachine,
    readonly store: KvSnapshotStore,
    readonly driver: RaftKvDriver,
    readonly proposer: LeaderProposer,
    readonly forwarder: Forwarder,
    readonly compactor: Compactor,
  ) {}

  static async open(opts: ReplicaOptions): Promise<Replica> {
    const kv = await KvStateMachine.open(
      opts.streamLog,
      opts.unsafe?.skipDedupe ? { unsafe: { skipDedupe: true } } : {},
    );
    const observer = opts.observer;
    const store = await KvSnapshotStore.open(opts.streamLog, kv, {
      log: opts.log,
      ...(observer ? { observer } : {}),
    });
    const stateMachine = new KvRaftStateMachine(kv, store, opts.onMemberAddress, opts.log);
    const driver = await RaftDriver.open<KvApplyResult>({
      id: opts.id,
      storage: observer ? timedStorage(opts.storage, observer) : opts.storage,
      transport: { send: opts.sendRaft },
      ticker: opts.ticker,
      stateMachine: observer ? timedStateMachine(stateMachine, observer) : stateMachine,
      prng: opts.prng,
      electionTimeoutTicks: opts.electionTimeoutTicks,
      heartbeatTicks: opts.heartbeatTicks,
      core: { preVote: true, checkQuorum: true, ...opts.core },
      ...(opts.failPoints ? { failPoints: opts.failPoints } : {}),
      onFatal: (err) => {
        opts.log.error("raft driver stopped", { error: String((err as Error)?.stack ?? err) });
        opts.onFatal(err);
      },
    });
    const proposer = new LeaderProposer({
      id: opts.id,
      driver,
      clock: opts.clock,
      lastTimestampMs: kv.clockMs(),
      ...(opts.limits === undefined ? {} : { limits: opts.limits }),
      ...(opts.unsafe?.casAtProposer ? { unsafeRewrite: casAtProposer(kv) } : {}),
    });
    const forwarder = new Forwarder({
      id: opts.id,
      log: opts.log,
      clock: opts.clock,
      proposer,
      send: opts.sendForward,
      onFatal: opts.onFatal,
      ...(opts.writeTimeoutMs === undefined ? {} : { writeTimeoutMs: opts.writeTimeoutMs }),
      ...(opts.maxForwardsInFlight === undefined ? {} : { maxInFlight: opts.maxForwardsInFlight }),
    });
    const compactor = new Compactor({
      driver: driver as RaftDriver<unknown>,
      storage: opts.storage,
      store,
      streamLog: opts.streamLog,
      kv,
      log: opts.log,
      ...(opts.snapshotEntries === undefined ? {} : { snapshotEntries: opts.snapshotEntries }),
      onFatal: opts.onFatal,
    });
    return new Replica(opts, kv, store, driver, proposer, forwarder, compactor);
  }

  /** Starts Raft (ticks, elections) and the leader's TTL clock. */
  start(): void {
    // Who leads, at info and once per change (not per term of a failed election), so an
    // operator sees a failover in any node's log.
    let leader: string | null = null;
    this.stopLeaderLog = this.driver.subscribe((event) => {
      if (event !== "leader") return;
      const s = this.driver.status();
      if (s.leaderId === leader) return;
      const previous = leader;
      leader = s.leaderId;
      this.opts.observer?.leaderChanged(leader);
      if (leader === null) this.opts.log.info("leader lost", { previous, term: s.term });
      else this.opts.log.info("leader changed", { leader, previous, term: s.term, role: s.role });
    });
    this.driver.start();
    this.cancelTtl = this.opts.clock.every(this.opts.ttlTickMs ?? 1000, () => this.tickTtl());
  }

  /** A forwarded write or its answer from a peer, decoded at the edge. */
  receiveForward(from: string, frame: ForwardFrame): void {
    if (!this.closed) this.forwarder.receive(from, frame);
  }

  /** The leader moves the replicated clock while some bucket has a ttl; never forwarded. */
  private tickTtl(): void {
    if (this.ttlTicking || this.closed || !this.proposer.view().isLeader) return;
    if (!this.kv.listBuckets().some((b) => b.ttlMs > 0)) return;
    this.ttlTicking = true;
    this.proposer
      .advanceTime()
      .catch((err) => {
        // A KvError is an operating condition (lost leadership, a timeout); anything else a bug.
        if (err instanceof KvError) this.opts.log.warn("ttl tick failed", { error: String(err) });
        else this.opts.onFatal(err);
      })
      .finally(() => {
        this.ttlTicking = false;
      });
  }

  /** Stops the write path, Raft and compaction; the caller closes the stores it opened. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelTtl?.();
    this.stopLeaderLog?.();
    this.forwarder.close();
    this.proposer.close();
    this.driver.stop();
    await this.compactor.close();
    this.kv.close();
  }
}
