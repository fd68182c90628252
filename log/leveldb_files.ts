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
 * take for a torn tail and drop with every record after it). Only the files LevelDB
 * will use are checked: CURRENT, its MANIFEST, the tables that MANIFEST holds (each of
 * its recorded size) and the logs it replays; a table a compaction left half-written
 * at close or a crash is not in the MANIFEST, and LevelDB deletes it unread. Files are
 * read whole, one at a time: one read of the database per start (50 MB in 0.2-0.4 s),
 * like the log's verifying index rebuild (recover.ts).
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
 * A log-format file (write-ahead log or MANIFEST): its whole logical records, in
 * order. A torn tail ends the list; anything else wrong throws Damage.
 */
export function checkLogFile(bytes: Uint8Array): Uint8Array[] {
  const records: Uint8Array[] = [];
  let fragments: Uint8Array[] | undefined;
  let at = 0;
  while (at < bytes.length) {
    const blockLeft = LOG_BLOCK_BYTES - (at % LOG_BLOCK_BYTES);
    // The writer pads a block's last few bytes (too few for a header) with zeros.
    if (blockLeft < LOG_HEADER_BYTES) {
      at += blockLeft;
      continue;
    }
    if (bytes.length - at < LOG_HEADER_BYTES) break; // torn inside a header
    const stored = u32(bytes, at);
    const length = bytes[at + 4]! | (bytes[at + 5]! << 8);
    const type = bytes[at + 6]!;
    if (type === RecordType.Zero && length === 0 && stored === 0) {
      // A zero-filled tail (space a crashed file system allocated but never wrote).
      for (let i = at; i < bytes.length; i++) {
        if (bytes[i] !== 0) throw new Damage(at, "zeroed record header followed by data");
      }
      break;
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
        if (i === bytes.length) break;
        crc = crc32c(bytes, i, i + 1, crc);
      }
      break;
    }
    if (masked(crc32c(bytes, at + 6, end)) !== stored) {
      throw new Damage(at, "record checksum mismatch");
    }
    const payload = bytes.subarray(at + LOG_HEADER_BYTES, end);
    switch (type) {
      case RecordType.Full:
      case RecordType.First:
        if (fragments) throw new Damage(at, "a fragmented record has no last fragment");
        if (type === RecordType.Full) records.push(payload);
        else fragments = [payload];
        break;
      case RecordType.Middle:
      case RecordType.Last:
        if (!fragments) throw new Damage(at, "a record fragment has no first fragment");
        fragments.push(payload);
        if (type === RecordType.Last) {
          records.push(Buffer.concat(fragments));
          fragments = undefined;
        }
        break;
      default:
        throw new Damage(at, `unknown record type ${type}`);
    }
    at = end;
  }
  // Ending after a first or middle fragment is a torn tail too.
  return records;
}

/** What the MANIFEST says is live: the tables (number -> size) and the logs to replay. */
export interface LiveFiles {
  tables: Map<number, number>;
  logNumber: number;
  prevLogNumber: number;
}

/** Folds the MANIFEST's version edits (db/version_edit.cc tags) into the live files. */
export function liveFiles(records: readonly Uint8Array[]): LiveFiles {
  const live: LiveFiles = { tables: new Map(), logNumber: 0, prevLogNumber: 0 };
  for (const r of records) {
    let i = 0;
    const next = () => {
      const [v, after] = varint(r, i, r.length, 10);
      i = after;
      return v;
    };
    const skipSlice = () => {
      const n = next();
      if (i + n > r.length) throw new Damage(0, "version edit slice runs past its record");
      i += n;
    };
    while (i < r.length) {
      const tag = next();
      switch (tag) {
        case 1: // comparator name
          skipSlice();
          break;
        case 2:
          live.logNumber = next();
          break;
        case 3: // next file number
        case 4: // last sequence
          next();
          break;
        case 5: // compact pointer: level, internal key
          next();
          skipSlice();
          break;
        case 6: // deleted file: level, number
          next();
          live.tables.delete(next());
          break;
        case 7: {
          // new file: level, number, size, smallest, largest
          next();
          const number = next();
          live.tables.set(number, next());
          skipSlice();
          skipSlice();
          break;
        }
        case 9:
          live.prevLogNumber = next();
          break;
        default:
          throw new Damage(0, `unknown version edit tag ${tag}`);
      }
    }
  }
  return live;
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
 * Verifies the LevelDB at `dir` (absent: nothing to verify): CURRENT, the MANIFEST it
 * names, every table that MANIFEST holds (present, of the recorded size, every block),
 * and every log LevelDB will replay. Files LevelDB no longer uses (an older log, a table
 * a compaction cut short at close or a crash) are left alone, as LevelDB does before it
 * deletes them. Throws KvError("CORRUPT_RECORD") naming the file and offset.
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
  if (!names.includes("CURRENT")) return report; // never opened, or nothing written yet
  const read = async (name: string) => {
    const bytes = await readFile(join(dir, name));
    report.files++;
    report.bytes += bytes.length;
    return bytes;
  };
  const checked = <T>(name: string, check: () => T): T => {
    try {
      return check();
    } catch (err) {
      if (err instanceof Damage) {
        throw corruptFile(join(dir, name), `offset ${err.offset}: ${err.message}`);
      }
      throw err;
    }
  };
  const current = await read("CURRENT");
  const manifest = checked("CURRENT", () => checkCurrent(current, names));
  const manifestBytes = await read(manifest);
  const live = checked(manifest, () => liveFiles(checkLogFile(manifestBytes)));
  const numberOf = (name: string) => Number(/^(\d+)\./.exec(name)?.[1] ?? -1);
  for (const [number, size] of live.tables) {
    const name = [
      `${String(number).padStart(6, "0")}.ldb`,
      `${String(number).padStart(6, "0")}.sst`,
    ].find((n) => names.includes(n));
    if (name === undefined) {
      throw corruptFile(join(dir, manifest), `names table ${number}, which does not exist`);
    }
    const bytes = await read(name);
    checked(name, () => {
      if (bytes.length !== size) {
        throw new Damage(0, `${bytes.length} bytes where the MANIFEST recorded ${size}`);
      }
      checkTableFile(bytes);
    });
  }
  for (const name of names.filter((n) => /^\d+\.log$/.test(n))) {
    const number = numberOf(name);
    // The logs LevelDB replays at open (db_impl.cc Recover); older ones it deletes.
    if (number < live.logNumber && number !== live.prevLogNumber) continue;
    const bytes = await read(name);
    checked(name, () => checkLogFile(bytes));
  }
  return report;
}

/** CURRENT names the MANIFEST in use, ending in a newline. */
function checkCurrent(bytes: Uint8Array, names: readonly string[]): string {
  const text = new TextDecoder().decode(bytes);
  const m = /^(MANIFEST-\d+)\n$/.exec(text);
  if (m === null) throw new Damage(0, "does not name a MANIFEST");
  if (!names.includes(m[1]!)) throw new Damage(0, `names ${m[1]}, which does not exist`);
  return m[1]!;
}
