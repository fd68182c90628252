/**
 * The header of a backup (SnapshotHeader in proto/client.proto): what the node says of
 * the image it froze (`snapshot_opened`), and, encoded the same way, the header of a
 * backup file, so the wire and the file share one definition. Browser-safe.
 */
import { intField, stringField, stringListField, type WireObject } from "./client_codec.js";
import { KvError } from "./errors.js";
import { descriptor as clientSchema } from "./generated/client.js";
import { messageType } from "./schema.js";

export interface SnapshotHeader {
  /** Of the image's bytes (log/snapshot.ts chunks). */
  formatVersion: number;
  clusterId: string;
  /** The node that froze the image. */
  nodeId: string;
  voters: string[];
  learners: string[];
  /** Every Raft entry through this index is in the image; `raftTerm` is its term. */
  raftIndex: number;
  raftTerm: number;
  /** The node's clock when the image was frozen, ms since the epoch. */
  createdMs: number;
  streamkvVersion: string;
  buckets: string[];
}

const HeaderType = messageType(clientSchema, "streamkv.client.SnapshotHeader");
const decodeOptions = { longs: Number, defaults: false };

export function snapshotHeaderToWire(h: SnapshotHeader): WireObject {
  return {
    format_version: h.formatVersion,
    cluster_id: h.clusterId,
    node_id: h.nodeId,
    voters: h.voters,
    learners: h.learners,
    raft_index: h.raftIndex,
    raft_term: h.raftTerm,
    created_ms: h.createdMs,
    streamkv_version: h.streamkvVersion,
    buckets: h.buckets,
  };
}

/** Every field checked (MALFORMED_FRAME otherwise). */
export function snapshotHeaderFromWire(w: WireObject, path = "snapshot_header"): SnapshotHeader {
  return {
    formatVersion: intField(w, "format_version", path),
    clusterId: stringField(w, "cluster_id", path),
    nodeId: stringField(w, "node_id", path),
    voters: stringListField(w, "voters", path),
    learners: stringListField(w, "learners", path),
    raftIndex: intField(w, "raft_index", path),
    raftTerm: intField(w, "raft_term", path),
    createdMs: intField(w, "created_ms", path),
    streamkvVersion: stringField(w, "streamkv_version", path),
    buckets: stringListField(w, "buckets", path),
  };
}

export function encodeSnapshotHeader(h: SnapshotHeader): Uint8Array {
  return HeaderType.encode(snapshotHeaderToWire(h)).finish();
}

/** MALFORMED_FRAME when the bytes are not a SnapshotHeader. */
export function decodeSnapshotHeader(bytes: Uint8Array): SnapshotHeader {
  let w: WireObject;
  try {
    w = HeaderType.toObject(HeaderType.decode(bytes), decodeOptions);
  } catch (err) {
    throw new KvError("MALFORMED_FRAME", `not a snapshot header: ${String(err)}`);
  }
  return snapshotHeaderFromWire(w);
}
