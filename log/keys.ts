/**
 * The on-disk key layout of the stream log, known to no other module. Every key
 * starts with `log/`, so the log can share one LevelDB with other record kinds
 * (the Raft storage) as long as they stay out of that prefix:
 *
 *   log/h                               HeaderRecord (format version, next stream id)
 *   log/s/<name>                        StreamRecord
 *   log/m/<stream id u64 BE><seq u64 BE> MessageRecord
 *   log/x/<meta key>                    MetaRecord
 *   log/c/h, log/c/p/<part u32 BE>       index checkpoint (index_checkpoint.ts), only between
 *                                       a clean close and the next open
 *
 * Messages are keyed by a stream *id*, not its name: deleting a stream or
 * purging it to empty retires the id in one small write instead of a batch with
 * one delete per message, and the retired range is cleared in the background
 * (or at the next open). Big-endian integers make key order equal seq order.
 */
import { assert } from "./assert.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function ascii(text: string): Uint8Array {
  return encoder.encode(text);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The smallest key greater than every key starting with `prefix`. */
function prefixEnd(prefix: Uint8Array): Uint8Array {
  const out = prefix.slice();
  out[out.length - 1] = out[out.length - 1]! + 1;
  return out;
}

export const LOG_PREFIX = ascii("log/");
export const HEADER_KEY = ascii("log/h");
const STREAM_PREFIX = ascii("log/s/");
const MESSAGE_PREFIX = ascii("log/m/");
const META_PREFIX = ascii("log/x/");
const CHECKPOINT_PREFIX = ascii("log/c/");
export const CHECKPOINT_HEADER_KEY = ascii("log/c/h");
const CHECKPOINT_PART_PREFIX = ascii("log/c/p/");

export interface KeyRange {
  gte: Uint8Array;
  lt: Uint8Array;
}

export const ALL_RANGE: KeyRange = { gte: LOG_PREFIX, lt: prefixEnd(LOG_PREFIX) };
export const STREAMS_RANGE: KeyRange = { gte: STREAM_PREFIX, lt: prefixEnd(STREAM_PREFIX) };
export const MESSAGES_RANGE: KeyRange = { gte: MESSAGE_PREFIX, lt: prefixEnd(MESSAGE_PREFIX) };
export const META_RANGE: KeyRange = { gte: META_PREFIX, lt: prefixEnd(META_PREFIX) };
export const CHECKPOINT_RANGE: KeyRange = {
  gte: CHECKPOINT_PREFIX,
  lt: prefixEnd(CHECKPOINT_PREFIX),
};
export const CHECKPOINT_PARTS_RANGE: KeyRange = {
  gte: CHECKPOINT_PART_PREFIX,
  lt: prefixEnd(CHECKPOINT_PART_PREFIX),
};

export function checkpointPartKey(part: number): Uint8Array {
  assert(Number.isInteger(part) && part >= 0 && part <= 0xffff_ffff, `part ${part}`);
  const out = new Uint8Array(CHECKPOINT_PART_PREFIX.length + 4);
  out.set(CHECKPOINT_PART_PREFIX, 0);
  new DataView(out.buffer).setUint32(CHECKPOINT_PART_PREFIX.length, part);
  return out;
}

/** Big-endian, byte by byte: no DataView per key. */
function writeU64(out: Uint8Array, offset: number, value: number): void {
  // The message is built only on failure: this runs for every message read or written.
  if (!(Number.isSafeInteger(value) && value >= 0)) {
    assert(false, `key integer ${value} out of range`);
  }
  const high = Math.floor(value / 0x1_0000_0000);
  const low = value >>> 0;
  out[offset] = high >>> 24;
  out[offset + 1] = (high >>> 16) & 0xff;
  out[offset + 2] = (high >>> 8) & 0xff;
  out[offset + 3] = high & 0xff;
  out[offset + 4] = low >>> 24;
  out[offset + 5] = (low >>> 16) & 0xff;
  out[offset + 6] = (low >>> 8) & 0xff;
  out[offset + 7] = low & 0xff;
}

function readU64(bytes: Uint8Array, offset: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getUint32(offset) * 0x1_0000_0000 + view.getUint32(offset + 4);
}

export function streamKey(name: string): Uint8Array {
  return concat(STREAM_PREFIX, ascii(name));
}

export function streamNameOfKey(key: Uint8Array): string {
  return decoder.decode(key.subarray(STREAM_PREFIX.length));
}

export function messageKey(streamId: number, seq: number): Uint8Array {
  const out = new Uint8Array(MESSAGE_PREFIX.length + 16);
  out.set(MESSAGE_PREFIX, 0);
  writeU64(out, MESSAGE_PREFIX.length, streamId);
  writeU64(out, MESSAGE_PREFIX.length + 8, seq);
  return out;
}

/** Keys of one stream id from `fromSeq` (default 1) up to and including `toSeq`. */
export function messageRange(streamId: number, fromSeq = 0, toSeq?: number): KeyRange {
  const gte = messageKey(streamId, fromSeq);
  const lt = toSeq === undefined ? messageKey(streamId + 1, 0) : messageKey(streamId, toSeq + 1);
  return { gte, lt };
}

/** Decodes a message key; undefined if it is not one (wrong length). */
export function parseMessageKey(key: Uint8Array): { streamId: number; seq: number } | undefined {
  if (key.length !== MESSAGE_PREFIX.length + 16) return undefined;
  const streamId = readU64(key, MESSAGE_PREFIX.length);
  const seq = readU64(key, MESSAGE_PREFIX.length + 8);
  if (!Number.isSafeInteger(streamId) || !Number.isSafeInteger(seq)) return undefined;
  return { streamId, seq };
}

export function metaKey(key: string): Uint8Array {
  return concat(META_PREFIX, encoder.encode(key));
}
