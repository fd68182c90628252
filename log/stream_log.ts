/**
 * StreamLog: many streams in one LevelDB. Mutations go through a LogBatch
 * (batch.ts) and reach the disk as one atomic write each (write_queue.ts);
 * reads are served from the in-memory indexes (stream_index.ts) plus message
 * bodies from LevelDB, or from memory while their write is still under way.
 */
import { createHash } from "node:crypto";
import { ClassicLevel } from "classic-level";
import { KvError } from "../proto/index.js";
import { assert } from "./assert.js";
import { LogBatchImpl, validateMeta } from "./batch.js";
import { deleteIndexCheckpoint, writeIndexCheckpoint } from "./index_checkpoint.js";
import {
  HEADER_KEY,
  META_RANGE,
  messageKey,
  messageRange,
  metaKey,
  STREAMS_RANGE,
  streamNameOfKey,
} from "./keys.js";
import { verifyLevelDbFiles } from "./leveldb_files.js";
import { DEFAULT_MAX_MESSAGE_SIZE_BYTES, type LogState, pendingKey } from "./log_state.js";
import {
  decodeMessage,
  decodeMeta,
  decodeStream,
  encodeHeader,
  encodeMessage,
  encodeStream,
  FORMAT_VERSION,
} from "./records.js";
import { type IndexSource, recover, scanRange } from "./recover.js";
import type { StreamIndex } from "./stream_index.js";
import {
  compileFilter,
  isLiteralSubject,
  literalPrefix,
  validateFilter,
  validateSubject,
} from "./subjects.js";
import type {
  AppendInput,
  ExpiredMessage,
  IterateOptions,
  LogBatch,
  Operation,
  PurgeOptions,
  StoredMessage,
  StreamConfig,
  StreamState,
  SubjectInfo,
  WatchHorizon,
  WriteOptions,
} from "./types.js";
import { type LevelDb, type WriteOp, WriteQueue } from "./write_queue.js";

export interface StreamLogOptions {
  /** Hard limit on any payload, whatever a stream's maxMsgSize says. Must be equal on every replica. */
  maxMessageSizeBytes?: number;
}

const VIEW = { keyEncoding: "view", valueEncoding: "view" } as const;
/**
 * Messages an iterator reads from LevelDB per round trip, and their payload bytes (at
 * least one message): each round trip ends a turn of the consumer (a watch sends what
 * it got as one write), so 1024 small messages per trip, not 128, while big payloads
 * stay bounded by bytes, not by count.
 */
const ITERATE_CHUNK = 1024;
const ITERATE_CHUNK_BYTES = 1024 * 1024;
/** Index entries an iterator inspects per step, so a sparse filter cannot stall the event loop. */
const ITERATE_SCAN_MAX = 16_384;
/** Reads of a subject's newest message before giving up while writers keep removing it. */
const LAST_BY_SUBJECT_ATTEMPTS = 1000;

function invalidArgument(message: string): KvError {
  return new KvError("INVALID_ARGUMENT", message);
}

function checkSeq(value: unknown, name: string): number {
  if (!Number.isSafeInteger(value)) throw invalidArgument(`${name} must be an integer`);
  return value as number;
}

export class StreamLog {
  private readonly queue: WriteQueue;
  private cleanup: Promise<void> = Promise.resolve();
  /** How the last open built the indexes, and how long it took (for the node's start log). */
  opened: { index: IndexSource; ms: number } = { index: { from: "scan" }, ms: 0 };
  private closed = false;

  private constructor(
    private readonly db: LevelDb,
    private readonly ownsDb: boolean,
    /** Replaced as a whole only when a snapshot is installed (replaceAll). */
    private mem: LogState,
  ) {
    this.queue = new WriteQueue(db);
  }

  /**
   * Opens (creating if absent) a LevelDB at `location`, or uses an already open
   * abstract-level db (ClassicLevel in production, memory-level in tests) (the log's keys all start with `log/`, so other record kinds can
   * share the db). Rebuilds the in-memory indexes, verifying every record; a db at a
   * path has LevelDB's own checksums verified first (leveldb_files.ts).
   */
  static async open(
    location: string | LevelDb,
    options: StreamLogOptions = {},
  ): Promise<StreamLog> {
    const maxMessageSizeBytes = options.maxMessageSizeBytes ?? DEFAULT_MAX_MESSAGE_SIZE_BYTES;
    if (!Number.isSafeInteger(maxMessageSizeBytes) || maxMessageSizeBytes < 0) {
      throw new KvError("INVALID_CONFIG", `maxMessageSizeBytes must be >= 0`);
    }
    const ownsDb = typeof location === "string";
    // A db opened by the caller was verified by the caller (node/raft_service.ts).
    if (ownsDb) await verifyLevelDbFiles(location);
    const db: LevelDb = ownsDb
      ? new ClassicLevel<Uint8Array | string, Uint8Array>(location, VIEW)
      : location;
    await db.open();
    try {
      const started = performance.now();
      const { state, orphanIds, index } = await recover(db, maxMessageSizeBytes);
      // Before anything can change the log: a checkpoint outliving this open would be stale.
      await deleteIndexCheckpoint(db);
      const log = new StreamLog(db, ownsDb, state);
      log.opened = { index, ms: Math.round(performance.now() - started) };
      log.retireRanges(orphanIds);
      return log;
    } catch (err) {
      if (ownsDb) await db.close();
      throw err;
    }
  }

  /**
   * Waits for pending writes and cleanup, writes the index checkpoint so the next open
   * need not read every message (only when memory equals disk: no failed write, no
   * batch left open), and closes the db only if open() opened it.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.drain();
    await this.cleanup;
    if (this.queue.failure === null && this.mem.openBatch === null) {
      // A cache: if it cannot be written (a full disk), the next open scans instead.
      await writeIndexCheckpoint(this.db, this.mem.streams.values()).catch(() => undefined);
    }
    if (this.ownsDb) await this.db.close();
  }

  /** Starts the one batch; see LogBatch in types.ts. */
  batch(): LogBatch {
    assert(!this.closed, "batch on a closed log");
    if (this.queue.failure) throw this.queue.failure;
    assert(this.mem.openBatch === null, "a batch is already open");
    const batch = new LogBatchImpl(this.mem, this.queue, (ids) => this.retireRanges(ids));
    this.mem.openBatch = batch;
    return batch;
  }

  /** Resolves once every commit so far has reached LevelDB. */
  flush(): Promise<void> {
    return this.queue.drain();
  }

  /** LevelDB writes issued so far (several commits may share one). */
  get writeCount(): number {
    return this.queue.writes;
  }

  // One-shot mutations: one batch each, with `options.meta` in the same write.

  createStream(config: StreamConfig, options?: WriteOptions): Promise<void> {
    return this.oneShot(options, (b) => b.createStream(config));
  }

  updateStream(config: StreamConfig, options?: WriteOptions): Promise<void> {
    return this.oneShot(options, (b) => b.updateStream(config));
  }

  deleteStream(name: string, options?: WriteOptions): Promise<void> {
    return this.oneShot(options, (b) => b.deleteStream(name));
  }

  append(stream: string, input: AppendInput, options?: WriteOptions): Promise<number> {
    return this.oneShot(options, (b) => b.append(stream, input));
  }

  purge(stream: string, purge?: PurgeOptions, options?: WriteOptions): Promise<number> {
    return this.oneShot(options, (b) => b.purge(stream, purge));
  }

  expire(stream: string, nowMs: number, options?: WriteOptions): Promise<ExpiredMessage[]> {
    return this.oneShot(options, (b) => b.expire(stream, nowMs));
  }

  removeMessage(stream: string, seq: number, options?: WriteOptions): Promise<boolean> {
    return this.oneShot(options, (b) => b.removeMessage(stream, seq));
  }

  writeMeta(meta: Record<string, Uint8Array | null>, options?: WriteOptions): Promise<void> {
    return this.oneShot({ ...options, meta }, () => undefined);
  }

  private async oneShot<T>(options: WriteOptions = {}, stage: (b: LogBatch) => T): Promise<T> {
    const batch = this.batch();
    let result: T;
    try {
      // Validate the meta first: a throw must leave nothing staged.
      for (const [key, value] of Object.entries(options.meta ?? {})) validateMeta(key, value);
      result = stage(batch);
      for (const [key, value] of Object.entries(options.meta ?? {})) batch.putMeta(key, value);
    } catch (err) {
      // Nothing was staged by the failed call; commit what is (nothing) to close the batch.
      await batch.commit();
      throw err;
    }
    await batch.commit({ sync: options.sync === true });
    return result;
  }

  // Reads.

  streamConfig(name: string): StreamConfig | undefined {
    const stream = this.mem.streams.get(name);
    return stream === undefined ? undefined : { ...stream.config };
  }

  streamNames(): string[] {
    return [...this.mem.streams.keys()].sort();
  }

  state(name: string): StreamState {
    return this.mem.requireStream(name).state();
  }

  subjectInfo(stream: string, subject: string): SubjectInfo | undefined {
    const index = this.mem.requireStream(stream);
    validateSubject(subject);
    return infoOf(index, subject);
  }

  /** Subjects with stored messages matching `filter` (default all), sorted by subject. */
  subjects(stream: string, filter = ">"): SubjectInfo[] {
    return [...this.subjectsAfter(stream, filter, "")];
  }

  /**
   * `subjects`, lazily, only those > `after` ("" = from the first): a page of a listing
   * costs a binary search to its start (and to the filter's literal prefix) plus the
   * page, not the stream. Subjects removed while the caller holds the iterator are
   * skipped; ones added meanwhile may be missed. Throws on a bad filter at once.
   */
  subjectsAfter(stream: string, filter: string, after: string): Iterable<SubjectInfo> {
    const index = this.mem.requireStream(stream);
    validateFilter(filter);
    if (isLiteralSubject(filter)) {
      const info = filter > after ? infoOf(index, filter) : undefined;
      return info === undefined ? [] : [info];
    }
    return matchingSubjects(index, filter, after);
  }

  seqsOfSubject(stream: string, subject: string): number[] {
    const index = this.mem.requireStream(stream);
    validateSubject(subject);
    return index.seqsOf(subject);
  }

  /**
   * Payload bytes of the stored message `seq`, from the in-memory index (no read);
   * undefined when it is not stored.
   */
  payloadSize(stream: string, seq: number): number | undefined {
    return this.mem.requireStream(stream).sizeOf(seq);
  }

  /** At least the largest payload stored in `stream` (see StreamIndex.largestPayload). */
  largestPayload(stream: string): number {
    return this.mem.requireStream(stream).largestPayload;
  }

  /**
   * What a watch resuming in `stream` needs to know about removals (StreamIndex): the
   * highest seq ever removed, and the highest last seq of a subject that vanished.
   */
  watchHorizon(stream: string): WatchHorizon {
    const index = this.mem.requireStream(stream);
    return { removedHighSeq: index.removedHighSeq(), vanishedHighSeq: index.vanishedHighSeq };
  }

  /** Payload bytes stored in every stream together, from the in-memory indexes. */
  storedBytes(): number {
    let total = 0;
    for (const index of this.mem.streams.values()) total += index.bytes;
    return total;
  }

  async getBySeq(stream: string, seq: number): Promise<StoredMessage | null> {
    const index = this.mem.requireStream(stream);
    checkSeq(seq, "seq");
    const [message] = await this.read(index, [seq]);
    return message ?? null;
  }

  async lastBySubject(stream: string, subject: string): Promise<StoredMessage | null> {
    const index = this.mem.requireStream(stream);
    validateSubject(subject);
    // The newest message may be removed while it is read; then the next newest is the answer.
    for (let attempt = 0; attempt < LAST_BY_SUBJECT_ATTEMPTS; attempt++) {
      const last = index.lastOf(subject);
      if (last === undefined || this.mem.streams.get(stream) !== index) return null;
      const [message] = await this.read(index, [last]);
      if (message !== undefined) return message;
    }
    throw new KvError("INTERNAL", `subject ${JSON.stringify(subject)} kept changing while read`);
  }

  /**
   * Messages in ascending seq order from `fromSeq` to `toSeq` matching `filter`
   * (and `lastPerSubject`, `putsOnly`). It reads in chunks; messages appended while it
   * runs may or may not be visited (pass `toSeq` for a fixed view); messages removed
   * meanwhile are skipped; it ends if the stream is deleted.
   */
  async *iterate(stream: string, options: IterateOptions = {}): AsyncIterable<StoredMessage> {
    const index = this.mem.requireStream(stream);
    for await (const chunk of this.iterateChunks(stream, options)) {
      for (const message of chunk) {
        // The consumer may remove messages between two yields; skip what is gone.
        if (this.mem.streams.get(stream) !== index) return;
        if (!index.has(message.seq)) continue;
        yield message;
      }
    }
  }

  /**
   * What `iterate` yields, one LevelDB read at a time: each chunk holds the messages
   * stored when its read completed. A consumer that hands them out over time must skip
   * those removed meanwhile itself (`payloadSize` is undefined for them).
   */
  async *iterateChunks(
    stream: string,
    options: IterateOptions = {},
  ): AsyncIterable<StoredMessage[]> {
    const index = this.mem.requireStream(stream);
    const { fromSeq, toSeq, literal, accept } = selection(index, options);
    /** The seqs of the chunk from `cursor` on, and where the one after it starts. */
    const select = (cursor: number): { seqs: number[]; next: number } => {
      const seqs: number[] = [];
      let bytes = 0;
      let next = toSeq + 1;
      const full = () => seqs.length === ITERATE_CHUNK || bytes >= ITERATE_CHUNK_BYTES;
      if (literal !== undefined) {
        index.forEachSeqOf(literal, cursor, toSeq, (seq) => {
          if (full()) {
            next = seq;
            return false;
          }
          if (accept(seq, literal, index.operationOf(seq))) {
            seqs.push(seq);
            bytes += index.sizeOf(seq)!;
          }
          return true;
        });
      } else {
        let scanned = 0;
        index.forEachFrom(cursor, (seq, subject, operation, _timestampMs, size) => {
          if (seq > toSeq) return false;
          if (++scanned > ITERATE_SCAN_MAX || full()) {
            next = seq;
            return false;
          }
          if (accept(seq, subject, operation)) {
            seqs.push(seq);
            bytes += size;
          }
          return true;
        });
      }
      return { seqs, next };
    };
    /** Starts reading the chunk from `cursor` on; undefined past the end. */
    const start = (cursor: number) => {
      if (cursor > toSeq || this.mem.streams.get(stream) !== index) return undefined;
      const { seqs, next } = select(cursor);
      const read = this.read(index, seqs);
      // A chunk read ahead that the consumer never asks for must not be an unhandled
      // rejection; one that is asked for still throws where it is awaited.
      read.catch(() => undefined);
      return { read, next: next <= cursor ? toSeq + 1 : next };
    };
    let current = start(Math.max(fromSeq, 1));
    while (current !== undefined) {
      const chunk = await current.read;
      // One chunk ahead: LevelDB reads the next one on its threads while this one is
      // handed out, so a long scan overlaps reading and sending (two chunks at most).
      current = start(current.next);
      if (chunk.length > 0) yield chunk;
    }
  }

  /**
   * How many messages `iterate(stream, options)` would yield if nothing changed meanwhile,
   * from the index alone: with `lastPerSubject` a pass over the matching subjects (from
   * the filter's literal prefix), else over their seqs in the range.
   */
  count(stream: string, options: IterateOptions = {}): number {
    const index = this.mem.requireStream(stream);
    const { fromSeq, toSeq, literal, accept } = selection(index, options);
    const filter = options.filter ?? ">";
    // The latest message of every subject, from the start through the end: one per subject.
    if (
      filter === ">" &&
      options.lastPerSubject === true &&
      options.putsOnly !== true &&
      fromSeq <= 1 &&
      toSeq >= index.lastSeq
    ) {
      return index.subjectCount;
    }
    const prefix = literal === undefined ? literalPrefix(filter) : "";
    const match = compileFilter(filter);
    const subjects =
      literal !== undefined
        ? [literal]
        : prefix === ""
          ? index.subjectNames()
          : index.names.from(prefix, true);
    let n = 0;
    for (const subject of subjects) {
      if (!subject.startsWith(prefix)) break;
      if (!match(subject)) continue;
      if (options.lastPerSubject === true) {
        const seq = index.lastAtOrBelow(subject, toSeq);
        if (seq !== undefined && seq >= fromSeq && accept(seq, subject, index.operationOf(seq))) {
          n++;
        }
        continue;
      }
      index.forEachSeqOf(subject, fromSeq, toSeq, (seq) => {
        if (options.putsOnly !== true || index.operationOf(seq) === "PUT") n++;
        return true;
      });
    }
    return n;
  }

  async getMeta(key: string): Promise<Uint8Array | null> {
    if (typeof key !== "string" || key.length === 0) {
      throw invalidArgument("meta key must be a non-empty string");
    }
    const slot = this.mem.pendingMeta.get(key);
    if (slot !== undefined) return slot.value === null ? null : slot.value.slice();
    const bytes = await this.db.get<Uint8Array, Uint8Array>(metaKey(key), VIEW);
    if (bytes === undefined) return null;
    return decodeMeta(bytes, key);
  }

  /**
   * sha256 hex over every stored record of live streams, in key order: each
   * stream record followed by its messages (streams by name), then the meta
   * records. Stream ids are local to a replica (an installed snapshot renumbers
   * them), so records are hashed with the id zeroed and the header (the id
   * counter) is left out. Waits for pending writes; orphaned ranges are not
   * hashed (when they are cleared differs between replicas). Verifies each record.
   */
  async digest(): Promise<string> {
    await this.queue.drain();
    const hash = createHash("sha256");
    const add = (key: Uint8Array, value: Uint8Array): void => {
      const lengths = Buffer.alloc(8);
      lengths.writeUInt32BE(key.length, 0);
      lengths.writeUInt32BE(value.length, 4);
      hash.update(lengths);
      hash.update(key);
      hash.update(value);
    };
    const streams: Array<{ key: Uint8Array; value: Uint8Array }> = [];
    await scanRange(this.db, STREAMS_RANGE, (key, value) => {
      streams.push({ key, value });
      return undefined;
    });
    for (const { key, value } of streams) {
      const name = streamNameOfKey(key);
      const record = decodeStream(value, name);
      add(key, encodeStream({ ...record, id: 0 }));
      await scanRange(this.db, messageRange(record.id), (mkey, mvalue) => {
        const seq = Number(Buffer.from(mkey).readBigUInt64BE(mkey.length - 8));
        const message = decodeMessage(mvalue, name, record.id, seq);
        add(mkey.subarray(mkey.length - 8), encodeMessage({ ...message, streamId: 0 }));
        return undefined;
      });
    }
    await scanRange(this.db, META_RANGE, (key, value) => {
      decodeMeta(value, new TextDecoder().decode(key.subarray(META_RANGE.gte.length)));
      add(key, value);
      return undefined;
    });
    return hash.digest("hex");
  }

  /** Reads the messages at `seqs` that are still stored once the read completes. */
  private async read(index: StreamIndex, seqs: number[]): Promise<StoredMessage[]> {
    const id = index.id;
    const name = index.config.name;
    // Bodies of messages staged and not yet written come from memory; most reads (a scan
    // of a large stream) have none, so the per-seq lookup is skipped when nothing is pending.
    const pending = this.mem.pendingMessages;
    const bodies: Array<Uint8Array | undefined> = new Array(seqs.length);
    const missing: number[] = [];
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i]!;
      if (!index.has(seq)) continue;
      const body = pending.size === 0 ? undefined : pending.get(pendingKey(id, seq));
      if (body === undefined) missing.push(i);
      else bodies[i] = body;
    }
    if (missing.length > 0) {
      const keys = new Array<Uint8Array>(missing.length);
      for (let j = 0; j < missing.length; j++) keys[j] = messageKey(id, seqs[missing[j]!]!);
      const fetched = await this.db.getMany<Uint8Array, Uint8Array>(keys, VIEW);
      for (let j = 0; j < missing.length; j++) bodies[missing[j]!] = fetched[j];
    }
    const out: StoredMessage[] = [];
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i]!;
      const body = bodies[i];
      // Judge liveness now, after the await: what was removed meanwhile is gone.
      if (index.id !== id || this.mem.streams.get(name) !== index) continue;
      if (body === undefined) {
        if (!index.has(seq)) continue;
        throw new KvError(
          "CORRUPT_RECORD",
          `corrupt record: stream "${name}" seq ${seq}: indexed but missing from disk`,
        );
      }
      const record = decodeMessage(body, name, id, seq);
      const agrees = index.agreesWith(seq, record.subject, record.payload.length);
      if (agrees === undefined) continue;
      if (!agrees) {
        throw new KvError(
          "CORRUPT_RECORD",
          `corrupt record: stream "${name}" seq ${seq}: differs from the index`,
        );
      }
      out.push({
        stream: name,
        seq,
        subject: record.subject,
        // A plain Uint8Array view into the record (decodeMessage makes no Buffer).
        payload: record.payload,
        operation: record.operation,
        timestampMs: record.timestampMs,
      });
    }
    return out;
  }

  // Hooks for log/snapshot.ts (snapshot export and import); nothing else uses them.

  /** @internal The database: an export reads the whole log through one iterator (one view). */
  get snapshotDb(): LevelDb {
    return this.db;
  }

  /** @internal */
  get maxMessageSizeBytes(): number {
    return this.mem.maxMessageSizeBytes;
  }

  /**
   * @internal Reserves `count` stream ids for an import and makes the id counter
   * durable before resolving, so the imported ranges are orphans (cleared at the
   * next open) until installed, and no stream created later can reuse the ids.
   */
  async reserveStreamIds(count: number): Promise<number> {
    assert(Number.isSafeInteger(count) && count >= 1, "reserve at least one stream id");
    if (this.queue.failure) throw this.queue.failure;
    const first = this.mem.nextStreamId;
    this.mem.nextStreamId += count;
    const header = encodeHeader({
      formatVersion: FORMAT_VERSION,
      nextStreamId: this.mem.nextStreamId,
    });
    await this.queue.enqueue([{ type: "put", key: HEADER_KEY, value: header }], true, () => {});
    return first;
  }

  /**
   * @internal Writes records of an import under reserved ids, in order with the
   * log's other writes. Not synced: nothing reads them before the install, whose
   * synced write makes them durable too (LevelDB's one write-ahead log).
   */
  writeStaged(ops: WriteOp[]): Promise<void> {
    return this.queue.enqueue(ops, false, () => {});
  }

  /** @internal Clears the message ranges of ids that hold no live stream (an abandoned import). */
  retireStreamIds(ids: number[]): void {
    this.retireRanges(ids);
  }

  /**
   * @internal Installs an imported state: one synced write deletes every stream
   * record and every meta record outside `keepMeta`, puts `ops` (the new stream
   * and meta records) and the header; once written, `next` becomes the in-memory
   * state and the old streams' ranges are cleared in the background. A crash
   * leaves the old state or the new one. The caller guarantees that nothing else
   * writes meanwhile (no batch open, the apply loop idle).
   */
  async replaceAll(
    next: LogState,
    ops: WriteOp[],
    keepMeta: (key: string) => boolean,
  ): Promise<void> {
    assert(!this.closed, "replaceAll on a closed log");
    assert(this.mem.openBatch === null, "replaceAll while a batch is open");
    await this.queue.drain();
    if (this.queue.failure) throw this.queue.failure;
    const puts = new Set(ops.map((op) => Buffer.from(op.key).toString("latin1")));
    const deletes: WriteOp[] = [];
    const decoder = new TextDecoder();
    await scanRange(this.db, STREAMS_RANGE, (key) => {
      if (!puts.has(Buffer.from(key).toString("latin1"))) deletes.push({ type: "del", key });
      return undefined;
    });
    await scanRange(this.db, META_RANGE, (key) => {
      const name = decoder.decode(key.subarray(META_RANGE.gte.length));
      if (!keepMeta(name) && !puts.has(Buffer.from(key).toString("latin1"))) {
        deletes.push({ type: "del", key });
      }
      return undefined;
    });
    assert(this.mem.openBatch === null, "a batch was opened during replaceAll");
    const old = this.mem;
    next.nextStreamId = Math.max(next.nextStreamId, old.nextStreamId);
    const header = encodeHeader({ formatVersion: FORMAT_VERSION, nextStreamId: next.nextStreamId });
    // No batch may open on the old state while the write is in flight.
    const sentinel = {};
    old.openBatch = sentinel;
    try {
      await this.queue.enqueue(
        [...deletes, ...ops, { type: "put", key: HEADER_KEY, value: header }],
        true,
        () => {
          this.mem = next;
        },
      );
    } finally {
      if (old.openBatch === sentinel) old.openBatch = null;
    }
    this.retireRanges([...old.streams.values()].map((s) => s.id));
  }

  /** Clears the message ranges of retired stream ids in the background. */
  private retireRanges(ids: number[]): void {
    for (const id of ids) {
      const range = messageRange(id);
      // Not synced and not atomic on purpose: nothing reads a retired range, and
      // a clear cut short by a crash is finished at the next open.
      this.cleanup = this.cleanup.then(() =>
        this.db.clear({ ...range, keyEncoding: "view" }).catch(() => undefined),
      );
    }
  }
}

/** What `iterate` and `count` visit: the seq range, and which of its messages they take. */
function selection(
  index: StreamIndex,
  options: IterateOptions,
): {
  fromSeq: number;
  toSeq: number;
  /** The filter when it names one subject: only its seqs are visited. */
  literal: string | undefined;
  accept: (seq: number, subject: string, operation: Operation) => boolean;
} {
  const fromSeq = options.fromSeq === undefined ? 1 : checkSeq(options.fromSeq, "fromSeq");
  const toSeq =
    options.toSeq === undefined ? Number.MAX_SAFE_INTEGER : checkSeq(options.toSeq, "toSeq");
  const filter = options.filter ?? ">";
  validateFilter(filter);
  const match = compileFilter(filter);
  const last = options.lastPerSubject === true;
  const putsOnly = options.putsOnly === true;
  return {
    fromSeq,
    toSeq,
    literal: isLiteralSubject(filter) ? filter : undefined,
    accept: (seq, subject, operation) =>
      match(subject) &&
      // One message per subject (history 1): each is the latest of its subject, no lookup.
      (!last ||
        index.messageCount === index.subjectCount ||
        index.isLastAtOrBelow(subject, seq, toSeq)) &&
      (!putsOnly || operation === "PUT"),
  };
}

function* matchingSubjects(
  index: StreamIndex,
  filter: string,
  after: string,
): Generator<SubjectInfo> {
  const prefix = literalPrefix(filter);
  const match = compileFilter(filter);
  const names = after >= prefix ? index.names.from(after) : index.names.from(prefix, true);
  for (const name of names) {
    if (!name.startsWith(prefix)) return;
    if (!match(name)) continue;
    const info = infoOf(index, name);
    if (info !== undefined) yield info;
  }
}

function infoOf(index: StreamIndex, subject: string): SubjectInfo | undefined {
  const lastSeq = index.lastOf(subject);
  if (lastSeq === undefined) return undefined;
  return {
    subject,
    lastSeq,
    operation: index.operationOf(lastSeq),
    messages: index.countOf(subject),
  };
}
