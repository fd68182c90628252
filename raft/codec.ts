/**
 * Encodes and decodes Raft messages and ConfChange entry data with the schema
 * in proto/raft.proto. Decoding is the trust boundary: every index and term is
 * checked to be a safe integer and every field to have its type, and a bad
 * frame becomes a KvError MALFORMED_FRAME (never a crash, never a half-built
 * message reaching the core).
 */
import type protobuf from "protobufjs";
import { raftSchema as descriptor, KvError, messageType } from "../proto/index.js";
import type { ConfState, Entry, EntryType, SnapshotMeta } from "./storage.js";
import {
  type ConfChange,
  type ConfChangeType,
  MESSAGE_TYPES,
  type Message,
  RAFT_WIRE_MAX,
  type SnapshotChunk,
} from "./types.js";

const MessagePb = messageType(descriptor, "streamkv.raft.Message");
const ConfChangePb = messageType(descriptor, "streamkv.raft.ConfChange");

/** Largest value accepted for an index, term, offset or context. */
const UINT_MAX = Number.MAX_SAFE_INTEGER;

function malformed(what: string): KvError {
  return new KvError("MALFORMED_FRAME", `raft message: ${what}`);
}

interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
}

/** A term, index or commit: at most RAFT_WIRE_MAX (types.ts says why). */
function toBounded(value: unknown, field: string): number {
  const n = toSafe(value, field);
  if (n > RAFT_WIRE_MAX) throw malformed(`${field} ${n} exceeds 2^52`);
  return n;
}

function toSafe(value: unknown, field: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0 || value > UINT_MAX) {
      throw malformed(`${field} is not a safe integer`);
    }
    return value;
  }
  if (typeof value === "object" && "high" in value && "low" in value) {
    const long = value as LongLike;
    const high = long.high >>> 0;
    if (high > 0x1fffff) throw malformed(`${field} exceeds 2^53-1`);
    return high * 4294967296 + (long.low >>> 0);
  }
  throw malformed(`${field} has type ${typeof value}`);
}

function toStr(value: unknown, field: string): string {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw malformed(`${field} is not a string`);
  return value;
}

function toBytes(value: unknown, field: string): Uint8Array {
  if (value === undefined || value === null) return new Uint8Array(0);
  if (!(value instanceof Uint8Array)) throw malformed(`${field} is not bytes`);
  // protobufjs hands out Buffers in Node; callers get plain Uint8Arrays everywhere.
  if (value.constructor === Uint8Array) return value;
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function toStrList(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw malformed(`${field} is not a list`);
  return value.map((v, i) => toStr(v, `${field}[${i}]`));
}

function confFromPb(pb: unknown): ConfState {
  const c = (pb ?? {}) as Record<string, unknown>;
  return {
    voters: toStrList(c.voters, "conf.voters"),
    learners: toStrList(c.learners, "conf.learners"),
  };
}

function metaFromPb(pb: unknown): SnapshotMeta {
  const m = (pb ?? {}) as Record<string, unknown>;
  return {
    index: toBounded(m.index, "snapshot.index"),
    term: toBounded(m.term, "snapshot.term"),
    conf: confFromPb(m.conf),
  };
}

function entryFromPb(pb: unknown, i: number): Entry {
  const e = (pb ?? {}) as Record<string, unknown>;
  const type = toSafe(e.type, `entries[${i}].type`);
  if (type > 2) throw malformed(`entries[${i}].type ${type} is unknown`);
  const index = toBounded(e.index, `entries[${i}].index`);
  if (index < 1) throw malformed(`entries[${i}].index must be >= 1`);
  return {
    index,
    term: toBounded(e.term, `entries[${i}].term`),
    type: type as EntryType,
    data: toBytes(e.data, `entries[${i}].data`),
  };
}

/**
 * MsgSnapResp before it had fields of its own: the stored offset travelled in `index`
 * and the snapshot's last index in `commit` (streamkv up to 0.1.0).
 *
 * Rolling upgrades: `encodeMessage` writes both forms for one release, the one that
 * adds `snapshot_index`/`snapshot_offset`, so that a node not upgraded yet (which skips
 * the unknown fields) still follows the transfer; the release after it writes only the
 * new fields (a rolling upgrade moves one release at a time). `decodeMessage` reads the
 * old form whenever `snapshot_index` is absent: a new node always sends it, because a
 * transferred snapshot's last index is at least 1 (proto3 leaves out only zeros).
 */
const legacySnapResp = {
  encode(m: Message, pb: Record<string, unknown>): void {
    pb.index = m.snapshotOffset;
    pb.commit = m.snapshotIndex;
  },
  decode(pb: Record<string, unknown>): { snapshotIndex: number; snapshotOffset: number } {
    return {
      snapshotIndex: toBounded(pb.commit, "commit"),
      snapshotOffset: toSafe(pb.index, "index"),
    };
  },
};

export function encodeMessage(m: Message): Uint8Array {
  const pb: Record<string, unknown> = {
    type: MESSAGE_TYPES.indexOf(m.type),
    from: m.from,
    to: m.to,
    term: m.term,
    log_term: m.logTerm,
    index: m.index,
    entries: m.entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: e.data })),
    commit: m.commit,
    reject: m.reject,
    reject_hint: m.rejectHint,
    context: m.context,
    transfer: m.transfer,
    snapshot_index: m.snapshotIndex,
    snapshot_offset: m.snapshotOffset,
  };
  if (m.type === "MsgSnapResp") legacySnapResp.encode(m, pb);
  if (m.snapshot) {
    pb.snapshot = {
      meta: m.snapshot.meta,
      offset: m.snapshot.offset,
      data: m.snapshot.data,
      done: m.snapshot.done,
    };
  }
  return MessagePb.encode(MessagePb.fromObject(pb)).finish();
}

/** Decodes a peer message; throws KvError MALFORMED_FRAME on anything invalid. */
export function decodeMessage(bytes: Uint8Array): Message {
  let pb: Record<string, unknown>;
  try {
    pb = MessagePb.decode(bytes) as unknown as Record<string, unknown>;
  } catch (err) {
    throw new KvError("MALFORMED_FRAME", "raft message: undecodable protobuf", {}, err);
  }
  const typeNum = toSafe(pb.type, "type");
  const type = MESSAGE_TYPES[typeNum];
  if (type === undefined) throw malformed(`unknown type ${typeNum}`);
  const from = toStr(pb.from, "from");
  const to = toStr(pb.to, "to");
  if (from === "" || to === "") throw malformed("from and to are required");
  const rawEntries = (pb.entries ?? []) as unknown[];
  if (!Array.isArray(rawEntries)) throw malformed("entries is not a list");
  const entries = rawEntries.map(entryFromPb);
  let snapshot: SnapshotChunk | null = null;
  if (pb.snapshot) {
    const s = pb.snapshot as Record<string, unknown>;
    snapshot = {
      meta: metaFromPb(s.meta),
      offset: toSafe(s.offset, "snapshot.offset"),
      data: toBytes(s.data, "snapshot.data"),
      done: s.done === true,
    };
  }
  if (type === "MsgSnap" && snapshot === null) throw malformed("MsgSnap without a snapshot");
  let snapshotIndex = toBounded(pb.snapshot_index, "snapshot_index");
  let snapshotOffset = toSafe(pb.snapshot_offset, "snapshot_offset");
  let index = toBounded(pb.index, "index");
  let commit = toBounded(pb.commit, "commit");
  if (type === "MsgSnapResp") {
    // In a MsgSnapResp, index and commit hold nothing but the old form (or the copy of
    // the new one), so the decoded message has them 0, like any unused field.
    if (snapshotIndex === 0) {
      const legacy = legacySnapResp.decode(pb);
      snapshotIndex = legacy.snapshotIndex;
      snapshotOffset = legacy.snapshotOffset;
    }
    index = 0;
    commit = 0;
  }
  const term = toBounded(pb.term, "term");
  const logTerm = toBounded(pb.log_term, "log_term");
  checkEntries(type, entries, { term, logTerm, index });
  return {
    type,
    from,
    to,
    term,
    logTerm,
    index,
    entries,
    commit,
    reject: pb.reject === true,
    rejectHint: toBounded(pb.reject_hint, "reject_hint"),
    context: toSafe(pb.context, "context"),
    transfer: pb.transfer === true,
    snapshot,
    snapshotIndex,
    snapshotOffset,
  };
}

/**
 * Entries follow the one they are appended after (`index`, `logTerm`), contiguous, with
 * terms that never decrease and none above the sender's term: a log can hold nothing
 * else, and the core appends what it is sent, so an inconsistent MsgApp would reach the
 * storage's own checks (a node stopped by one frame) or break its log.
 */
function checkEntries(
  type: Message["type"],
  entries: Entry[],
  m: { term: number; logTerm: number; index: number },
): void {
  if (type === "MsgApp" && m.logTerm > m.term) {
    throw malformed(`log_term ${m.logTerm} above term ${m.term}`);
  }
  if (entries.length === 0) return;
  if (type !== "MsgApp") throw malformed(`${type} carries entries`);
  let prev = { index: m.index, term: m.logTerm };
  for (const e of entries) {
    if (e.index !== prev.index + 1) throw malformed("entries not contiguous");
    if (e.term < prev.term) throw malformed(`entry ${e.index}: term ${e.term} below ${prev.term}`);
    prev = e;
  }
  if (prev.term > m.term) throw malformed(`entry ${prev.index}: term ${prev.term} above ${m.term}`);
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return ConfChangePb.encode(
    ConfChangePb.fromObject({
      type: cc.type,
      node_id: cc.nodeId,
      conf: cc.conf,
      ...(cc.context && cc.context.length > 0 ? { context: cc.context } : {}),
    }),
  ).finish();
}

export function decodeConfChange(bytes: Uint8Array): ConfChange {
  let pb: Record<string, unknown>;
  try {
    pb = ConfChangePb.decode(bytes) as unknown as Record<string, unknown>;
  } catch (err) {
    throw new KvError("MALFORMED_FRAME", "conf change: undecodable protobuf", {}, err);
  }
  const type = toSafe(pb.type, "type");
  if (type > 2) throw malformed(`conf change type ${type} is unknown`);
  // protobufjs leaves an absent bytes field as its (empty array) default.
  const raw = Array.isArray(pb.context) && pb.context.length === 0 ? undefined : pb.context;
  const context = toBytes(raw, "context");
  return {
    type: type as ConfChangeType,
    nodeId: toStr(pb.node_id, "node_id"),
    conf: confFromPb(pb.conf),
    ...(context.length > 0 ? { context } : {}),
  };
}

/** For tests: the protobuf type, to craft invalid frames. */
export function messagePbType(): protobuf.Type {
  return MessagePb;
}
