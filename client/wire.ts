/**
 * Encoding of the client protocol (proto/client.proto) and the conversions between
 * wire messages and the SDK's public types. Browser-safe: protobufjs and the
 * generated descriptor only.
 */

import { type ErrorCode, isErrorCode, KvError, type KvErrorDetails } from "../proto/errors.js";
import { descriptor } from "../proto/generated/client.js";
import { messageType } from "../proto/index.js";
import type { ClusterStatus, Entry, KeyValueConfig, KeyValueStatus, Operation } from "./types.js";

/** Bumped on an incompatible change of proto/client.proto. */
export const PROTOCOL_VERSION = 1;

const clientFrameType = messageType(descriptor, "streamkv.client.ClientFrame");
const serverFrameType = messageType(descriptor, "streamkv.client.ServerFrame");

export const WriteOp = { PUT: 1, CREATE: 2, UPDATE: 3, DELETE: 4, PURGE: 5 } as const;
export type WriteOp = (typeof WriteOp)[keyof typeof WriteOp];

const operationNames: readonly Operation[] = ["PUT", "DEL", "PURGE"];

/** A decoded frame: snake_case fields, 64-bit integers as numbers, the oneof name in `body`. */
// biome-ignore lint/suspicious/noExplicitAny: decoded protobuf objects are checked field by field where used
export type WireObject = Record<string, any>;

export function encodeClientFrame(frame: WireObject): Uint8Array {
  return clientFrameType.encode(frame).finish();
}

export function decodeClientFrame(bytes: Uint8Array): WireObject {
  return clientFrameType.toObject(clientFrameType.decode(bytes), {
    longs: Number,
    oneofs: true,
    defaults: false,
  });
}

export function encodeServerFrame(frame: WireObject): Uint8Array {
  return serverFrameType.encode(frame).finish();
}

export function decodeServerFrame(bytes: Uint8Array): WireObject {
  return serverFrameType.toObject(serverFrameType.decode(bytes), {
    longs: Number,
    oneofs: true,
    defaults: false,
  });
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

/** Plain Uint8Array view of decoded bytes (Node hands out Buffers). */
export function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return new Uint8Array(0);
}

export function entryFromWire(w: WireObject): Entry {
  const op = w.operation ?? 0;
  return {
    bucket: w.bucket ?? "",
    key: w.key ?? "",
    value: bytesOf(w.value),
    revision: safeInt(w.revision, "entry.revision"),
    created: new Date(safeInt(w.created_ms, "entry.created_ms")),
    delta: safeInt(w.delta, "entry.delta"),
    operation: operationNames[op] ?? "PUT",
    size: safeInt(w.size, "entry.size"),
  };
}

export function entryToWire(e: Entry): WireObject {
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

export function configToWire(c: KeyValueConfig): WireObject {
  const w: WireObject = { bucket: c.bucket };
  if (c.history !== undefined) w.history = c.history;
  if (c.ttl !== undefined) w.ttl_ms = c.ttl;
  if (c.maxValueSize !== undefined) w.max_value_size = c.maxValueSize;
  if (c.maxBytes !== undefined) w.max_bytes = c.maxBytes;
  if (c.replicas !== undefined) w.replicas = c.replicas;
  if (c.description !== undefined) w.description = c.description;
  return w;
}

export function configFromWire(w: WireObject): KeyValueConfig {
  const c: KeyValueConfig = { bucket: w.bucket ?? "" };
  if (w.history !== undefined) c.history = safeInt(w.history, "config.history");
  if (w.ttl_ms !== undefined) c.ttl = safeInt(w.ttl_ms, "config.ttl_ms");
  if (w.max_value_size !== undefined) c.maxValueSize = safeInt(w.max_value_size, "max_value_size");
  if (w.max_bytes !== undefined) c.maxBytes = safeInt(w.max_bytes, "config.max_bytes");
  if (w.replicas !== undefined) c.replicas = safeInt(w.replicas, "config.replicas");
  if (w.description !== undefined) c.description = String(w.description);
  return c;
}

export function statusFromWire(w: WireObject): KeyValueStatus {
  const c = w.config ?? {};
  return {
    bucket: c.bucket ?? "",
    values: safeInt(w.values, "values"),
    bytes: safeInt(w.bytes, "bytes"),
    history: safeInt(c.history ?? 1, "history"),
    ttl: safeInt(c.ttl_ms, "ttl_ms"),
    maxValueSize: c.max_value_size === undefined ? -1 : safeInt(c.max_value_size, "max_value_size"),
    maxBytes: c.max_bytes === undefined ? -1 : safeInt(c.max_bytes, "max_bytes"),
    replicas: safeInt(c.replicas ?? 1, "replicas"),
    description: c.description ?? "",
    firstRevision: safeInt(w.first_revision, "first_revision"),
    lastRevision: safeInt(w.last_revision, "last_revision"),
    leader: w.leader ?? "",
    replicaNodes: Array.isArray(w.replica_nodes) ? w.replica_nodes.map(String) : [],
  };
}

export function statusToWire(s: KeyValueStatus): WireObject {
  return {
    config: configToWire({
      bucket: s.bucket,
      history: s.history,
      ttl: s.ttl,
      maxValueSize: s.maxValueSize,
      maxBytes: s.maxBytes,
      replicas: s.replicas,
      description: s.description,
    }),
    values: s.values,
    bytes: s.bytes,
    first_revision: s.firstRevision,
    last_revision: s.lastRevision,
    leader: s.leader,
    replica_nodes: s.replicaNodes,
  };
}

export function clusterStatusFromWire(w: WireObject): ClusterStatus {
  const peers: WireObject[] = Array.isArray(w.peers) ? w.peers : [];
  return {
    id: w.id ?? "",
    role: w.role ?? "",
    term: safeInt(w.term, "term"),
    leader: w.leader ?? "",
    commitIndex: safeInt(w.commit_index, "commit_index"),
    appliedIndex: safeInt(w.applied_index, "applied_index"),
    peers: peers.map((p) => ({
      id: p.id ?? "",
      address: p.address ?? "",
      matchIndex: safeInt(p.match_index, "match_index"),
      voter: Boolean(p.voter),
    })),
    buckets: Array.isArray(w.buckets) ? w.buckets.map(String) : [],
    replicated: Boolean(w.replicated),
  };
}

export function clusterStatusToWire(s: ClusterStatus): WireObject {
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
