/**
 * Public types of the client SDK (DESIGN.md section 6). They mirror NATS JetStream
 * KV (nats.js `KvEntry`, `KvStatus`, `KvWatchOptions`) with the semantics of
 * SEMANTICS.md.
 */

export type Operation = "PUT" | "DEL" | "PURGE";

/** One stored revision of a key. */
export interface Entry {
  bucket: string;
  key: string;
  /** The value; empty for DEL/PURGE markers and for `metaOnly` watches. */
  value: Uint8Array;
  /** The bucket-wide revision (stream sequence) of this entry. */
  revision: number;
  /** When the leader accepted the write. */
  created: Date;
  /** How many newer matching entries the server still had queued for this watch (0 on get). */
  delta: number;
  operation: Operation;
  /** Size of the value in bytes, known also when `metaOnly` left `value` empty. */
  size: number;
}

/** Configuration of a bucket; absent fields take the server defaults (DESIGN.md section 1). */
export interface KeyValueConfig {
  bucket: string;
  /** Entries kept per key, 1..64 (default 1). */
  history?: number;
  /** Entries expire this long after they were written, in ms (0 = forever). */
  ttl?: number;
  /** Largest value in bytes (-1 = the server's maximum). */
  maxValueSize?: number;
  /** Largest total size of the bucket's values in bytes (-1 = unlimited). */
  maxBytes?: number;
  /** 1, 3 or 5 (default: the cluster size, at most 5). */
  replicas?: number;
  description?: string;
}

/** What `kv.status()` and `nc.listBuckets()` report about a bucket. */
export interface KeyValueStatus {
  bucket: string;
  /** Stored entries, history and markers included (as NATS counts them). */
  values: number;
  /** Bytes of stored values. */
  bytes: number;
  history: number;
  /** ms, 0 = forever. */
  ttl: number;
  maxValueSize: number;
  maxBytes: number;
  replicas: number;
  description: string;
  /** Oldest retained revision (lastRevision + 1 when empty). */
  firstRevision: number;
  /** Newest revision ever assigned (0 if none). */
  lastRevision: number;
  /** The node leading the bucket's Raft group ("" if unknown). */
  leader: string;
  /** Nodes holding a replica. */
  replicaNodes: string[];
}

export interface WatchOptions {
  /** All retained entries instead of the latest per key. */
  includeHistory?: boolean;
  /** Drop DEL and PURGE entries. */
  ignoreDeletes?: boolean;
  /** Entries without value bytes (`size` still set). */
  metaOnly?: boolean;
  /** No initial values: the `null` comes first. */
  updatesOnly?: boolean;
  /** Every retained matching entry with revision >= this, then `null`, then live. */
  resumeFromRevision?: number;
  /** Events the server may send ahead of the application (default 256). */
  bufferSize?: number;
  /** Timeout of the subscribe request in ms (default: the connection's timeoutMs). */
  timeoutMs?: number;
}

/** Options every call accepts. */
export interface CallOptions {
  /** Fail with TIMEOUT after this many ms (default: the connection's timeoutMs). */
  timeoutMs?: number;
}

/** Options of reads. */
export interface ReadOptions extends CallOptions {
  /** Serve from the contacted node's applied state, skipping ReadIndex (may be stale). */
  stale?: boolean;
}

export interface DeleteOptions extends CallOptions {
  /** Only if the key's latest revision is this (0 = the key has no entry). */
  last?: number;
}

export interface PurgeDeletesOptions extends CallOptions {
  /** Remove markers older than this many ms (default 30 minutes). */
  olderThanMs?: number;
}

/** Something that happened to the connection; the application may ignore all of these. */
export type ConnectionEvent =
  | { type: "connected"; server: string; serverId: string }
  | { type: "disconnected"; server: string; reason: string }
  | { type: "reconnecting"; server: string; attempt: number; delayMs: number }
  | { type: "watch_resumed"; bucket: string; filter: string; fromRevision: number; reason: string }
  | { type: "server_error"; code: string; message: string };

export interface ConnectOptions {
  /** WebSocket URLs of any nodes of the cluster, e.g. `ws://127.0.0.1:7420`. */
  servers: string[] | string;
  /** Sent in the hello frame when the server requires one. */
  token?: string;
  /** Default timeout of every call in ms (default 5000). Also bounds the first connect. */
  timeoutMs?: number;
  /** Name the server may log for this connection. */
  name?: string;
  /** First reconnect delay in ms (default 50); doubles up to `reconnectDelayMaxMs`. */
  reconnectDelayMs?: number;
  /** Longest reconnect delay in ms (default 2000). */
  reconnectDelayMaxMs?: number;
  /** Called on connection events (reconnects, resumed watches). */
  onEvent?: (event: ConnectionEvent) => void;
}

/** A node's view of the cluster (`nc.clusterStatus()`, `streamkv cluster status`). */
export interface ClusterStatus {
  id: string;
  role: string;
  term: number;
  leader: string;
  commitIndex: number;
  appliedIndex: number;
  peers: { id: string; address: string; matchIndex: number; voter: boolean }[];
  buckets: string[];
  /** false while the node applies writes as a lone, unreplicated node. */
  replicated: boolean;
  /** The cluster's identity (what a node joining with --join passes as --cluster-id). */
  clusterId: string;
}
