/**
 * Public types of the KV layer. The node layer, the wire protocol and the tests
 * speak in these; the protobuf shapes stay inside commands.ts.
 */
import type { BucketConfig, Entry, KvError } from "../proto/index.js";

// The shapes the client port carries are declared once, in proto/types.ts.
export type {
  BucketConfig,
  BucketConfigInput,
  BucketStatus,
  Entry,
  Operation,
} from "../proto/index.js";

/** Identifies a client request for deduplication. */
export type RequestId = { clientId: string; sequence: number } | { id: string };

/** A state machine command, as the proposer builds it (before encoding). */
export type CommandOp =
  | { type: "createBucket"; config: BucketConfig }
  | { type: "updateBucket"; config: BucketConfig }
  | { type: "deleteBucket"; bucket: string }
  | { type: "put"; bucket: string; key: string; value: Uint8Array }
  | { type: "create"; bucket: string; key: string; value: Uint8Array }
  | { type: "update"; bucket: string; key: string; value: Uint8Array; last: number }
  | { type: "delete"; bucket: string; key: string; last?: number }
  | { type: "purge"; bucket: string; key: string; last?: number }
  | { type: "purgeDeletes"; bucket: string; olderThanMs: number }
  | { type: "timeAdvance" };

/**
 * A command as a client, or a follower forwarding it, asks for it: no time. Only the
 * leader stamps its clock onto it (node/leader_proposer.ts), so every replica decides
 * TTLs alike; a time advance is the leader's own and never requested.
 */
export type UnstampedCommand = Exclude<CommandOp, { type: "timeAdvance" }> & {
  request?: RequestId;
};

/** Node-wide quotas, stamped by the leader with its time; 0 = no limit. */
export interface NodeLimits {
  /** Buckets the node may hold; a createBucket beyond is QUOTA_EXCEEDED. */
  maxBuckets: number;
  /** Bytes of values every bucket together may hold; a write beyond is QUOTA_EXCEEDED. */
  maxStoredBytes: number;
  /**
   * The cluster's voter count, stamped on a createBucket: its `replicas` must be this or
   * 0 (every bucket lives in the one Raft group). Absent or 0 = unknown, not checked.
   */
  voters?: number;
}

export type Command = CommandOp & {
  /** Time the leader assigned, ms since epoch. */
  timestampMs: number;
  request?: RequestId;
  /** The leader's quotas when it proposed the command; absent = none. */
  limits?: NodeLimits;
};

/** What a command did, as returned to the proposer and remembered for retries. */
export type CommandResult =
  | {
      ok: true;
      /** The new revision (writes); 0 for commands that append nothing. */
      revision: number;
      /** Entries removed (purgeDeletes) or expired (timeAdvance); else 0. */
      count: number;
    }
  | { ok: false; error: KvError };

/**
 * - `applied`: this call applied the entry.
 * - `duplicate`: the request id was seen before; nothing changed, the first result is returned.
 * - `replay`: the index was applied before; the remembered result is returned.
 * - `forgotten`: the index was applied before and its result left the window (result is INTERNAL).
 */
export type ApplyDisposition = "applied" | "duplicate" | "replay" | "forgotten";

export type ApplyResult = CommandResult & { index: number; disposition: ApplyDisposition };

export interface WatchOptions {
  includeHistory?: boolean;
  ignoreDeletes?: boolean;
  metaOnly?: boolean;
  updatesOnly?: boolean;
  resumeFromRevision?: number;
  /**
   * When entries from `resumeFromRevision` on are no longer all retained (history
   * trimmed, purged, expired, a snapshot installed): true sends, after a `CatchUp`
   * notice, the latest retained entry of each matching key that changed since (a
   * catch-up); false (the default here, the strict rule) fails with REVISION_COMPACTED
   * when the resume point is below the oldest retained revision.
   */
  catchUp?: boolean;
  /**
   * With `catchUp`: when even a catch-up cannot be exact (a key changed after the resume
   * point and then vanished entirely, e.g. its marker was removed by purgeDeletes), true
   * re-lists every matching key (a reset: the consumer replaces its state); false fails
   * with REVISION_COMPACTED.
   */
  allowReset?: boolean;
  /** Live entries a watcher may have queued before it is ended with SLOW_CONSUMER. */
  maxPending?: number;
  /** Value bytes a watcher may have queued before it is ended with SLOW_CONSUMER. */
  maxPendingBytes?: number;
}

export interface ListKeysOptions {
  /** Only keys sorted strictly after this one ("" or absent = from the first key). */
  startAfter?: string;
}

/**
 * How a resumed watch starts when the entries since its resume point are not all
 * retained: from `fromRevision` through `toRevision` (the watch boundary B) only the
 * latest entry of each changed key comes; with `reset`, the latest entry of every
 * matching key comes, and the consumer replaces its state with them.
 */
export interface CatchUp {
  fromRevision: number;
  toRevision: number;
  reset: boolean;
}

/** A watch: initial entries, one `null`, then live entries. */
export interface Watcher extends AsyncIterable<Entry | null> {
  next(): Promise<IteratorResult<Entry | null, undefined>>;
  /**
   * The next item when it is ready now, else undefined (then `next()` waits for it): a
   * consumer drains what is buffered without a promise per entry.
   */
  takeReady(): IteratorResult<Entry | null, undefined> | undefined;
  /** Ends the watch; a pending `next` resolves as done. */
  stop(): void;
  /** The last revision handed out (0 if none); where a client resumes from + 1. */
  readonly lastRevision: number;
  /**
   * The revision boundary B, fixed when the watch started: the bucket's last
   * written revision then (0 if none). Initial entries have revision <= B, live
   * ones > B, whatever the options (with `updatesOnly` nothing <= B comes). A
   * client that resumes an `updatesOnly` watch before anything was delivered
   * resumes from B + 1.
   */
  readonly boundaryRevision: number;
  /** Set when this watch resumes with a catch-up (or a reset) instead of an exact replay. */
  readonly catchUp: CatchUp | undefined;
  /**
   * A revision R such that every matching entry <= R was handed out: the bucket's written
   * revision while the watcher is live and idle, else the last revision handed out; 0
   * during the initial entries. A progress message says "nothing else up to R".
   */
  progressRevision(): number;
}
