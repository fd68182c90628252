/**
 * Encodes and decodes the log's records (proto/log.proto). Each record is the
 * protobuf encoding of its fields followed by field 15, a fixed32 CRC32C of
 * every byte before it. The checksum is appended here rather than by protobufjs
 * so it covers exactly the stored bytes (no re-encoding on read), and it is
 * checked before anything is decoded: a corrupted record raises
 * `KvError("CORRUPT_RECORD")` and is never returned as data.
 */

import { logSchema as descriptor, KvError, messageType } from "../proto/index.js";
import { crc32c } from "./crc32c.js";
import type { DiscardPolicy, Operation, StreamConfig } from "./types.js";

export const FORMAT_VERSION = 1;

const HeaderType = messageType(descriptor, "streamkv.log.HeaderRecord");
const StreamType = messageType(descriptor, "streamkv.log.StreamRecord");
const MessageType = messageType(descriptor, "streamkv.log.MessageRecord");
const MetaType = messageType(descriptor, "streamkv.log.MetaRecord");

// Field 15, wire type 5 (fixed32): one tag byte and four checksum bytes.
const CRC_TAG = (15 << 3) | 5;
const CRC_TRAILER_BYTES = 5;

const OPERATIONS: readonly Operation[] = ["PUT", "DEL", "PURGE"];
const DISCARDS: readonly DiscardPolicy[] = ["old", "new"];

export interface HeaderRecord {
  formatVersion: number;
  nextStreamId: number;
}

export interface StreamRecord {
  id: number;
  config: StreamConfig;
  lastSeq: number;
  /** See StreamIndex.vanishedHighSeq; 0 when absent (records written before it existed). */
  vanishedHighSeq?: number;
}

export interface MessageRecord {
  streamId: number;
  seq: number;
  subject: string;
  payload: Uint8Array;
  operation: Operation;
  timestampMs: number;
}

function seal(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + CRC_TRAILER_BYTES);
  out.set(body, 0);
  out[body.length] = CRC_TAG;
  new DataView(out.buffer).setUint32(body.length + 1, crc32c(body), true);
  return out;
}

function corrupt(what: string, why: string, cause?: unknown): KvError {
  return new KvError("CORRUPT_RECORD", `corrupt record: ${what}: ${why}`, {}, cause);
}

/** Checks the trailer and decodes; throws CORRUPT_RECORD naming `what`. */
function open(type: typeof HeaderType, bytes: Uint8Array, what: string): Record<string, unknown> {
  if (!(bytes instanceof Uint8Array) || bytes.length < CRC_TRAILER_BYTES) {
    throw corrupt(what, "record too short");
  }
  const bodyLength = bytes.length - CRC_TRAILER_BYTES;
  if (bytes[bodyLength] !== CRC_TAG) throw corrupt(what, "checksum field missing");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stored = view.getUint32(bodyLength + 1, true);
  if (crc32c(bytes, 0, bodyLength) !== stored) throw corrupt(what, "checksum mismatch");
  try {
    return type.decode(bytes.subarray(0, bodyLength)) as unknown as Record<string, unknown>;
  } catch (err) {
    throw corrupt(what, "undecodable", err);
  }
}

/** 64-bit fields decode as numbers or Long objects; both must be safe integers. */
function safeInt(value: unknown, what: string, field: string): number {
  let n: number;
  if (value === undefined || value === null) n = 0;
  else if (typeof value === "number") n = value;
  else if (typeof value === "object" && "toNumber" in value) {
    // Exact below 2^53 in magnitude; at or beyond it the double rounds (monotonically) to
    // a magnitude of at least 2^53, which the safe-integer check below refuses, so no
    // string comparison per field (a third of a message's decode time).
    n = (value as { toNumber(): number }).toNumber();
  } else throw corrupt(what, `${field} has type ${typeof value}`);
  if (!Number.isSafeInteger(n)) throw corrupt(what, `${field} is not a safe integer`);
  return n;
}

function bytesOf(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? value : new Uint8Array(0);
}

export function encodeHeader(header: HeaderRecord): Uint8Array {
  return seal(
    HeaderType.encode({
      format_version: header.formatVersion,
      next_stream_id: header.nextStreamId,
    }).finish(),
  );
}

export function decodeHeader(bytes: Uint8Array): HeaderRecord {
  const what = "log header";
  const m = open(HeaderType, bytes, what);
  return {
    formatVersion: safeInt(m.format_version, what, "format_version"),
    nextStreamId: safeInt(m.next_stream_id, what, "next_stream_id"),
  };
}

export function encodeStream(record: StreamRecord): Uint8Array {
  const c = record.config;
  return seal(
    StreamType.encode({
      name: c.name,
      id: record.id,
      max_msgs_per_subject: c.maxMsgsPerSubject,
      max_age_ms: c.maxAgeMs,
      max_bytes: c.maxBytes,
      max_msgs: c.maxMsgs,
      max_msg_size: c.maxMsgSize,
      discard: c.discard === "new" ? 1 : 0,
      last_seq: record.lastSeq,
      vanished_high_seq: record.vanishedHighSeq ?? 0,
    }).finish(),
  );
}

export function decodeStream(bytes: Uint8Array, keyName: string): StreamRecord {
  const what = `stream "${keyName}"`;
  const m = open(StreamType, bytes, what);
  const name = typeof m.name === "string" ? m.name : "";
  if (name !== keyName) throw corrupt(what, `record names stream "${name}"`);
  const discard = DISCARDS[Number(m.discard ?? 0)];
  if (discard === undefined) throw corrupt(what, `unknown discard policy ${String(m.discard)}`);
  return {
    id: safeInt(m.id, what, "id"),
    lastSeq: safeInt(m.last_seq, what, "last_seq"),
    vanishedHighSeq: safeInt(m.vanished_high_seq, what, "vanished_high_seq"),
    config: {
      name,
      maxMsgsPerSubject: safeInt(m.max_msgs_per_subject, what, "max_msgs_per_subject"),
      maxAgeMs: safeInt(m.max_age_ms, what, "max_age_ms"),
      maxBytes: safeInt(m.max_bytes, what, "max_bytes"),
      maxMsgs: safeInt(m.max_msgs, what, "max_msgs"),
      maxMsgSize: safeInt(m.max_msg_size, what, "max_msg_size"),
      discard,
    },
  };
}

export function encodeMessage(record: MessageRecord): Uint8Array {
  return seal(
    MessageType.encode({
      stream_id: record.streamId,
      seq: record.seq,
      subject: record.subject,
      payload: record.payload,
      operation: OPERATIONS.indexOf(record.operation),
      timestamp_ms: record.timestampMs,
    }).finish(),
  );
}

/**
 * Decodes a message stored under (streamId, seq) of the stream named
 * `streamName`; the record must name the same id and seq as its key.
 */
export function decodeMessage(
  bytes: Uint8Array,
  streamName: string,
  streamId: number,
  seq: number,
): MessageRecord {
  const what = `stream "${streamName}" seq ${seq}`;
  const m = open(MessageType, bytes, what);
  const record: MessageRecord = {
    streamId: safeInt(m.stream_id, what, "stream_id"),
    seq: safeInt(m.seq, what, "seq"),
    subject: typeof m.subject === "string" ? m.subject : "",
    payload: bytesOf(m.payload),
    operation: OPERATIONS[Number(m.operation ?? 0)] as Operation,
    timestampMs: safeInt(m.timestamp_ms, what, "timestamp_ms"),
  };
  if (record.operation === undefined)
    throw corrupt(what, `unknown operation ${String(m.operation)}`);
  if (record.streamId !== streamId || record.seq !== seq) {
    throw corrupt(what, `record says stream id ${record.streamId} seq ${record.seq}`);
  }
  return record;
}

export function encodeMeta(key: string, value: Uint8Array): Uint8Array {
  return seal(MetaType.encode({ key, value }).finish());
}

export function decodeMeta(bytes: Uint8Array, key: string): Uint8Array {
  const what = `meta "${key}"`;
  const m = open(MetaType, bytes, what);
  if (m.key !== key) throw corrupt(what, `record names key ${JSON.stringify(m.key)}`);
  return bytesOf(m.value);
}
