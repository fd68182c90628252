/**
 * The seam between the pure Raft core and durable storage (hashicorp/raft's
 * LogStore + StableStore, etcd-io/raft's Storage). The core only *reads* through
 * `RaftLogReader`, synchronously; the driver *writes* through `RaftStorage` and
 * calls `advance()` on the core only after the write it was asked for is durable.
 *
 * Implementations: `MemoryRaftStorage` (raft/memory_storage.ts, used by unit
 * tests and the simulator's disks) and the LevelDB one in raftstore/level_raft_storage.ts.
 * Both pass the same contract tests (raft/storage_contract.ts).
 */

export type NodeId = string;

export const EntryType = {
  /** Client data (opaque to Raft). */
  Normal: 0,
  /** A membership change (data = encoded ConfChange). */
  ConfChange: 1,
  /** The empty entry a new leader appends to commit earlier terms. */
  Noop: 2,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/** Persisted before a vote or an append acknowledgement counts. */
export interface HardState {
  currentTerm: number;
  votedFor: NodeId | null;
  commitIndex: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** Describes the state machine image a snapshot stands for. */
export interface SnapshotMeta {
  /** Last log index the snapshot covers (0 = no snapshot). */
  index: number;
  /** Term of that entry. */
  term: number;
  /** Membership as of `index`. */
  conf: ConfState;
}

export interface InitialState {
  hardState: HardState;
  /** Membership as of the last entry in the log (or the snapshot, if none after it). */
  conf: ConfState;
}

/** Synchronous reads the core needs; implementations serve them from memory. */
export interface RaftLogReader {
  initialState(): InitialState;
  /** Entries in [lo, hi), stopping early once maxBytes of data is reached (at least one). */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** Term of the entry at `index`; the snapshot's term at snapshot.index; undefined if compacted or absent. */
  term(index: number): number | undefined;
  /** Index of the first entry still in the log (snapshot.index + 1). */
  firstIndex(): number;
  /** Index of the last entry (snapshot.index when the log is empty). */
  lastIndex(): number;
  snapshotMeta(): SnapshotMeta;
}

/** What the driver persists from one `ready()`, in one durable write. */
export interface PersistRequest {
  hardState?: HardState;
  /** Entries to append; any stored entry at an index >= entries[0].index is replaced. */
  entries?: Entry[];
  /** A snapshot received from the leader: the log is reset to start after it. */
  snapshot?: SnapshotMeta;
  /**
   * `false`: the request may resolve before it is durable; a later synced
   * request makes it durable, a crash before that may lose it. Only for what
   * safety does not rest on: a hard state whose commitIndex alone changed
   * (etcd-io/raft's MustSync rule; the commit index is recomputed after a
   * restart). Entries, snapshots, terms and votes always sync. Default true.
   */
  sync?: boolean;
}

export interface RaftStorage extends RaftLogReader {
  /**
   * Makes the request durable (fsync) before resolving. Requests that arrive
   * while a sync is running are grouped into the next one (group commit), so the
   * sync rate does not bound throughput. Readers see the request immediately
   * (the core relies on that); a crash may lose what has not resolved.
   * A failed write is fatal: the promise rejects and the node must stop.
   */
  persist(request: PersistRequest): Promise<void>;
  /** Drops entries up to and including `index` (<= snapshot index the state machine has durably captured). */
  compact(index: number, meta: SnapshotMeta): Promise<void>;
  close(): Promise<void>;
}
