/**
 * `KvService`: everything the client port asks of a node. The ws handler, the HTTP
 * endpoints and the tests speak to this interface only, so the same handler serves a
 * lone node today (node/single_node_service.ts) and the Raft-replicated node later
 * (writes forwarded to the leader, reads through ReadIndex unless `stale`).
 */
import type {
  BucketConfigInput,
  CatchUp,
  Entry,
  HistoryPage,
  WatchOptions,
} from "../kvapi/index.js";
import type {
  BucketInfo,
  WriteRequest as ClientWriteRequest,
  NodeStatus,
  SnapshotHeader,
} from "../proto/index.js";
import type { ImageChunk } from "./backup_images.js";

// Declared once in proto/types.ts, where the client protocol carries them.
export type {
  BucketInfo,
  NodeRole,
  NodeStatus,
  PeerStatus,
  SnapshotStatus,
  WriteOpName,
} from "../proto/index.js";
export type { BucketConfigInput, Entry, HistoryPage, WatchOptions };

export interface ReadOptions {
  /** Serve from this node's applied state without confirming leadership (may be stale). */
  stale: boolean;
}

/** Limits of one client request. */
export interface CallOptions {
  /**
   * When the client stops waiting (epoch ms, from the request's `timeout_ms`): the
   * node does not retry or forward the request past it (nor past its own limit).
   */
  deadlineMs?: number;
}

/** A client's write (proto/client_requests.ts) with the limits of its call. */
export interface WriteRequest extends ClientWriteRequest, CallOptions {}

/** A watch as the service hands it to the client port. */
export interface ServiceWatch {
  next(): Promise<IteratorResult<Entry | null, undefined>>;
  /** The next item if it is ready now, else undefined (Watcher.takeReady). */
  takeReady?(): IteratorResult<Entry | null, undefined> | undefined;
  stop(): void;
  /**
   * The revision boundary B of the initial values: every matching entry <= B comes
   * before the `null`, every later one after it. Lets a client resume an updatesOnly
   * watch that has not received an entry yet.
   */
  readonly initRevision: number;
  /** Set when the watch resumes with a catch-up or a reset (sent before its entries). */
  readonly catchUp: CatchUp | undefined;
  /** Every matching entry <= this was handed out (0: none can be promised yet). */
  progressRevision(): number;
}

export interface KeysPage {
  keys: string[];
  /** No keys after the last one of this page. */
  done: boolean;
}

export interface Readiness {
  ready: boolean;
  reason: string;
}

export interface KvService {
  createBucket(
    config: BucketConfigInput,
    requestId: string,
    opts?: CallOptions,
  ): Promise<BucketInfo>;
  /** BUCKET_NOT_FOUND if absent. */
  bucketInfo(bucket: string, opts: ReadOptions): Promise<BucketInfo>;
  deleteBucket(bucket: string, requestId: string, opts?: CallOptions): Promise<void>;
  /** Sorted by name. */
  listBuckets(opts: ReadOptions): Promise<BucketInfo[]>;
  /** Returns the new revision. */
  write(request: WriteRequest): Promise<number>;
  /** `revision` undefined: the latest entry if a PUT; else getRevision semantics. */
  get(
    bucket: string,
    key: string,
    revision: number | undefined,
    opts: ReadOptions,
  ): Promise<Entry | null>;
  /**
   * At least the largest value stored in `bucket`, known without a read (undefined when
   * unknown): the client port reserves that much for a `get` answer instead of a whole
   * frame. Optional: without it a `get` reserves the largest frame.
   */
  largestValueBytes?(bucket: string): number | undefined;
  /** Keys (latest entry a PUT) matching `filter`, sorted, each > `after`, at most `limit`. */
  keysPage(
    bucket: string,
    filter: string,
    after: string,
    limit: number,
    opts: ReadOptions,
  ): Promise<KeysPage>;
  /** Retained entries of `key`, oldest first. */
  history(bucket: string, key: string, opts: ReadOptions): Promise<Entry[]>;
  /**
   * Retained entries of `key` after `afterRevision`, oldest first, as many as fit in
   * `maxBytes` (at least one); reads only that page from the log.
   */
  historyPage(
    bucket: string,
    key: string,
    afterRevision: number,
    opts: ReadOptions & { maxBytes: number },
  ): Promise<HistoryPage>;
  watch(bucket: string, filter: string, opts: WatchOptions): Promise<ServiceWatch>;
  /** Returns how many markers were removed. */
  purgeDeletes(
    bucket: string,
    olderThanMs: number | undefined,
    requestId: string,
    opts?: CallOptions,
  ): Promise<number>;
  status(): NodeStatus;
  /**
   * Hands Raft leadership to voter `to` and resolves once it leads. NOT_LEADER (with the
   * leader's id) when this node does not lead, INVALID_ARGUMENT when `to` is not a
   * voter, TIMEOUT when `to` did not take over in time (leadership may still move).
   */
  transferLeadership(to: string, opts?: CallOptions): Promise<NodeStatus>;
  /**
   * Removes member `id` from the Raft group (DESIGN.md: single-server changes) and
   * resolves once the change is committed. NOT_LEADER / INVALID_ARGUMENT as above;
   * TIMEOUT when it was not committed in time (it may still be).
   */
  removeServer(id: string, opts?: CallOptions): Promise<NodeStatus>;
  /**
   * Adds node `id` at peer address `address` (host:port): as a learner, then promoted
   * to voter once it has caught up; resolves when it votes. Repeating it after a
   * TIMEOUT continues (a learner already added is only promoted).
   */
  addServer(id: string, address: string, opts?: CallOptions): Promise<NodeStatus>;
  /**
   * Backups (node/backup_images.ts): freeze an image of every bucket that holds every
   * write acknowledged before the call, read it chunk by chunk, release it. Optional:
   * a service without them answers INVALID_ARGUMENT.
   */
  openSnapshot?(): Promise<{ id: number; header: SnapshotHeader }>;
  readSnapshot?(id: number, offset: number, maxBytes: number): Promise<ImageChunk>;
  closeSnapshot?(id: number): void;
  /** `/readyz`: a leader is known and this node applied up to its commit index. */
  readiness(): Promise<Readiness>;
  close(): Promise<void>;
}
