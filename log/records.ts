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
 *
 * By hand rather than with protobufjs: every read of a watch, a history and a scan at
 * open decodes one, and protobufjs allocates a Long per 64-bit field and a Buffer per
 * slice. The rules are protobuf's (fields in any order, the last one wins, unknown
 * fields skipped); records.fuzz.test.ts checks it against protobufjs's decoding.
 */
export function decodeMessage(
  bytes: Uint8Array,
  streamName: string,
  streamId: number,
  seq: number,
): MessageRecord {
  const r = reader;
  r.begin(bytes, streamName, seq);
  let recordStreamId = 0;
  let recordSeq = 0;
  let subject = "";
  let payload: Uint8Array = EMPTY_BYTES;
  let operationCode = 0;
  let timestampMs = 0;
  while (r.more()) {
    const tag = r.varint("tag");
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    switch (wireType === 0 ? field : wireType === 2 ? -field : 0) {
      case 1:
        recordStreamId = r.varint("stream_id");
        break;
      case 2:
        recordSeq = r.varint("seq");
        break;
      case -3:
        subject = r.string();
        break;
      case -4:
        payload = r.bytes();
        break;
      case 5:
        operationCode = r.varint("operation");
        break;
      case 6:
        timestampMs = r.varint("timestamp_ms");
        break;
      default:
        if (field >= 1 && field <= 6) throw r.corrupt(`field ${field} has wire type ${wireType}`);
        r.skip(wireType);
    }
  }
  const operation = OPERATIONS[operationCode];
  if (operation === undefined) throw r.corrupt(`unknown operation ${operationCode}`);
  if (recordStreamId !== streamId || recordSeq !== seq) {
    throw r.corrupt(`record says stream id ${recordStreamId} seq ${recordSeq}`);
  }
  return { streamId: recordStreamId, seq: recordSeq, subject, payload, operation, timestampMs };
}

const EMPTY_BYTES = new Uint8Array(0);
const utf8 = new TextDecoder();

/**
 * Reads the protobuf fields of one message record's body, after checking its CRC32C
 * trailer; anything malformed is CORRUPT_RECORD naming the stream and seq. One instance
 * serves every decode (decoding is synchronous), so a read allocates nothing of its own.
 */
class MessageReader {
  private buf: Uint8Array = EMPTY_BYTES;
  private pos = 0;
  private end = 0;
  private streamName = "";
  private seq = 0;

  begin(bytes: Uint8Array, streamName: string, seq: number): void {
    this.streamName = streamName;
    this.seq = seq;
    if (!(bytes instanceof Uint8Array) || bytes.length < CRC_TRAILER_BYTES) {
      throw this.corrupt("record too short");
    }
    const bodyLength = bytes.length - CRC_TRAILER_BYTES;
    if (bytes[bodyLength] !== CRC_TAG) throw this.corrupt("checksum field missing");
    const stored =
      (bytes[bodyLength + 1]! |
        (bytes[bodyLength + 2]! << 8) |
        (bytes[bodyLength + 3]! << 16) |
        (bytes[bodyLength + 4]! << 24)) >>>
      0;
    if (crc32c(bytes, 0, bodyLength) !== stored) throw this.corrupt("checksum mismatch");
    this.buf = bytes;
    this.pos = 0;
    this.end = bodyLength;
  }

  corrupt(why: string): KvError {
    return corrupt(`stream "${this.streamName}" seq ${this.seq}`, why);
  }

  more(): boolean {
    return this.pos < this.end;
  }

  /** A varint that must be a safe integer (a 64-bit field beyond 2^53 is refused). */
  varint(field: string): number {
    const bytes = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw this.corrupt("undecodable: truncated varint");
      const b = bytes[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (!Number.isSafeInteger(value)) throw this.corrupt(`${field} is not a safe integer`);
        return value;
      }
      scale *= 128;
    }
    throw this.corrupt("undecodable: varint longer than 10 bytes");
  }

  /** Skips a length-delimited field's bytes; returns where they start. */
  private delimited(): number {
    const n = this.varint("length");
    const start = this.pos;
    if (n > this.end - start) throw this.corrupt("undecodable: field runs past the end");
    this.pos = start + n;
    return start;
  }

  string(): string {
    const start = this.delimited();
    const bytes = this.buf;
    // LevelDB hands out Buffers, whose native slice decodes without a copy.
    return Buffer.isBuffer(bytes)
      ? bytes.toString("utf8", start, this.pos)
      : utf8.decode(bytes.subarray(start, this.pos));
  }

  /** A view into the record's bytes (a plain Uint8Array, not a Buffer). */
  bytes(): Uint8Array {
    const start = this.delimited();
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset + start, this.pos - start);
  }

  skip(wireType: number): void {
    if (wireType === 0) this.skipVarint();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.delimited();
    else if (wireType === 5) this.advance(4);
    else throw this.corrupt(`undecodable: wire type ${wireType}`);
  }

  /** An unknown field's varint: any 64-bit value (a later format's field) is fine. */
  private skipVarint(): void {
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw this.corrupt("undecodable: truncated varint");
      if (this.buf[this.pos++]! < 0x80) return;
    }
    throw this.corrupt("undecodable: varint longer than 10 bytes");
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw this.corrupt("undecodable: field runs past the end");
    this.pos += n;
  }
}

const reader = new MessageReader();

export function encodeMeta(key: string, value: Uint8Array): Uint8Array {
  return seal(MetaType.encode({ key, value }).finish());
}

export function decodeMeta(bytes: Uint8Array, key: string): Uint8Array {
  const what = `meta "${key}"`;
  const m = open(MetaType, bytes, what);
  if (m.key !== key) throw corrupt(what, `record names key ${JSON.stringify(m.key)}`);
  return bytesOf(m.value);
}
