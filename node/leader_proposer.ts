/**
 * The last hop of a write before Raft: on the leader, stamps the leader's time onto an
 * unstamped command, proposes it through the driver and unwraps kvapi's apply result.
 *
 *   KvService -> Forwarder -> LeaderProposer -> RaftDriver -> RaftCore
 *
 * It never waits for leadership itself: `propose` answers NOT_LEADER / NO_LEADER at once
 * when this node does not lead, and callers that may wait (the forwarder, reads) wait for
 * the driver's next leader event through `leaderChange`, not by polling.
 */

import {
  type ApplyResult,
  type Command,
  encodeCommand,
  type NodeLimits,
  stampCommand,
  type UnstampedCommand,
} from "../kvapi/index.js";
import { assert, KvError } from "../proto/index.js";
import type { RaftDriver } from "../raft/index.js";
import { type Cancel, type Clock, nextEventOr } from "./clock.js";

/** What a write did on the leader. */
export interface ProposalResult {
  revision: number;
  count: number;
  /** The Raft index of the write's entry. */
  index: number;
}

/** This node's view of leadership right now. */
export interface LeaderView {
  isLeader: boolean;
  /** null while no leader is known. */
  leaderId: string | null;
  /** The Raft driver stopped (fatal error or shutdown). */
  stopped: boolean;
}

/** What the forwarder needs of the node below it (LeaderProposer; a script in tests). */
export interface Proposer {
  view(): LeaderView;
  /** Proposes here as the leader; NOT_LEADER / NO_LEADER / SHUTTING_DOWN when it cannot. */
  propose(command: UnstampedCommand): Promise<ProposalResult>;
  /** Calls `listener` whenever the view may have changed (role, leader, term, stop). */
  onLeaderChange(listener: () => void): Cancel;
}

export type RaftKvDriver = RaftDriver<ApplyResult | undefined>;

/** Proposals through this node as leader (metrics, as etcd's proposals_* series). */
export interface ProposalStats {
  /** Proposed and not yet applied here nor failed. */
  pending: number;
  /** Applied (whatever kvapi decided: a refused CAS is a committed proposal). */
  committed: number;
  /** Never applied: the driver refused it, leadership was lost, or it timed out. */
  failed: number;
}

export interface LeaderProposerOptions {
  id: string;
  driver: RaftKvDriver;
  clock: Clock;
  /** The time of the last command applied here: the leader's stamps never go back. */
  lastTimestampMs: number;
  /**
   * Node-wide quotas stamped on every client command (decided at apply on each replica);
   * a createBucket also gets this node's voter count (see `limitsFor`).
   */
  limits?: NodeLimits;
  /**
   * Deliberately broken behaviour, for the KV simulator's checker tests only: rewrites
   * a command before it is proposed (e.g. decides its CAS here, on the leader's state
   * now, instead of at apply).
   */
  unsafeRewrite?: (command: UnstampedCommand) => Promise<UnstampedCommand>;
}

export class LeaderProposer implements Proposer {
  private lastTimestampMs: number;
  private closed = false;
  private readonly counts: ProposalStats = { pending: 0, committed: 0, failed: 0 };

  constructor(private readonly opts: LeaderProposerOptions) {
    this.lastTimestampMs = opts.lastTimestampMs;
  }

  view(): LeaderView {
    const s = this.opts.driver.status();
    return {
      isLeader: s.role === "leader" && !this.closed,
      leaderId: s.leaderId,
      stopped: s.stopped || this.closed,
    };
  }

  onLeaderChange(listener: () => void): Cancel {
    return this.opts.driver.subscribe((event) => {
      if (event === "leader") listener();
    });
  }

  /**
   * Resolves at the driver's next leader event or at `deadlineMs` (epoch ms), whichever
   * comes first; never rejects. The one way node/ waits for leadership.
   */
  leaderChange(deadlineMs: number): Promise<void> {
    return nextEventOr(this.opts.clock, (l) => this.onLeaderChange(l), deadlineMs);
  }

  /**
   * Resolves once some node is known to lead (not necessarily this one), by `deadlineMs`;
   * NO_LEADER after it, SHUTTING_DOWN once the driver stopped.
   */
  async waitForLeader(deadlineMs: number): Promise<void> {
    while (true) {
      const v = this.view();
      if (v.stopped) throw shuttingDown();
      if (v.leaderId !== null) return;
      if (this.opts.clock.now() >= deadlineMs) {
        throw new KvError("NO_LEADER", "no leader elected yet; retry shortly");
      }
      await this.leaderChange(deadlineMs);
    }
  }

  /** Throws NOT_LEADER (with the leader's id) / NO_LEADER / SHUTTING_DOWN unless this node leads. */
  requireLeader(): ReturnType<RaftKvDriver["status"]> {
    const s = this.opts.driver.status();
    if (this.closed || s.stopped) throw shuttingDown();
    if (s.role === "leader") return s;
    if (s.leaderId === null) throw new KvError("NO_LEADER", "no leader elected yet; retry shortly");
    throw new KvError("NOT_LEADER", `node ${this.opts.id} is not the leader (${s.leaderId} is)`, {
      leaderId: s.leaderId,
    });
  }

  async propose(command: UnstampedCommand): Promise<ProposalResult> {
    const rewrite = this.opts.unsafeRewrite;
    const c = rewrite === undefined ? command : await rewrite(command);
    return this.proposeStamped((ts) => stampCommand(c, ts, this.limitsFor(c)));
  }

  /** The quotas, and on a createBucket the voter count its `replicas` is judged by at apply. */
  private limitsFor(command: UnstampedCommand): NodeLimits | undefined {
    const limits = this.opts.limits;
    if (command.type !== "createBucket") return limits;
    const voters = this.opts.driver.status().conf.voters.length;
    return { maxBuckets: 0, maxStoredBytes: 0, ...limits, voters };
  }

  /** Moves the replicated clock to the leader's time (TTL expiry); never forwarded. */
  advanceTime(): Promise<ProposalResult> {
    return this.proposeStamped((timestampMs) => ({ type: "timeAdvance", timestampMs }));
  }

  private async proposeStamped(build: (timestampMs: number) => Command): Promise<ProposalResult> {
    this.requireLeader();
    // Leader time, never going back, so every replica decides TTLs alike.
    this.lastTimestampMs = Math.max(this.lastTimestampMs, this.opts.clock.now());
    const { index, result } = await this.counted(
      this.opts.driver.propose(encodeCommand(build(this.lastTimestampMs))),
    );
    // Every normal entry reaches kvapi, which answers each one: anything else is a bug.
    assert(result !== undefined, `the command at index ${index} had no apply result`);
    if (!result.ok) throw result.error;
    return { revision: result.revision, count: result.count, index };
  }

  proposalStats(): ProposalStats {
    return { ...this.counts };
  }

  private async counted<T>(proposal: Promise<T>): Promise<T> {
    this.counts.pending++;
    try {
      const applied = await proposal;
      this.counts.committed++;
      return applied;
    } catch (err) {
      this.counts.failed++;
      throw err;
    } finally {
      this.counts.pending--;
    }
  }

  /** Later proposals fail with SHUTTING_DOWN. */
  close(): void {
    this.closed = true;
  }
}

function shuttingDown(): KvError {
  return new KvError("SHUTTING_DOWN", "the node is shutting down");
}
