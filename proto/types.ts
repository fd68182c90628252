/**
 * The shapes that cross the client port, declared once: kvapi produces them, the node
 * serves them, the codec puts them on the wire and the SDK hands them to applications
 * (client/types.ts re-exports them, mapping only the names the public API spells
 * differently: `ttl` for `ttlMs`). Types only; browser-safe; imports nothing.
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
  /** How many newer matching entries were still queued for this watch (0 on reads). */
  delta: number;
  operation: Operation;
  /** Size of the value in bytes, known also when `metaOnly` left `value` empty. */
  size: number;
}

/** A bucket's configuration as users write it; omitted fields take defaults. */
export interface BucketConfigInput {
  bucket: string;
  /** Revisions kept per key, 1..64 (default 1). */
  history?: number;
  /** Entries expire this long after they were written; 0 = never (default). */
  ttlMs?: number;
  /** Largest value in bytes; -1 = the server maximum (default). */
  maxValueSize?: number;
  /** Largest total value bytes; -1 = unlimited (default). */
  maxBytes?: number;
  /**
   * The cluster's voter count, or 0 = that count (default): every bucket lives in the
   * one Raft group, so any other count is INVALID_CONFIG. Status reports the count now.
   */
  replicas?: number;
  description?: string;
}

/** A bucket's configuration with every field explicit (what is stored). */
export interface BucketConfig {
  bucket: string;
  history: number;
  ttlMs: number;
  maxValueSize: number;
  maxBytes: number;
  replicas: number;
  description: string;
}

export interface BucketStatus extends BucketConfig {
  /** Stored entries, history and markers included (as NATS counts them). */
  values: number;
  /** Stored value bytes. */
  bytes: number;
}

/** A bucket as the client port reports it (BucketStatus in proto/client.proto, flattened). */
export interface BucketInfo extends BucketStatus {
  /** Oldest retained revision (lastRevision + 1 when empty). */
  firstRevision: number;
  /** Newest revision ever assigned (0 if none). */
  lastRevision: number;
  /** The node that leads the bucket's Raft group ("" if unknown). */
  leader: string;
  /** Nodes holding a replica. */
  replicaNodes: string[];
  /**
   * The largest value a write may carry, bytes: `maxValueSize`, or the server's limit
   * when that is -1 (a larger value is VALUE_TOO_LARGE).
   */
  valueLimitBytes: number;
}

export interface PeerStatus {
  id: string;
  address: string;
  matchIndex: number;
  voter: boolean;
  /** Where the member serves clients, as it announced it to this node ("" = not yet known). */
  clientUrl: string;
}

export type NodeRole = "leader" | "follower" | "candidate" | "learner" | "unknown";

export interface SnapshotStatus {
  /** Last index the Raft log was compacted to or a snapshot installed at (0 = none). */
  index: number;
  /** First index still in this node's Raft log. */
  firstIndex: number;
  /** Snapshot transfers this node sent as leader (last chunk sent). */
  sent: number;
  /** Snapshots installed on this node as follower. */
  installed: number;
  /** Transfers abandoned (unreadable image, bad chunk, stalled follower). */
  failed: number;
  /** Compactions of the Raft log on this node. */
  compactions: number;
}

/**
 * A node's view of the cluster as the client protocol carries it (`nc.clusterStatus()`,
 * `streamkv cluster status`). `role` is a string: a newer server may name a role this
 * client does not know.
 */
export interface ClusterStatus {
  id: string;
  role: string;
  term: number;
  /** "" when no leader is known. */
  leader: string;
  commitIndex: number;
  appliedIndex: number;
  peers: PeerStatus[];
  buckets: string[];
  /** false while the node applies writes as a lone, unreplicated node. */
  replicated: boolean;
  /** The cluster's identity (what a node joining with --join passes as --cluster-id). */
  clusterId: string;
}

/** The node's own status (`/v1/status`, the cluster_status request): ClusterStatus and more. */
export interface NodeStatus extends Omit<ClusterStatus, "role" | "clusterId"> {
  role: NodeRole;
  /** The cluster's identity (node.json); absent on a service without one. */
  clusterId?: string;
  /** Raft log compaction and snapshot transfers (absent on a service without Raft). */
  snapshot?: SnapshotStatus;
  /**
   * Raft messages dropped because their sender broke Raft (a second leader in a term, a
   * conflict with what this node committed); 0 in a healthy cluster.
   */
  raftViolations?: number;
}

/** The writes a client can ask for (WriteOp in proto/client.proto). */
export type WriteOpName = "put" | "create" | "update" | "delete" | "purge";
