/**
 * The index checkpoint: the in-memory stream indexes, packed and written by a clean
 * close, so the next open loads them in one pass over the packed bytes instead of
 * reading and verifying every message ever kept (LevelDB iteration alone costs about
 * 6 µs per message: a minute for ten million).
 *
 * It describes the log exactly as it was at close, so it is trusted only while nothing
 * under `log/` changed since: the header is written last and synced, and open deletes
 * the checkpoint (synced) before the log can change. A crash after that open finds no
 * checkpoint and rebuilds by the full verifying scan (recover.ts), as does a checkpoint
 * that fails any check (it is a cache, never the only copy of anything).
 *
 * Layout: parts of at most PART_BYTES, each ending in its CRC32C, and a header
 * {version, part count, CRC32C}. The packed bytes are, little-endian:
 *   u32 stream count, then per stream:
 *     u32 name length, name (UTF-8), f64 id, f64 lastSeq, f64 message count,
 *     per message in seq order: f64 seq, f64 timestamp, u32 size, u8 operation,
 *       u32 subject number; a number one past the last seen introduces a new subject:
 *       u32 byte length, then the subject (UTF-8).
 */
import { assert } from "./assert.js";
import { crc32c } from "./crc32c.js";
import {
  CHECKPOINT_HEADER_KEY,
  CHECKPOINT_PARTS_RANGE,
  CHECKPOINT_RANGE,
  checkpointPartKey,
} from "./keys.js";
import { StreamIndex } from "./stream_index.js";
import type { Operation } from "./types.js";
import type { LevelDb } from "./write_queue.js";

const VERSION = 1;
const PART_BYTES = 1 << 20;
/** Parts per LevelDB write while the checkpoint is written. */
const PARTS_PER_WRITE = 8;
const HEADER_BYTES = 4 + 4 + 4;
/** seq, timestamp, size, operation, subject number. */
const MESSAGE_BYTES = 8 + 8 + 4 + 1 + 4;
const OPERATIONS: readonly Operation[] = ["PUT", "DEL", "PURGE"];
const OPERATION_CODES: Readonly<Record<Operation, number>> = { PUT: 0, DEL: 1, PURGE: 2 };
const VIEW = { keyEncoding: "view", valueEncoding: "view" } as const;
/** LevelDB's `sync`, passed through by abstract-level (see write_queue.ts). */
const SYNCED = { ...VIEW, sync: true };
/** Longest stream name or subject (subjects.ts allows 4096 bytes). */
const MAX_TEXT_BYTES = 64 * 1024;

/** Why a checkpoint was not used; the caller falls back to the full scan. */
export class CheckpointRejected extends Error {}

/**
 * Packs fields into parts of at most PART_BYTES, each ending in its CRC32C. A field or
 * fixed group of fields never straddles two parts (`room` starts a new one), so the
 * reader never joins parts.
 */
class PartWriter {
  readonly parts: Uint8Array[] = [];
  private buf = Buffer.allocUnsafe(PART_BYTES + 4);
  private at = 0;

  room(n: number): void {
    if (this.at + n > PART_BYTES) this.flush();
  }
  u8(value: number): void {
    this.at = this.buf.writeUInt8(value, this.at);
  }
  u32(value: number): void {
    this.at = this.buf.writeUInt32LE(value, this.at);
  }
  f64(value: number): void {
    this.at = this.buf.writeDoubleLE(value, this.at);
  }
  /** A length-prefixed UTF-8 string of at most MAX_TEXT_BYTES. */
  text(value: string): void {
    const length = Buffer.byteLength(value);
    assert(length <= MAX_TEXT_BYTES, "name too long for a checkpoint");
    this.room(4 + length);
    this.u32(length);
    this.at += this.buf.write(value, this.at, "utf8");
  }
  /** Ends the last part; returns the parts. */
  finish(): Uint8Array[] {
    if (this.at > 0) this.flush();
    return this.parts;
  }
  private flush(): void {
    const part = Buffer.from(this.buf.subarray(0, this.at + 4));
    part.writeUInt32LE(crc32c(part, 0, this.at), this.at);
    this.parts.push(part);
    this.at = 0;
  }
}

/** Packs every stream's index. */
export function encodeIndexCheckpoint(streams: Iterable<StreamIndex>): Uint8Array[] {
  const out = new PartWriter();
  const list = [...streams];
  out.room(4);
  out.u32(list.length);
  for (const index of list) {
    out.text(index.config.name);
    out.room(24);
    out.f64(index.id);
    out.f64(index.lastSeq);
    out.f64(index.messageCount);
    const numbers = new Map<string, number>();
    index.forEachFrom(0, (seq, subject, operation, timestampMs, size) => {
      out.room(MESSAGE_BYTES);
      out.f64(seq);
      out.f64(timestampMs);
      out.u32(size);
      out.u8(OPERATION_CODES[operation]);
      const known = numbers.get(subject);
      if (known !== undefined) {
        out.u32(known);
      } else {
        out.u32(numbers.size);
        numbers.set(subject, numbers.size);
        out.text(subject);
      }
      return true;
    });
    // The listing order, so the next open need not sort the names again.
    assert(index.names.size === numbers.size, "sorted names differ from the subjects");
    for (const name of index.names.from("")) {
      out.room(4);
      out.u32(numbers.get(name)!);
    }
  }
  return out.finish();
}

function encodeHeader(parts: number): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, VERSION, true);
  view.setUint32(4, parts, true);
  view.setUint32(8, crc32c(out, 0, 8), true);
  return out;
}

/**
 * Writes the checkpoint of `streams` (which must equal what is on disk: the caller has
 * no batch open and every write done). Any older checkpoint is removed first.
 */
export async function writeIndexCheckpoint(
  db: LevelDb,
  streams: Iterable<StreamIndex>,
): Promise<void> {
  await db.clear({ ...CHECKPOINT_RANGE, keyEncoding: "view" });
  const parts = encodeIndexCheckpoint(streams);
  for (let first = 0; first < parts.length; first += PARTS_PER_WRITE) {
    const ops = parts.slice(first, first + PARTS_PER_WRITE).map((value, i) => ({
      type: "put" as const,
      key: checkpointPartKey(first + i),
      value,
    }));
    await db.batch(ops, VIEW);
  }
  await db.batch(
    [{ type: "put", key: CHECKPOINT_HEADER_KEY, value: encodeHeader(parts.length) }],
    SYNCED,
  );
}

/** Deletes the checkpoint, synced; true if there was one (or a part of one). */
export async function deleteIndexCheckpoint(db: LevelDb): Promise<boolean> {
  const it = db.keys({ ...CHECKPOINT_RANGE, keyEncoding: "view", limit: 1 });
  const found = (await it.next()) !== undefined;
  await it.close();
  if (!found) return false;
  await db.clear({ ...CHECKPOINT_RANGE, keyEncoding: "view" });
  // clear() is not synced; a synced delete of the header orders it before any later write.
  await db.batch([{ type: "del", key: CHECKPOINT_HEADER_KEY }], SYNCED);
  return true;
}

/** Reads the packed fields part by part, checking each part's CRC (see PartWriter). */
class PartReader {
  private buf: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  private at = 0;
  private end = 0;
  private parts = 0;
  private readonly it;

  constructor(db: LevelDb) {
    this.it = db.iterator<Uint8Array, Uint8Array>({ ...CHECKPOINT_PARTS_RANGE, ...VIEW });
  }

  /** True when `n` bytes are readable now; else `next()` must be awaited first. */
  has(n: number): boolean {
    return this.end - this.at >= n;
  }

  /** Moves to the next part, which must hold at least `n` bytes. */
  async next(n: number): Promise<void> {
    if (this.at !== this.end) throw new CheckpointRejected(`part ${this.parts - 1} ends mid-field`);
    const next = await this.it.next();
    if (next === undefined) throw new CheckpointRejected("it ends early");
    const part = Buffer.from(next[1].buffer, next[1].byteOffset, next[1].byteLength);
    const end = part.length - 4;
    if (end < n || part.readUInt32LE(end) !== crc32c(part, 0, end)) {
      throw new CheckpointRejected(`part ${this.parts} fails its CRC32C or is short`);
    }
    this.buf = part;
    this.at = 0;
    this.end = end;
    this.parts++;
  }

  u8(): number {
    return this.buf[this.at++]!;
  }
  u32(): number {
    const value = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return value;
  }
  f64(): number {
    const value = this.buf.readDoubleLE(this.at);
    this.at += 8;
    return value;
  }
  /** A string written by PartWriter.text; the caller made 4 bytes readable. */
  text(): string {
    const length = this.u32();
    if (length > MAX_TEXT_BYTES || !this.has(length)) {
      throw new CheckpointRejected("a name runs past its part");
    }
    const text = this.buf.toString("utf8", this.at, this.at + length);
    this.at += length;
    return text;
  }
  /** Checks that everything was read: no bytes or parts left over. */
  async finish(expectedParts: number): Promise<void> {
    if (this.at !== this.end) throw new CheckpointRejected("bytes after the last stream");
    if ((await this.it.next()) !== undefined) throw new CheckpointRejected("parts after the end");
    if (this.parts !== expectedParts) {
      throw new CheckpointRejected(`${this.parts} parts, the header says ${expectedParts}`);
    }
  }
  close(): Promise<void> {
    return this.it.close();
  }
}

function integer(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new CheckpointRejected(`${what} ${value} is not a count`);
  }
  return value;
}

/**
 * Loads the checkpoint into fresh indexes for the streams recovered from their records
 * (by name), or returns undefined when there is none. Throws CheckpointRejected when
 * one exists but does not describe exactly these streams.
 */
export async function readIndexCheckpoint(
  db: LevelDb,
  streams: ReadonlyMap<string, StreamIndex>,
): Promise<Map<string, StreamIndex> | undefined> {
  const header = await db.get<Uint8Array, Uint8Array>(CHECKPOINT_HEADER_KEY, VIEW);
  if (header === undefined) return undefined;
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (header.length !== HEADER_BYTES || view.getUint32(8, true) !== crc32c(header, 0, 8)) {
    throw new CheckpointRejected("the header fails its CRC32C");
  }
  if (view.getUint32(0, true) !== VERSION) {
    throw new CheckpointRejected(`version ${view.getUint32(0, true)} is not ${VERSION}`);
  }
  const reader = new PartReader(db);
  try {
    const loaded = new Map<string, StreamIndex>();
    await reader.next(4);
    const count = reader.u32();
    if (count !== streams.size) {
      throw new CheckpointRejected(`${count} streams, the log has ${streams.size}`);
    }
    for (let s = 0; s < count; s++) {
      if (!reader.has(4)) await reader.next(4);
      const name = reader.text();
      const record = streams.get(name);
      if (record === undefined || loaded.has(name)) {
        throw new CheckpointRejected(`stream ${JSON.stringify(name)} is not in the log`);
      }
      if (!reader.has(24)) await reader.next(24);
      const id = reader.f64();
      const lastSeq = reader.f64();
      const messages = integer(reader.f64(), "message count");
      if (id !== record.id || lastSeq !== record.lastSeq) {
        throw new CheckpointRejected(`stream ${JSON.stringify(name)} has moved on`);
      }
      const index = new StreamIndex(id, record.config, lastSeq, record.vanishedHighSeq);
      index.reserve(messages);
      const what = `stream ${JSON.stringify(name)}`;
      // The CRC32Cs vouch for the bytes and our own encoder wrote them, so the subjects
      // are not validated again: that is most of what a scan would cost.
      const subjects: string[] = [];
      let previous = 0;
      for (let m = 0; m < messages; m++) {
        if (!reader.has(MESSAGE_BYTES)) await reader.next(MESSAGE_BYTES);
        const seq = reader.f64();
        const timestampMs = reader.f64();
        const size = reader.u32();
        const operation = OPERATIONS[reader.u8()];
        const number = reader.u32();
        if (!(seq > previous && seq <= lastSeq) || !Number.isSafeInteger(seq)) {
          throw new CheckpointRejected(`${what}: seq ${seq} out of order`);
        }
        if (operation === undefined || !Number.isSafeInteger(timestampMs)) {
          throw new CheckpointRejected(`${what} seq ${seq}: bad fields`);
        }
        previous = seq;
        if (number === subjects.length) {
          if (!reader.has(4)) await reader.next(4);
          subjects.push(reader.text());
        } else if (number > subjects.length) {
          throw new CheckpointRejected(`${what}: unknown subject`);
        }
        index.addMessage(seq, subjects[number]!, operation, size, timestampMs, false);
      }
      const sorted: string[] = new Array(subjects.length);
      for (let i = 0; i < subjects.length; i++) {
        if (!reader.has(4)) await reader.next(4);
        const subject = subjects[reader.u32()];
        if (subject === undefined || (i > 0 && !(sorted[i - 1]! < subject))) {
          throw new CheckpointRejected(`${what}: names out of order`);
        }
        sorted[i] = subject;
      }
      if (index.subjectCount !== subjects.length) {
        throw new CheckpointRejected(`${what}: a subject repeats`);
      }
      index.names.reset(sorted);
      loaded.set(name, index);
    }
    await reader.finish(view.getUint32(4, true));
    return loaded;
  } finally {
    await reader.close();
  }
}
