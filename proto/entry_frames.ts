/**
 * The server's watch-entry frames (ServerFrame { id, watch_event { entry | entries } } of
 * proto/client.proto), encoded by hand: a watch's initial values are a million such
 * entries for a large bucket, and protobufjs builds an operation object per field and a
 * buffer per frame, which was most of the server's encode time. Here one pass sizes the
 * frame and one writes it into a single buffer. The bytes are plain protobuf, decoded by
 * the same generated schema as every other frame (entry_frames.test.ts checks that).
 * Browser-safe like the codec.
 */
import type { Entry } from "./types.js";

// Wire types: 0 varint, 2 length-delimited. Tag = field << 3 | wire type.
const FRAME_ID = (1 << 3) | 0;
const FRAME_WATCH_EVENT = (9 << 3) | 2;
const EVENT_ENTRY = (1 << 3) | 2;
const EVENT_ENTRIES = (5 << 3) | 2;
const ENTRIES_ENTRY = (1 << 3) | 2;
const ENTRY_BUCKET = (1 << 3) | 2;
const ENTRY_KEY = (2 << 3) | 2;
const ENTRY_VALUE = (3 << 3) | 2;
const ENTRY_REVISION = (4 << 3) | 0;
const ENTRY_CREATED_MS = (5 << 3) | 0;
const ENTRY_DELTA = (6 << 3) | 0;
const ENTRY_OPERATION = (7 << 3) | 0;
const ENTRY_SIZE = (8 << 3) | 0;

const OPERATION_CODES: Readonly<Record<Entry["operation"], number>> = {
  PUT: 0,
  DEL: 1,
  PURGE: 2,
};

const textEncoder = new TextEncoder();

/** Bytes of `n` (a non-negative safe integer) as a varint. */
function varintSize(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${n} is not a non-negative safe integer`);
  }
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** UTF-8 bytes of `s`. */
function utf8Size(s: string): number {
  let size = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) size += 1;
    else if (c < 0x800) size += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        size += 4;
        i++;
      } else size += 3;
    } else size += 3;
  }
  return size;
}

class FrameWriter {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get length(): number {
    return this.pos;
  }

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    const buf = this.buf;
    while (n >= 0x80) {
      buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[this.pos++] = n;
  }

  /** Writes `s` whose UTF-8 size is `size`. */
  string(s: string, size: number): void {
    if (size === s.length) {
      // ASCII (every key and bucket name the protocol accepts): one byte per char.
      const buf = this.buf;
      let at = this.pos;
      for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
      this.pos = at;
      return;
    }
    textEncoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + size));
    this.pos += size;
  }

  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

interface SizedEntry {
  entry: Entry;
  bucketBytes: number;
  keyBytes: number;
  /** The Entry message's own bytes (without its tag and length). */
  bytes: number;
}

function sizeEntry(entry: Entry): SizedEntry {
  const bucketBytes = utf8Size(entry.bucket);
  const keyBytes = utf8Size(entry.key);
  const valueBytes = entry.value.length;
  const bytes =
    1 +
    varintSize(bucketBytes) +
    bucketBytes +
    1 +
    varintSize(keyBytes) +
    keyBytes +
    1 +
    varintSize(valueBytes) +
    valueBytes +
    1 +
    varintSize(entry.revision) +
    1 +
    varintSize(entry.created.getTime()) +
    1 +
    varintSize(entry.delta) +
    1 +
    varintSize(OPERATION_CODES[entry.operation]) +
    1 +
    varintSize(entry.size);
  return { entry, bucketBytes, keyBytes, bytes };
}

function writeEntry(w: FrameWriter, s: SizedEntry): void {
  const e = s.entry;
  w.byte(ENTRY_BUCKET);
  w.varint(s.bucketBytes);
  w.string(e.bucket, s.bucketBytes);
  w.byte(ENTRY_KEY);
  w.varint(s.keyBytes);
  w.string(e.key, s.keyBytes);
  w.byte(ENTRY_VALUE);
  w.varint(e.value.length);
  w.bytes(e.value);
  w.byte(ENTRY_REVISION);
  w.varint(e.revision);
  // int64, written as a varint like a uint64: a time before 1970 is refused when sized.
  w.byte(ENTRY_CREATED_MS);
  w.varint(e.created.getTime());
  w.byte(ENTRY_DELTA);
  w.varint(e.delta);
  w.byte(ENTRY_OPERATION);
  w.varint(OPERATION_CODES[e.operation]);
  w.byte(ENTRY_SIZE);
  w.varint(e.size);
}

/**
 * ServerFrame { id, watch_event { entry } } for one entry, or { entries { entries... } }
 * for several (`batched`, which a client asks for with WatchRequest.batch_entries).
 */
export function encodeEntryFrame(
  id: number,
  entries: readonly Entry[],
  batched: boolean,
): Uint8Array {
  if (!batched && entries.length !== 1) {
    throw new RangeError(`a watch_entry frame holds one entry, not ${entries.length}`);
  }
  const sized = entries.map(sizeEntry);
  let entriesBytes = 0;
  for (const s of sized) entriesBytes += 1 + varintSize(s.bytes) + s.bytes;
  // batched: WatchEvent { entries (5): WatchEntries { entry (1) ... } }; else { entry (1) }.
  const eventBytes = batched ? 1 + varintSize(entriesBytes) + entriesBytes : entriesBytes;
  const total = 1 + varintSize(id) + 1 + varintSize(eventBytes) + eventBytes;
  const frame = new Uint8Array(total);
  const w = new FrameWriter(frame);
  w.byte(FRAME_ID);
  w.varint(id);
  w.byte(FRAME_WATCH_EVENT);
  w.varint(eventBytes);
  if (batched) {
    w.byte(EVENT_ENTRIES);
    w.varint(entriesBytes);
  }
  for (const s of sized) {
    w.byte(batched ? ENTRIES_ENTRY : EVENT_ENTRY);
    w.varint(s.bytes);
    writeEntry(w, s);
  }
  if (w.length !== total)
    throw new RangeError(`entry frame sized ${total} bytes, wrote ${w.length}`);
  return frame;
}

/**
 * Reads the protobuf fields of a watch-entry frame; any surprise (a field of another
 * kind, a bad length, an integer beyond 2^53) gives up with `undefined`, and the caller
 * decodes the frame the general way, which says what is wrong with it.
 */
class EntryFrameReader {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    public end: number,
  ) {}

  /** A varint as a safe integer, or -1 (give up). */
  varint(): number {
    const buf = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8 && this.pos < this.end; i++) {
      const b = buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return Number.isSafeInteger(value) ? value : -1;
      scale *= 128;
    }
    return -1;
  }

  /** The end of a length-delimited field starting here, or -1. */
  delimitedEnd(): number {
    const n = this.varint();
    if (n < 0 || n > this.end - this.pos) return -1;
    return this.pos + n;
  }

  /**
   * An ASCII string (every key and bucket name the protocol accepts), or undefined: the
   * general decoder then reads the frame, so both read any other text alike.
   */
  string(to: number): string | undefined {
    const buf = this.buf;
    let text = "";
    for (let i = this.pos; i < to; i++) {
      const c = buf[i]!;
      if (c >= 0x80) return undefined;
      text += String.fromCharCode(c);
    }
    this.pos = to;
    return text;
  }

  /** A view of the bytes up to `to` (a plain Uint8Array into the frame). */
  bytes(to: number): Uint8Array {
    const view = new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.pos, to - this.pos);
    this.pos = to;
    return view;
  }

  /** Skips an unknown field of `wireType`; false when it cannot. */
  skip(wireType: number): boolean {
    let to: number;
    if (wireType === 0) {
      while (this.pos < this.end) if (this.buf[this.pos++]! < 0x80) return true;
      return false;
    }
    if (wireType === 2) to = this.delimitedEnd();
    else if (wireType === 1 || wireType === 5) to = this.pos + (wireType === 1 ? 8 : 4);
    else return false;
    if (to < 0 || to > this.end) return false;
    this.pos = to;
    return true;
  }
}

const OPERATION_NAMES: readonly Entry["operation"][] = ["PUT", "DEL", "PURGE"];

/** One Entry message ending at `to`, or undefined (give up). */
function readEntry(r: EntryFrameReader, to: number): Entry | undefined {
  let bucket = "";
  let key = "";
  let value: Uint8Array = new Uint8Array(0);
  let revision = 0;
  let createdMs = 0;
  let delta = 0;
  let operation = 0;
  let size = 0;
  const outer = r.end;
  r.end = to;
  while (r.pos < to) {
    const tag = r.varint();
    // A tag must fit 32 bits (protobuf's field numbers are below 2^29).
    if (tag < 0 || tag > 0xffff_ffff) return undefined;
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field >= 1 && field <= 3) {
      if (wireType !== 2) return undefined;
      const end = r.delimitedEnd();
      if (end < 0) return undefined;
      if (field === 1 || field === 2) {
        const text = r.string(end);
        if (text === undefined) return undefined;
        if (field === 1) bucket = text;
        else key = text;
      } else value = r.bytes(end);
    } else if (field >= 4 && field <= 8) {
      if (wireType !== 0) return undefined;
      const n = r.varint();
      if (n < 0) return undefined;
      if (field === 4) revision = n;
      else if (field === 5) createdMs = n;
      else if (field === 6) delta = n;
      // An operation this SDK does not know is left to the general decoder.
      else if (field === 7) {
        if (n >= OPERATION_NAMES.length) return undefined;
        operation = n;
      } else size = n;
    } else if (!r.skip(wireType)) return undefined;
  }
  r.end = outer;
  if (r.pos !== to) return undefined;
  return {
    bucket,
    key,
    value,
    revision,
    created: new Date(createdMs),
    delta,
    operation: OPERATION_NAMES[operation]!,
    size,
  };
}

/**
 * The id and entries of a ServerFrame { id, watch_event { entry | entries } }, decoded
 * without protobufjs (the SDK's side of encodeEntryFrame), or undefined for any other
 * frame, or anything unusual in one: then the general decoder takes it.
 */
export function decodeEntryFrame(
  buf: Uint8Array,
): { id: number; entries: Entry[]; batched: boolean } | undefined {
  const r = new EntryFrameReader(buf, buf.length);
  let id = 0;
  let entries: Entry[] | undefined;
  let batched = false;
  while (r.pos < buf.length) {
    const tag = r.varint();
    if (tag === FRAME_ID) {
      id = r.varint();
      if (id < 0) return undefined;
    } else if (tag === FRAME_WATCH_EVENT && entries === undefined) {
      const eventEnd = r.delimitedEnd();
      if (eventEnd < 0) return undefined;
      const eventTag = r.varint();
      if (eventTag !== EVENT_ENTRY && eventTag !== EVENT_ENTRIES) return undefined;
      const bodyEnd = r.delimitedEnd();
      if (bodyEnd !== eventEnd) return undefined;
      entries = [];
      if (eventTag === EVENT_ENTRY) {
        const e = readEntry(r, bodyEnd);
        if (e === undefined) return undefined;
        entries.push(e);
      } else {
        batched = true;
        r.end = bodyEnd;
        while (r.pos < bodyEnd) {
          if (r.varint() !== ENTRIES_ENTRY) return undefined;
          const entryEnd = r.delimitedEnd();
          if (entryEnd < 0) return undefined;
          const e = readEntry(r, entryEnd);
          if (e === undefined) return undefined;
          entries.push(e);
        }
        r.end = buf.length;
      }
    } else return undefined;
  }
  return entries === undefined ? undefined : { id, entries, batched };
}
