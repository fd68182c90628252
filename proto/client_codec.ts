/**
 * The client protocol's codec (proto/client.proto), shared by the SDK (client/wire.ts)
 * and the server's connection handler (node/client_handler.ts), so both ends encode
 * and check a field one way. Browser-safe: it imports protobufjs (through schema.ts),
 * the generated descriptor, errors.ts, wire_errors.ts and types.ts only, and nothing
 * of Node.
 *
 * Two layers: raw frames (`WireObject`, protobufjs objects with snake_case fields) and
 * the field readers and conversions that turn them into the shapes of proto/types.ts,
 * checking every field once. The typed frames are built on these:
 * client_requests.ts (what the server reads) and client_responses.ts (what the SDK reads).
 */

import { KvError } from "./errors.js";
import { descriptor } from "./generated/client.js";
import { messageType } from "./schema.js";
import type {
  BucketConfigInput,
  BucketInfo,
  ClusterStatus,
  Entry,
  NodeStatus,
  Operation,
} from "./types.js";

/** Bumped on an incompatible change of proto/client.proto. */
export const PROTOCOL_VERSION = 1;

const clientFrameType = messageType(descriptor, "streamkv.client.ClientFrame");
const serverFrameType = messageType(descriptor, "streamkv.client.ServerFrame");

export const WriteOp = { PUT: 1, CREATE: 2, UPDATE: 3, DELETE: 4, PURGE: 5 } as const;
export type WriteOp = (typeof WriteOp)[keyof typeof WriteOp];

/** Operation as client.proto numbers it. */
const operationNames: readonly Operation[] = ["PUT", "DEL", "PURGE"];

/**
 * A raw decoded frame: snake_case fields, 64-bit integers as numbers, the oneof name in
 * `body`. Only the readers below and the typed frames (client_requests.ts,
 * client_responses.ts) look into one; tests use it to speak the protocol by hand.
 */
// biome-ignore lint/suspicious/noExplicitAny: raw protobufjs objects; read through the checked field readers below
export type WireObject = Record<string, any>;

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

function malformed(path: string, what: string, value: unknown): KvError {
  return new KvError("MALFORMED_FRAME", `${path} ${what}: ${String(value)}`);
}

/** A decoded uint64/int64 field as a safe integer (absent = 0). */
export function safeInt(value: unknown, field: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== "number" && typeof value !== "string" && typeof value !== "bigint") {
    throw malformed(field, "is not an integer", value);
  }
  const n = typeof value === "number" ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw malformed(field, "is not a safe integer", value);
  return n;
}

/** A decoded integer field, or `fallback` when absent. */
export function safeIntOr(value: unknown, fallback: number, field = "field"): number {
  if (value === undefined || value === null) return fallback;
  return safeInt(value, field);
}

/** Integer field `name` of `o`; undefined when absent (an `optional` field). */
export function optionalIntField(o: WireObject, name: string, path: string): number | undefined {
  const v: unknown = o[name];
  return v === undefined || v === null ? undefined : safeInt(v, `${path}.${name}`);
}

/** Integer field `name` of `o`; 0 when absent. */
export function intField(o: WireObject, name: string, path: string): number {
  return optionalIntField(o, name, path) ?? 0;
}

/** String field `name` of `o`; "" when absent, MALFORMED_FRAME when not a string. */
export function stringField(o: WireObject, name: string, path: string): string {
  const v: unknown = o[name];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw malformed(`${path}.${name}`, "is not a string", v);
  return v;
}

/** String field `name` of `o`, or undefined when absent (a token may be ""). */
export function optionalStringField(o: WireObject, name: string, path: string): string | undefined {
  return o[name] === undefined || o[name] === null ? undefined : stringField(o, name, path);
}

/** Bool field `name` of `o`; false when absent. */
export function boolField(o: WireObject, name: string, path: string): boolean {
  const v: unknown = o[name];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw malformed(`${path}.${name}`, "is not a bool", v);
  return v;
}

/** Bytes field `name` of `o` as decoded (Node hands out its own subclass); empty when absent. */
export function bytesField(o: WireObject, name: string, path: string): Uint8Array {
  const v: unknown = o[name];
  if (v === undefined || v === null) return new Uint8Array(0);
  if (!(v instanceof Uint8Array)) throw malformed(`${path}.${name}`, "is not bytes", v);
  return v;
}

/** Sub-message field `name` of `o`; {} when absent. */
export function messageField(o: WireObject, name: string, path: string): WireObject {
  const v: unknown = o[name];
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v) || v instanceof Uint8Array) {
    throw malformed(`${path}.${name}`, "is not a message", v);
  }
  return v as WireObject;
}

/** Repeated field `name` of `o`; [] when absent. */
export function listField(o: WireObject, name: string, path: string): unknown[] {
  const v: unknown = o[name];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw malformed(`${path}.${name}`, "is not a list", v);
  return v;
}

/** Repeated string field `name` of `o`. */
export function stringListField(o: WireObject, name: string, path: string): string[] {
  return listField(o, name, path).map((v, i) => {
    if (typeof v !== "string") throw malformed(`${path}.${name}[${i}]`, "is not a string", v);
    return v;
  });
}

/** Repeated message field `name` of `o`. */
export function messageListField(o: WireObject, name: string, path: string): WireObject[] {
  return listField(o, name, path).map((v, i) => messageField({ v }, "v", `${path}.${name}[${i}]`));
}

/** Plain Uint8Array view of decoded bytes (Node hands out Buffers). */
export function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return new Uint8Array(0);
}

export function entryFromWire(w: WireObject): Entry {
  const op = intField(w, "operation", "entry");
  return {
    bucket: stringField(w, "bucket", "entry"),
    key: stringField(w, "key", "entry"),
    value: bytesOf(bytesField(w, "value", "entry")),
    revision: intField(w, "revision", "entry"),
    created: new Date(intField(w, "created_ms", "entry")),
    delta: intField(w, "delta", "entry"),
    operation: operationNames[op] ?? "PUT",
    size: intField(w, "size", "entry"),
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

export function configToWire(c: BucketConfigInput): WireObject {
  const w: WireObject = { bucket: c.bucket };
  if (c.history !== undefined) w.history = c.history;
  if (c.ttlMs !== undefined) w.ttl_ms = c.ttlMs;
  if (c.maxValueSize !== undefined) w.max_value_size = c.maxValueSize;
  if (c.maxBytes !== undefined) w.max_bytes = c.maxBytes;
  if (c.replicas !== undefined) w.replicas = c.replicas;
  if (c.description !== undefined) w.description = c.description;
  return w;
}

/**
 * A config as a client sent it. Its integers are passed on as decoded, even beyond 2^53,
 * so the range check (proto/bucket_config.ts, at the proposer and at apply) refuses a
 * bad one as INVALID_CONFIG naming the field, as the SDK does, not as a malformed frame.
 */
export function configFromWire(w: WireObject): BucketConfigInput {
  const c: BucketConfigInput = { bucket: stringField(w, "bucket", "config") };
  const history = configInt(w, "history");
  const ttlMs = configInt(w, "ttl_ms");
  const maxValueSize = configInt(w, "max_value_size");
  const maxBytes = configInt(w, "max_bytes");
  const replicas = configInt(w, "replicas");
  const description = optionalStringField(w, "description", "config");
  if (history !== undefined) c.history = history;
  if (ttlMs !== undefined) c.ttlMs = ttlMs;
  if (maxValueSize !== undefined) c.maxValueSize = maxValueSize;
  if (maxBytes !== undefined) c.maxBytes = maxBytes;
  if (replicas !== undefined) c.replicas = replicas;
  if (description !== undefined) c.description = description;
  return c;
}

function configInt(w: WireObject, name: string): number | undefined {
  const v: unknown = w[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "number") return v;
  return safeInt(v, `config.${name}`);
}

export function statusToWire(s: BucketInfo): WireObject {
  return {
    config: configToWire(s),
    values: s.values,
    bytes: s.bytes,
    first_revision: s.firstRevision,
    last_revision: s.lastRevision,
    leader: s.leader,
    replica_nodes: s.replicaNodes,
    value_limit_bytes: s.valueLimitBytes,
  };
}

export function statusFromWire(w: WireObject): BucketInfo {
  const c = messageField(w, "config", "bucket_status");
  return {
    bucket: stringField(c, "bucket", "config"),
    history: optionalIntField(c, "history", "config") ?? 1,
    ttlMs: intField(c, "ttl_ms", "config"),
    maxValueSize: optionalIntField(c, "max_value_size", "config") ?? -1,
    maxBytes: optionalIntField(c, "max_bytes", "config") ?? -1,
    replicas: optionalIntField(c, "replicas", "config") ?? 1,
    description: stringField(c, "description", "config"),
    values: intField(w, "values", "bucket_status"),
    bytes: intField(w, "bytes", "bucket_status"),
    firstRevision: intField(w, "first_revision", "bucket_status"),
    lastRevision: intField(w, "last_revision", "bucket_status"),
    leader: stringField(w, "leader", "bucket_status"),
    replicaNodes: stringListField(w, "replica_nodes", "bucket_status"),
    valueLimitBytes: intField(w, "value_limit_bytes", "bucket_status"),
  };
}

export function clusterStatusToWire(s: NodeStatus | ClusterStatus): WireObject {
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
      client_url: p.clientUrl,
    })),
    buckets: s.buckets,
    replicated: s.replicated,
    cluster_id: s.clusterId ?? "",
  };
}

export function clusterStatusFromWire(w: WireObject): ClusterStatus {
  const path = "cluster_status";
  return {
    id: stringField(w, "id", path),
    role: stringField(w, "role", path),
    term: intField(w, "term", path),
    leader: stringField(w, "leader", path),
    commitIndex: intField(w, "commit_index", path),
    appliedIndex: intField(w, "applied_index", path),
    peers: messageListField(w, "peers", path).map((p) => ({
      id: stringField(p, "id", "peer"),
      address: stringField(p, "address", "peer"),
      matchIndex: intField(p, "match_index", "peer"),
      voter: boolField(p, "voter", "peer"),
      clientUrl: stringField(p, "client_url", "peer"),
    })),
    buckets: stringListField(w, "buckets", path),
    replicated: boolField(w, "replicated", path),
    clusterId: stringField(w, "cluster_id", path),
  };
}
