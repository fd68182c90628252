/**
 * The in-memory Raft storage: the twin of the LevelDB one (raftstore/level_raft_storage.ts),
 * passing the same contract tests (raft/storage_contract.ts). Unit tests of the
 * core use it as is; the simulator uses its manual-sync mode as a node's disk.
 *
 * Semantics both implementations share (they are both built on `MemoryRaftLog`):
 *
 * - One `PersistRequest` is applied in the order snapshot, entries, hardState,
 *   and is visible to the readers as soon as `persist()` is called.
 * - `snapshot`: the log is reset to start after `snapshot.index`; every stored
 *   entry is dropped, even one that matches the snapshot (the core fast-forwards
 *   instead of installing a snapshot its log already covers, as etcd-io/raft does).
 * - `entries`: must be contiguous and must not leave a gap after `lastIndex()`.
 *   Any stored entry at an index >= entries[0].index is replaced (the conflicting
 *   suffix goes). Entries at or below the snapshot index are skipped: they are
 *   committed, so they equal what the snapshot covers (etcd's MemoryStorage does
 *   the same). Terms never decrease along the log (asserted).
 * - `entries(lo, hi, maxBytes)`: the longest prefix of [lo, hi) whose total
 *   `data.byteLength` is <= maxBytes, but always at least one entry (etcd's
 *   limitSize). lo must be >= firstIndex() and hi <= lastIndex() + 1 (asserted:
 *   the core checks `term()`/`firstIndex()` first and sends a snapshot instead).
 * - `compact(index, meta)`: `meta.index` must equal `index`, and `meta.term` the
 *   term stored there; compacting at or below the current snapshot is a no-op.
 * - `initialState().conf` is the membership as of the last ConfChange entry in
 *   the log, else the snapshot's conf, else the `initialConf` of the first open.
 *   Storage does not know how the core encodes a ConfChange, so the core hands
 *   that knowledge in as `applyConfChange(conf, entry) => conf` (an option of
 *   both storages): it folds every ConfChange entry after the snapshot, in order,
 *   onto the snapshot's conf. It works for delta encodings (add/remove one
 *   server) and full ones alike. Without it, a ConfChange entry in the log makes
 *   `initialState()` throw (a wiring bug, not an operating error).
 *
 * Misuse (gaps, unsafe integers, reading a compacted range) throws a plain Error:
 * these are programmer errors in the core or driver, not operating errors.
 *
 * Returned entries are the stored objects: callers must not mutate them.
 */
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type InitialState,
  type PersistRequest,
  type RaftLogReader,
  type RaftStorage,
  type SnapshotMeta,
} from "./storage.js";

/** Folds one ConfChange entry onto the membership before it; supplied by the Raft core. */
export type ApplyConfChange = (conf: ConfState, entry: Entry) => ConfState;

export interface MemoryRaftLogOptions {
  /** Membership before any snapshot or ConfChange (the bootstrap cluster). */
  initialConf?: ConfState;
  applyConfChange?: ApplyConfChange;
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`raft storage: ${message}`);
}

function isIndex(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

export function emptyHardState(): HardState {
  return { currentTerm: 0, votedFor: null, commitIndex: 0 };
}

export function copyConf(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] };
}

export function copyHardState(hs: HardState): HardState {
  return { currentTerm: hs.currentTerm, votedFor: hs.votedFor, commitIndex: hs.commitIndex };
}

export function copySnapshotMeta(meta: SnapshotMeta): SnapshotMeta {
  return { index: meta.index, term: meta.term, conf: copyConf(meta.conf) };
}

export function assertHardState(hs: HardState): void {
  assert(isIndex(hs.currentTerm), `hardState.currentTerm ${hs.currentTerm} is not a safe integer`);
  assert(isIndex(hs.commitIndex), `hardState.commitIndex ${hs.commitIndex} is not a safe integer`);
  assert(
    hs.votedFor === null || typeof hs.votedFor === "string",
    "hardState.votedFor must be a string or null",
  );
}

export function assertConf(conf: ConfState): void {
  assert(
    Array.isArray(conf.voters) && conf.voters.every((v) => typeof v === "string"),
    "conf.voters must be strings",
  );
  assert(
    Array.isArray(conf.learners) && conf.learners.every((v) => typeof v === "string"),
    "conf.learners must be strings",
  );
}

export function assertSnapshotMeta(meta: SnapshotMeta): void {
  assert(isIndex(meta.index), `snapshot.index ${meta.index} is not a safe integer`);
  assert(isIndex(meta.term), `snapshot.term ${meta.term} is not a safe integer`);
  assertConf(meta.conf);
}

export function assertEntry(e: Entry): void {
  assert(isIndex(e.index) && e.index >= 1, `entry index ${e.index} is not a positive safe integer`);
  assert(isIndex(e.term), `entry ${e.index}: term ${e.term} is not a safe integer`);
  assert(
    e.type === EntryType.Normal || e.type === EntryType.ConfChange || e.type === EntryType.Noop,
    `entry ${e.index}: unknown type ${e.type}`,
  );
  assert(e.data instanceof Uint8Array, `entry ${e.index}: data must be a Uint8Array`);
}

/**
 * The synchronous log state both storages keep in memory: hard state, snapshot
 * meta and the entries after the snapshot. Pure; no I/O. Exported so that the
 * LevelDB storage shares exactly these semantics.
 */
export class MemoryRaftLog implements RaftLogReader {
  private hard: HardState = emptyHardState();
  private snap: SnapshotMeta;
  /** ents[i].index === snap.index + 1 + i */
  private ents: Entry[] = [];
  private readonly applyConfChange: ApplyConfChange | undefined;

  constructor(options: MemoryRaftLogOptions = {}) {
    const conf = options.initialConf ?? { voters: [], learners: [] };
    assertConf(conf);
    this.snap = { index: 0, term: 0, conf: copyConf(conf) };
    this.applyConfChange = options.applyConfChange;
  }

  /** Restores a state read back from disk (entries must follow the snapshot, contiguous). */
  restore(hardState: HardState, snapshot: SnapshotMeta, entries: Entry[]): void {
    assertHardState(hardState);
    assertSnapshotMeta(snapshot);
    this.hard = copyHardState(hardState);
    this.snap = copySnapshotMeta(snapshot);
    this.ents = [];
    this.appendEntries(entries);
  }

  clone(): MemoryRaftLog {
    const copy = new MemoryRaftLog({ applyConfChange: this.applyConfChange });
    copy.hard = copyHardState(this.hard);
    copy.snap = copySnapshotMeta(this.snap);
    copy.ents = [...this.ents];
    return copy;
  }

  hardState(): HardState {
    return copyHardState(this.hard);
  }

  /**
   * Applies a request in the order snapshot, entries, hardState. All or nothing:
   * a request that fails an assertion leaves the state untouched.
   */
  apply(request: PersistRequest): void {
    if (request.hardState) assertHardState(request.hardState);
    const snap = request.snapshot ? copySnapshotMeta(request.snapshot) : this.snap;
    if (request.snapshot) assertSnapshotMeta(snap);
    const base = request.snapshot ? [] : this.ents;
    const entries = request.entries ?? [];
    const append = this.checkAppend(snap, base, entries);
    // Validated; from here on nothing throws.
    this.snap = snap;
    this.ents = base;
    if (append) {
      this.ents.length = append.start - snap.index - 1;
      for (const e of append.copied) this.ents.push(e);
    }
    if (request.hardState) this.hard = copyHardState(request.hardState);
  }

  /**
   * Validates a compaction and returns whether it changes anything (false when
   * `index` is at or below the current snapshot). Does not apply it.
   */
  checkCompact(index: number, meta: SnapshotMeta): boolean {
    assert(isIndex(index), `compact index ${index} is not a safe integer`);
    assertSnapshotMeta(meta);
    assert(meta.index === index, `compact(${index}) with snapshot meta at ${meta.index}`);
    if (index <= this.snap.index) return false;
    assert(index <= this.lastIndex(), `compact(${index}) beyond lastIndex ${this.lastIndex()}`);
    const term = this.term(index);
    assert(term === meta.term, `compact(${index}): meta.term ${meta.term} != stored term ${term}`);
    return true;
  }

  /** Drops entries <= index and records `meta` as the snapshot. */
  compact(index: number, meta: SnapshotMeta): void {
    if (!this.checkCompact(index, meta)) return;
    this.ents = this.ents.slice(index - this.snap.index);
    this.snap = copySnapshotMeta(meta);
  }

  private appendEntries(entries: Entry[]): void {
    const append = this.checkAppend(this.snap, this.ents, entries);
    if (!append) return;
    this.ents.length = append.start - this.snap.index - 1;
    for (const e of append.copied) this.ents.push(e);
  }

  /** Validates an append onto (snap, ents); returns what to keep, or undefined if nothing. */
  private checkAppend(
    snap: SnapshotMeta,
    ents: Entry[],
    entries: Entry[],
  ): { start: number; copied: Entry[] } | undefined {
    let first = 0;
    while (first < entries.length && entries[first]!.index <= snap.index) {
      assertEntry(entries[first]!);
      first++;
    }
    if (first === entries.length) return undefined;
    const start = entries[first]!.index;
    const lastIndex = snap.index + ents.length;
    assert(start <= lastIndex + 1, `append at ${start} leaves a gap after lastIndex ${lastIndex}`);
    let prevTerm = start - 1 === snap.index ? snap.term : ents[start - 2 - snap.index]!.term;
    const copied: Entry[] = [];
    for (let i = first; i < entries.length; i++) {
      const e = entries[i]!;
      assertEntry(e);
      assert(e.index === start + (i - first), `entries not contiguous at ${e.index}`);
      assert(e.term >= prevTerm, `entry ${e.index}: term ${e.term} < previous term ${prevTerm}`);
      prevTerm = e.term;
      copied.push({ index: e.index, term: e.term, type: e.type, data: e.data });
    }
    return { start, copied };
  }

  initialState(): InitialState {
    let conf = copyConf(this.snap.conf);
    for (const e of this.ents) {
      if (e.type !== EntryType.ConfChange) continue;
      assert(
        this.applyConfChange !== undefined,
        `ConfChange entry at ${e.index} but no applyConfChange was given to the storage`,
      );
      conf = copyConf(this.applyConfChange(conf, e));
    }
    return { hardState: copyHardState(this.hard), conf };
  }

  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    assert(isIndex(lo) && isIndex(hi) && lo <= hi, `entries(${lo}, ${hi}): bad range`);
    assert(
      lo >= this.firstIndex(),
      `entries(${lo}, ${hi}): compacted (first ${this.firstIndex()})`,
    );
    assert(
      hi <= this.lastIndex() + 1,
      `entries(${lo}, ${hi}): beyond lastIndex ${this.lastIndex()}`,
    );
    const from = lo - this.snap.index - 1;
    const to = hi - this.snap.index - 1;
    if (maxBytes === undefined || from === to) return this.ents.slice(from, to);
    let size = this.ents[from]!.data.byteLength;
    let end = from + 1;
    while (end < to) {
      size += this.ents[end]!.data.byteLength;
      if (size > maxBytes) break;
      end++;
    }
    return this.ents.slice(from, end);
  }

  term(index: number): number | undefined {
    if (index === this.snap.index) return this.snap.term;
    if (index < this.snap.index || index > this.lastIndex()) return undefined;
    return this.ents[index - this.snap.index - 1]!.term;
  }

  firstIndex(): number {
    return this.snap.index + 1;
  }

  lastIndex(): number {
    return this.snap.index + this.ents.length;
  }

  snapshotMeta(): SnapshotMeta {
    return copySnapshotMeta(this.snap);
  }
}

export interface MemoryRaftStorageOptions extends MemoryRaftLogOptions {
  /**
   * false (default): every persist is "durable" at once and resolves on the next
   * microtask. true: persists stay pending until `sync()` makes them durable, and
   * `crash()` yields the disk as of the last sync (the simulator's disk model).
   */
  manualSync?: boolean;
}

type Op =
  | { kind: "persist"; request: PersistRequest }
  | { kind: "compact"; index: number; meta: SnapshotMeta };

interface Pending {
  op: Op;
  resolve: () => void;
}

/** In-memory `RaftStorage`; see the module comment for the shared semantics. */
export class MemoryRaftStorage implements RaftStorage {
  private readonly live: MemoryRaftLog;
  /** The state as of the last sync; only kept in manual-sync mode. */
  private readonly durable: MemoryRaftLog | undefined;
  private pending: Pending[] = [];
  private closed = false;
  private syncCount = 0;

  constructor(options: MemoryRaftStorageOptions = {}, from?: MemoryRaftLog) {
    this.live = from ? from.clone() : new MemoryRaftLog(options);
    this.durable = options.manualSync ? this.live.clone() : undefined;
  }

  initialState(): InitialState {
    return this.live.initialState();
  }
  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    return this.live.entries(lo, hi, maxBytes);
  }
  term(index: number): number | undefined {
    return this.live.term(index);
  }
  firstIndex(): number {
    return this.live.firstIndex();
  }
  lastIndex(): number {
    return this.live.lastIndex();
  }
  snapshotMeta(): SnapshotMeta {
    return this.live.snapshotMeta();
  }

  persist(request: PersistRequest): Promise<void> {
    assert(!this.closed, "persist after close");
    this.live.apply(request);
    const done = this.enqueue({ kind: "persist", request: copyRequest(request) });
    // An unsynced request stays pending (a crash may lose it) but does not wait.
    return request.sync === false ? Promise.resolve() : done;
  }

  compact(index: number, meta: SnapshotMeta): Promise<void> {
    assert(!this.closed, "compact after close");
    this.live.compact(index, meta);
    return this.enqueue({ kind: "compact", index, meta: copySnapshotMeta(meta) });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Number of syncs so far (auto mode: one per call). */
  stats(): { syncs: number; pending: number } {
    return { syncs: this.syncCount, pending: this.pending.length };
  }

  /**
   * Manual-sync mode: makes the oldest `count` pending requests (default all)
   * durable and resolves their promises, in order. Returns how many it synced.
   */
  sync(count = this.pending.length): number {
    assert(this.durable !== undefined, "sync() needs manualSync: true");
    const batch = this.pending.splice(0, Math.max(0, Math.min(count, this.pending.length)));
    if (batch.length === 0) return 0;
    for (const p of batch) applyOp(this.durable, p.op);
    this.syncCount++;
    for (const p of batch) p.resolve();
    return batch.length;
  }

  /**
   * Manual-sync mode: the disk after a crash — a new storage holding only what
   * was synced. This instance is dead afterwards; its pending promises never settle.
   */
  crash(): MemoryRaftStorage {
    assert(this.durable !== undefined, "crash() needs manualSync: true");
    this.closed = true;
    this.pending = [];
    return new MemoryRaftStorage({ manualSync: true }, this.durable);
  }

  private enqueue(op: Op): Promise<void> {
    if (!this.durable) {
      this.syncCount++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.pending.push({ op, resolve }));
  }
}

function applyOp(log: MemoryRaftLog, op: Op): void {
  if (op.kind === "persist") log.apply(op.request);
  else log.compact(op.index, op.meta);
}

function copyRequest(request: PersistRequest): PersistRequest {
  const copy: PersistRequest = {};
  if (request.hardState) copy.hardState = copyHardState(request.hardState);
  if (request.snapshot) copy.snapshot = copySnapshotMeta(request.snapshot);
  if (request.entries) copy.entries = request.entries.map((e) => ({ ...e }));
  return copy;
}
