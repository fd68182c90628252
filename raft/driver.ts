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
 *
 * This file is the loop and the seams only, so the contract reads in one sitting;
 * the driver's other jobs sit beside it: snapshot chunks both ways in
 * snapshot_transfer.ts, waiting requests in pending.ts, fail points in
 * fail_points.ts.
 */
import { KvError } from "../proto/index.js";
import { assert } from "./assert.js";
import { type RaftConfig, RaftCore, type StateMachineSnapshot } from "./core.js";
import { FailPoints } from "./fail_points.js";
import { PendingRequests } from "./pending.js";
import type { Prng } from "./prng.js";
import { bytesSnapshotStore, type SnapshotStore } from "./snapshot.js";
import { type SnapshotStats, SnapshotTransfer } from "./snapshot_transfer.js";
import type {
  Entry,
  HardState,
  NodeId,
  PersistRequest,
  RaftStorage,
  SnapshotMeta,
} from "./storage.js";
import { ConfChangeType, type Message, type RaftStatus, type Ready } from "./types.js";

// The fail points are part of the driver's options; the package's tests and the
// simulator import them from here.
export { FAIL_POINTS, type FailPointName, FailPoints, InjectedCrash } from "./fail_points.js";

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
  /**
   * Applies committed entries in order; one result per entry (undefined for no-ops/conf).
   * It may call `decided` with an entry's result as soon as that is known, before the
   * apply's own write: the driver answers the entry's proposal then, since the entry is
   * committed and a restart replays it to the same result. Reads, and everything else
   * that needs the applied state, still wait for `appliedIndex`.
   */
  apply(entries: Entry[], decided?: (entry: Entry, result: R) => void): R[] | Promise<R[]>;
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

export class RaftDriver<R = unknown> {
  readonly id: NodeId;
  private readonly core: RaftCore;
  private readonly storage: RaftStorage;
  private readonly transport: RaftTransport;
  private readonly ticker: RaftTicker;
  private readonly sm: RaftStateMachine<R>;
  private readonly failPoints: FailPoints;
  private readonly onFatal: (err: unknown) => void;

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
  private readonly pending: PendingRequests<R>;
  private readContext: number;
  private compacting = false;
  private readonly snapshots: SnapshotTransfer;
  private readonly listeners = new Set<DriverListener>();

  constructor(options: RaftDriverOptions<R>) {
    this.id = options.id;
    this.storage = options.storage;
    this.transport = options.transport;
    this.ticker = options.ticker;
    this.sm = options.stateMachine;
    this.failPoints = options.failPoints ?? new FailPoints();
    this.onFatal = options.onFatal ?? (() => {});
    const requestTimeoutTicks = options.requestTimeoutTicks ?? options.electionTimeoutTicks * 10;
    this.pending = new PendingRequests<R>(
      {
        requestTimeoutTicks,
        transferTimeoutTicks: options.electionTimeoutTicks * 3,
        proposalsMax: options.pendingProposalsMax ?? 4096,
        readReaskTicks: options.electionTimeoutTicks,
      },
      () => this.core.status().leaderId,
    );
    // Read contexts start at a random point so that a stale answer meant for a
    // previous incarnation of this node cannot complete a new read.
    this.readContext = (options.prng.nextUint32() & 0x1fffff) * 4294967296;
    const sm = this.sm;
    let store: SnapshotStore;
    if (sm.snapshots) store = sm.snapshots;
    else {
      assert(sm.snapshot && sm.restore, "the state machine gives no snapshots");
      store = bytesSnapshotStore({
        snapshot: () => sm.snapshot!(),
        restore: (meta, data) => sm.restore!(meta, data),
      });
    }
    this.core = new RaftCore({
      ...options.core,
      id: options.id,
      storage: options.storage,
      prng: options.prng,
      electionTimeoutTicks: options.electionTimeoutTicks,
      heartbeatTicks: options.heartbeatTicks,
      appliedIndex: this.sm.appliedIndex(),
      snapshotProvider: (to, minIndex) => this.snapshots.provide(to, minIndex),
    });
    this.snapshots = new SnapshotTransfer({
      store,
      core: this.core,
      host: {
        isStopped: () => this.stopped,
        guard: (fn) => this.guard(fn),
        schedule: () => this.schedule(),
        fatal: (err) => this.fatal(err),
      },
      send: (m) => this.transport.send(m),
      chunkBytes: options.core?.snapshotChunkBytes ?? 256 * 1024,
      // An open image pins old data: a follower silent this long loses its transfer.
      stalledTicksMax: requestTimeoutTicks,
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
    this.pending.failAll(new KvError("SHUTTING_DOWN", `${this.id} is stopping`));
    this.snapshots.closeAll();
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
    if (this.pending.proposalsFull()) {
      return Promise.reject(new KvError("TIMEOUT", "too many proposals in flight"));
    }
    let placed: { index: number; term: number };
    try {
      placed = this.core.propose(data);
    } catch (err) {
      return Promise.reject(err);
    }
    this.schedule();
    return this.pending.addProposal(placed);
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
    return this.pending.addRead(context);
  }

  /** Asks the current leader (maybe this node) for the read points of `contexts` again. */
  private askReads(contexts: number[]): void {
    if (contexts.length === 0 || this.stopped) return;
    this.guard(() => {
      for (const context of contexts) if (!this.core.readIndex(context)) break;
    });
    this.schedule();
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
    return this.pending.addTransfer(to);
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
    return this.snapshots.stats();
  }

  status(): RaftStatus & { stopped: boolean } {
    return { ...this.core.status(), stopped: this.stopped };
  }

  summary(): ReturnType<RaftCore["summary"]> {
    return this.core.summary();
  }

  /** How many messages the core dropped as broken Raft (RaftStatus.violations), cheaply. */
  violationCount(): number {
    return this.core.violationCount();
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
    this.snapshots.tick();
    this.pending.tick();
    this.askReads(this.pending.readsToAsk(false));
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
      this.pending.leaderChanged(rd.softState.leaderId);
      // Reads parked at a leader that is gone are asked of the new one at once, instead
      // of waiting out their timeout (a follower's clients see failover, not TIMEOUT).
      if (rd.softState.leaderId !== null) this.askReads(this.pending.readsToAsk(true));
      this.emit("leader");
    }
    if (rd.snapshotChunks.length > 0) this.snapshots.receive(rd.snapshotChunks);
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
      if (m.type === "MsgSnap") this.snapshots.sendChunk(m);
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
      const stored = this.snapshots.stored();
      // Entries handed out before the snapshot finish applying first: an install
      // under a running apply would mix two states.
      const appliedBefore = this.applyTail;
      // The state machine holds the snapshot durably before the log forgets
      // what it covers; a crash in between is finished by RaftDriver.open().
      const p = Promise.all([before, stored, appliedBefore]).then(async () => {
        if (this.stopped) return;
        await this.snapshots.install(snap.meta);
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
    if (rd.snapshot) this.pending.replacedBySnapshot(rd.snapshot.meta.index);
    if (rd.committed.length > 0) {
      this.failPoints.trigger("apply_before_commit_batch");
      const todo = rd.committed.filter((e) => e.index > this.sm.appliedIndex());
      const results =
        todo.length > 0
          ? await this.sm.apply(todo, (entry, result) => this.pending.decided(entry, result))
          : [];
      if (this.stopped) return;
      assert(results.length === todo.length, "state machine returned a result count mismatch");
      for (let i = 0; i < todo.length; i++) this.pending.applied(todo[i]!, results[i]!);
    }
  }

  /** The Ready is persisted, sent and applied: answer reads, advance the core. */
  private finish(rd: Ready): void {
    if (this.stopped) return;
    this.pending.readStates(rd.readStates);
    this.pending.settleReads(this.sm.appliedIndex());
    this.failPoints.trigger("raft_before_advance");
    this.guard(() => this.core.advance(rd));
    this.driveConfChanges();
    this.schedule();
    this.emit("round");
  }

  // ------------------------------------------------------ membership changes

  private changeConf(type: ConfChangeType, nodeId: NodeId, context?: Uint8Array): Promise<void> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    const done = this.pending.addConfChange(type, nodeId, context);
    this.driveConfChanges();
    this.schedule();
    return done;
  }

  /** Proposes waiting changes when the core can take them (one at a time). */
  private driveConfChanges(): void {
    if (this.stopped) return;
    this.pending.proposeConfChanges((type, nodeId, context) =>
      this.core.proposeConfChange(type, nodeId, context),
    );
  }

  // ------------------------------------------------------------- failures

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

  private stoppedError(): KvError {
    return new KvError("SHUTTING_DOWN", `${this.id} is stopped`);
  }
}
