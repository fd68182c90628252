/**
 * The Raft storage on LevelDB: `RaftStorage` (raft/storage.ts) in the node's one
 * database, beside the stream log, under its own key prefix (default `r!`).
 * log/ knows nothing of the Raft algorithm; it stores hard state, entries and
 * snapshot meta as checksummed records and serves the core's synchronous reads
 * from memory (`MemoryRaftLog`, shared with the in-memory twin so that both have
 * exactly the same semantics; see raft/memory_storage.ts).
 *
 * Key layout (P = prefix):
 *   P h                    HardStateRecord
 *   P s                    SnapshotMetaRecord (written at first open with the initial conf)
 *   P e <u64 big-endian>   EntryRecord, for every index in (snapshot.index, lastIndex]
 * Value: [format 1][CRC-32 of key ‖ body, u32 BE][protobuf body] (proto/raftlog.proto).
 *
 * Durability: `persist()` applies a request to memory at once (the core reads it
 * right away), then queues its LevelDB operations. One writer drains the queue:
 * everything queued while a `{ sync: true }` batch is in flight goes into the
 * next batch, in call order (LevelDB applies a batch's operations in order, so a
 * later truncation or replacement wins). A promise resolves only after the
 * synced batch containing its request. Group commit thus makes throughput
 * independent of the fsync rate; the latency is at most two syncs. A hard state
 * whose commit index alone changed (`sync: false`) gets no write of its own: the
 * next batch (or `close()`) carries the latest one, which saves a LevelDB write
 * and a thread-pool round trip per Raft round; a crash may lose it, and the
 * core recomputes the commit index after a restart.
 *
 * A failed write is fatal: every pending promise rejects with the same
 * `KvError("INTERNAL")` and all later writes are refused; memory may then be
 * ahead of disk, so the node must stop and reopen from disk.
 *
 * At open every record is checked (checksum, key/body agreement, safe integers,
 * contiguous entries with non-decreasing terms right after the snapshot);
 * anything wrong throws `KvError("CORRUPT_RECORD")` so that a node never votes
 * or leads as if it had data it lost.
 */
import zlib from "node:zlib";
import { ClassicLevel } from "classic-level";
import { raftlogSchema as descriptor, KvError, messageType } from "../proto/index.js";
import {
  type ApplyConfChange,
  assertConf,
  type ConfState,
  copyConf,
  type Entry,
  EntryType,
  type HardState,
  type InitialState,
  MemoryRaftLog,
  type PersistRequest,
  type RaftStorage,
  type SnapshotMeta,
} from "../raft/index.js";

const HardStateRecord = messageType(descriptor, "streamkv.raftlog.HardStateRecord");
const SnapshotMetaRecord = messageType(descriptor, "streamkv.raftlog.SnapshotMetaRecord");
const EntryRecord = messageType(descriptor, "streamkv.raftlog.EntryRecord");

const FORMAT = 1;
const HEADER_BYTES = 5;
const KIND_HARD_STATE = 0x68; // "h"
const KIND_SNAPSHOT = 0x73; // "s"
const KIND_ENTRY = 0x65; // "e"
const TWO_32 = 2 ** 32;

/** Any ClassicLevel, whatever its default encodings: every call here names its own. */
// biome-ignore lint/suspicious/noExplicitAny: the stream log picks the database's default encodings.
export type AnyClassicLevel = ClassicLevel<any, any>;

export interface LevelRaftStorageOptions {
  /** Key prefix of every Raft record in the shared database (default "r!"). */
  prefix?: string;
  /** Membership before any snapshot or ConfChange; only used when the storage is new. */
  initialConf?: ConfState;
  /** How ConfChange entries change the membership (see raft/memory_storage.ts). */
  applyConfChange?: ApplyConfChange;
}

export interface LevelRaftStorageStats {
  /** Synced LevelDB batches written so far (including the one at first open). */
  syncs: number;
  /** persist() and compact() calls made durable so far. */
  requests: number;
  /** Most requests one synced batch has carried. */
  maxRequestsPerSync: number;
}

type BatchOp = { type: "put"; key: Buffer; value: Buffer } | { type: "del"; key: Buffer };

interface Queued {
  ops: BatchOp[];
  /** False for a request that needs no fsync (PersistRequest.sync). */
  sync: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`raft storage: ${message}`);
}

// ---- records ---------------------------------------------------------------

const crc32: (data: Uint8Array, value?: number) => number =
  typeof zlib.crc32 === "function" ? zlib.crc32 : crc32Js;

let crcTable: Uint32Array | undefined;
/** Same CRC-32 (IEEE) as zlib.crc32, for Node releases before 20.15. */
function crc32Js(data: Uint8Array, value = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export function encodeValue(key: Uint8Array, body: Uint8Array): Buffer {
  const value = Buffer.allocUnsafe(HEADER_BYTES + body.byteLength);
  value[0] = FORMAT;
  value.writeUInt32BE(crc32(body, crc32(key)), 1);
  value.set(body, HEADER_BYTES);
  return value;
}

function corrupt(key: Uint8Array, why: string, cause?: unknown): KvError {
  return new KvError(
    "CORRUPT_RECORD",
    `raft storage: corrupt record ${Buffer.from(key).toString("hex")}: ${why}; the node must not start on this data (restore it from a peer)`,
    {},
    cause,
  );
}

/** Checks the header and checksum; returns the protobuf body. */
function decodeValue(key: Uint8Array, value: Uint8Array): Uint8Array {
  if (value.byteLength < HEADER_BYTES) throw corrupt(key, "value shorter than its header");
  if (value[0] !== FORMAT) throw corrupt(key, `unknown record format ${value[0]}`);
  const body = value.subarray(HEADER_BYTES);
  const stored = Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUInt32BE(1);
  if (stored !== crc32(body, crc32(key))) throw corrupt(key, "checksum mismatch");
  return body;
}

/** uint64 fields decode to a number or a protobufjs Long; either must be a safe integer. */
function safeInteger(key: Uint8Array, field: string, value: unknown): number {
  let n: number;
  if (typeof value === "number") n = value;
  else if (value !== null && typeof value === "object" && "high" in value && "low" in value) {
    const long = value as { high: number; low: number };
    n = (long.high >>> 0) * TWO_32 + (long.low >>> 0);
  } else throw corrupt(key, `${field} is not an integer`);
  if (!Number.isSafeInteger(n) || n < 0) throw corrupt(key, `${field} ${n} is not a safe integer`);
  return n;
}

function decodeBody(type: typeof EntryRecord, key: Uint8Array, body: Uint8Array) {
  try {
    return type.decode(body) as unknown as Record<string, unknown>;
  } catch (err) {
    throw corrupt(key, `undecodable ${type.name}`, err);
  }
}

function hardStateBody(hs: HardState): Uint8Array {
  return HardStateRecord.encode({
    current_term: hs.currentTerm,
    voted_for: hs.votedFor ?? "",
    has_voted_for: hs.votedFor !== null,
    commit_index: hs.commitIndex,
  }).finish();
}

function snapshotBody(meta: SnapshotMeta): Uint8Array {
  return SnapshotMetaRecord.encode({
    index: meta.index,
    term: meta.term,
    conf: { voters: meta.conf.voters, learners: meta.conf.learners },
  }).finish();
}

export function entryBody(e: Entry): Uint8Array {
  return EntryRecord.encode({ index: e.index, term: e.term, type: e.type, data: e.data }).finish();
}

function decodeHardState(key: Uint8Array, body: Uint8Array): HardState {
  const r = decodeBody(HardStateRecord, key, body);
  return {
    currentTerm: safeInteger(key, "current_term", r.current_term),
    votedFor: r.has_voted_for ? String(r.voted_for) : null,
    commitIndex: safeInteger(key, "commit_index", r.commit_index),
  };
}

function decodeStrings(key: Uint8Array, field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw corrupt(key, `${field} is not a list of strings`);
  }
  return [...value];
}

function decodeSnapshot(key: Uint8Array, body: Uint8Array): SnapshotMeta {
  const r = decodeBody(SnapshotMetaRecord, key, body);
  const conf = (r.conf ?? {}) as Record<string, unknown>;
  return {
    index: safeInteger(key, "index", r.index),
    term: safeInteger(key, "term", r.term),
    conf: {
      voters: decodeStrings(key, "conf.voters", conf.voters),
      learners: decodeStrings(key, "conf.learners", conf.learners),
    },
  };
}

function decodeEntry(key: Uint8Array, body: Uint8Array): Entry {
  const r = decodeBody(EntryRecord, key, body);
  const type = r.type;
  if (type !== EntryType.Normal && type !== EntryType.ConfChange && type !== EntryType.Noop) {
    throw corrupt(key, `unknown entry type ${String(type)}`);
  }
  const data = r.data instanceof Uint8Array ? r.data : new Uint8Array(0);
  return {
    index: safeInteger(key, "index", r.index),
    term: safeInteger(key, "term", r.term),
    type,
    data,
  };
}

// ---- the storage -------------------------------------------------------------

export class LevelRaftStorage implements RaftStorage {
  private readonly mem: MemoryRaftLog;
  private readonly prefix: Buffer;
  private readonly hardStateKey: Buffer;
  private readonly snapshotKey: Buffer;
  /** Requests waiting for the next batch, in call order. */
  private queue: Queued[] = [];
  private writing: Promise<void> | undefined;
  /** The latest commit-index-only hard state (sync: false), written with the next batch. */
  private deferredHardState: BatchOp | undefined;
  private fatal: KvError | undefined;
  private closed = false;
  private readonly counters: LevelRaftStorageStats = {
    syncs: 0,
    requests: 0,
    maxRequestsPerSync: 0,
  };

  private constructor(
    private readonly db: AnyClassicLevel,
    private readonly ownsDb: boolean,
    prefix: Buffer,
    mem: MemoryRaftLog,
  ) {
    this.prefix = prefix;
    this.hardStateKey = Buffer.concat([prefix, Buffer.of(KIND_HARD_STATE)]);
    this.snapshotKey = Buffer.concat([prefix, Buffer.of(KIND_SNAPSHOT)]);
    this.mem = mem;
  }

  /**
   * Opens (or creates) the Raft storage in `db`, or in a database of its own at
   * a path (then `close()` closes it). Throws KvError("CORRUPT_RECORD") when a
   * stored record fails its checks.
   */
  static async open(
    db: AnyClassicLevel | string,
    options: LevelRaftStorageOptions = {},
  ): Promise<LevelRaftStorage> {
    const prefix = Buffer.from(options.prefix ?? "r!", "utf8");
    assert(prefix.byteLength > 0 && prefix[prefix.byteLength - 1]! < 0xff, "bad key prefix");
    if (options.initialConf) assertConf(options.initialConf);
    const ownsDb = typeof db === "string";
    const level: AnyClassicLevel = ownsDb ? new ClassicLevel(db) : db;
    try {
      await level.open();
      const mem = new MemoryRaftLog({
        initialConf: options.initialConf,
        applyConfChange: options.applyConfChange,
      });
      const storage = new LevelRaftStorage(level, ownsDb, prefix, mem);
      await storage.load(options.initialConf);
      return storage;
    } catch (err) {
      if (ownsDb) await level.close().catch(() => {});
      throw err;
    }
  }

  private entryKey(index: number): Buffer {
    const key = Buffer.allocUnsafe(this.prefix.byteLength + 9);
    this.prefix.copy(key, 0);
    let at = this.prefix.byteLength;
    key[at++] = KIND_ENTRY;
    key.writeUInt32BE(Math.floor(index / TWO_32), at);
    key.writeUInt32BE(index % TWO_32, at + 4);
    return key;
  }

  /** Reads every record under the prefix, checks it, and fills memory. */
  private async load(initialConf: ConfState | undefined): Promise<void> {
    const end = Buffer.from(this.prefix);
    end[end.byteLength - 1]!++;
    let hardState: HardState | undefined;
    let snapshot: SnapshotMeta | undefined;
    const entries: Entry[] = [];
    const plen = this.prefix.byteLength;
    for await (const [key, value] of this.db.iterator<Buffer, Buffer>({
      gte: this.prefix,
      lt: end,
      keyEncoding: "buffer",
      valueEncoding: "buffer",
    })) {
      const body = decodeValue(key, value);
      const kind = key[plen];
      if (kind === KIND_HARD_STATE && key.byteLength === plen + 1) {
        hardState = decodeHardState(key, body);
      } else if (kind === KIND_SNAPSHOT && key.byteLength === plen + 1) {
        snapshot = decodeSnapshot(key, body);
      } else if (kind === KIND_ENTRY && key.byteLength === plen + 9) {
        const e = decodeEntry(key, body);
        const keyIndex = key.readUInt32BE(plen + 1) * TWO_32 + key.readUInt32BE(plen + 5);
        if (e.index !== keyIndex) throw corrupt(key, `entry ${e.index} stored under ${keyIndex}`);
        entries.push(e);
      } else {
        throw corrupt(key, "unknown key in the raft prefix");
      }
    }
    if (!snapshot && !hardState && entries.length === 0) {
      // A new storage: record the initial conf and an empty hard state, durably,
      // so that a later open with other options cannot change the past.
      const hs: HardState = { currentTerm: 0, votedFor: null, commitIndex: 0 };
      const meta: SnapshotMeta = {
        index: 0,
        term: 0,
        conf: copyConf(initialConf ?? { voters: [], learners: [] }),
      };
      await this.db.batch<Buffer, Buffer>(
        [
          this.put(this.hardStateKey, hardStateBody(hs)),
          this.put(this.snapshotKey, snapshotBody(meta)),
        ],
        { sync: true, keyEncoding: "buffer", valueEncoding: "buffer" },
      );
      this.counters.syncs++;
      this.mem.restore(hs, meta, []);
      return;
    }
    if (!snapshot) throw corrupt(this.snapshotKey, "snapshot meta record missing");
    if (!hardState) throw corrupt(this.hardStateKey, "hard state record missing");
    // The iterator yields entries in index order (big-endian keys).
    let expected = snapshot.index + 1;
    let prevTerm = snapshot.term;
    for (const e of entries) {
      const key = this.entryKey(e.index);
      if (e.index <= snapshot.index)
        throw corrupt(key, `entry at or below snapshot ${snapshot.index}`);
      if (e.index !== expected)
        throw corrupt(this.entryKey(expected), "entry missing (gap in the log)");
      if (e.term < prevTerm) throw corrupt(key, `term ${e.term} below previous term ${prevTerm}`);
      expected++;
      prevTerm = e.term;
    }
    // A hard state ahead of the log it was written with means entries were lost: the
    // core would take commitIndex for entries it does not have.
    if (hardState.commitIndex > expected - 1) {
      throw corrupt(
        this.hardStateKey,
        `commit index ${hardState.commitIndex} beyond the last entry ${expected - 1}`,
      );
    }
    this.mem.restore(hardState, snapshot, entries);
    try {
      // The membership folds every ConfChange entry; one that does not decode is corrupt.
      this.mem.initialState();
    } catch (err) {
      if (!(err instanceof KvError)) throw err;
      throw corrupt(this.prefix, `a ConfChange entry does not decode (${err.message})`, err);
    }
  }

  private put(key: Buffer, body: Uint8Array): BatchOp {
    return { type: "put", key, value: encodeValue(key, body) };
  }

  private checkWritable(): void {
    assert(!this.closed, "write after close");
  }

  // ---- reads (from memory) ----

  initialState(): InitialState {
    return this.mem.initialState();
  }
  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    return this.mem.entries(lo, hi, maxBytes);
  }
  term(index: number): number | undefined {
    return this.mem.term(index);
  }
  firstIndex(): number {
    return this.mem.firstIndex();
  }
  lastIndex(): number {
    return this.mem.lastIndex();
  }
  snapshotMeta(): SnapshotMeta {
    return this.mem.snapshotMeta();
  }

  // ---- writes ----

  persist(request: PersistRequest): Promise<void> {
    this.checkWritable();
    if (this.fatal) return Promise.reject(this.fatal);
    const oldFirst = this.mem.firstIndex();
    const oldLast = this.mem.lastIndex();
    // Throws (a programmer error) before anything is queued if the request is bad.
    this.mem.apply(request);
    const ops: BatchOp[] = [];
    if (request.snapshot) {
      // The log restarts after the snapshot: every stored entry goes.
      for (let i = oldFirst; i <= oldLast; i++) ops.push({ type: "del", key: this.entryKey(i) });
      ops.push(this.put(this.snapshotKey, snapshotBody(request.snapshot)));
    }
    const entries = request.entries ?? [];
    const snapshotIndex = this.mem.firstIndex() - 1;
    const kept = entries.filter((e) => e.index > snapshotIndex);
    if (kept.length > 0) {
      const newLast = kept[kept.length - 1]!.index;
      // Stored entries past the new last index belong to a replaced suffix.
      if (!request.snapshot) {
        for (let i = newLast + 1; i <= oldLast; i++) {
          ops.push({ type: "del", key: this.entryKey(i) });
        }
      }
      for (const e of kept) {
        const key = this.entryKey(e.index);
        ops.push(this.put(key, entryBody(e)));
      }
    }
    if (
      request.sync === false &&
      request.hardState &&
      !request.snapshot &&
      !request.entries?.length
    ) {
      // A commit-index-only update: no LevelDB write of its own (that would be one
      // more trip through the thread pool per round, contending with the apply
      // batch). The next batch, synced or not, carries the latest one; a crash
      // before that loses it, which PersistRequest.sync allows.
      this.deferredHardState = this.put(this.hardStateKey, hardStateBody(request.hardState));
      return Promise.resolve();
    }
    // Anything beyond a commit-index-only hard state syncs, whatever `sync` says.
    if (request.hardState) ops.push(this.put(this.hardStateKey, hardStateBody(request.hardState)));
    return this.enqueue(ops);
  }

  compact(index: number, meta: SnapshotMeta): Promise<void> {
    this.checkWritable();
    if (this.fatal) return Promise.reject(this.fatal);
    const oldFirst = this.mem.firstIndex();
    if (!this.mem.checkCompact(index, meta)) return this.enqueue([]);
    this.mem.compact(index, meta);
    const ops: BatchOp[] = [];
    for (let i = oldFirst; i <= index; i++) ops.push({ type: "del", key: this.entryKey(i) });
    ops.push(this.put(this.snapshotKey, snapshotBody(meta)));
    return this.enqueue(ops);
  }

  /** Waits for queued writes, then closes (and closes the database if it opened it). */
  async close(): Promise<void> {
    if (this.closed) return;
    // A deferred commit index is written now, so a clean stop keeps it.
    if (this.deferredHardState && !this.fatal) await this.enqueue([], false).catch(() => {});
    this.closed = true;
    while (this.writing) await this.writing;
    if (this.ownsDb) await this.db.close();
  }

  stats(): LevelRaftStorageStats {
    return { ...this.counters };
  }

  private enqueue(ops: BatchOp[], sync = true): Promise<void> {
    const deferred = this.deferredHardState;
    if (deferred) {
      // Before this request's operations, so a hard state it carries wins.
      this.deferredHardState = undefined;
      ops = [deferred, ...ops];
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, sync, resolve, reject });
      if (!this.writing) this.writing = this.drain();
    });
  }

  /** The one writer: one synced batch per turn, carrying everything queued meanwhile. */
  private async drain(): Promise<void> {
    // Yield first: requests made in the same turn join the first batch, and
    // `writing` is set before this can finish.
    await Promise.resolve();
    try {
      while (this.queue.length > 0) {
        const group = this.queue;
        this.queue = [];
        const ops: BatchOp[] = [];
        for (const q of group) for (const op of q.ops) ops.push(op);
        // A group of unsynced requests alone (commit-index updates) needs no fsync.
        const sync = group.some((q) => q.sync);
        try {
          if (this.fatal) throw this.fatal;
          if (ops.length > 0) {
            await this.db.batch<Buffer, Buffer>(ops, {
              sync,
              keyEncoding: "buffer",
              valueEncoding: "buffer",
            });
            if (sync) this.counters.syncs++;
          }
        } catch (err) {
          this.fatal ??= new KvError(
            "INTERNAL",
            "raft storage: a synced write failed; the node must stop and reopen from disk",
            {},
            err,
          );
          for (const q of group) q.reject(this.fatal);
          for (const q of this.queue) q.reject(this.fatal);
          this.queue = [];
          return;
        }
        this.counters.requests += group.length;
        this.counters.maxRequestsPerSync = Math.max(this.counters.maxRequestsPerSync, group.length);
        for (const q of group) q.resolve();
      }
    } finally {
      this.writing = undefined;
    }
  }
}
