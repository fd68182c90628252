/**
 * The client protocol's codec (proto/client.proto), shared by the SDK (client/wire.ts)
 * and the server's connection handler (node/client_handler.ts), so both ends encode
 * and check a field one way. Browser-safe: it imports protobufjs (through index.ts),
 * the generated descriptor and errors.ts only, and nothing of Node.
 *
 * The shapes here are the protocol's own (ms-named fields as on the wire, in camelCase);
 * each side maps them to its public types where those differ.
 */

import { type ErrorCode, isErrorCode, KvError, type KvErrorDetails } from "./errors.js";
import { descriptor } from "./generated/client.js";
import { messageType } from "./index.js";

/** Bumped on an incompatible change of proto/client.proto. */
export const PROTOCOL_VERSION = 1;

const clientFrameType = messageType(descriptor, "streamkv.client.ClientFrame");
const serverFrameType = messageType(descriptor, "streamkv.client.ServerFrame");

export const WriteOp = { PUT: 1, CREATE: 2, UPDATE: 3, DELETE: 4, PURGE: 5 } as const;
export type WriteOp = (typeof WriteOp)[keyof typeof WriteOp];

export type WireOperation = "PUT" | "DEL" | "PURGE";
const operationNames: readonly WireOperation[] = ["PUT", "DEL", "PURGE"];

/** A decoded frame: snake_case fields, 64-bit integers as numbers, the oneof name in `body`. */
// biome-ignore lint/suspicious/noExplicitAny: decoded protobuf objects are checked field by field where used
export type WireObject = Record<string, any>;

/** An entry as the protocol carries it. */
export interface CodecEntry {
  bucket: string;
  key: string;
  value: Uint8Array;
  revision: number;
  created: Date;
  delta: number;
  operation: WireOperation;
  /** The value's size in bytes (also when the value was left out: metaOnly). */
  size: number;
}

/** A bucket configuration as the protocol carries it; absent fields take server defaults. */
export interface CodecBucketConfig {
  bucket: string;
  history?: number;
  ttlMs?: number;
  maxValueSize?: number;
  maxBytes?: number;
  replicas?: number;
  description?: string;
}

/** BucketStatus on the wire, flattened. */
export interface CodecBucketStatus {
  bucket: string;
  history: number;
  ttlMs: number;
  maxValueSize: number;
  maxBytes: number;
  replicas: number;
  description: string;
  values: number;
  bytes: number;
  firstRevision: number;
  lastRevision: number;
  leader: string;
  replicaNodes: string[];
}

/** ClusterStatus on the wire. */
export interface CodecClusterStatus {
  id: string;
  role: string;
  term: number;
  leader: string;
  commitIndex: number;
  appliedIndex: number;
  peers: { id: string; address: string; matchIndex: number; voter: boolean }[];
  buckets: string[];
  replicated: boolean;
  clusterId?: string;
}

const decodeOptions = { longs: Number, oneofs: true, defaults: false };

export function encodeClientFrame(frame: WireObject): Uint8Array {
  return clientFrameType.encode(frame).finish();
}

export function decodeClientFrame(bytes: Uint8Array): WireObject {
  return clientFrameType.toObject(clientFrameType.decode(bytes), decodeOptions);
}

export function encodeServerFrame(frame: WireObject): Uint8Array {
  return serverFrameType.encode(frame).finish();
}

export function decodeServerFrame(bytes: Uint8Array): WireObject {
  return serverFrameType.toObject(serverFrameType.decode(bytes), decodeOptions);
}

/** A decoded uint64/int64 field as a safe integer (absent = 0). */
export function safeInt(value: unknown, field: string): number {
  if (value === undefined || value === null) return 0;
  const n = typeof value === "number" ? value : Number(value);
  if (!Number.isSafeInteger(n)) {
    throw new KvError("MALFORMED_FRAME", `${field} is not a safe integer: ${String(value)}`);
  }
  return n;
}

/** A decoded integer field, or `fallback` when absent. */
export function safeIntOr(value: unknown, fallback: number, field = "field"): number {
  if (value === undefined || value === null) return fallback;
  return safeInt(value, field);
}

/** A decoded string field ("" when absent or not a string). */
export function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** Plain Uint8Array view of decoded bytes (Node hands out Buffers). */
export function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return new Uint8Array(0);
}

export function entryFromWire(w: WireObject): CodecEntry {
  const op = w.operation ?? 0;
  return {
    bucket: str(w.bucket),
    key: str(w.key),
    value: bytesOf(w.value),
    revision: safeInt(w.revision, "entry.revision"),
    created: new Date(safeInt(w.created_ms, "entry.created_ms")),
    delta: safeInt(w.delta, "entry.delta"),
    operation: operationNames[op] ?? "PUT",
    size: safeInt(w.size, "entry.size"),
  };
}

export function entryToWire(e: CodecEntry): WireObject {
  return {
    bucket: e.bucket,
    key: e.key,
    value: e.value,
    revision: e.revision,
    created_ms: e.created.getTime(),
    delta: e.delta,
    operation: operationNames.indexOf(e.operation),
    size: e.size,
  };
}

export function configToWire(c: CodecBucketConfig): WireObject {
  const w: WireObject = { bucket: c.bucket };
  if (c.history !== undefined) w.history = c.history;
  if (c.ttlMs !== undefined) w.ttl_ms = c.ttlMs;
  if (c.maxValueSize !== undefined) w.max_value_size = c.maxValueSize;
  if (c.maxBytes !== undefined) w.max_bytes = c.maxBytes;
  if (c.replicas !== undefined) w.replicas = c.replicas;
  if (c.description !== undefined) w.description = c.description;
  return w;
}

export function configFromWire(w: WireObject): CodecBucketConfig {
  const c: CodecBucketConfig = { bucket: str(w.bucket) };
  if (w.history !== undefined) c.history = safeInt(w.history, "config.history");
  if (w.ttl_ms !== undefined) c.ttlMs = safeInt(w.ttl_ms, "config.ttl_ms");
  if (w.max_value_size !== undefined) {
    c.maxValueSize = safeInt(w.max_value_size, "config.max_value_size");
  }
  if (w.max_bytes !== undefined) c.maxBytes = safeInt(w.max_bytes, "config.max_bytes");
  if (w.replicas !== undefined) c.replicas = safeInt(w.replicas, "config.replicas");
  if (w.description !== undefined) c.description = String(w.description);
  return c;
}

export function statusToWire(s: CodecBucketStatus): WireObject {
  return {
    config: configToWire(s),
    values: s.values,
    bytes: s.bytes,
    first_revision: s.firstRevision,
    last_revision: s.lastRevision,
    leader: s.leader,
    replica_nodes: s.replicaNodes,
  };
}

export function statusFromWire(w: WireObject): CodecBucketStatus {
  const c = w.config ?? {};
  return {
    bucket: str(c.bucket),
    history: safeInt(c.history ?? 1, "history"),
    ttlMs: safeInt(c.ttl_ms, "ttl_ms"),
    maxValueSize: c.max_value_size === undefined ? -1 : safeInt(c.max_value_size, "max_value_size"),
    maxBytes: c.max_bytes === undefined ? -1 : safeInt(c.max_bytes, "max_bytes"),
    replicas: safeInt(c.replicas ?? 1, "replicas"),
    description: str(c.description),
    values: safeInt(w.values, "values"),
    bytes: safeInt(w.bytes, "bytes"),
    firstRevision: safeInt(w.first_revision, "first_revision"),
    lastRevision: safeInt(w.last_revision, "last_revision"),
    leader: str(w.leader),
    replicaNodes: Array.isArray(w.replica_nodes) ? w.replica_nodes.map(String) : [],
  };
}

export function clusterStatusToWire(s: CodecClusterStatus): WireObject {
  return {
    id: s.id,
    role: s.role,
    term: s.term,
    leader: s.leader,
    commit_index: s.commitIndex,
    applied_index: s.appliedIndex,
    peers: s.peers.map((p) => ({
      id: p.id,
      address: p.address,
      match_index: p.matchIndex,
      voter: p.voter,
    })),
    buckets: s.buckets,
    replicated: s.replicated,
    cluster_id: s.clusterId ?? "",
  };
}

export function clusterStatusFromWire(w: WireObject): CodecClusterStatus {
  const peers: WireObject[] = Array.isArray(w.peers) ? w.peers : [];
  return {
    id: str(w.id),
    role: str(w.role),
    term: safeInt(w.term, "term"),
    leader: str(w.leader),
    commitIndex: safeInt(w.commit_index, "commit_index"),
    appliedIndex: safeInt(w.applied_index, "applied_index"),
    peers: peers.map((p) => ({
      id: str(p.id),
      address: str(p.address),
      matchIndex: safeInt(p.match_index, "match_index"),
      voter: Boolean(p.voter),
    })),
    buckets: Array.isArray(w.buckets) ? w.buckets.map(String) : [],
    replicated: Boolean(w.replicated),
    clusterId: str(w.cluster_id),
  };
}

/** The wire form of an error; anything that is not a KvError becomes INTERNAL. */
export function errorToWire(err: unknown): WireObject {
  const kv = err instanceof KvError ? err : undefined;
  const code: ErrorCode = kv ? kv.code : "INTERNAL";
  const message = err instanceof Error ? err.message : String(err);
  const details: WireObject = {};
  const d: KvErrorDetails = kv ? kv.details : {};
  if (d.currentRevision !== undefined) details.current_revision = d.currentRevision;
  if (d.firstRevision !== undefined) details.first_revision = d.firstRevision;
  if (d.lastRevision !== undefined) details.last_revision = d.lastRevision;
  if (d.leaderId !== undefined) details.leader_id = d.leaderId;
  return { code, message, details };
}

export function errorFromWire(w: WireObject): KvError {
  const rawCode = String(w.code ?? "");
  const code: ErrorCode = isErrorCode(rawCode) ? rawCode : "INTERNAL";
  const message = String(w.message ?? "") || code;
  const d = w.details ?? {};
  const details: KvErrorDetails = {};
  if (d.current_revision !== undefined) {
    details.currentRevision = safeInt(d.current_revision, "current_revision");
  }
  if (d.first_revision !== undefined) {
    details.firstRevision = safeInt(d.first_revision, "first_revision");
  }
  if (d.last_revision !== undefined) {
    details.lastRevision = safeInt(d.last_revision, "last_revision");
  }
  if (d.leader_id !== undefined) details.leaderId = String(d.leader_id);
  return new KvError(code, isErrorCode(rawCode) ? message : `${rawCode}: ${message}`, details);
}
