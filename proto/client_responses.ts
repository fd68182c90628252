/**
 * What a server answers (ServerFrame in proto/client.proto), as a discriminated union:
 * the handler builds these and `encodeServerAnswer` puts them on the wire; the SDK gets
 * them back from `decodeServerAnswer` with every field checked, and never reads a raw
 * field. Browser-safe like the codec.
 */

import {
  boolField,
  bytesField,
  clusterStatusFromWire,
  clusterStatusToWire,
  decodeServerFrame,
  encodeServerFrame,
  entryFromWire,
  entryToWire,
  intField,
  messageField,
  messageListField,
  statusFromWire,
  statusToWire,
  stringField,
  stringListField,
  type WireObject,
} from "./client_codec.js";
import { decodeEntryFrame, encodeEntryFrame } from "./entry_frames.js";
import { KvError } from "./errors.js";
import {
  type SnapshotHeader,
  snapshotHeaderFromWire,
  snapshotHeaderToWire,
} from "./snapshot_header.js";
import type { BucketInfo, ClusterStatus, Entry, NodeStatus } from "./types.js";
import { errorFromWire, errorToWire } from "./wire_errors.js";

export type ServerAnswer =
  | { type: "hello_ok"; protocolVersion: number; serverId: string; maxFrameBytes: number }
  | { type: "bucket_status"; status: BucketInfo }
  | { type: "bucket_list"; buckets: BucketInfo[] }
  | { type: "write_result"; revision: number }
  | { type: "get_result"; entry: Entry | null }
  | { type: "keys_chunk"; keys: string[]; done: boolean }
  | { type: "entries_chunk"; entries: Entry[]; done: boolean }
  /** WatchEvent with an entry. */
  | { type: "watch_entry"; entry: Entry }
  /** WatchEvent with several entries, in revision order (asked for with batch_entries). */
  | { type: "watch_entries"; entries: Entry[] }
  /** WatchEvent InitDone: initial values are done; `revision` is the boundary (0 = unknown). */
  | { type: "watch_init_done"; revision: number }
  /** WatchEvent CatchUp: a catch-up (or, with `reset`, a re-list) of the revisions between. */
  | { type: "watch_catch_up"; fromRevision: number; toRevision: number; reset: boolean }
  /** WatchEvent Progress: every matching entry <= revision was sent (0 = alive only). */
  | { type: "watch_progress"; revision: number }
  | { type: "watch_end" }
  | { type: "purge_deletes_result"; purged: number }
  /** Encoded from the node's NodeStatus; decoded as the protocol's ClusterStatus. */
  | { type: "cluster_status"; status: ClusterStatus }
  | { type: "ack" }
  | { type: "pong" }
  /** A backup image was frozen: read it with snapshot_read under `snapshotId`. */
  | { type: "snapshot_opened"; snapshotId: number; header: SnapshotHeader }
  /** Image bytes from `offset`; the last chunk (`done`) carries the image's SHA-256. */
  | {
      type: "snapshot_chunk";
      offset: number;
      data: Uint8Array;
      done: boolean;
      imageSha256: Uint8Array;
    }
  /** ServerFrame.error: the request failed, or the watch ended with it. */
  | { type: "error"; error: KvError }
  /** A frame with neither a body nor an error (nothing this SDK knows). */
  | { type: "empty" };

export type ServerAnswerType = ServerAnswer["type"];

/** The answer to frame `id` (0 = about the connection). */
export interface ServerMessage {
  id: number;
  answer: ServerAnswer;
}

/** What the server encodes: like ServerAnswer, with the node's own status for cluster_status. */
export type ServerReply =
  | Exclude<ServerAnswer, { type: "cluster_status" } | { type: "empty" }>
  | { type: "cluster_status"; status: NodeStatus | ClusterStatus };

export function encodeServerAnswer(id: number, reply: ServerReply): Uint8Array {
  // Watch entries are most of what a server sends: encoded without protobufjs.
  if (reply.type === "watch_entry") return encodeEntryFrame(id, [reply.entry], false);
  if (reply.type === "watch_entries") return encodeEntryFrame(id, reply.entries, true);
  return encodeServerFrame({ id, ...replyToWire(reply) });
}

/** Every reply but watch entries (entry_frames.ts encodes those). */
function replyToWire(
  r: Exclude<ServerReply, { type: "watch_entry" } | { type: "watch_entries" }>,
): WireObject {
  switch (r.type) {
    case "hello_ok":
      return {
        hello_ok: {
          protocol_version: r.protocolVersion,
          server_id: r.serverId,
          max_frame_bytes: r.maxFrameBytes,
        },
      };
    case "bucket_status":
      return { bucket_status: statusToWire(r.status) };
    case "bucket_list":
      return { bucket_list: { buckets: r.buckets.map(statusToWire) } };
    case "write_result":
      return { write_result: { revision: r.revision } };
    case "get_result":
      return { get_result: r.entry ? { entry: entryToWire(r.entry) } : {} };
    case "keys_chunk":
      return { keys_chunk: { keys: r.keys, done: r.done } };
    case "entries_chunk":
      return { entries_chunk: { entries: r.entries.map(entryToWire), done: r.done } };
    case "watch_init_done":
      return { watch_event: { init_done: { revision: r.revision } } };
    case "watch_catch_up":
      return {
        watch_event: {
          catch_up: {
            from_revision: r.fromRevision,
            to_revision: r.toRevision,
            reset: r.reset,
          },
        },
      };
    case "watch_progress":
      return { watch_event: { progress: { revision: r.revision } } };
    case "watch_end":
      return { watch_end: {} };
    case "purge_deletes_result":
      return { purge_deletes_result: { purged: r.purged } };
    case "cluster_status":
      return { cluster_status: clusterStatusToWire(r.status) };
    case "ack":
      return { ack: {} };
    case "pong":
      return { pong: {} };
    case "snapshot_opened":
      return {
        snapshot_opened: { snapshot_id: r.snapshotId, header: snapshotHeaderToWire(r.header) },
      };
    case "snapshot_chunk":
      return {
        snapshot_chunk: {
          offset: r.offset,
          data: r.data,
          done: r.done,
          image_sha256: r.imageSha256,
        },
      };
    case "error":
      return { error: errorToWire(r.error) };
    default:
      return unreachable(r);
  }
}

/**
 * Decodes one server frame. Throws MALFORMED_FRAME only when the bytes are not a
 * ServerFrame at all; a frame whose body does not check out becomes an `error` answer
 * (MALFORMED_FRAME) for its id, so the call or watch waiting for it fails with that.
 */
export function decodeServerAnswer(bytes: Uint8Array): ServerMessage {
  // Watch entries, most frames a watching client gets, are read without protobufjs.
  const entries = decodeEntryFrame(bytes);
  if (entries !== undefined) {
    return entries.batched
      ? { id: entries.id, answer: { type: "watch_entries", entries: entries.entries } }
      : { id: entries.id, answer: { type: "watch_entry", entry: entries.entries[0]! } };
  }
  let frame: WireObject;
  try {
    frame = decodeServerFrame(bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new KvError("MALFORMED_FRAME", `cannot decode a server frame: ${reason}`);
  }
  const id = typeof frame.id === "number" && Number.isSafeInteger(frame.id) ? frame.id : 0;
  try {
    return { id, answer: answerOf(frame) };
  } catch (err) {
    if (!(err instanceof KvError)) throw err;
    return { id, answer: { type: "error", error: err } };
  }
}

function answerOf(f: WireObject): ServerAnswer {
  if (f.error !== undefined && f.error !== null) {
    return { type: "error", error: errorFromWire(messageField(f, "error", "frame")) };
  }
  const name: unknown = f.body;
  if (name === undefined) return { type: "empty" };
  const path = String(name);
  const b = typeof name === "string" ? messageField(f, name, "frame") : {};
  switch (name) {
    case "hello_ok":
      return {
        type: "hello_ok",
        protocolVersion: intField(b, "protocol_version", path),
        serverId: stringField(b, "server_id", path),
        maxFrameBytes: intField(b, "max_frame_bytes", path),
      };
    case "bucket_status":
      return { type: "bucket_status", status: statusFromWire(b) };
    case "bucket_list":
      return {
        type: "bucket_list",
        buckets: messageListField(b, "buckets", path).map(statusFromWire),
      };
    case "write_result":
      return { type: "write_result", revision: intField(b, "revision", path) };
    case "get_result": {
      const entry =
        b.entry === undefined || b.entry === null ? null : messageField(b, "entry", path);
      return { type: "get_result", entry: entry ? entryFromWire(entry) : null };
    }
    case "keys_chunk":
      return {
        type: "keys_chunk",
        keys: stringListField(b, "keys", path),
        done: boolField(b, "done", path),
      };
    case "entries_chunk":
      return {
        type: "entries_chunk",
        entries: messageListField(b, "entries", path).map(entryFromWire),
        done: boolField(b, "done", path),
      };
    case "watch_event": {
      if (b.entry !== undefined && b.entry !== null) {
        return { type: "watch_entry", entry: entryFromWire(messageField(b, "entry", path)) };
      }
      if (b.entries !== undefined && b.entries !== null) {
        const list = messageField(b, "entries", path);
        return {
          type: "watch_entries",
          entries: messageListField(list, "entries", `${path}.entries`).map(entryFromWire),
        };
      }
      if (b.init_done !== undefined && b.init_done !== null) {
        const done = messageField(b, "init_done", path);
        return { type: "watch_init_done", revision: intField(done, "revision", "init_done") };
      }
      if (b.catch_up !== undefined && b.catch_up !== null) {
        const c = messageField(b, "catch_up", path);
        return {
          type: "watch_catch_up",
          fromRevision: intField(c, "from_revision", "catch_up"),
          toRevision: intField(c, "to_revision", "catch_up"),
          reset: boolField(c, "reset", "catch_up"),
        };
      }
      if (b.progress !== undefined && b.progress !== null) {
        const p = messageField(b, "progress", path);
        return { type: "watch_progress", revision: intField(p, "revision", "progress") };
      }
      return { type: "empty" };
    }
    case "watch_end":
      return { type: "watch_end" };
    case "purge_deletes_result":
      return { type: "purge_deletes_result", purged: intField(b, "purged", path) };
    case "cluster_status":
      return { type: "cluster_status", status: clusterStatusFromWire(b) };
    case "ack":
      return { type: "ack" };
    case "pong":
      return { type: "pong" };
    case "snapshot_opened":
      return {
        type: "snapshot_opened",
        snapshotId: intField(b, "snapshot_id", path),
        header: snapshotHeaderFromWire(messageField(b, "header", path), `${path}.header`),
      };
    case "snapshot_chunk":
      return {
        type: "snapshot_chunk",
        offset: intField(b, "offset", path),
        data: bytesField(b, "data", path),
        done: boolField(b, "done", path),
        imageSha256: bytesField(b, "image_sha256", path),
      };
    default:
      return { type: "empty" };
  }
}

function unreachable(x: never): never {
  throw new Error(`unhandled server reply ${JSON.stringify(x)}`);
}
