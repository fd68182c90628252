/**
 * Checks every checksum LevelDB itself stores, before LevelDB opens the directory.
 *
 * Why here and not in LevelDB: classic-level 2.0 exposes neither `paranoid_checks`
 * nor `verify_checksums`, so LevelDB (1.20) opens with both off, and then
 * - recovering a write-ahead log (`*.log`) drops a record whose checksum fails, and
 *   the rest of its 32 KiB block, logs "(ignoring error) ... dropping N bytes" to its
 *   own LOG file, opens anyway, writes what survived to a table and deletes the log:
 *   a synced, acknowledged write is gone without an error, and writes after it stay
 *   (a Raft follower would forget entries it acked, with a hole in its log);
 * - table blocks (`*.ldb`) are read without checking their CRC: a flipped bit in a
 *   key, a bloom filter or an index block is served as if it were data (a key can
 *   move out of the range the log scans, a lookup can miss a stored record).
 * Our own records carry a CRC32C (records.ts, raftstore/), which catches a flipped
 * value, but not a record LevelDB dropped or hid. So the node runs this first and
 * refuses to start on any mismatch, naming the file and offset.
 *
 * Rules (those of LevelDB's paranoid checks, and of etcd's WAL): a record or block
 * whose CRC does not match is corruption wherever it is; a log that ends inside a
 * record (a write cut short by a crash, never acknowledged since it was not synced)
 * is a torn tail and is fine, unless some prefix of the bytes after its header carries
 * its checksum (a whole record whose length field was damaged, which LevelDB would
 * take for a torn tail and drop with every record after it). Files
 * are read whole, one at a time: the cost is one read of the database per start,
 * the same as the log's verifying index rebuild (recover.ts).
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { KvError } from "../proto/index.js";
import { crc32c } from "./crc32c.js";

/** LevelDB's log format (db/log_format.h): 32 KiB blocks, 7-byte record headers. */
const LOG_BLOCK_BYTES = 32_768;
const LOG_HEADER_BYTES = 7;
enum RecordType {
  Zero = 0,
  Full = 1,
  First = 2,
  Middle = 3,
  Last = 4,
}
/** Table format (table/format.h): a 48-byte footer, blocks followed by a 5-byte trailer. */
const FOOTER_BYTES = 48;
const BLOCK_TRAILER_BYTES = 5;
const TABLE_MAGIC_LO = 0x8b80fb57;
const TABLE_MAGIC_HI = 0xdb477524;
const MASK_DELTA = 0xa282ead8;

export interface LevelDbFilesReport {
  /** Files whose checksums were verified (logs, manifests, tables). */
  files: number;
  bytes: number;
}

/** The stored form of a CRC in LevelDB (util/crc32c.h Mask). */
function masked(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

function u32(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0
  );
}

/** What a check found wrong, at a byte offset of the file. */
export class Damage extends Error {
  constructor(
    readonly offset: number,
    why: string,
  ) {
    super(why);
  }
}

/** A varint of at most `maxBytes` at `at`; [value, next offset]. */
function varint(bytes: Uint8Array, at: number, end: number, maxBytes: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < maxBytes && at + i < end; i++) {
    const b = bytes[at + i]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      if (!Number.isSafeInteger(value)) throw new Damage(at, "varint out of range");
      return [value, at + i + 1];
    }
    scale *= 128;
  }
  throw new Damage(at, "malformed varint");
}

/**
 * A log-format file (write-ahead log or MANIFEST). Returns nothing: a torn tail is
 * fine, anything else wrong throws Damage.
 */
export function checkLogFile(bytes: Uint8Array): void {
  let at = 0;
  let inRecord = false;
  while (at < bytes.length) {
    const blockLeft = LOG_BLOCK_BYTES - (at % LOG_BLOCK_BYTES);
    // The writer pads a block's last few bytes (too few for a header) with zeros.
    if (blockLeft < LOG_HEADER_BYTES) {
      at += blockLeft;
      continue;
    }
    if (bytes.length - at < LOG_HEADER_BYTES) return; // torn inside a header
    const stored = u32(bytes, at);
    const length = bytes[at + 4]! | (bytes[at + 5]! << 8);
    const type = bytes[at + 6]!;
    if (type === RecordType.Zero && length === 0 && stored === 0) {
      // A zero-filled tail (space a crashed file system allocated but never wrote).
      for (let i = at; i < bytes.length; i++) {
        if (bytes[i] !== 0) throw new Damage(at, "zeroed record header followed by data");
      }
      return;
    }
    if (LOG_HEADER_BYTES + length > blockLeft) {
      throw new Damage(at, `record length ${length} crosses its 32 KiB block`);
    }
    const end = at + LOG_HEADER_BYTES + length;
    if (end > bytes.length) {
      // A write cut short at the end of the file, unless some of what is there is a
      // whole record under its own checksum: then its length field was damaged (and
      // LevelDB would drop it and every record after it as a torn tail).
      let crc = crc32c(bytes, at + 6, at + LOG_HEADER_BYTES);
      for (let i = at + LOG_HEADER_BYTES; ; i++) {
        if (masked(crc) === stored) {
          throw new Damage(at, `record length ${length} is not the length of the record`);
        }
        if (i === bytes.length) return;
        crc = crc32c(bytes, i, i + 1, crc);
      }
    }
    if (masked(crc32c(bytes, at + 6, end)) !== stored) {
      throw new Damage(at, "record checksum mismatch");
    }
    switch (type) {
      case RecordType.Full:
      case RecordType.First:
        if (inRecord) throw new Damage(at, "a fragmented record has no last fragment");
        inRecord = type === RecordType.First;
        break;
      case RecordType.Middle:
      case RecordType.Last:
        if (!inRecord) throw new Damage(at, "a record fragment has no first fragment");
        inRecord = type === RecordType.Middle;
        break;
      default:
        throw new Damage(at, `unknown record type ${type}`);
    }
    at = end;
  }
  // Ending after a first or middle fragment is a torn tail too.
}

export interface BlockHandle {
  offset: number;
  size: number;
}

function handleAt(bytes: Uint8Array, at: number, end: number): [BlockHandle, number] {
  const [offset, next] = varint(bytes, at, end, 10);
  const [size, after] = varint(bytes, next, end, 10);
  return [{ offset, size }, after];
}

/** Snappy's raw format (what LevelDB stores for a compressed block). */
function unsnappy(src: Uint8Array, at: number): Uint8Array {
  const [length, start] = varint(src, 0, src.length, 5);
  if (length > 64 * 1024 * 1024) throw new Damage(at, "compressed block too large");
  const out = new Uint8Array(length);
  let o = 0;
  let i = start;
  const bad = () => new Damage(at, "compressed block does not decompress");
  while (i < src.length) {
    const tag = src[i++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >>> 2;
      if (len >= 60) {
        const extra = len - 59;
        if (i + extra > src.length) throw bad();
        len = 0;
        for (let k = 0; k < extra; k++) len += src[i + k]! * 2 ** (8 * k);
        i += extra;
      }
      len += 1;
      if (i + len > src.length || o + len > length) throw bad();
      out.set(src.subarray(i, i + len), o);
      i += len;
      o += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      if (i + 1 > src.length) throw bad();
      len = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | src[i]!;
      i += 1;
    } else if (kind === 2) {
      if (i + 2 > src.length) throw bad();
      len = (tag >>> 2) + 1;
      offset = src[i]! | (src[i + 1]! << 8);
      i += 2;
    } else {
      if (i + 4 > src.length) throw bad();
      len = (tag >>> 2) + 1;
      offset = u32(src, i);
      i += 4;
    }
    if (offset === 0 || offset > o || o + len > length) throw bad();
    // Byte by byte: a copy may overlap what it writes (a run).
    for (let k = 0; k < len; k++, o++) out[o] = out[o - offset]!;
  }
  if (o !== length) throw bad();
  return out;
}

/** Verifies a block's trailer and returns its contents (decompressed). */
function readBlock(bytes: Uint8Array, h: BlockHandle, dataEnd: number, what: string): Uint8Array {
  if (h.offset + h.size + BLOCK_TRAILER_BYTES > dataEnd) {
    throw new Damage(h.offset, `${what} block handle runs past the blocks`);
  }
  const typeAt = h.offset + h.size;
  if (masked(crc32c(bytes, h.offset, typeAt + 1)) !== u32(bytes, typeAt + 1)) {
    throw new Damage(h.offset, `${what} block checksum mismatch`);
  }
  const contents = bytes.subarray(h.offset, typeAt);
  const type = bytes[typeAt]!;
  if (type === 0) return contents;
  if (type === 1) return unsnappy(contents, h.offset);
  throw new Damage(h.offset, `${what} block has unknown compression ${type}`);
}

/** The values of a block's entries (table/block.cc layout); keys are not needed here. */
function blockValues(block: Uint8Array, at: number): Uint8Array[] {
  if (block.length < 4) throw new Damage(at, "block too short");
  const restarts = u32(block, block.length - 4);
  const entriesEnd = block.length - 4 - 4 * restarts;
  if (restarts < 1 || entriesEnd < 0) throw new Damage(at, "bad block restart array");
  const values: Uint8Array[] = [];
  let i = 0;
  while (i < entriesEnd) {
    const [, a] = varint(block, i, entriesEnd, 5);
    const [nonShared, b] = varint(block, a, entriesEnd, 5);
    const [valueLength, c] = varint(block, b, entriesEnd, 5);
    const valueAt = c + nonShared;
    if (valueAt + valueLength > entriesEnd) throw new Damage(at, "bad block entry");
    values.push(block.subarray(valueAt, valueAt + valueLength));
    i = valueAt + valueLength;
  }
  return values;
}

export interface TableLayout {
  data: BlockHandle[];
  /** The bloom filter block (one, or none when no filter policy was set). */
  filter: BlockHandle[];
  metaindex: BlockHandle;
  index: BlockHandle;
  /** Where the 48-byte footer starts. */
  footer: number;
}

/**
 * A table file: footer, index, metaindex, every data and filter block, and that they
 * tile the file. Returns where the blocks are (tests pick spots to damage from it).
 */
export function checkTableFile(bytes: Uint8Array): TableLayout {
  if (bytes.length < FOOTER_BYTES) throw new Damage(0, "shorter than a table footer");
  const footer = bytes.length - FOOTER_BYTES;
  const magicAt = bytes.length - 8;
  if (u32(bytes, magicAt) !== TABLE_MAGIC_LO || u32(bytes, magicAt + 4) !== TABLE_MAGIC_HI) {
    throw new Damage(magicAt, "bad table magic number");
  }
  const [metaindex, next] = handleAt(bytes, footer, magicAt);
  const [index] = handleAt(bytes, next, magicAt);
  const layout: TableLayout = { data: [], filter: [], metaindex, index, footer };
  const indexBlock = readBlock(bytes, index, footer, "index");
  for (const value of blockValues(indexBlock, index.offset)) {
    const [h] = handleAt(value, 0, value.length);
    readBlock(bytes, h, footer, "data");
    layout.data.push(h);
  }
  const metaBlock = readBlock(bytes, metaindex, footer, "metaindex");
  for (const value of blockValues(metaBlock, metaindex.offset)) {
    const [h] = handleAt(value, 0, value.length);
    readBlock(bytes, h, footer, "filter");
    layout.filter.push(h);
  }
  // The blocks are written back to back: a handle that moved leaves a gap or an overlap.
  const handles = [...layout.data, ...layout.filter, metaindex, index];
  handles.sort((x, y) => x.offset - y.offset);
  let at = 0;
  for (const h of handles) {
    if (h.offset !== at) throw new Damage(at, "table blocks do not cover the file");
    at = h.offset + h.size + BLOCK_TRAILER_BYTES;
  }
  if (at !== footer) throw new Damage(at, "table blocks do not reach the footer");
  return layout;
}

function corruptFile(path: string, why: string): KvError {
  return new KvError(
    "CORRUPT_RECORD",
    `corrupt LevelDB file ${path}: ${why}; this node must not start on this data: reset the member and let it catch up from the others (README, "A member with corrupted data")`,
  );
}

/**
 * Verifies the LevelDB at `dir` (absent: nothing to verify). Throws
 * KvError("CORRUPT_RECORD") naming the file and offset of the first damage.
 */
export async function verifyLevelDbFiles(dir: string): Promise<LevelDbFilesReport> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { files: 0, bytes: 0 };
    throw err;
  }
  const report: LevelDbFilesReport = { files: 0, bytes: 0 };
  for (const name of names) {
    const check =
      /^\d+\.log$/.test(name) || /^MANIFEST-\d+$/.test(name)
        ? checkLogFile
        : /^\d+\.(ldb|sst)$/.test(name)
          ? checkTableFile
          : name === "CURRENT"
            ? (bytes: Uint8Array) => checkCurrent(bytes, names)
            : undefined;
    if (check === undefined) continue; // LOG, LOG.old, LOCK: text and a lock, no data
    const path = join(dir, name);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (err) {
      // Deleted since the listing: another process has this database open (its open
      // then fails with LEVEL_LOCKED, which says so).
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    try {
      check(bytes);
    } catch (err) {
      if (err instanceof Damage) throw corruptFile(path, `offset ${err.offset}: ${err.message}`);
      throw err;
    }
    report.files++;
    report.bytes += bytes.length;
  }
  return report;
}

/** CURRENT names the MANIFEST in use, ending in a newline. */
function checkCurrent(bytes: Uint8Array, names: readonly string[]): void {
  const text = new TextDecoder().decode(bytes);
  const m = /^(MANIFEST-\d+)\n$/.exec(text);
  if (m === null) throw new Damage(0, "does not name a MANIFEST");
  if (!names.includes(m[1]!)) throw new Damage(0, `names ${m[1]}, which does not exist`);
}
