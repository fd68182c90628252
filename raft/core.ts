/**
 * The Raft core: a synchronous, deterministic state machine in the style of
 * etcd-io/raft. Inputs are `tick()`, `step(message)`, `propose(...)`,
 * `readIndex(...)`, `transferLeadership(...)`; output is `ready()`, which hands
 * the driver what to persist, send and apply (the ordering contract is on the
 * `Ready` type); `advance(ready)` acknowledges it. No clock, timers, I/O or
 * randomness of its own: time is ticks, randomness is the injected `prng`.
 *
 * Implemented: pre-vote, check-quorum (leases), pipelined and batched
 * AppendEntries with per-follower flow control (probe/replicate/snapshot),
 * fast conflict backtracking, the current-term commit rule with a no-op on
 * election, InstallSnapshot in chunks, ReadIndex (local and forwarded),
 * leadership transfer (TimeoutNow), one-at-a-time membership changes with
 * learners, including removing the leader.
 */
import { KvError } from "../proto/index.js";
import { assert, isIndex } from "./assert.js";
import { decodeConfChange, encodeConfChange } from "./codec.js";
import { changedConf, copyConf, isMember, isVoter } from "./conf.js";
import type { Prng } from "./prng.js";
import { Progress } from "./progress.js";
import { committedIndex, hasQuorum, voteResult } from "./quorum.js";
import { RaftLog } from "./raft_log.js";
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type NodeId,
  type RaftLogReader,
  type SnapshotMeta,
} from "./storage.js";
import {
  ConfChangeType,
  emptyMessage,
  type Message,
  type MessageType,
  type RaftStatus,
  type ReadState,
  type Ready,
  type Role,
  type SnapshotChunk,
  type SnapshotToInstall,
} from "./types.js";

/** A snapshot of the state machine at `index` (its applied index when taken). */
export interface StateMachineSnapshot {
  index: number;
  data: Uint8Array;
}

export interface RaftConfig {
  id: NodeId;
  storage: RaftLogReader;
  prng: Prng;
  /** The state machine's durable applied index (entries up to it are not handed out again). */
  appliedIndex?: number;
  /** Base election timeout; each term draws one in [base, 2*base). */
  electionTimeoutTicks: number;
  heartbeatTicks: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Most entries one AppendEntries carries. */
  appendEntriesMax?: number;
  /** Most entry bytes one AppendEntries carries (at least one entry is always sent). */
  appendBytesMax?: number;
  /** Most AppendEntries in flight to one follower (pipelining window). */
  inflightCountMax?: number;
  inflightBytesMax?: number;
  /** Bytes per InstallSnapshot chunk. */
  snapshotChunkBytes?: number;
  /** Most committed entry bytes handed out for apply in one Ready. */
  applyBytesMax?: number;
  /**
   * For a follower `to` that is too far behind: the index of a state machine image
   * ready to stream to it, at or above `minIndex` (the log's compaction point), or
   * null when none is ready yet (the driver prepares one; the core asks again on the
   * next heartbeat answer). The chunks' bytes are filled in by the driver.
   */
  snapshotProvider?: (to: NodeId, minIndex: number) => number | null;
  /**
   * Deliberately broken behaviour, used only by tests that prove the
   * simulator catches it. Never set in production.
   */
  unsafe?: {
    /** Commit entries of earlier terms by counting replicas (Raft paper Figure 8). */
    commitEarlierTermsByCount?: boolean;
    /** Do not append a no-op on election. */
    skipNoopOnElection?: boolean;
    /** Grant votes without making them durable first. */
    voteWithoutPersist?: boolean;
    /** Grant votes without checking that the candidate's log is up to date (§5.4.1). */
    voteWithoutLogCheck?: boolean;
    /** The leader counts its own log toward a commit before its write is durable. */
    leaderCountsSelfBeforePersist?: boolean;
  };
}

interface PendingRead {
  index: number;
  context: number;
  from: NodeId;
  round: number;
}

/** A snapshot being received: its bytes go to the driver chunk by chunk, never held here. */
interface SnapshotReceive {
  meta: SnapshotMeta;
  /** The leader sending it (acknowledgements go there). */
  from: NodeId;
  /** Bytes received in order (handed to the driver). */
  bytes: number;
  /** Bytes the driver has stored (acknowledged). */
  stored: number;
}

const EMPTY = new Uint8Array(0);

const NONE_ROUND = 0;

export class RaftCore {
  readonly id: NodeId;
  private readonly log: RaftLog;
  private readonly prng: Prng;
  private readonly cfg: Required<
    Pick<
      RaftConfig,
      | "electionTimeoutTicks"
      | "heartbeatTicks"
      | "preVote"
      | "checkQuorum"
      | "appendEntriesMax"
      | "appendBytesMax"
      | "inflightCountMax"
      | "inflightBytesMax"
      | "snapshotChunkBytes"
      | "applyBytesMax"
    >
  >;
  private readonly snapshotProvider: ((to: NodeId, minIndex: number) => number | null) | undefined;
  private readonly unsafe: NonNullable<RaftConfig["unsafe"]>;

  private term = 0;
  private votedFor: NodeId | null = null;
  private commit = 0;
  private role: Role = "follower";
  private leaderId: NodeId | null = null;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private votes = new Map<NodeId, boolean>();
  private readonly progress = new Map<NodeId, Progress>();

  /** Membership history: base (snapshot) first, then one per ConfChange entry in the log. */
  private confs: { index: number; conf: ConfState }[] = [];

  private leadTransferee: NodeId | null = null;
  /** See RaftStatus.violations. */
  private readonly violations = { count: 0, last: "" };
  private transferElapsed = 0;

  private readRound = NONE_ROUND;
  /**
   * Reads arrived since the last heartbeat round: the next `ready()` starts one round for
   * all of them (round readRound + 1), so a burst of reads in one turn costs one
   * heartbeat per follower, not one per read.
   */
  private readRoundWanted = false;
  private pendingReads: PendingRead[] = [];
  /** Reads that arrived before the leader committed an entry of its term. */
  private readsAwaitingCommit: { context: number; from: NodeId }[] = [];
  private readStates: ReadState[] = [];

  private msgs: Message[] = [];
  /** Leader messages that may leave before the Ready's write is durable (see `Ready`). */
  private msgsEarly: Message[] = [];
  /** Term of the last hardState known durable: early messages need their term on disk. */
  private durableTerm: number;
  /** Seq of the last Ready whose write is durable (`persisted`). */
  private persistedSeq = 0;
  private applied: number;
  /** Last committed index handed out for apply (>= applied). */
  private applying: number;
  private lastHardState: HardState;
  private lastSoft: { role: Role; leaderId: NodeId | null; term: number };
  private readySeq = 0;
  private snapshotReceive: SnapshotReceive | null = null;
  /** Proposals were appended since the last Ready: send them in one batch. */
  private appendPending = false;
  private pendingInstall: SnapshotToInstall | null = null;
  /** Received snapshot chunks, in order, for the driver to write before acknowledging. */
  private snapshotChunksOut: SnapshotChunk[] = [];
  /** Leader: the snapshot being streamed to each follower in snapshot state. */
  private readonly outgoing = new Map<NodeId, SnapshotMeta>();

  constructor(config: RaftConfig) {
    assert(config.id !== "", "node id must not be empty");
    assert(config.electionTimeoutTicks > config.heartbeatTicks, "election timeout <= heartbeat");
    assert(config.heartbeatTicks >= 1, "heartbeatTicks must be >= 1");
    this.id = config.id;
    this.prng = config.prng;
    this.cfg = {
      electionTimeoutTicks: config.electionTimeoutTicks,
      heartbeatTicks: config.heartbeatTicks,
      preVote: config.preVote ?? true,
      checkQuorum: config.checkQuorum ?? true,
      appendEntriesMax: config.appendEntriesMax ?? 256,
      appendBytesMax: config.appendBytesMax ?? 1024 * 1024,
      inflightCountMax: config.inflightCountMax ?? 64,
      inflightBytesMax: config.inflightBytesMax ?? 16 * 1024 * 1024,
      snapshotChunkBytes: config.snapshotChunkBytes ?? 256 * 1024,
      applyBytesMax: config.applyBytesMax ?? 4 * 1024 * 1024,
    };
    this.snapshotProvider = config.snapshotProvider;
    this.unsafe = config.unsafe ?? {};
    this.log = new RaftLog(config.storage);

    const { hardState } = config.storage.initialState();
    assert(isIndex(hardState.currentTerm), "hardState.currentTerm");
    assert(isIndex(hardState.commitIndex), "hardState.commitIndex");
    this.term = hardState.currentTerm;
    this.durableTerm = hardState.currentTerm;
    this.votedFor = hardState.votedFor;
    const snap = config.storage.snapshotMeta();
    const applied = config.appliedIndex ?? snap.index;
    assert(isIndex(applied), "appliedIndex");
    assert(applied >= snap.index, `applied ${applied} is behind the snapshot at ${snap.index}`);
    assert(applied <= this.log.lastIndex(), `applied ${applied} beyond lastIndex`);
    this.commit = Math.max(hardState.commitIndex, applied);
    assert(this.commit <= this.log.lastIndex(), `commit ${this.commit} beyond lastIndex`);
    this.applied = applied;
    this.applying = applied;
    this.rebuildConfs(snap);
    this.lastHardState = this.hardState();
    this.becomeFollower(this.term, null);
    this.lastSoft = { role: this.role, leaderId: this.leaderId, term: this.term };
  }

  // ------------------------------------------------------------------ inputs

  /** One unit of logical time. */
  tick(): void {
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  /** Handles one message from a peer. Messages for another node are a wiring bug. */
  step(m: Message): void {
    assert(m.to === this.id, `message for ${m.to} stepped into ${this.id}`);
    if (m.from === this.id) return;
    if (m.term > this.term) {
      if (m.type === "MsgVote" || m.type === "MsgPreVote") {
        const inLease =
          this.cfg.checkQuorum &&
          this.leaderId !== null &&
          this.electionElapsed < this.cfg.electionTimeoutTicks;
        // A node that still hears from a leader ignores elections (check-quorum
        // leases): a partitioned node coming back cannot depose a healthy leader.
        if (inLease && !m.transfer) return;
      }
      if (m.type === "MsgPreVote") {
        // Pre-votes never change terms.
      } else if (m.type === "MsgPreVoteResp" && !m.reject) {
        // The term of a granted pre-vote is the one we will campaign in.
      } else if (m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if (
        (this.cfg.checkQuorum || this.cfg.preVote) &&
        (m.type === "MsgApp" || m.type === "MsgHeartbeat")
      ) {
        // Tell a stale leader about the newer term, or it would keep a lease forever.
        this.send(this.msg("MsgAppResp", m.from));
      } else if (m.type === "MsgPreVote") {
        const resp = this.msg("MsgPreVoteResp", m.from);
        resp.reject = true;
        this.send(resp);
      }
      return;
    }

    if (m.type === "MsgVote" || m.type === "MsgPreVote") {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        break;
      case "candidate":
      case "precandidate":
        this.stepCandidate(m);
        break;
      case "follower":
        this.stepFollower(m);
        break;
    }
  }

  /**
   * Appends a client entry. Throws KvError NOT_LEADER (with the leader's id when
   * known) or NO_LEADER. Returns where the entry went; it is committed once an
   * entry with this index and term is handed out in `committed`.
   */
  propose(data: Uint8Array): { index: number; term: number } {
    this.assertCanPropose();
    return this.appendEntry(EntryType.Normal, data);
  }

  /**
   * Proposes one membership change. Returns null when the change must wait
   * (an earlier change is not committed yet, the leader has not committed an
   * entry of its term, or a learner to promote has not caught up); throws
   * KvError for an invalid change or when this node is not the leader.
   */
  proposeConfChange(
    type: ConfChangeType,
    nodeId: NodeId,
    context?: Uint8Array,
  ): { index: number; term: number } | null {
    this.assertCanPropose();
    const conf = this.conf();
    const next = changedConf(conf, type, nodeId);
    if (typeof next === "string") throw new KvError("INVALID_ARGUMENT", next);
    if (!this.committedInCurrentTerm()) return null;
    if (this.lastConfIndex() > this.commit) return null;
    if (type === ConfChangeType.PromoteLearner) {
      const pr = this.progress.get(nodeId);
      if (!pr || pr.matchIndex < this.commit) return null;
    }
    const data = encodeConfChange({ type, nodeId, conf: next, ...(context ? { context } : {}) });
    return this.appendEntry(EntryType.ConfChange, data);
  }

  /**
   * Asks for a read index; the answer comes as a ReadState with this `context`
   * in a later Ready. Returns false when no leader is known (the caller fails
   * the read with NO_LEADER).
   */
  readIndex(context: number): boolean {
    assert(isIndex(context) && context > 0, "read context must be a positive integer");
    if (this.role === "leader") {
      this.leaderRead(context, this.id);
      return true;
    }
    if (this.leaderId === null) return false;
    const m = this.msg("MsgReadIndex", this.leaderId);
    m.context = context;
    this.send(m);
    return true;
  }

  /** Starts handing leadership to `to` (a voter). Throws KvError when not possible. */
  transferLeadership(to: NodeId): void {
    if (this.role !== "leader") {
      throw new KvError("NOT_LEADER", "only the leader can transfer leadership", {
        ...(this.leaderId ? { leaderId: this.leaderId } : {}),
      });
    }
    if (!isVoter(this.conf(), to)) throw new KvError("INVALID_ARGUMENT", `${to} is not a voter`);
    if (to === this.id) return;
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.transferElapsed = 0;
    const pr = this.progress.get(to)!;
    if (pr.matchIndex === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to, true);
  }

  /** Starts an election now (tests and a single bootstrapping node). */
  campaign(): void {
    if (this.role === "leader" || !this.promotable()) return;
    this.startElection(this.cfg.preVote, false);
  }

  // ------------------------------------------------------------ ready/advance

  hasReady(): boolean {
    return (
      this.appendPending ||
      this.readRoundWanted ||
      this.msgs.length > 0 ||
      this.msgsEarly.length > 0 ||
      this.readStates.length > 0 ||
      this.pendingInstall !== null ||
      this.snapshotChunksOut.length > 0 ||
      this.log.hasEntriesToHandOut() ||
      this.commit > this.applying ||
      !sameHardState(this.hardState(), this.lastHardState) ||
      this.softChanged()
    );
  }

  /** Hands out new work; see the ordering contract on `Ready`. */
  ready(): Ready {
    if (this.readRoundWanted) {
      this.readRoundWanted = false;
      // The round starts after every read it serves arrived, as ReadIndex requires.
      if (this.role === "leader") {
        this.readRound++;
        this.broadcastHeartbeat();
      }
    }
    if (this.appendPending) {
      this.appendPending = false;
      if (this.role === "leader") {
        for (const id of this.progress.keys()) {
          if (id === this.id) continue;
          // Pipelining: fill the follower's window, one batch per message.
          for (let i = 0; i < this.cfg.inflightCountMax && this.sendAppend(id, false); i++) {}
        }
      }
    }
    const hs = this.hardState();
    const hardState = sameHardState(hs, this.lastHardState) ? null : hs;
    this.lastHardState = hs;
    const snapMeta = this.log.takeSnapshotToHandOut();
    let snapshot: SnapshotToInstall | null = null;
    if (snapMeta) {
      assert(this.pendingInstall !== null, "snapshot to hand out without data");
      snapshot = this.pendingInstall;
      this.applying = Math.max(this.applying, snapMeta.index);
    }
    this.pendingInstall = null;
    const snapshotChunks = this.snapshotChunksOut;
    this.snapshotChunksOut = [];
    const entries = this.log.takeEntriesToHandOut();
    let committed: Entry[] = [];
    if (this.commit > this.applying) {
      committed = this.log.entries(this.applying + 1, this.commit + 1, this.cfg.applyBytesMax);
      this.applying = committed[committed.length - 1]!.index;
    }
    const earlyMessages = this.msgsEarly;
    this.msgsEarly = [];
    const messages = this.msgs;
    this.msgs = [];
    const readStates = this.readStates;
    this.readStates = [];
    let softState: Ready["softState"] = null;
    if (this.softChanged()) {
      softState = { role: this.role, leaderId: this.leaderId, term: this.term };
      this.lastSoft = softState;
    }
    this.readySeq++;
    return {
      seq: this.readySeq,
      hardState,
      entries,
      snapshotChunks,
      snapshot,
      earlyMessages,
      messages,
      committed,
      readStates,
      softState,
    };
  }

  /**
   * The Ready's write (step 2) is durable. Call in hand-out order, before sending
   * its `messages`. The leader's own matchIndex moves here, and only here: it
   * counts itself toward a commit only for what is durable on its own disk,
   * while its AppendEntries for those entries may already be out (§10.2.1).
   */
  persisted(rd: Ready): void {
    if (rd.seq <= this.persistedSeq) return;
    assert(
      rd.seq === this.persistedSeq + 1,
      `Ready ${rd.seq} persisted after ${this.persistedSeq}: out of order`,
    );
    this.persistedSeq = rd.seq;
    if (rd.hardState) this.durableTerm = rd.hardState.currentTerm;
    // Storage holds the snapshot now; later entries rest on it (drop it first, or
    // a log with no unstable entries would fall back to the pending snapshot).
    if (rd.snapshot) this.log.stableSnapshotTo(rd.snapshot.meta.index);
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      this.log.stableTo(last.index, last.term);
      if (this.role === "leader" && this.maybeCommit()) this.broadcastAppend();
    }
  }

  /** The driver finished a Ready: persisted, sent, applied. Call in hand-out order. */
  advance(rd: Ready): void {
    this.persisted(rd);
    if (rd.snapshot) this.applied = Math.max(this.applied, rd.snapshot.meta.index);
    if (rd.committed.length > 0) {
      this.applied = Math.max(this.applied, rd.committed[rd.committed.length - 1]!.index);
    }
  }

  /**
   * A state machine snapshot at `index` is durable and storage compacted up to it.
   * Transfers of older images go on: the follower then needs one more, which is
   * cheaper than restarting a long transfer at every compaction.
   */
  compacted(index: number): void {
    while (this.confs.length > 1 && this.confs[1]!.index <= index) this.confs.shift();
  }

  /** Leader: the snapshot being streamed to `to`, or null when it is not in snapshot state. */
  snapshotTransfer(to: NodeId): SnapshotMeta | null {
    if (this.role !== "leader") return null;
    const pr = this.progress.get(to);
    const meta = this.outgoing.get(to);
    if (pr?.state !== "snapshot" || !meta || meta.index !== pr.snapshotIndex) return null;
    return meta;
  }

  /**
   * Leader: the driver cannot stream the image it was sending to `to` (it failed to
   * read it, or dropped it): probe again, which starts over with a new image.
   */
  snapshotAborted(to: NodeId): void {
    const pr = this.progress.get(to);
    this.outgoing.delete(to);
    if (this.role !== "leader" || pr?.state !== "snapshot") return;
    // Not received: forget its index so probing restarts from what the follower has.
    pr.snapshotIndex = 0;
    pr.becomeProbe();
  }

  // ------------------------------------------------------------------ status

  status(): RaftStatus {
    const progress: RaftStatus["progress"] = {};
    if (this.role === "leader") {
      for (const [id, pr] of this.progress) {
        progress[id] = {
          match: pr.matchIndex,
          next: pr.nextIndex,
          state: pr.state,
          inflight: pr.inflights.count(),
          recentActive: pr.recentActive,
          isLearner: pr.isLearner,
        };
      }
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      votedFor: this.votedFor,
      leaderId: this.leaderId,
      commitIndex: this.commit,
      appliedIndex: this.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      conf: copyConf(this.conf()),
      leadTransferee: this.leadTransferee,
      progress,
      violations: { ...this.violations },
    };
  }

  /** The few fields a checker polls after every event, without allocating much. */
  summary(): {
    role: Role;
    term: number;
    commitIndex: number;
    firstIndex: number;
    lastIndex: number;
    violations: number;
  } {
    return {
      role: this.role,
      term: this.term,
      commitIndex: this.commit,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      violations: this.violations.count,
    };
  }

  /** Membership as of `index` (used to describe a snapshot taken there). */
  confAt(index: number): ConfState {
    let found = this.confs[0]!;
    for (const c of this.confs) {
      if (c.index <= index) found = c;
      else break;
    }
    return copyConf(found.conf);
  }

  /** Term of the entry at `index` (undefined if compacted or absent). */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  /** Entries in [lo, hi) (test and checker access; lo must not be compacted). */
  entriesIn(lo: number, hi: number): Entry[] {
    return this.log.entries(lo, hi);
  }

  // ------------------------------------------------------------------ roles

  private becomeFollower(term: number, leaderId: NodeId | null): void {
    this.reset(term);
    this.role = "follower";
    this.leaderId = leaderId;
  }

  private becomePreCandidate(): void {
    assert(this.role !== "leader", "leader cannot become pre-candidate");
    // Term and vote stay: a pre-vote changes nothing durable.
    this.votes = new Map();
    this.role = "precandidate";
    this.leaderId = null;
  }

  private becomeCandidate(): void {
    assert(this.role !== "leader", "leader cannot become candidate");
    // Peers cannot send a term above RAFT_WIRE_MAX (codec), so this needs 2^52 elections.
    assert(isIndex(this.term + 1), `term ${this.term} has no successor`);
    this.reset(this.term + 1);
    this.votedFor = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", "only a candidate becomes leader");
    this.reset(this.term);
    this.role = "leader";
    this.leaderId = this.id;
    const last = this.log.lastIndex();
    for (const [id, pr] of this.progress) {
      pr.nextIndex = last + 1;
      pr.matchIndex = id === this.id ? this.log.persistedIndex() : 0;
      pr.recentActive = id === this.id;
    }
    if (!this.unsafe.skipNoopOnElection) {
      // Entries of earlier terms commit only through one of this term (§5.4.2).
      this.appendEntry(EntryType.Noop, new Uint8Array(0));
    } else if (this.maybeCommit()) {
      this.broadcastAppend();
    }
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.votedFor = null;
    }
    this.leaderId = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout =
      this.cfg.electionTimeoutTicks + (this.prng.nextUint32() % this.cfg.electionTimeoutTicks);
    this.votes = new Map();
    this.leadTransferee = null;
    this.transferElapsed = 0;
    this.pendingReads = [];
    this.readRoundWanted = false;
    this.readsAwaitingCommit = [];
    this.outgoing.clear();
    this.rebuildProgress();
  }

  private rebuildProgress(): void {
    this.progress.clear();
    const conf = this.conf();
    const next = this.log.lastIndex() + 1;
    for (const id of conf.voters) this.progress.set(id, this.newProgress(next, false));
    for (const id of conf.learners) this.progress.set(id, this.newProgress(next, true));
  }

  private newProgress(next: number, isLearner: boolean): Progress {
    return new Progress(next, isLearner, this.cfg.inflightCountMax, this.cfg.inflightBytesMax);
  }

  // ------------------------------------------------------------- elections

  private promotable(): boolean {
    return isVoter(this.conf(), this.id) && !this.log.hasPendingSnapshot();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.startElection(this.cfg.preVote, false);
    }
  }

  private startElection(preVote: boolean, transfer: boolean): void {
    let voteTerm: number;
    let type: MessageType;
    if (preVote) {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
      type = "MsgPreVote";
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
      type = "MsgVote";
    }
    this.votes.set(this.id, true);
    if (this.tallyVotes()) return;
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.conf().voters) {
      if (id === this.id) continue;
      const m = emptyMessage(type, this.id, id, voteTerm);
      m.index = lastIndex;
      m.logTerm = lastTerm;
      m.transfer = transfer;
      this.send(m);
    }
  }

  /** Returns true when the election ended (won or lost). */
  private tallyVotes(): boolean {
    const result = voteResult(this.conf().voters, this.votes);
    if (result === "won") {
      if (this.role === "precandidate") this.startElection(false, false);
      else this.becomeLeader();
      return true;
    }
    if (result === "lost") {
      this.becomeFollower(this.term, null);
      return true;
    }
    return false;
  }

  private handleVoteRequest(m: Message): void {
    const pre = m.type === "MsgPreVote";
    const canVote =
      this.votedFor === m.from ||
      (this.votedFor === null && this.leaderId === null) ||
      (pre && m.term > this.term);
    const resp = this.msg(pre ? "MsgPreVoteResp" : "MsgVoteResp", m.from);
    const upToDate = this.unsafe.voteWithoutLogCheck || this.log.isUpToDate(m.index, m.logTerm);
    if (canVote && upToDate) {
      // A granted pre-vote answers in the term the candidate will use.
      resp.term = m.term;
      if (!pre) {
        this.electionElapsed = 0;
        this.votedFor = m.from;
      }
    } else {
      resp.reject = true;
    }
    this.send(resp);
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "MsgApp":
      case "MsgHeartbeat":
      case "MsgSnap":
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case "MsgVoteResp":
      case "MsgPreVoteResp": {
        const expected = this.role === "precandidate" ? "MsgPreVoteResp" : "MsgVoteResp";
        if (m.type !== expected) return;
        this.votes.set(m.from, !m.reject);
        this.tallyVotes();
        return;
      }
      case "MsgTimeoutNow":
      case "MsgReadIndex":
      case "MsgReadIndexResp":
      case "MsgAppResp":
      case "MsgHeartbeatResp":
      case "MsgSnapResp":
        return;
      default:
        return;
    }
  }

  // ------------------------------------------------------------- follower

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "MsgApp":
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleAppend(m);
        return;
      case "MsgHeartbeat":
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleHeartbeat(m);
        return;
      case "MsgSnap":
        this.electionElapsed = 0;
        this.leaderId = m.from;
        this.handleSnapshot(m);
        return;
      case "MsgTimeoutNow":
        // The leader asked us to take over: campaign now, no pre-vote, past leases.
        if (this.promotable()) this.startElection(false, true);
        return;
      case "MsgReadIndexResp":
        if (!m.reject) this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  private handleAppend(m: Message): void {
    const resp = this.msg("MsgAppResp", m.from);
    if (m.index < this.commit) {
      // Everything up to commit already matches the leader's log.
      resp.index = this.commit;
      this.send(resp);
      return;
    }
    if (this.log.matchTerm(m.index, m.logTerm)) {
      const lastNew = m.index + m.entries.length;
      const conflict = this.log.findConflict(m.entries);
      if (conflict > 0) {
        if (conflict <= this.commit) {
          // A leader's log never conflicts with what a quorum committed: the sender is
          // broken or hostile. Drop it (no answer, nothing appended) rather than stop.
          this.violation(
            `${m.from} sent entry ${conflict} conflicting with committed ${this.commit}`,
          );
          return;
        }
        const from = m.entries[conflict - m.entries[0]!.index]!;
        this.appendFromLeader(m.entries.slice(from.index - m.entries[0]!.index));
      }
      this.commitTo(Math.min(m.commit, lastNew));
      resp.index = lastNew;
      this.send(resp);
      return;
    }
    const hintIndex = this.log.findConflictByTerm(
      Math.min(m.index, this.log.lastIndex()),
      m.logTerm,
    );
    resp.reject = true;
    resp.index = m.index;
    resp.rejectHint = hintIndex;
    resp.logTerm = this.log.term(hintIndex) ?? 0;
    this.send(resp);
  }

  private appendFromLeader(entries: Entry[]): void {
    const first = entries[0]!.index;
    if (first <= this.log.lastIndex()) this.truncateConfs(first);
    this.log.append(entries);
    for (const e of entries) this.noteConfEntry(e);
  }

  private handleHeartbeat(m: Message): void {
    if (m.commit > this.commit && m.commit <= this.log.lastIndex()) this.commitTo(m.commit);
    const resp = this.msg("MsgHeartbeatResp", m.from);
    resp.context = m.context;
    this.send(resp);
  }

  private handleSnapshot(m: Message): void {
    const chunk = m.snapshot;
    assert(chunk !== null, "MsgSnap without chunk");
    const meta = chunk.meta;
    if (meta.index <= this.commit) {
      // Nothing new in it: tell the leader where we are so it resumes appends.
      this.snapshotReceive = null;
      const resp = this.msg("MsgAppResp", m.from);
      resp.index = this.commit;
      this.send(resp);
      return;
    }
    let rx = this.snapshotReceive;
    if (chunk.offset === 0) {
      rx = { meta, from: m.from, bytes: 0, stored: 0 };
      this.snapshotReceive = rx;
    }
    const same = rx !== null && rx.meta.index === meta.index && rx.meta.term === meta.term;
    if (!same || chunk.offset !== rx!.bytes) {
      // A resend while our write of the chunk is still running gets its answer from
      // snapshotStored(); otherwise say what is stored (a lost ack), and restart a
      // different snapshot from 0.
      if (same && rx!.stored < rx!.bytes) return;
      const ack = this.msg("MsgSnapResp", m.from);
      ack.snapshotOffset = same ? rx!.stored : 0;
      ack.snapshotIndex = meta.index;
      if (!same) this.snapshotReceive = null;
      this.send(ack);
      return;
    }
    // The driver writes the chunk and then calls snapshotStored(), which acknowledges
    // it: the leader sends the next chunk only once this one is stored (flow control),
    // and a chunk that fails its checks is never acknowledged.
    this.snapshotChunksOut.push({ meta, offset: chunk.offset, data: chunk.data, done: chunk.done });
    rx!.bytes += chunk.data.byteLength;
    rx!.from = m.from;
  }

  /**
   * The driver stored the received chunks of snapshot `meta` up to `bytes` (`done`:
   * all of it). Acknowledges them; after the last one, the snapshot replaces the log
   * ("install": the next Ready carries it and the driver installs what it stored) or
   * is not needed ("discard": our log already has its last entry, or we committed
   * past it). "stale": a newer transfer replaced it (drop what was stored).
   */
  snapshotStored(
    meta: SnapshotMeta,
    bytes: number,
    done: boolean,
  ): "more" | "install" | "discard" | "stale" {
    const rx = this.snapshotReceive;
    if (!rx || rx.meta.index !== meta.index || rx.meta.term !== meta.term || bytes > rx.bytes) {
      return "stale";
    }
    rx.stored = Math.max(rx.stored, bytes);
    if (!done) {
      const ack = this.msg("MsgSnapResp", rx.from);
      ack.snapshotOffset = bytes;
      ack.snapshotIndex = meta.index;
      this.send(ack);
      return "more";
    }
    this.snapshotReceive = null;
    let outcome: "install" | "discard" = "discard";
    if (meta.index <= this.commit) {
      // Appends overtook the transfer (a new leader, or entries arriving meanwhile).
    } else if (this.log.matchTerm(meta.index, meta.term)) {
      // Our log already holds the snapshot's last entry: fast-forward instead.
      this.commitTo(meta.index);
    } else {
      this.log.restore({ index: meta.index, term: meta.term, conf: copyConf(meta.conf) });
      this.commit = meta.index;
      this.confs = [{ index: meta.index, conf: copyConf(meta.conf) }];
      this.pendingInstall = { meta };
      outcome = "install";
    }
    // Sent after the install is durable (this Ready's persist step).
    const resp = this.msg("MsgAppResp", rx.from);
    resp.index = outcome === "install" ? this.log.lastIndex() : this.commit;
    this.send(resp);
    return outcome;
  }

  /** The driver could not store a chunk of `meta` (it failed its checks): restart the transfer. */
  snapshotStoreFailed(meta: SnapshotMeta): void {
    const rx = this.snapshotReceive;
    if (!rx || rx.meta.index !== meta.index || rx.meta.term !== meta.term) return;
    this.snapshotReceive = null;
    const ack = this.msg("MsgSnapResp", rx.from);
    ack.snapshotOffset = 0;
    ack.snapshotIndex = meta.index;
    this.send(ack);
  }

  private commitTo(index: number): void {
    if (index <= this.commit) return;
    assert(
      index <= this.log.lastIndex(),
      `commit ${index} beyond lastIndex ${this.log.lastIndex()}`,
    );
    this.commit = index;
  }

  // ------------------------------------------------------------- leader

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        const self = this.id;
        const active = hasQuorum(this.conf().voters, (id) => {
          if (id === self) return true;
          return this.progress.get(id)?.recentActive === true;
        });
        for (const [id, pr] of this.progress) if (id !== self) pr.recentActive = false;
        if (!active) {
          // Cannot hear a quorum: step down rather than serve stale reads or hang writes.
          this.becomeFollower(this.term, null);
          return;
        }
      }
    }
    if (this.leadTransferee !== null) {
      this.transferElapsed++;
      if (this.transferElapsed >= this.cfg.electionTimeoutTicks) {
        this.leadTransferee = null;
        this.transferElapsed = 0;
      }
    }
    for (const [id, pr] of this.progress) {
      if (id === this.id || pr.state !== "snapshot") continue;
      pr.snapshotIdleTicks++;
      if (pr.snapshotIdleTicks >= this.cfg.heartbeatTicks * 2) {
        // A chunk or its acknowledgement was lost: resend from the last acknowledged offset.
        pr.snapshotIdleTicks = 0;
        this.sendSnapshotChunk(id, pr);
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    switch (m.type) {
      case "MsgAppResp":
        if (pr) this.handleAppendResponse(m, pr);
        return;
      case "MsgHeartbeatResp":
        if (!pr) return;
        pr.recentActive = true;
        pr.probeSent = false;
        pr.heartbeatAnswered();
        if (m.context > pr.readRoundAcked) pr.readRoundAcked = m.context;
        if (pr.matchIndex < this.log.lastIndex()) this.sendAppend(m.from, false);
        this.releaseReads();
        return;
      case "MsgSnapResp":
        if (pr?.state !== "snapshot" || m.snapshotIndex !== pr.snapshotIndex) return;
        pr.recentActive = true;
        pr.snapshotIdleTicks = 0;
        if (m.snapshotOffset === pr.snapshotOffset && m.snapshotOffset !== 0) return;
        pr.snapshotOffset = m.snapshotOffset;
        this.sendSnapshotChunk(m.from, pr);
        return;
      case "MsgReadIndex":
        if (pr) pr.recentActive = true;
        this.leaderRead(m.context, m.from);
        return;
      case "MsgApp":
      case "MsgHeartbeat":
      case "MsgSnap":
        // Only one node can win a term's election: the sender is broken or hostile.
        this.violation(`two leaders in term ${this.term}: ${this.id} and ${m.from}`);
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      if (wasPaused && !pr.isPaused()) this.sendAppend(m.from, false);
      return;
    }
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.matchIndex >= pr.snapshotIndex) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") pr.inflights.freeLE(m.index);
    if (this.maybeCommit()) {
      this.broadcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from, false);
    }
    // Pipelining: keep sending while the window has room and there is something to send.
    for (let i = 0; i < this.cfg.inflightCountMax && this.sendAppend(m.from, false); i++) {}
    if (m.from === this.leadTransferee && pr.matchIndex === this.log.lastIndex()) {
      this.sendTimeoutNow(m.from);
    }
  }

  private maybeCommit(): boolean {
    const self = this.id;
    const persisted = this.unsafe.leaderCountsSelfBeforePersist
      ? this.log.lastIndex()
      : this.log.persistedIndex();
    const index = committedIndex(this.conf().voters, (id) =>
      id === self ? persisted : (this.progress.get(id)?.matchIndex ?? 0),
    );
    if (index <= this.commit) return false;
    // Only an entry of the current term commits by counting replicas (Figure 8).
    if (!this.unsafe.commitEarlierTermsByCount && this.log.term(index) !== this.term) return false;
    this.commit = index;
    this.afterLeaderCommit();
    return true;
  }

  private afterLeaderCommit(): void {
    if (this.readsAwaitingCommit.length > 0 && this.committedInCurrentTerm()) {
      const waiting = this.readsAwaitingCommit;
      this.readsAwaitingCommit = [];
      for (const r of waiting) this.leaderRead(r.context, r.from);
    }
    if (!isVoter(this.conf(), this.id) && this.lastConfIndex() <= this.commit) {
      // We removed ourselves and the change is committed: hand over and step down.
      let best: NodeId | null = null;
      let bestMatch = -1;
      for (const id of this.conf().voters) {
        const match = this.progress.get(id)?.matchIndex ?? 0;
        if (match > bestMatch) {
          best = id;
          bestMatch = match;
        }
      }
      this.broadcastAppend();
      if (best !== null && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
      this.becomeFollower(this.term, null);
    }
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.commit) === this.term;
  }

  private broadcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  private broadcastHeartbeat(): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      const m = this.msg("MsgHeartbeat", id);
      m.commit = Math.min(pr.matchIndex, this.commit);
      m.context = this.readRound;
      this.send(m);
    }
  }

  /** Sends entries from nextIndex (or a snapshot). Returns whether a message went out. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (!pr || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.nextIndex - 1;
    const prevTerm = this.log.term(prevIndex);
    const last = this.log.lastIndex();
    if (prevTerm === undefined || pr.nextIndex < this.log.firstIndex()) {
      return this.startSnapshot(to, pr);
    }
    let entries: Entry[] = [];
    if (pr.nextIndex <= last && (pr.state === "replicate" || pr.state === "probe")) {
      const hi = Math.min(last + 1, pr.nextIndex + this.cfg.appendEntriesMax);
      entries = this.log.entries(pr.nextIndex, hi, this.cfg.appendBytesMax);
    }
    if (entries.length === 0 && !sendIfEmpty && pr.state === "replicate") return false;
    const m = this.msg("MsgApp", to);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = entries;
    m.commit = this.commit;
    let bytes = 0;
    for (const e of entries) bytes += e.data.byteLength;
    pr.sentEntries(prevIndex + entries.length, bytes, entries.length);
    this.send(m);
    return true;
  }

  private startSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive || !this.snapshotProvider) return false;
    const needed = this.log.firstIndex() - 1;
    const index = this.snapshotProvider(to, needed);
    if (index === null) return false;
    assert(isIndex(index), "snapshot index");
    assert(index >= needed, `state machine snapshot at ${index} is behind compaction ${needed}`);
    assert(index <= this.commit, `state machine snapshot at ${index} beyond commit`);
    const term = this.log.term(index);
    assert(term !== undefined, `no term at snapshot index ${index}`);
    this.outgoing.set(to, { index, term, conf: this.confAt(index) });
    pr.becomeSnapshot(index);
    this.sendSnapshotChunk(to, pr);
    return true;
  }

  /**
   * Asks for the chunk at the offset the follower acknowledged. The chunk leaves
   * without bytes: the driver reads them from its image of the state machine and
   * fills in `data` and `done` (the core never holds a snapshot).
   */
  private sendSnapshotChunk(to: NodeId, pr: Progress): void {
    const meta = this.outgoing.get(to);
    if (!meta || meta.index !== pr.snapshotIndex) {
      // The snapshot we were sending is gone: start over.
      this.snapshotAborted(to);
      this.sendAppend(to, true);
      return;
    }
    const m = this.msg("MsgSnap", to);
    m.snapshot = { meta, offset: pr.snapshotOffset, data: EMPTY, done: false };
    this.send(m);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(this.msg("MsgTimeoutNow", to));
  }

  private leaderRead(context: number, from: NodeId): void {
    if (!this.committedInCurrentTerm()) {
      // Our commit index may lag the real one until an entry of this term commits.
      this.readsAwaitingCommit.push({ context, from });
      return;
    }
    const voters = this.conf().voters;
    if (voters.length === 1 && voters[0] === this.id) {
      this.answerRead({ index: this.commit, context, from, round: 0 });
      return;
    }
    this.pendingReads.push({ index: this.commit, context, from, round: this.readRound + 1 });
    this.readRoundWanted = true;
  }

  private releaseReads(): void {
    if (this.pendingReads.length === 0) return;
    const self = this.id;
    const confirmed = committedIndex(this.conf().voters, (id) =>
      id === self ? this.readRound : (this.progress.get(id)?.readRoundAcked ?? 0),
    );
    let n = 0;
    while (n < this.pendingReads.length && this.pendingReads[n]!.round <= confirmed) {
      this.answerRead(this.pendingReads[n]!);
      n++;
    }
    if (n > 0) this.pendingReads = this.pendingReads.slice(n);
  }

  private answerRead(r: PendingRead): void {
    if (r.from === this.id) {
      this.readStates.push({ index: r.index, context: r.context });
      return;
    }
    const m = this.msg("MsgReadIndexResp", r.from);
    m.index = r.index;
    m.context = r.context;
    this.send(m);
  }

  // ------------------------------------------------------------- log + conf

  private assertCanPropose(): void {
    if (this.role !== "leader") {
      if (this.leaderId !== null) {
        throw new KvError("NOT_LEADER", `${this.id} is not the leader`, {
          leaderId: this.leaderId,
        });
      }
      throw new KvError("NO_LEADER", `${this.id} knows no leader`);
    }
    if (this.leadTransferee !== null) {
      throw new KvError("NOT_LEADER", "leadership transfer in progress", {
        leaderId: this.leadTransferee,
      });
    }
  }

  /** RaftStatus.violations' count, without building a status (polled per message). */
  violationCount(): number {
    return this.violations.count;
  }

  /** A message that breaks Raft's own rules: dropped and counted (RaftStatus.violations). */
  private violation(what: string): void {
    this.violations.count++;
    this.violations.last = what;
  }

  private appendEntry(type: EntryType, data: Uint8Array): { index: number; term: number } {
    assert(this.role === "leader", "append on a non-leader");
    const entry: Entry = { index: this.log.lastIndex() + 1, term: this.term, type, data };
    assert(
      isIndex(entry.index) && isIndex(entry.term),
      `entry ${entry.index} beyond safe integers`,
    );
    this.log.append([entry]);
    this.noteConfEntry(entry);
    // Batching: every proposal appended before the next ready() goes out in one
    // AppendEntries per follower. A single voter commits once durable (persisted()).
    this.appendPending = true;
    return { index: entry.index, term: entry.term };
  }

  private conf(): ConfState {
    return this.confs[this.confs.length - 1]!.conf;
  }

  private lastConfIndex(): number {
    return this.confs[this.confs.length - 1]!.index;
  }

  private noteConfEntry(e: Entry): void {
    if (e.type !== EntryType.ConfChange) return;
    const cc = decodeConfChange(e.data);
    this.confs.push({ index: e.index, conf: copyConf(cc.conf) });
    this.applyConf();
  }

  private truncateConfs(from: number): void {
    let changed = false;
    while (this.confs.length > 1 && this.confs[this.confs.length - 1]!.index >= from) {
      this.confs.pop();
      changed = true;
    }
    if (changed) this.applyConf();
  }

  /** Makes the latest configuration effective (used as soon as it is in the log). */
  private applyConf(): void {
    const conf = this.conf();
    if (this.role !== "leader") return;
    const next = this.log.lastIndex() + 1;
    for (const id of [...this.progress.keys()]) {
      if (!isMember(conf, id)) this.progress.delete(id);
    }
    for (const id of conf.voters) {
      const pr = this.progress.get(id);
      if (pr) pr.isLearner = false;
      else this.progress.set(id, this.newProgress(next, false));
    }
    for (const id of conf.learners) {
      const pr = this.progress.get(id);
      if (pr) pr.isLearner = true;
      else this.progress.set(id, this.newProgress(next, true));
    }
    if (this.leadTransferee !== null && !isVoter(conf, this.leadTransferee)) {
      this.leadTransferee = null;
    }
  }

  private rebuildConfs(snap: SnapshotMeta): void {
    this.confs = [{ index: snap.index, conf: copyConf(snap.conf) }];
    const first = this.log.firstIndex();
    const last = this.log.lastIndex();
    // One scan at start-up; afterwards every ConfChange is noted as it is appended.
    for (let lo = first; lo <= last; ) {
      const batch = this.log.entries(lo, Math.min(last + 1, lo + 1024));
      for (const e of batch) {
        if (e.type === EntryType.ConfChange) {
          this.confs.push({ index: e.index, conf: copyConf(decodeConfChange(e.data).conf) });
        }
      }
      lo += batch.length;
    }
  }

  // ------------------------------------------------------------- helpers

  private hardState(): HardState {
    // The broken variant forgets, on disk, every vote it gave to another node.
    const forget = this.unsafe.voteWithoutPersist && this.votedFor !== this.id;
    return {
      currentTerm: this.term,
      votedFor: forget ? null : this.votedFor,
      commitIndex: this.commit,
    };
  }

  private softChanged(): boolean {
    return (
      this.lastSoft.role !== this.role ||
      this.lastSoft.leaderId !== this.leaderId ||
      this.lastSoft.term !== this.term
    );
  }

  private msg(type: MessageType, to: NodeId): Message {
    return emptyMessage(type, this.id, to, this.term);
  }

  private send(m: Message): void {
    // The leader's replication traffic may overtake its own write (§10.2.1) once
    // its term is durable: a message must never carry a term the disk could forget.
    const early =
      this.role === "leader" &&
      m.term === this.durableTerm &&
      (m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap");
    if (early) this.msgsEarly.push(m);
    else this.msgs.push(m);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return (
    a.currentTerm === b.currentTerm && a.votedFor === b.votedFor && a.commitIndex === b.commitIndex
  );
}

/** The ConfChange encoding as a fold for the storages' `applyConfChange` option. */
export function applyConfChange(_conf: ConfState, entry: Entry): ConfState {
  return copyConf(decodeConfChange(entry.data).conf);
}
