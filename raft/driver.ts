/**
 * The one driver of the Raft core (TigerBeetle style): it is given its ticker,
 * transport, storage and state machine as constructor arguments, so the real
 * node (ws transport, real timers, LevelDB) and the simulator (virtual time,
 * simulated network and disk) run exactly this code.
 *
 * It runs the ready/persist/send/apply/advance loop and is the only place that
 * enforces the ordering contract written on `Ready`:
 *   restore snapshot -> persist (fsync) -> persisted -> send -> advance, and
 *   apply committed -> advance, where apply waits only for the writes holding
 *   the committed entries (usually earlier readies), not for this one,
 * readies in the order handed out, while later readies may start persisting
 * before earlier ones resolve (the storage groups them into one fsync). The
 * leader's `earlyMessages` leave as soon as the write starts, so followers
 * write in parallel with the leader (Raft thesis §10.2.1).
 * A failed persist, an assertion in the core, or a triggered failure point is
 * fatal: the driver stops and reports through `onFatal`; the process restarts
 * from disk.
 */
import { KvError } from "../proto/index.js";
import { assert } from "./assert.js";
import { type RaftConfig, RaftCore, type StateMachineSnapshot } from "./core.js";
import type { Prng } from "./prng.js";
import {
  bytesSnapshotStore,
  type SnapshotSink,
  type SnapshotSource,
  type SnapshotStore,
} from "./snapshot.js";
import type {
  Entry,
  HardState,
  NodeId,
  PersistRequest,
  RaftStorage,
  SnapshotMeta,
} from "./storage.js";
import {
  ConfChangeType,
  type Message,
  type RaftStatus,
  type Ready,
  type SnapshotChunk,
} from "./types.js";

/** Delivers messages to peers, best effort: it may drop, delay or reorder; it never throws. */
export interface RaftTransport {
  send(message: Message): void;
}

/** Logical time: calls `onTick` every tick interval until stopped. */
export interface RaftTicker {
  start(onTick: () => void): void;
  stop(): void;
}

/**
 * The replicated state machine. `apply` must make the entries and the new
 * applied index durable atomically before its promise resolves (so a crash
 * never applies an entry twice or skips one).
 */
export interface RaftStateMachine<R> {
  /** Index of the last entry durably applied (or restored), 0 initially. */
  appliedIndex(): number;
  /** Meta of the last snapshot `restore`d (index 0 if none). */
  restoredMeta(): SnapshotMeta;
  /** Applies committed entries in order; one result per entry (undefined for no-ops/conf). */
  apply(entries: Entry[]): R[] | Promise<R[]>;
  /**
   * Streaming snapshots (raft/snapshot.ts): the leader reads an image in chunks, a
   * follower stores chunks as they come. State machines without it give their whole
   * state as bytes through `snapshot`/`restore` (fine for small ones only).
   */
  snapshots?: SnapshotStore;
  /** The state at `appliedIndex()` as opaque bytes (when `snapshots` is not given). */
  snapshot?(): StateMachineSnapshot;
  /** Replaces the state by a snapshot from the leader, durably (when `snapshots` is not given). */
  restore?(meta: SnapshotMeta, data: Uint8Array): void | Promise<void>;
}

/** Counters of snapshot transfers (for metrics and tests). */
export interface SnapshotStats {
  /** Images opened on this node as leader. */
  opened: number;
  /** Chunks sent (resends included). */
  chunksSent: number;
  /** Transfers whose last chunk was sent. */
  sent: number;
  /** Chunks stored as follower. */
  chunksReceived: number;
  /** Snapshots installed as follower. */
  installed: number;
  /** Transfers abandoned: an image that could not be read, a chunk that failed its checks, a stalled follower. */
  failed: number;
}

/** A leader's image for one follower. */
interface OutgoingImage {
  source: SnapshotSource | null;
  /** A chunk read is running (a resend asked meanwhile is dropped; the core asks again). */
  reading: boolean;
  /** Highest offset asked for, and ticks since it last grew (a stalled transfer is dropped). */
  offset: number;
  stalledTicks: number;
  lastSent: boolean;
}

/** The follower's store for the snapshot being received. */
interface IncomingSnapshot {
  meta: SnapshotMeta;
  sink: SnapshotSink;
}

export const FAIL_POINTS = [
  "raft_before_persist",
  "raft_after_snapshot_restore",
  "raft_before_send",
  "apply_before_commit_batch",
  "raft_before_advance",
  "raft_before_compact",
] as const;
export type FailPointName = (typeof FAIL_POINTS)[number];

/**
 * Named failure points (etcd's gofail). Inert unless a test enables one; an
 * action that throws crashes the driver at that point.
 */
export class FailPoints {
  private readonly actions = new Map<FailPointName, () => void>();

  enable(name: FailPointName, action: () => void): void {
    this.actions.set(name, action);
  }

  disable(name: FailPointName): void {
    this.actions.delete(name);
  }

  trigger(name: FailPointName): void {
    const action = this.actions.get(name);
    if (action) action();
  }
}

/** Thrown by a fail point action to simulate a crash at that point. */
export class InjectedCrash extends Error {
  override readonly name = "InjectedCrash";
}

/**
 * What a driver tells its listeners: `leader` when this node's role, the leader it
 * knows or the term changed (and once when the driver stops); `round` after every tick
 * and every Ready persisted, sent and applied (progress, commit or membership may have
 * moved).
 * Listeners run synchronously and must not throw.
 */
export type DriverEvent = "leader" | "round";
export type DriverListener = (event: DriverEvent) => void;

export interface RaftDriverOptions<R> {
  id: NodeId;
  storage: RaftStorage;
  transport: RaftTransport;
  ticker: RaftTicker;
  stateMachine: RaftStateMachine<R>;
  prng: Prng;
  electionTimeoutTicks: number;
  heartbeatTicks: number;
  /** A proposal, read or membership change not done within this many ticks fails with TIMEOUT. */
  requestTimeoutTicks?: number;
  /** Most proposals waiting for commit at once; more fail at once with TIMEOUT. */
  pendingProposalsMax?: number;
  failPoints?: FailPoints;
  /** Called once when the driver stops because of a fatal error. */
  onFatal?: (err: unknown) => void;
  core?: Partial<Omit<RaftConfig, "id" | "storage" | "prng" | "appliedIndex" | "snapshotProvider">>;
}

interface PendingProposal<R> {
  term: number;
  ticks: number;
  resolve: (v: { index: number; result: R }) => void;
  reject: (err: unknown) => void;
}

interface PendingRead {
  index: number | null;
  ticks: number;
  resolve: (index: number) => void;
  reject: (err: unknown) => void;
}

interface PendingConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context?: Uint8Array;
  ticks: number;
  index: number | null;
  term: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface PendingTransfer {
  to: NodeId;
  ticks: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class RaftDriver<R = unknown> {
  readonly id: NodeId;
  private readonly core: RaftCore;
  private readonly storage: RaftStorage;
  private readonly transport: RaftTransport;
  private readonly ticker: RaftTicker;
  private readonly sm: RaftStateMachine<R>;
  private readonly failPoints: FailPoints;
  private readonly onFatal: (err: unknown) => void;
  private readonly requestTimeoutTicks: number;
  private readonly pendingProposalsMax: number;
  private readonly electionTimeoutTicks: number;

  private stopped = false;
  private started = false;
  private scheduled = false;
  /** Completes when every Ready handed out so far has been advanced. */
  private applyTail: Promise<void> = Promise.resolve();
  /** The hard state last handed to storage (null: what the storage opened with). */
  private lastHardState: HardState | null = null;
  /** Completes when every Ready handed out so far is durable and told to the core. */
  private persistedTail: Promise<void> = Promise.resolve();
  /** Set while a snapshot restore is in the persist order: later persists wait for it. */
  private snapshotBarrier: Promise<void> | null = null;
  private readonly proposals = new Map<number, PendingProposal<R>>();
  private readonly reads = new Map<number, PendingRead>();
  private readonly confChanges: PendingConfChange[] = [];
  private transfer: PendingTransfer | null = null;
  private readContext: number;
  private compacting = false;
  private readonly snapshotStore: SnapshotStore;
  private readonly snapshotChunkBytes: number;
  private readonly outgoing = new Map<NodeId, OutgoingImage>();
  /** Chunk writes, in the order received. */
  private sinkTail: Promise<void> = Promise.resolve();
  private incoming: IncomingSnapshot | null = null;
  /** A fully stored snapshot the core decided to install (the next snapshot Ready). */
  private toInstall: IncomingSnapshot | null = null;
  private readonly listeners = new Set<DriverListener>();
  private readonly snapshotCounters: SnapshotStats = {
    opened: 0,
    chunksSent: 0,
    sent: 0,
    chunksReceived: 0,
    installed: 0,
    failed: 0,
  };

  constructor(options: RaftDriverOptions<R>) {
    this.id = options.id;
    this.storage = options.storage;
    this.transport = options.transport;
    this.ticker = options.ticker;
    this.sm = options.stateMachine;
    this.failPoints = options.failPoints ?? new FailPoints();
    this.onFatal = options.onFatal ?? (() => {});
    this.electionTimeoutTicks = options.electionTimeoutTicks;
    this.requestTimeoutTicks = options.requestTimeoutTicks ?? options.electionTimeoutTicks * 10;
    this.pendingProposalsMax = options.pendingProposalsMax ?? 4096;
    // Read contexts start at a random point so that a stale answer meant for a
    // previous incarnation of this node cannot complete a new read.
    this.readContext = (options.prng.nextUint32() & 0x1fffff) * 4294967296;
    const sm = this.sm;
    if (sm.snapshots) this.snapshotStore = sm.snapshots;
    else {
      assert(sm.snapshot && sm.restore, "the state machine gives no snapshots");
      this.snapshotStore = bytesSnapshotStore({
        snapshot: () => sm.snapshot!(),
        restore: (meta, data) => sm.restore!(meta, data),
      });
    }
    this.snapshotChunkBytes = options.core?.snapshotChunkBytes ?? 256 * 1024;
    this.core = new RaftCore({
      ...options.core,
      id: options.id,
      storage: options.storage,
      prng: options.prng,
      electionTimeoutTicks: options.electionTimeoutTicks,
      heartbeatTicks: options.heartbeatTicks,
      appliedIndex: this.sm.appliedIndex(),
      snapshotProvider: (to, minIndex) => this.provideSnapshot(to, minIndex),
    });
  }

  /**
   * Opens a driver after a crash: if a snapshot restore reached the state
   * machine but not the log, finishes it first, then builds the driver.
   */
  static async open<R>(options: RaftDriverOptions<R>): Promise<RaftDriver<R>> {
    const restored = options.stateMachine.restoredMeta();
    if (restored.index > options.storage.snapshotMeta().index && restored.index > 0) {
      const term = options.storage.term(restored.index);
      if (term !== restored.term || options.storage.firstIndex() > restored.index + 1) {
        await options.storage.persist({ snapshot: restored });
      }
    }
    return new RaftDriver(options);
  }

  start(): void {
    assert(!this.started, "driver started twice");
    this.started = true;
    this.ticker.start(() => this.onTick());
    this.schedule();
  }

  /** Stops ticking and processing; pending requests fail with SHUTTING_DOWN. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.ticker.stop();
    this.failAll(new KvError("SHUTTING_DOWN", `${this.id} is stopping`));
    for (const out of this.outgoing.values()) out.source?.close();
    this.outgoing.clear();
    this.emit("leader");
  }

  /**
   * Calls `listener` on every driver event (see DriverEvent), so callers wait for a
   * leader or for progress without polling. Returns the unsubscribe function.
   */
  subscribe(listener: DriverListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: DriverEvent): void {
    for (const l of [...this.listeners]) l(event);
  }

  isStopped(): boolean {
    return this.stopped;
  }

  /** A message from a peer (already decoded and validated by the transport). */
  receive(message: Message): void {
    if (this.stopped) return;
    this.guard(() => this.core.step(message));
    this.schedule();
  }

  /** Replicates `data`; resolves with its index and the state machine's result once applied here. */
  propose(data: Uint8Array): Promise<{ index: number; result: R }> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    if (this.proposals.size >= this.pendingProposalsMax) {
      return Promise.reject(new KvError("TIMEOUT", "too many proposals in flight"));
    }
    let placed: { index: number; term: number };
    try {
      placed = this.core.propose(data);
    } catch (err) {
      return Promise.reject(err);
    }
    this.schedule();
    return new Promise((resolve, reject) => {
      this.proposals.set(placed.index, { term: placed.term, ticks: 0, resolve, reject });
    });
  }

  /** A linearizable read point: resolves once this node has applied at least that index. */
  readIndex(): Promise<number> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    const context = ++this.readContext;
    let asked = false;
    this.guard(() => {
      asked = this.core.readIndex(context);
    });
    if (!asked) return Promise.reject(new KvError("NO_LEADER", `${this.id} knows no leader`));
    this.schedule();
    return new Promise((resolve, reject) => {
      this.reads.set(context, { index: null, ticks: 0, resolve, reject });
    });
  }

  /** Hands leadership to `to`; resolves when this node sees `to` lead. */
  transferLeadership(to: NodeId): Promise<void> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    try {
      this.core.transferLeadership(to);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.core.status().leaderId === to) return Promise.resolve();
    this.schedule();
    return new Promise((resolve, reject) => {
      this.transfer?.reject(new KvError("TIMEOUT", "superseded by another transfer"));
      this.transfer = { to, ticks: 0, resolve, reject };
    });
  }

  /** `context` travels in the committed entry (raft/types.ts ConfChange.context). */
  addLearner(nodeId: NodeId, context?: Uint8Array): Promise<void> {
    return this.changeConf(ConfChangeType.AddLearner, nodeId, context);
  }

  /** Promotes a learner to voter once it has caught up. */
  promote(nodeId: NodeId): Promise<void> {
    return this.changeConf(ConfChangeType.PromoteLearner, nodeId);
  }

  removeServer(nodeId: NodeId): Promise<void> {
    return this.changeConf(ConfChangeType.RemoveServer, nodeId);
  }

  /**
   * Compacts the log up to `retainEntries` before the applied index (kept so
   * slightly lagging followers need no snapshot), and never past `durableIndex`:
   * the highest index whose state the state machine has made durable (synced), so
   * that after a crash it still has everything the log no longer holds. Returns
   * the new compaction point, or 0 when nothing was compacted.
   */
  async compact(retainEntries = 0, durableIndex = Number.MAX_SAFE_INTEGER): Promise<number> {
    if (this.stopped || this.compacting) return 0;
    const applied = Math.min(this.sm.appliedIndex(), durableIndex);
    const index = Math.min(applied - retainEntries, this.storage.lastIndex());
    if (index < this.storage.firstIndex()) return 0;
    const term = this.core.termAt(index);
    if (term === undefined) return 0;
    const meta: SnapshotMeta = { index, term, conf: this.core.confAt(index) };
    this.compacting = true;
    try {
      this.failPoints.trigger("raft_before_compact");
      await this.storage.compact(index, meta);
      this.core.compacted(index);
      return index;
    } catch (err) {
      this.fatal(err);
      return 0;
    } finally {
      this.compacting = false;
    }
  }

  snapshotStats(): SnapshotStats {
    return { ...this.snapshotCounters };
  }

  status(): RaftStatus & { stopped: boolean } {
    return { ...this.core.status(), stopped: this.stopped };
  }

  summary(): ReturnType<RaftCore["summary"]> {
    return this.core.summary();
  }

  /** Term of a log entry (for checkers); undefined if compacted or absent. */
  termAt(index: number): number | undefined {
    return this.core.termAt(index);
  }

  entriesIn(lo: number, hi: number): Entry[] {
    return this.core.entriesIn(lo, hi);
  }

  // ------------------------------------------------------------- the loop

  private onTick(): void {
    if (this.stopped) return;
    this.guard(() => this.core.tick());
    this.releaseSnapshotImages();
    this.expireRequests();
    this.driveConfChanges();
    this.schedule();
    this.emit("round");
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.processReadies();
    });
  }

  private processReadies(): void {
    // Bounded: each round hands out everything new, so a second round is rare.
    for (let i = 0; i < 16 && !this.stopped; i++) {
      let rd: Ready | null = null;
      this.guard(() => {
        if (this.core.hasReady()) rd = this.core.ready();
      });
      if (rd === null) return;
      this.handleReady(rd);
    }
    this.schedule();
  }

  private handleReady(rd: Ready): void {
    if (rd.softState) {
      this.onSoftState(rd.softState.leaderId);
      this.emit("leader");
    }
    if (rd.snapshotChunks.length > 0) this.receiveChunks(rd.snapshotChunks);
    let persisted: Promise<void>;
    try {
      this.failPoints.trigger("raft_before_persist");
      persisted = this.persist(rd);
    } catch (err) {
      this.fatal(err);
      return;
    }
    // The leader's replication goes out while its own write runs; the core put
    // nothing here that depends on this write (see `Ready.earlyMessages`).
    this.sendAll(rd.earlyMessages);
    // The core learns of durability in hand-out order and as soon as the write
    // resolves, not after the previous Ready's apply: that is when the leader
    // may count itself toward a commit.
    const earlierStable = this.persistedTail;
    const stable = Promise.all([earlierStable, persisted]).then(() => {
      if (this.stopped) return;
      this.guard(() => this.core.persisted(rd));
      this.schedule();
    });
    this.persistedTail = stable;
    const sent = stable
      .then(() => {
        if (this.stopped) return;
        this.failPoints.trigger("raft_before_send");
        this.sendAll(rd.messages);
      })
      .catch((err) => this.fatal(err));
    // Apply needs the committed entries durable here, not this Ready's commit
    // index: they are in earlier readies, except on a follower that got entries
    // and their commit in one message (and a snapshot, which waits for itself).
    // So a write is not held for one more fsync between commit and apply.
    const committedLast = rd.committed.at(-1)?.index ?? 0;
    const ownNeeded =
      rd.snapshot !== null || (rd.entries.length > 0 && rd.entries[0]!.index <= committedLast);
    const applyGate = ownNeeded ? stable : earlierStable;
    const prev = this.applyTail;
    this.applyTail = Promise.all([prev, applyGate])
      .then(() => this.apply(rd))
      .then(() => Promise.all([stable, sent]))
      .then(() => this.finish(rd))
      .catch((err) => this.fatal(err));
  }

  private sendAll(messages: Message[]): void {
    for (const m of messages) {
      if (m.type === "MsgSnap") this.sendSnapshotChunk(m);
      else this.transport.send(m);
    }
  }

  private persist(rd: Ready): Promise<void> {
    const request: PersistRequest = {};
    if (rd.hardState) request.hardState = rd.hardState;
    if (rd.entries.length > 0) request.entries = rd.entries;
    if (rd.snapshot) request.snapshot = rd.snapshot.meta;
    if (rd.hardState) {
      const last = this.lastHardState ?? this.storage.initialState().hardState;
      // etcd-io/raft's MustSync: only entries, a snapshot, a term or a vote need an
      // fsync; a commit index alone is recomputed after a restart.
      const commitOnly =
        rd.entries.length === 0 &&
        !rd.snapshot &&
        rd.hardState.currentTerm === last.currentTerm &&
        rd.hardState.votedFor === last.votedFor;
      if (commitOnly) request.sync = false;
      this.lastHardState = rd.hardState;
    }
    const empty = !rd.hardState && rd.entries.length === 0 && !rd.snapshot;
    const write = () => (empty ? Promise.resolve() : this.storage.persist(request));
    if (rd.snapshot) {
      const snap = rd.snapshot;
      const before = this.snapshotBarrier ?? Promise.resolve();
      const stored = this.sinkTail;
      // Entries handed out before the snapshot finish applying first: an install
      // under a running apply would mix two states.
      const appliedBefore = this.applyTail;
      // The state machine holds the snapshot durably before the log forgets
      // what it covers; a crash in between is finished by RaftDriver.open().
      const p = Promise.all([before, stored, appliedBefore]).then(async () => {
        if (this.stopped) return;
        const incoming = this.toInstall;
        assert(
          incoming !== null &&
            incoming.meta.index === snap.meta.index &&
            incoming.meta.term === snap.meta.term,
          `snapshot ${snap.meta.index} to install was not stored`,
        );
        this.toInstall = null;
        await incoming.sink.install(snap.meta);
        this.snapshotCounters.installed++;
        this.failPoints.trigger("raft_after_snapshot_restore");
        await write();
      });
      this.snapshotBarrier = p;
      p.then(
        () => {
          if (this.snapshotBarrier === p) this.snapshotBarrier = null;
        },
        () => {},
      );
      return p;
    }
    if (this.snapshotBarrier) return this.snapshotBarrier.then(write);
    return write();
  }

  /** Applies the Ready's committed entries (their own write and earlier ones are durable). */
  private async apply(rd: Ready): Promise<void> {
    if (this.stopped) return;
    if (rd.snapshot) this.settleBelow(rd.snapshot.meta.index);
    if (rd.committed.length > 0) {
      this.failPoints.trigger("apply_before_commit_batch");
      const todo = rd.committed.filter((e) => e.index > this.sm.appliedIndex());
      const results = todo.length > 0 ? await this.sm.apply(todo) : [];
      if (this.stopped) return;
      assert(results.length === todo.length, "state machine returned a result count mismatch");
      for (let i = 0; i < todo.length; i++) {
        this.settleProposal(todo[i]!, results[i]!);
        this.settleConfChange(todo[i]!);
      }
    }
  }

  /** The Ready is persisted, sent and applied: answer reads, advance the core. */
  private finish(rd: Ready): void {
    if (this.stopped) return;
    for (const rs of rd.readStates) {
      const read = this.reads.get(rs.context);
      if (read) read.index = rs.index;
    }
    this.settleReads();
    this.failPoints.trigger("raft_before_advance");
    this.guard(() => this.core.advance(rd));
    this.driveConfChanges();
    this.schedule();
    this.emit("round");
  }

  // ------------------------------------------------------------- snapshots

  /** The core's snapshotProvider: an image ready for `to`, or null while one opens. */
  private provideSnapshot(to: NodeId, minIndex: number): number | null {
    const out = this.outgoing.get(to);
    if (out?.source && out.source.index >= minIndex) return out.source.index;
    if (out && !out.source) return null;
    // None yet, or one older than the compaction point: open a new image.
    out?.source?.close();
    const image: OutgoingImage = {
      source: null,
      reading: false,
      offset: 0,
      stalledTicks: 0,
      lastSent: false,
    };
    this.outgoing.set(to, image);
    this.snapshotStore.open().then(
      (source) => {
        if (this.stopped || this.outgoing.get(to) !== image) {
          source.close();
          return;
        }
        image.source = source;
        this.snapshotCounters.opened++;
      },
      (err) => {
        if (this.outgoing.get(to) === image) this.outgoing.delete(to);
        this.snapshotFailed(err);
      },
    );
    return null;
  }

  /** Fills a MsgSnap the core asked for with the chunk's bytes, then sends it. */
  private sendSnapshotChunk(m: Message): void {
    const chunk = m.snapshot;
    assert(chunk !== null, "MsgSnap without chunk");
    const image = this.outgoing.get(m.to);
    const source = image?.source;
    if (!image || !source || source.index !== chunk.meta.index) {
      this.guard(() => this.core.snapshotAborted(m.to));
      this.schedule();
      return;
    }
    // One read at a time per image; a resend asked meanwhile comes again on its own.
    if (image.reading) return;
    image.reading = true;
    if (chunk.offset > image.offset) {
      image.offset = chunk.offset;
      image.stalledTicks = 0;
    }
    source.read(chunk.offset, this.snapshotChunkBytes).then(
      ({ data, done }) => {
        image.reading = false;
        if (this.stopped) return;
        this.snapshotCounters.chunksSent++;
        if (done && !image.lastSent) {
          image.lastSent = true;
          this.snapshotCounters.sent++;
        }
        this.transport.send({ ...m, snapshot: { ...chunk, data, done } });
      },
      (err) => {
        image.reading = false;
        if (this.outgoing.get(m.to) === image) this.outgoing.delete(m.to);
        source.close();
        this.snapshotFailed(err);
        this.guard(() => this.core.snapshotAborted(m.to));
        this.schedule();
      },
    );
  }

  /**
   * Closes images no transfer uses any more, and drops transfers whose follower
   * stopped acknowledging (an open image pins old data in LevelDB).
   */
  private releaseSnapshotImages(): void {
    for (const [to, image] of this.outgoing) {
      if (!image.source) continue;
      const transfer = this.core.snapshotTransfer(to);
      const active = transfer !== null && transfer.index === image.source.index;
      if (++image.stalledTicks < this.requestTimeoutTicks) continue;
      this.outgoing.delete(to);
      image.source.close();
      if (active) {
        this.snapshotCounters.failed++;
        this.guard(() => this.core.snapshotAborted(to));
      }
    }
  }

  /** Stores received chunks in order and tells the core, which acknowledges them. */
  private receiveChunks(chunks: SnapshotChunk[]): void {
    this.sinkTail = this.sinkTail
      .then(async () => {
        for (const c of chunks) {
          if (this.stopped) return;
          if (c.offset === 0) {
            const old = this.incoming;
            this.incoming = null;
            if (old) await old.sink.abort();
            this.incoming = { meta: c.meta, sink: await this.snapshotStore.receive(c.meta) };
          }
          const incoming = this.incoming;
          if (
            incoming === null ||
            incoming.meta.index !== c.meta.index ||
            incoming.meta.term !== c.meta.term
          ) {
            continue;
          }
          try {
            await incoming.sink.write(c.offset, c.data, c.done);
          } catch (err) {
            // Bad bytes from the leader are bad input, not a reason to stop: drop what
            // was stored and have the leader start over. Anything else (a failed
            // write) is fatal.
            if (!(err instanceof KvError && err.code === "CORRUPT_RECORD")) throw err;
            this.incoming = null;
            await incoming.sink.abort();
            this.snapshotCounters.failed++;
            this.guard(() => this.core.snapshotStoreFailed(c.meta));
            this.schedule();
            continue;
          }
          this.snapshotCounters.chunksReceived++;
          let outcome = "stale";
          this.guard(() => {
            outcome = this.core.snapshotStored(c.meta, c.offset + c.data.byteLength, c.done);
          });
          if (outcome === "install") {
            this.incoming = null;
            // A newer snapshot overtook one not installed yet: the core installs the newer.
            const replaced = this.toInstall;
            this.toInstall = incoming;
            if (replaced) await replaced.sink.abort();
          } else if (outcome !== "more" && this.incoming === incoming) {
            this.incoming = null;
            await incoming.sink.abort();
          }
          this.schedule();
        }
      })
      .catch((err) => this.fatal(err));
  }

  /** A snapshot image could not be opened or read on the leader. */
  private snapshotFailed(err: unknown): void {
    this.snapshotCounters.failed++;
    // A record that fails its checks in our own store: this node must not lead as
    // if it had the data (it stops; the operator restores it from a peer).
    if (err instanceof KvError && err.code === "CORRUPT_RECORD") this.fatal(err);
  }

  private settleProposal(entry: Entry, result: R): void {
    const p = this.proposals.get(entry.index);
    if (!p) return;
    this.proposals.delete(entry.index);
    if (p.term === entry.term) {
      p.resolve({ index: entry.index, result });
    } else {
      // Another leader's entry took this slot: ours was never committed.
      const leaderId = this.core.status().leaderId;
      p.reject(
        new KvError("NOT_LEADER", "proposal dropped by a leadership change", {
          ...(leaderId ? { leaderId } : {}),
        }),
      );
    }
  }

  /** A snapshot jumped over indexes: proposals there have an unknown outcome. */
  private settleBelow(index: number): void {
    for (const [i, p] of this.proposals) {
      if (i > index) continue;
      this.proposals.delete(i);
      p.reject(new KvError("TIMEOUT", "outcome unknown: replaced by a snapshot"));
    }
    const cc = this.confChanges[0];
    if (cc && cc.index !== null && cc.index <= index) {
      this.confChanges.shift();
      cc.reject(new KvError("TIMEOUT", "outcome unknown: replaced by a snapshot"));
    }
  }

  private settleReads(): void {
    const applied = this.sm.appliedIndex();
    for (const [ctx, r] of this.reads) {
      if (r.index !== null && applied >= r.index) {
        this.reads.delete(ctx);
        r.resolve(r.index);
      }
    }
  }

  private onSoftState(leaderId: NodeId | null): void {
    if (this.transfer && leaderId === this.transfer.to) {
      const t = this.transfer;
      this.transfer = null;
      t.resolve();
    }
  }

  // ------------------------------------------------------ membership changes

  private changeConf(type: ConfChangeType, nodeId: NodeId, context?: Uint8Array): Promise<void> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    return new Promise((resolve, reject) => {
      this.confChanges.push({
        type,
        nodeId,
        ...(context ? { context } : {}),
        ticks: 0,
        index: null,
        term: 0,
        resolve,
        reject,
      });
      this.driveConfChanges();
      this.schedule();
    });
  }

  /** Proposes waiting changes when the core can take them (one at a time). */
  private driveConfChanges(): void {
    const cc = this.confChanges[0];
    if (!cc || cc.index !== null || this.stopped) return;
    try {
      const placed = this.core.proposeConfChange(cc.type, cc.nodeId, cc.context);
      if (placed) {
        cc.index = placed.index;
        cc.term = placed.term;
      }
    } catch (err) {
      this.confChanges.shift();
      cc.reject(err);
    }
  }

  /** The conf change we proposed was applied here (same term) or replaced (other term). */
  private settleConfChange(entry: Entry): void {
    const cc = this.confChanges[0];
    if (!cc || cc.index !== entry.index) return;
    this.confChanges.shift();
    if (cc.term === entry.term) cc.resolve();
    else cc.reject(new KvError("NOT_LEADER", "membership change dropped by a leadership change"));
  }

  // ------------------------------------------------------------- failures

  private expireRequests(): void {
    const timeout = new KvError("TIMEOUT", "request timed out");
    for (const [i, p] of this.proposals) {
      if (++p.ticks < this.requestTimeoutTicks) continue;
      this.proposals.delete(i);
      p.reject(timeout);
    }
    for (const [ctx, r] of this.reads) {
      if (++r.ticks < this.requestTimeoutTicks) continue;
      this.reads.delete(ctx);
      r.reject(timeout);
    }
    for (let i = 0; i < this.confChanges.length; i++) {
      const cc = this.confChanges[i]!;
      if (++cc.ticks < this.requestTimeoutTicks) continue;
      this.confChanges.splice(i, 1);
      i--;
      cc.reject(timeout);
    }
    if (this.transfer && ++this.transfer.ticks >= this.electionTimeoutTicks * 3) {
      const t = this.transfer;
      this.transfer = null;
      t.reject(new KvError("TIMEOUT", `leadership did not move to ${t.to}`));
    }
  }

  private guard(fn: () => void): void {
    if (this.stopped) return;
    try {
      fn();
    } catch (err) {
      this.fatal(err);
    }
  }

  private fatal(err: unknown): void {
    if (this.stopped) return;
    this.stop();
    this.onFatal(err);
  }

  private failAll(err: KvError): void {
    for (const p of this.proposals.values()) p.reject(err);
    this.proposals.clear();
    for (const r of this.reads.values()) r.reject(err);
    this.reads.clear();
    for (const cc of this.confChanges) cc.reject(err);
    this.confChanges.length = 0;
    this.transfer?.reject(err);
    this.transfer = null;
  }

  private stoppedError(): KvError {
    return new KvError("SHUTTING_DOWN", `${this.id} is stopped`);
  }
}
