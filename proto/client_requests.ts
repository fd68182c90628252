/**
 * What a client asks (ClientFrame in proto/client.proto), decoded once at the server's
 * edge into a discriminated union with every field checked here: a wrong type, a value
 * that is not a safe integer (MALFORMED_FRAME; a bucket config's integers excepted, whose
 * range check answers INVALID_CONFIG), a missing required field (request ids,
 * `update`'s last revision, cluster members: INVALID_ARGUMENT). node/client_handler.ts
 * switches on `type` and never reads a raw field.
 *
 * Defaults the protocol defines are applied here (an absent filter is ">"); limits that
 * are the server's policy (page sizes, credit bounds) stay in the handler.
 */

import {
  boolField,
  bytesField,
  configFromWire,
  decodeClientFrame,
  intField,
  messageField,
  optionalIntField,
  optionalStringField,
  stringField,
  type WireObject,
} from "./client_codec.js";
import { KvError } from "./errors.js";
import type { BucketConfigInput, WriteOpName } from "./types.js";

/** A client's put/create/update/delete/purge, as decoded and as the node's services take it. */
export interface WriteRequest {
  bucket: string;
  key: string;
  op: WriteOpName;
  /** As decoded (empty for delete and purge). */
  value: Uint8Array;
  /** Required for update; an optional guard for delete and purge. */
  last?: number;
  /** Client-chosen id; a retry with the same id is applied at most once. */
  requestId: string;
}

export type ClientRequest =
  | { type: "hello"; protocolVersion: number; token: string | undefined; clientName: string }
  | { type: "ping" }
  | { type: "bucket_create"; config: BucketConfigInput; requestId: string }
  | { type: "bucket_info"; bucket: string; stale: boolean }
  | { type: "bucket_delete"; bucket: string; requestId: string }
  | { type: "bucket_list"; stale: boolean }
  | ({ type: "write" } & WriteRequest)
  | { type: "get"; bucket: string; key: string; revision?: number; stale: boolean }
  | {
      type: "keys";
      bucket: string;
      filter: string;
      /** Only keys after this ("" = from the first). */
      after: string;
      /** 0 = the server's choice. */
      limit: number;
      stale: boolean;
    }
  | { type: "history"; bucket: string; key: string; afterRevision: number; stale: boolean }
  | {
      type: "watch";
      bucket: string;
      filter: string;
      includeHistory: boolean;
      ignoreDeletes: boolean;
      metaOnly: boolean;
      updatesOnly: boolean;
      resumeFromRevision?: number;
      /** Events granted up front, as sent (0 = none given). */
      credit: number;
      catchUp: boolean;
      allowReset: boolean;
      /** 0 = no progress events. */
      progressIntervalMs: number;
      /** The client takes several entries per frame (watch_entries). */
      batchEntries: boolean;
    }
  | { type: "watch_credit"; watchId: number; credit: number }
  | { type: "watch_stop"; watchId: number }
  | { type: "purge_deletes"; bucket: string; olderThanMs?: number; requestId: string }
  | { type: "cluster_status" }
  | { type: "cluster_transfer"; to: string }
  | { type: "cluster_add"; id: string; address: string }
  | { type: "cluster_remove"; id: string }
  | { type: "snapshot_open" }
  | {
      type: "snapshot_read";
      snapshotId: number;
      offset: number;
      /** 0 = the server's choice. */
      maxBytes: number;
    }
  | { type: "snapshot_close"; snapshotId: number };

export type ClientRequestType = ClientRequest["type"];

/**
 * One decoded ClientFrame:
 * - `request`: sound; serve it.
 * - `invalid`: the envelope is sound but a field of the body is not; answer `error` on
 *   `id` and keep the connection (like any failed request).
 * - `refused`: the frame itself is unusable (undecodable, bad id, no known body); answer
 *   `error` on `id` and close the connection.
 */
export type DecodedClientFrame =
  | { kind: "request"; id: number; timeoutMs: number; request: ClientRequest }
  | { kind: "invalid"; id: number; timeoutMs: number; type: ClientRequestType; error: KvError }
  | { kind: "refused"; id: number; error: KvError };

const WRITE_OPS: Readonly<Record<number, WriteOpName>> = {
  1: "put",
  2: "create",
  3: "update",
  4: "delete",
  5: "purge",
};

type Decoder = (body: WireObject) => ClientRequest;

const decoders: { readonly [T in ClientRequestType]: Decoder } = {
  hello: (b) => ({
    type: "hello",
    protocolVersion: intField(b, "protocol_version", "hello"),
    token: optionalStringField(b, "token", "hello"),
    clientName: stringField(b, "client_name", "hello"),
  }),
  ping: () => ({ type: "ping" }),
  bucket_create: (b) => ({
    type: "bucket_create",
    config: configFromWire(messageField(b, "config", "bucket_create")),
    requestId: requestIdOf(b, "bucket_create"),
  }),
  bucket_info: (b) => ({
    type: "bucket_info",
    bucket: stringField(b, "bucket", "bucket_info"),
    stale: boolField(b, "stale", "bucket_info"),
  }),
  bucket_delete: (b) => ({
    type: "bucket_delete",
    bucket: stringField(b, "bucket", "bucket_delete"),
    requestId: requestIdOf(b, "bucket_delete"),
  }),
  bucket_list: (b) => ({ type: "bucket_list", stale: boolField(b, "stale", "bucket_list") }),
  write: decodeWrite,
  get: (b) => {
    const revision = optionalIntField(b, "revision", "get");
    return {
      type: "get",
      bucket: stringField(b, "bucket", "get"),
      key: stringField(b, "key", "get"),
      ...(revision === undefined ? {} : { revision }),
      stale: boolField(b, "stale", "get"),
    };
  },
  keys: (b) => ({
    type: "keys",
    bucket: stringField(b, "bucket", "keys"),
    filter: stringField(b, "filter", "keys") || ">",
    after: stringField(b, "after", "keys"),
    limit: intField(b, "limit", "keys"),
    stale: boolField(b, "stale", "keys"),
  }),
  history: (b) => ({
    type: "history",
    bucket: stringField(b, "bucket", "history"),
    key: stringField(b, "key", "history"),
    afterRevision: intField(b, "after_revision", "history"),
    stale: boolField(b, "stale", "history"),
  }),
  watch: (b) => {
    const resumeFromRevision = optionalIntField(b, "resume_from_revision", "watch");
    return {
      type: "watch",
      bucket: stringField(b, "bucket", "watch"),
      // Only an absent filter means ">": an empty one is refused (INVALID_KEY) as a filter.
      filter: optionalStringField(b, "filter", "watch") ?? ">",
      includeHistory: boolField(b, "include_history", "watch"),
      ignoreDeletes: boolField(b, "ignore_deletes", "watch"),
      metaOnly: boolField(b, "meta_only", "watch"),
      updatesOnly: boolField(b, "updates_only", "watch"),
      ...(resumeFromRevision === undefined ? {} : { resumeFromRevision }),
      credit: intField(b, "credit", "watch"),
      catchUp: boolField(b, "catch_up", "watch"),
      allowReset: boolField(b, "allow_reset", "watch"),
      progressIntervalMs: intField(b, "progress_interval_ms", "watch"),
      batchEntries: boolField(b, "batch_entries", "watch"),
    };
  },
  watch_credit: (b) => ({
    type: "watch_credit",
    watchId: intField(b, "watch_id", "watch_credit"),
    credit: intField(b, "credit", "watch_credit"),
  }),
  watch_stop: (b) => ({ type: "watch_stop", watchId: intField(b, "watch_id", "watch_stop") }),
  purge_deletes: (b) => {
    const olderThanMs = optionalIntField(b, "older_than_ms", "purge_deletes");
    return {
      type: "purge_deletes",
      bucket: stringField(b, "bucket", "purge_deletes"),
      ...(olderThanMs === undefined ? {} : { olderThanMs }),
      requestId: requestIdOf(b, "purge_deletes"),
    };
  },
  cluster_status: () => ({ type: "cluster_status" }),
  cluster_transfer: (b) => ({
    type: "cluster_transfer",
    to: requiredString(b, "to", "cluster_transfer"),
  }),
  cluster_add: (b) => ({
    type: "cluster_add",
    id: requiredString(b, "id", "cluster_add"),
    address: stringField(b, "address", "cluster_add"),
  }),
  cluster_remove: (b) => ({
    type: "cluster_remove",
    id: requiredString(b, "id", "cluster_remove"),
  }),
  snapshot_open: () => ({ type: "snapshot_open" }),
  snapshot_read: (b) => ({
    type: "snapshot_read",
    snapshotId: intField(b, "snapshot_id", "snapshot_read"),
    offset: intField(b, "offset", "snapshot_read"),
    maxBytes: intField(b, "max_bytes", "snapshot_read"),
  }),
  snapshot_close: (b) => ({
    type: "snapshot_close",
    snapshotId: intField(b, "snapshot_id", "snapshot_close"),
  }),
};

function isRequestType(name: string): name is ClientRequestType {
  return Object.hasOwn(decoders, name);
}

/** Decodes one binary frame; never throws for anything a client can send. */
export function decodeClientRequest(bytes: Uint8Array): DecodedClientFrame {
  let frame: WireObject;
  try {
    frame = decodeClientFrame(bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return {
      kind: "refused",
      id: 0,
      error: new KvError("MALFORMED_FRAME", `cannot decode the frame: ${reason}`),
    };
  }
  let id: number;
  let timeoutMs: number;
  try {
    id = intField(frame, "id", "frame");
  } catch (err) {
    return { kind: "refused", id: 0, error: asKvError(err) };
  }
  try {
    timeoutMs = intField(frame, "timeout_ms", "frame");
  } catch (err) {
    return { kind: "refused", id, error: asKvError(err) };
  }
  const name: unknown = frame.body;
  if (typeof name !== "string" || !isRequestType(name)) {
    return {
      kind: "refused",
      id,
      error: new KvError("UNKNOWN_MESSAGE", "the frame carries no message this server knows"),
    };
  }
  try {
    const body = messageField(frame, name, "frame");
    return { kind: "request", id, timeoutMs, request: decoders[name](body) };
  } catch (err) {
    return { kind: "invalid", id, timeoutMs, type: name, error: asKvError(err) };
  }
}

function decodeWrite(b: WireObject): ClientRequest {
  const rawOp = intField(b, "op", "write");
  const op = WRITE_OPS[rawOp];
  if (!op) throw new KvError("INVALID_ARGUMENT", `unknown write op ${rawOp}`);
  const value = bytesField(b, "value", "write");
  const bucket = stringField(b, "bucket", "write");
  const key = stringField(b, "key", "write");
  const requestId = requestIdOf(b, "write");
  const last = optionalIntField(b, "last_revision", "write");
  if (op === "update" && last === undefined) {
    throw new KvError("INVALID_ARGUMENT", "update needs last_revision");
  }
  return {
    type: "write",
    bucket,
    key,
    op,
    value,
    ...(last === undefined ? {} : { last }),
    requestId,
  };
}

function requestIdOf(b: WireObject, path: string): string {
  const id = stringField(b, "request_id", path);
  if (id === "" || id.length > 256) {
    throw new KvError("INVALID_ARGUMENT", "request_id must be 1..256 characters");
  }
  return id;
}

function requiredString(b: WireObject, name: string, path: string): string {
  const v = stringField(b, name, path);
  if (v === "") throw new KvError("INVALID_ARGUMENT", `${path} needs \`${name}\``);
  return v;
}

/** Field readers throw KvErrors only; anything else escaping them is a bug, rethrown. */
function asKvError(err: unknown): KvError {
  if (err instanceof KvError) return err;
  throw err;
}
