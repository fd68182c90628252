/**
 * Checks the checksums LevelDB itself stores: at start, before LevelDB opens the
 * directory, and on demand or in the background for the tables.
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
 * value, but not a record LevelDB dropped or hid. So the node refuses to start, or
 * stops, on any mismatch, naming the file and offset.
 *
 * Rules (those of LevelDB's paranoid checks, and of etcd's WAL): a record or block
 * whose CRC does not match is corruption wherever it is; a log that ends inside a
 * record (a write cut short by a crash, never acknowledged since it was not synced)
 * is a torn tail and is fine, unless some prefix of the bytes after its header carries
 * its checksum (a whole record whose length field was damaged, which LevelDB would
 * take for a torn tail and drop with every record after it). Only the files LevelDB
 * will use are checked: CURRENT, its MANIFEST, the tables that MANIFEST holds (each of
 * its recorded size) and the logs it replays; a table a compaction left half-written
 * at close or a crash is not in the MANIFEST, and LevelDB deletes it unread.
 *
 * When: the start check (`verifyLevelDbFiles`) reads what recovery reads, CURRENT, the
 * MANIFEST and the logs (bounded by the write buffer), and only stats the tables, so a
 * restart does not grow with the data. Table blocks are read by `verifyLevelDb`
 * (`streamkv verify`) and, in a running node, by its background scrub (node/scrub.ts),
 * which leaves the `CORRUPT` marker that every later start refuses on. Files are read
 * whole, one at a time (a table is about 2 MiB).
 */
import { open, readdir, readFile, stat } from "node:fs/promises";
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
  const steps = tableSteps(bytes);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * `checkTableFile` that lets other work run (a macrotask turn) after each
 * `yieldEveryBytes` of blocks checked: a running node's scrub, whose event loop must not
 * stall for a whole table (about 6 ms per MiB here).
 */
export async function checkTableFileYielding(
  bytes: Uint8Array,
  yieldEveryBytes: number,
): Promise<TableLayout> {
  const steps = tableSteps(bytes);
  let yieldedAt = 0;
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (step.value - yieldedAt >= yieldEveryBytes) {
      yieldedAt = step.value;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/** The table check, yielding the offset checked up to after each data block. */
function* tableSteps(bytes: Uint8Array): Generator<number, TableLayout> {
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
    yield h.offset + h.size;
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

/**
 * The marker a node leaves in its LevelDB directory when it finds damage while it runs
 * (node/scrub.ts): its text is the damage, and every start after it refuses as the start
 * check refuses a damaged file. LevelDB leaves a file of a name it does not know alone.
 */
export const CORRUPT_MARKER = "CORRUPT";
/** A marker's text is read up to this (it is one line the node wrote). */
const MARKER_BYTES_MAX = 4096;
const RESET_HINT =
  'this node must not start on this data: reset the member and let it catch up from the others (README, "A member with corrupted data")';

/** What a check found wrong in one file, at a byte offset of it. */
export interface LevelDbDamage {
  file: string;
  offset: number;
  reason: string;
}

/** The error a start refuses a damaged file with. */
export function damageError(d: LevelDbDamage): KvError {
  return new KvError(
    "CORRUPT_RECORD",
    `corrupt LevelDB file ${d.file}: offset ${d.offset}: ${d.reason}; ${RESET_HINT}`,
  );
}

export interface LevelDbVerifyReport extends LevelDbFilesReport {
  /** Tables whose every block was verified. */
  tables: number;
  /** Files gone between the listing and their read (a compaction deleted a table): skipped. */
  skipped: string[];
  damage: LevelDbDamage[];
}

/** One table the MANIFEST holds: its file name and the size it recorded. */
export interface LiveTable {
  number: number;
  name: string;
  sizeBytes: number;
}

/** What the MANIFEST says LevelDB will use, and whether CURRENT and the MANIFEST check out. */
export interface LiveSet {
  tables: LiveTable[];
  /** The write-ahead logs LevelDB replays at open. */
  logs: string[];
  /** CURRENT and MANIFEST bytes read. */
  bytes: number;
  files: number;
  /** Damage in CURRENT or the MANIFEST, a table it names that is missing, or the marker. */
  damage?: LevelDbDamage;
  /** Tables a compaction deleted while the listing ran (a running database). */
  skipped?: string[];
}

async function listing(dir: string): Promise<string[] | undefined> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function damageOf(file: string, check: () => void): LevelDbDamage | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    if (err instanceof Damage) return { file, offset: err.offset, reason: err.message };
    throw err;
  }
}

/** The marker's text (its first line, of its first MARKER_BYTES_MAX bytes), or undefined when there is none. */
async function markerOf(dir: string, names: readonly string[]): Promise<string | undefined> {
  if (!names.includes(CORRUPT_MARKER)) return undefined;
  const bytes = Buffer.alloc(MARKER_BYTES_MAX);
  let length = 0;
  try {
    const file = await open(join(dir, CORRUPT_MARKER), "r");
    try {
      length = (await file.read(bytes, 0, MARKER_BYTES_MAX, 0)).bytesRead;
    } finally {
      await file.close();
    }
  } catch (err) {
    // Removed since the listing: an operator's reset under way. Still refuse this time.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const text = bytes.subarray(0, length).toString("utf8").split("\n")[0]!.trim();
  return text === "" ? "damage was found while the node ran (no reason recorded)" : text;
}

/**
 * Reads CURRENT and the MANIFEST at `dir` (absent, or never written: nothing to check)
 * and lists what LevelDB will use: the live tables (each present under its number) and
 * the logs it replays. Files LevelDB no longer uses (an older log, a table a compaction
 * cut short at close or a crash) are left out, as LevelDB deletes them unread.
 *
 * Safe on a running database: a table the MANIFEST names but the directory lacks is read
 * for again, and the MANIFEST once more; a table that edit deleted is left out (in
 * `skipped`), one still named is damage.
 */
export async function liveSetOf(dir: string): Promise<LiveSet> {
  const first = await liveSetOnce(dir);
  if (first.missing.length === 0) return first.set;
  const again = await liveSetOnce(dir);
  if (again.set.damage) return again.set;
  const stillMissing = again.missing.find((m) => first.missing.includes(m));
  if (stillMissing !== undefined) {
    again.set.damage = {
      file: join(dir, again.manifest),
      offset: 0,
      reason: `names table ${stillMissing}, which does not exist`,
    };
    return again.set;
  }
  // Named by the first read only: a compaction deleted them in between. Those named by
  // the second read only are new (the second listing missed them): the next cycle has them.
  const gone = [...first.missing, ...again.missing].map((n) => `${String(n).padStart(6, "0")}.ldb`);
  again.set.skipped = [...(again.set.skipped ?? []), ...gone];
  return again.set;
}

async function liveSetOnce(
  dir: string,
): Promise<{ set: LiveSet; missing: number[]; manifest: string }> {
  const set: LiveSet = { tables: [], logs: [], bytes: 0, files: 0 };
  const missing: number[] = [];
  let manifest = "";
  const result = () => ({ set, missing, manifest });
  const names = await listing(dir);
  if (names === undefined || !names.includes("CURRENT")) return result();
  const marker = await markerOf(dir, names);
  if (marker !== undefined) {
    set.damage = { file: join(dir, CORRUPT_MARKER), offset: 0, reason: marker };
    return result();
  }
  const read = async (name: string) => {
    const bytes = await readFile(join(dir, name));
    set.files++;
    set.bytes += bytes.length;
    return bytes;
  };
  const current = await read("CURRENT");
  set.damage = damageOf(join(dir, "CURRENT"), () => {
    manifest = checkCurrent(current, names);
  });
  if (set.damage) return result();
  const manifestBytes = await read(manifest);
  let live: LiveFiles | undefined;
  set.damage = damageOf(join(dir, manifest), () => {
    live = liveFiles(checkLogFile(manifestBytes));
  });
  if (set.damage || live === undefined) return result();
  for (const [number, sizeBytes] of live.tables) {
    const base = String(number).padStart(6, "0");
    let name = [`${base}.ldb`, `${base}.sst`].find((n) => names.includes(n));
    // Written after the listing (a running database): there now?
    if (name === undefined && (await exists(join(dir, `${base}.ldb`)))) name = `${base}.ldb`;
    if (name === undefined) missing.push(number);
    else set.tables.push({ number, name, sizeBytes });
  }
  set.tables.sort((x, y) => x.number - y.number);
  for (const name of names.filter((n) => /^\d+\.log$/.test(n))) {
    const number = Number(/^(\d+)\./.exec(name)![1]);
    // The logs LevelDB replays at open (db_impl.cc Recover); older ones it deletes.
    if (number < live.logNumber && number !== live.prevLogNumber) continue;
    set.logs.push(name);
  }
  return result();
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/**
 * One buffer that table reads reuse, grown to the largest table read. A scrub that read
 * every table with readFile allocated a fresh 2 to 4 MiB buffer per table; glibc keeps
 * such freed blocks, so a cycle over a 180 MB database left the node about 70 MB larger
 * (RSS at rest after a restart at 1M keys: 346 MB with the scrub, 274 MB without).
 */
export class TableReadBuffer {
  private buffer = new Uint8Array(0);

  /** The first `size` bytes of `path` (fewer if it is shorter), or undefined if it is gone. */
  async read(path: string, size: number): Promise<Uint8Array | undefined> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      if (this.buffer.length < size)
        this.buffer = new Uint8Array(Math.max(size, this.buffer.length * 2));
      let filled = 0;
      while (filled < size) {
        const { bytesRead } = await handle.read(this.buffer, filled, size - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      // One byte more tells a file longer than `size` apart from one of exactly `size`.
      if (filled === size) {
        const probe = new Uint8Array(1);
        if ((await handle.read(probe, 0, 1, size)).bytesRead > 0) filled = size + 1;
      }
      return filled > size ? new Uint8Array(filled) : this.buffer.subarray(0, filled);
    } finally {
      await handle.close();
    }
  }

  /** Gives the memory back (between scrub cycles). */
  release(): void {
    this.buffer = new Uint8Array(0);
  }
}

/**
 * Every block of one live table (of the size the MANIFEST recorded). "gone" when it no
 * longer exists: a compaction deleted it after the listing (tables are immutable and
 * their numbers never reused, so that is not damage). With `yieldEveryBytes`, other work
 * runs between blocks (`checkTableFileYielding`); with `buffer`, the table is read into
 * it instead of a fresh buffer.
 */
export async function verifyTable(
  dir: string,
  table: LiveTable,
  opts: { yieldEveryBytes?: number; buffer?: TableReadBuffer } = {},
): Promise<"gone" | { bytes: number; damage?: LevelDbDamage }> {
  const file = join(dir, table.name);
  // The size first: a file that is not the table the MANIFEST recorded is not read.
  let sizeBytes: number;
  try {
    sizeBytes = (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    throw err;
  }
  if (sizeBytes !== table.sizeBytes) {
    const reason = `${sizeBytes} bytes where the MANIFEST recorded ${table.sizeBytes}`;
    return { bytes: 0, damage: { file, offset: 0, reason } };
  }
  const bytes =
    opts.buffer === undefined
      ? await readIfPresent(file)
      : await opts.buffer.read(file, table.sizeBytes);
  if (bytes === undefined) return "gone";
  try {
    if (bytes.length !== table.sizeBytes) {
      throw new Damage(0, `${bytes.length} bytes where the MANIFEST recorded ${table.sizeBytes}`);
    }
    if (opts.yieldEveryBytes === undefined) checkTableFile(bytes);
    else await checkTableFileYielding(bytes, opts.yieldEveryBytes);
    return { bytes: bytes.length };
  } catch (err) {
    if (!(err instanceof Damage)) throw err;
    return { bytes: bytes.length, damage: { file, offset: err.offset, reason: err.message } };
  }
}

/**
 * The start check: what LevelDB's recovery reads and could get wrong without a word,
 * before LevelDB opens `dir`: the marker of damage found while the node ran, CURRENT, the
 * MANIFEST it names, every table that MANIFEST holds being there at its recorded size
 * (a stat each), and every record of the logs LevelDB replays (bounded by its write
 * buffer). Table blocks are not read (LevelDB reads them when asked for a key, and the
 * records in them carry our CRC32C): `verifyLevelDb` and the node's scrub read them. So
 * the time is independent of how much the database holds. Throws
 * KvError("CORRUPT_RECORD") naming the file and offset.
 */
export async function verifyLevelDbFiles(dir: string): Promise<LevelDbFilesReport> {
  const set = await liveSetOf(dir);
  if (set.damage) throw startRefusal(set.damage);
  const report: LevelDbFilesReport = { files: set.files, bytes: set.bytes };
  for (const t of set.tables) {
    const size = (await stat(join(dir, t.name))).size;
    if (size !== t.sizeBytes) {
      throw damageError({
        file: join(dir, t.name),
        offset: 0,
        reason: `${size} bytes where the MANIFEST recorded ${t.sizeBytes}`,
      });
    }
  }
  for (const name of set.logs) {
    const bytes = await readFile(join(dir, name));
    report.files++;
    report.bytes += bytes.length;
    const damage = damageOf(join(dir, name), () => void checkLogFile(bytes));
    if (damage) throw damageError(damage);
  }
  return report;
}

function startRefusal(d: LevelDbDamage): KvError {
  if (d.file.endsWith(`/${CORRUPT_MARKER}`)) {
    return new KvError(
      "CORRUPT_RECORD",
      `${d.reason} (recorded in ${d.file} when it was found); ${RESET_HINT}`,
    );
  }
  return damageError(d);
}

/**
 * The whole check (`streamkv verify`): what the start check reads, plus every block of
 * every live table. It only reads, so it is safe on a running node's directory: a file
 * deleted meanwhile (a table a compaction replaced, a log flushed) is skipped and listed
 * in `skipped`. Damage is collected, not thrown: after damage in CURRENT or the MANIFEST
 * nothing else can be located, so the check ends there.
 */
export async function verifyLevelDb(dir: string): Promise<LevelDbVerifyReport> {
  const set = await liveSetOf(dir);
  const report: LevelDbVerifyReport = {
    files: set.files,
    bytes: set.bytes,
    tables: 0,
    skipped: [...(set.skipped ?? [])],
    damage: [],
  };
  if (set.damage) {
    report.damage.push(set.damage);
    return report;
  }
  for (const name of set.logs) {
    const bytes = await readIfPresent(join(dir, name));
    if (bytes === undefined) {
      report.skipped.push(name);
      continue;
    }
    report.files++;
    report.bytes += bytes.length;
    const damage = damageOf(join(dir, name), () => void checkLogFile(bytes));
    if (damage) report.damage.push(damage);
  }
  for (const t of set.tables) {
    const checked = await verifyTable(dir, t);
    if (checked === "gone") {
      report.skipped.push(t.name);
      continue;
    }
    report.files++;
    report.tables++;
    report.bytes += checked.bytes;
    if (checked.damage) report.damage.push(checked.damage);
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
