/**
 * Snapshot export and import of the whole stream log, streamed in chunks, for
 * Raft's InstallSnapshot: the stream state in LevelDB *is* the snapshot.
 *
 * Export (`LogSnapshotReader`, leader): one LevelDB iterator over the log's key
 * range is one point-in-time view (classic-level pins a LevelDB snapshot per
 * iterator), and the reader seeks inside it, so the meta record naming the
 * applied index (`peekMetaKey`) and the data it describes come from the same
 * view. Nothing is built whole: each `read()` produces the next chunk.
 *
 * Chunk = [format 1] record* [CRC32C of all bytes before, u32 LE]
 * record = [kind u8][key length u32 BE][value length u32 BE][key][value]
 *   kind 1 stream   key = name,                value = the stored StreamRecord
 *   kind 2 message  key = the stored key (id, seq), value = the stored MessageRecord
 *   kind 3 meta     key = meta key (UTF-8),    value = the stored MetaRecord
 *   kind 4 end      key empty,                 value = records before it (u64 BE)
 * In this order: every stream (by name), each stream's messages (streams by
 * name, seqs ascending), the meta records, the end. Values are the stored
 * records as they are, with their own CRC32C, verified again on import.
 *
 * Import (`LogSnapshotWriter`, follower): each chunk is verified (its CRC, then
 * every record's CRC and its place in the order) and its messages are written
 * under stream ids reserved for the import (`reserveStreamIds` makes the id
 * counter durable first), so until the install they are orphan ranges the log
 * never reads and clears at its next open. The in-memory indexes of the new
 * state are built as records arrive. `install()` is ONE synced LevelDB write:
 * the new stream and meta records replace the old ones, and the old streams'
 * ranges become orphans. So a crash at any point leaves either the old state
 * whole or the new one whole; no "restore in progress" marker is needed, and
 * an abandoned import costs only the background clearing of its ranges.
 *
 * Stream ids are local to a replica (the import renumbers them); `digest()`
 * leaves them out, so a replica and its restored copy digest the same.
 */
import { KvError } from "../proto/index.js";
import { assert } from "./assert.js";
import { validateConfig } from "./config.js";
import { crc32c } from "./crc32c.js";
import {
  ALL_RANGE,
  META_RANGE,
  messageKey,
  messageRange,
  metaKey,
  parseMessageKey,
  STREAMS_RANGE,
  streamKey,
} from "./keys.js";
import { LogState } from "./log_state.js";
import {
  decodeMessage,
  decodeMeta,
  decodeStream,
  encodeMessage,
  encodeMeta,
  encodeStream,
  type StreamRecord,
} from "./records.js";
import { StreamIndex } from "./stream_index.js";
import type { StreamLog } from "./stream_log.js";
import { isValidSubject } from "./subjects.js";
import type { WriteOp } from "./write_queue.js";

const FORMAT = 1;
/** The format byte every chunk starts with (a backup's header names it). */
export const LOG_SNAPSHOT_FORMAT = FORMAT;
export const KIND_STREAM = 1;
export const KIND_MESSAGE = 2;
export const KIND_META = 3;
export const KIND_END = 4;
const RECORD_HEADER_BYTES = 9;
const CRC_BYTES = 4;
/** Entries the export reads from LevelDB per round trip. */
const READ_BATCH = 256;
/** Bytes one read from LevelDB may hold (plus one entry): the reader's memory bound besides its chunk. */
const READ_BUFFER_BYTES = 256 * 1024;
/** Meta keys local to a replica by default: neither exported nor replaced on import. */
export const DEFAULT_LOCAL_META_PREFIXES: readonly string[] = ["node/"];

const VIEW = { keyEncoding: "view", valueEncoding: "view" } as const;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

type Kv = [Uint8Array, Uint8Array];
type LevelIterator = ReturnType<StreamLog["snapshotDb"]["iterator"]>;

export function corrupt(why: string, cause?: unknown): KvError {
  return new KvError("CORRUPT_RECORD", `corrupt snapshot chunk: ${why}`, {}, cause);
}

function isLocal(key: string, prefixes: readonly string[]): boolean {
  return prefixes.some((p) => key.startsWith(p));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export interface LogSnapshotOptions {
  /** Meta key prefixes that belong to this replica (default `["node/"]`): not exported, kept on import. */
  localMetaPrefixes?: readonly string[];
  /**
   * Import: checks the value of each imported meta record, which only its owner can read
   * (kvapi's); a throw refuses the chunk as CORRUPT_RECORD, so a record the owner could
   * not read back is never installed.
   */
  checkMeta?: (key: string, value: Uint8Array) => void;
}

type Phase =
  | { kind: "streams" }
  | { kind: "messages"; stream: number }
  | { kind: "meta" }
  | { kind: "end" }
  | { kind: "finished" };

/** The leader's side: a frozen view of the log, read in chunks. */
export class LogSnapshotReader {
  private buffer: Kv[] = [];
  private at = 0;
  private phase: Phase = { kind: "streams" };
  private readonly streams: StreamRecord[] = [];
  private records = 0;
  private position = 0;
  private last: { offset: number; data: Uint8Array; done: boolean } | null = null;
  private reading = false;
  private closed = false;

  private constructor(
    private readonly it: LevelIterator,
    private readonly localMetaPrefixes: readonly string[],
    /** The value of the meta record asked for at open, in this view (null: absent). */
    readonly peekedMeta: Uint8Array | null,
  ) {}

  /**
   * Freezes the log as it is on disk now (writes still queued are not in it; the
   * meta record `peekMetaKey`, read from the same view, says what it holds).
   */
  static async open(
    log: StreamLog,
    peekMetaKey: string,
    options: LogSnapshotOptions = {},
  ): Promise<LogSnapshotReader> {
    // Created synchronously: the iterator's LevelDB snapshot is taken right here.
    // Bounds what one nextv() holds (it stops past this many bytes), whatever READ_BATCH
    // is: a classic-level option that other abstract-level dbs ignore.
    const iteratorOptions = { ...ALL_RANGE, ...VIEW, highWaterMarkBytes: READ_BUFFER_BYTES };
    const it = log.snapshotDb.iterator<Uint8Array, Uint8Array>(iteratorOptions);
    try {
      it.seek(metaKey(peekMetaKey));
      const first = await it.next();
      let peeked: Uint8Array | null = null;
      if (first !== undefined && compareBytes(first[0], metaKey(peekMetaKey)) === 0) {
        peeked = decodeMeta(first[1], peekMetaKey);
      }
      const reader = new LogSnapshotReader(
        it,
        options.localMetaPrefixes ?? DEFAULT_LOCAL_META_PREFIXES,
        peeked,
      );
      reader.seek(STREAMS_RANGE.gte);
      return reader;
    } catch (err) {
      await it.close();
      throw err;
    }
  }

  /**
   * The names of the streams in this view, sorted; only before the first `read` (it
   * reads the stream records, then rewinds to them). Backups name their buckets in a
   * header written before the body, from the same view as the body.
   */
  async streamNames(): Promise<string[]> {
    assert(!this.reading, "concurrent reads of one snapshot reader");
    if (this.closed) throw new KvError("INVALID_ARGUMENT", "snapshot reader is closed");
    if (this.position !== 0 || this.phase.kind !== "streams" || this.at !== 0) {
      throw new KvError("INVALID_ARGUMENT", "stream names are read before the first chunk");
    }
    this.reading = true;
    try {
      const names: string[] = [];
      for (;;) {
        const kv = await this.peek();
        if (kv === undefined || compareBytes(kv[0], STREAMS_RANGE.lt) >= 0) break;
        this.at++;
        names.push(decoder.decode(kv[0].subarray(STREAMS_RANGE.gte.length)));
      }
      this.seek(STREAMS_RANGE.gte);
      return names;
    } finally {
      this.reading = false;
    }
  }

  /**
   * The chunk at `offset`: 0 at first, then the end of the previous chunk, or
   * the previous chunk's offset again (a resend gets the same bytes). Any other
   * offset is INVALID_ARGUMENT: the view cannot be rewound; open a new reader.
   */
  async read(offset: number, maxBytes: number): Promise<{ data: Uint8Array; done: boolean }> {
    if (this.closed) throw new KvError("INVALID_ARGUMENT", "snapshot reader is closed");
    assert(!this.reading, "concurrent reads of one snapshot reader");
    if (this.last !== null && offset === this.last.offset) {
      return { data: this.last.data, done: this.last.done };
    }
    if (offset !== this.position || this.phase.kind === "finished") {
      throw new KvError(
        "INVALID_ARGUMENT",
        `snapshot chunk at ${offset} asked, but the reader is at ${this.position}`,
      );
    }
    this.reading = true;
    try {
      const data = await this.produce(Math.max(1, maxBytes));
      const done = (this.phase as Phase).kind === "finished";
      this.last = { offset, data, done };
      this.position += data.byteLength;
      return { data, done };
    } finally {
      this.reading = false;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.buffer = [];
    // Released at once unless a read is running (then when its nextv settles).
    void this.it.close().catch(() => {});
  }

  private seek(key: Uint8Array): void {
    this.it.seek(key);
    this.buffer = [];
    this.at = 0;
  }

  private async peek(): Promise<Kv | undefined> {
    if (this.at >= this.buffer.length) {
      this.buffer = (await this.it.nextv(READ_BATCH)) as Kv[];
      this.at = 0;
      if (this.buffer.length === 0) return undefined;
    }
    return this.buffer[this.at];
  }

  private async produce(maxBytes: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [Uint8Array.of(FORMAT)];
    let bytes = 1;
    const push = (kind: number, key: Uint8Array, value: Uint8Array): void => {
      const head = Buffer.alloc(RECORD_HEADER_BYTES);
      head[0] = kind;
      head.writeUInt32BE(key.byteLength, 1);
      head.writeUInt32BE(value.byteLength, 5);
      parts.push(head, key, value);
      bytes += RECORD_HEADER_BYTES + key.byteLength + value.byteLength;
      this.records++;
    };
    // At most maxBytes, unless one record alone is larger (a big message goes in a
    // chunk of its own), so a chunk fits the peer frame limit whenever a record does.
    const fits = (key: Uint8Array, value: Uint8Array): boolean =>
      bytes === 1 || bytes + RECORD_HEADER_BYTES + key.byteLength + value.byteLength <= maxBytes;
    for (;;) {
      if (this.phase.kind === "finished") break;
      const phase = this.phase;
      if (phase.kind === "streams") {
        const kv = await this.peek();
        if (kv === undefined || compareBytes(kv[0], STREAMS_RANGE.lt) >= 0) {
          this.startMessages(0);
          continue;
        }
        const name = decoder.decode(kv[0].subarray(STREAMS_RANGE.gte.length));
        const key = encoder.encode(name);
        if (!fits(key, kv[1])) break;
        this.at++;
        this.streams.push(decodeStream(kv[1], name));
        push(KIND_STREAM, key, kv[1]);
      } else if (phase.kind === "messages") {
        const stream = this.streams[phase.stream]!;
        const kv = await this.peek();
        if (kv === undefined || compareBytes(kv[0], messageRange(stream.id).lt) >= 0) {
          this.startMessages(phase.stream + 1);
          continue;
        }
        if (!fits(kv[0], kv[1])) break;
        this.at++;
        const parsed = parseMessageKey(kv[0]);
        if (parsed === undefined) throw corrupt("malformed message key in the log");
        // Verifies the stored record here too: a damaged one is never sent.
        decodeMessage(kv[1], stream.config.name, stream.id, parsed.seq);
        push(KIND_MESSAGE, kv[0], kv[1]);
      } else if (phase.kind === "meta") {
        const kv = await this.peek();
        if (kv === undefined || compareBytes(kv[0], META_RANGE.lt) >= 0) {
          this.phase = { kind: "end" };
          continue;
        }
        const key = decoder.decode(kv[0].subarray(META_RANGE.gte.length));
        const keyBytes = encoder.encode(key);
        if (!isLocal(key, this.localMetaPrefixes) && !fits(keyBytes, kv[1])) break;
        this.at++;
        if (isLocal(key, this.localMetaPrefixes)) continue;
        decodeMeta(kv[1], key);
        push(KIND_META, keyBytes, kv[1]);
      } else {
        if (!fits(new Uint8Array(0), new Uint8Array(8))) break;
        const count = Buffer.alloc(8);
        count.writeBigUInt64BE(BigInt(this.records));
        push(KIND_END, new Uint8Array(0), count);
        this.phase = { kind: "finished" };
      }
    }
    const out = new Uint8Array(bytes + CRC_BYTES);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    new DataView(out.buffer).setUint32(bytes, crc32c(out, 0, bytes), true);
    return out;
  }

  private startMessages(stream: number): void {
    if (stream >= this.streams.length) {
      this.phase = { kind: "meta" };
      this.seek(META_RANGE.gte);
      return;
    }
    this.phase = { kind: "messages", stream };
    this.seek(messageKey(this.streams[stream]!.id, 0));
  }
}

interface ImportedStream {
  /** The stream's id on the exporting replica (message keys carry it). */
  remoteId: number;
  index: StreamIndex;
}

/** The follower's side: verifies and stores chunks in order, then installs them at once. */
export class LogSnapshotWriter {
  private readonly state: LogState;
  private readonly byRemoteId = new Map<number, ImportedStream>();
  private readonly streamOps: WriteOp[] = [];
  private readonly metaOps: WriteOp[] = [];
  private readonly reserved: number[] = [];
  private offset = 0;
  private records = 0;
  private lastStreamName: string | null = null;
  private lastMetaKey: string | null = null;
  private current: ImportedStream | null = null;
  private lastSeq = 0;
  private phase: "streams" | "messages" | "meta" | "ended" = "streams";
  private finished = false;
  private broken = false;

  private constructor(
    private readonly log: StreamLog,
    private readonly localMetaPrefixes: readonly string[],
    private readonly checkMeta: LogSnapshotOptions["checkMeta"],
  ) {
    this.state = new LogState(0, log.maxMessageSizeBytes);
  }

  static begin(log: StreamLog, options: LogSnapshotOptions = {}): LogSnapshotWriter {
    return new LogSnapshotWriter(
      log,
      options.localMetaPrefixes ?? DEFAULT_LOCAL_META_PREFIXES,
      options.checkMeta,
    );
  }

  /** Bytes accepted so far (the next chunk's offset). */
  get bytes(): number {
    return this.offset;
  }

  /** The whole snapshot arrived (its end record was seen). */
  get complete(): boolean {
    return this.phase === "ended";
  }

  /**
   * Verifies one chunk and writes its messages under reserved ids. Throws
   * KvError("CORRUPT_RECORD") for a chunk that fails any check (nothing of it is
   * kept; the import must start over) and INVALID_ARGUMENT for one out of order.
   */
  async write(offset: number, chunk: Uint8Array, done: boolean): Promise<void> {
    assert(!this.finished, "write to a finished snapshot import");
    if (this.broken)
      throw new KvError("INVALID_ARGUMENT", "a chunk of this import failed; start over");
    try {
      await this.writeChunk(offset, chunk, done);
    } catch (err) {
      this.broken = true;
      throw err;
    }
  }

  private async writeChunk(offset: number, chunk: Uint8Array, done: boolean): Promise<void> {
    if (offset !== this.offset) {
      throw new KvError("INVALID_ARGUMENT", `snapshot chunk at ${offset}, expected ${this.offset}`);
    }
    if (this.phase === "ended") throw corrupt("data after the end record");
    const records = parseChunk(chunk);
    const staged: WriteOp[] = [];
    const newStreams: Array<{ name: string; record: StreamRecord; value: Uint8Array }> = [];
    for (const r of records) {
      if (this.phase === "ended") throw corrupt("data after the end record");
      if (r.kind === KIND_STREAM) {
        if (this.phase !== "streams") throw corrupt("stream record after messages");
        const name = decodeName(r.key);
        if (this.lastStreamName !== null && name <= this.lastStreamName) {
          throw corrupt(`stream "${name}" out of order`);
        }
        this.lastStreamName = name;
        const record = decodeStream(r.value, name);
        try {
          validateConfig(record.config);
        } catch (err) {
          throw corrupt(`stream "${name}" has an invalid config`, err);
        }
        if (this.byRemoteId.has(record.id) || newStreams.some((s) => s.record.id === record.id)) {
          throw corrupt(`stream id ${record.id} used twice`);
        }
        newStreams.push({ name, record, value: r.value });
      } else if (r.kind === KIND_MESSAGE) {
        if (this.phase === "meta") throw corrupt("message after meta records");
        if (this.phase === "streams") await this.addStreams(newStreams.splice(0));
        this.phase = "messages";
        const parsed = parseMessageKey(r.key);
        if (parsed === undefined) throw corrupt("malformed message key");
        const stream = this.byRemoteId.get(parsed.streamId);
        if (stream === undefined) throw corrupt(`message of unknown stream id ${parsed.streamId}`);
        if (this.current !== stream) {
          // Streams come by name, not id; what matters is that each one's messages are contiguous.
          if (stream.index.messageCount > 0) throw corrupt("messages of a stream split apart");
          this.current = stream;
          this.lastSeq = 0;
        }
        const name = stream.index.config.name;
        const m = decodeMessage(r.value, name, parsed.streamId, parsed.seq);
        if (parsed.seq <= this.lastSeq || parsed.seq > stream.index.lastSeq) {
          throw corrupt(`stream "${name}" seq ${parsed.seq} out of order or beyond its last seq`);
        }
        if (!isValidSubject(m.subject))
          throw corrupt(`stream "${name}" seq ${parsed.seq}: bad subject`);
        this.lastSeq = parsed.seq;
        stream.index.add(parsed.seq, {
          subject: m.subject,
          operation: m.operation,
          size: m.payload.length,
          timestampMs: m.timestampMs,
        });
        const id = stream.index.id;
        staged.push({
          type: "put",
          key: messageKey(id, parsed.seq),
          value: encodeMessage({ ...m, streamId: id }),
        });
      } else if (r.kind === KIND_META) {
        if (this.phase === "streams") await this.addStreams(newStreams.splice(0));
        this.phase = "meta";
        const key = decodeName(r.key);
        if (this.lastMetaKey !== null && key <= this.lastMetaKey) {
          throw corrupt(`meta "${key}" out of order`);
        }
        this.lastMetaKey = key;
        const value = decodeMeta(r.value, key);
        if (!isLocal(key, this.localMetaPrefixes)) {
          try {
            this.checkMeta?.(key, value);
          } catch (err) {
            throw corrupt(`meta "${key}" does not check out`, err);
          }
          this.metaOps.push({ type: "put", key: metaKey(key), value: r.value });
        }
      } else if (r.kind === KIND_END) {
        if (this.phase === "streams") await this.addStreams(newStreams.splice(0));
        if (r.value.byteLength !== 8) throw corrupt("bad end record");
        const count = Number(Buffer.from(r.value).readBigUInt64BE(0));
        if (count !== this.records) {
          throw corrupt(`end record counts ${count} records, ${this.records} arrived`);
        }
        this.phase = "ended";
      } else {
        throw corrupt(`unknown record kind ${r.kind}`);
      }
      this.records++;
    }
    if (newStreams.length > 0) await this.addStreams(newStreams);
    if (done !== (this.phase === "ended")) {
      throw corrupt(
        done ? "last chunk without the end record" : "end record before the last chunk",
      );
    }
    if (staged.length > 0) await this.log.writeStaged(staged);
    this.offset += chunk.byteLength;
  }

  /**
   * Makes the imported state the log's, in one synced write with `meta` (records
   * the caller adds, e.g. the applied index it stands for; `null` deletes).
   */
  async install(meta: Record<string, Uint8Array | null> = {}): Promise<void> {
    assert(!this.finished, "snapshot import installed twice");
    if (!this.complete) throw new KvError("INVALID_ARGUMENT", "the snapshot is incomplete");
    this.finished = true;
    const ops: WriteOp[] = [...this.streamOps];
    const extra = new Map<string, WriteOp>();
    for (const [key, value] of Object.entries(meta)) {
      extra.set(
        key,
        value === null
          ? { type: "del", key: metaKey(key) }
          : { type: "put", key: metaKey(key), value: encodeMeta(key, value) },
      );
    }
    for (const op of this.metaOps) {
      const key = decoder.decode(op.key.subarray(META_RANGE.gte.length));
      if (!extra.has(key)) ops.push(op);
    }
    ops.push(...extra.values());
    const local = this.localMetaPrefixes;
    const extraKeys = new Set(extra.keys());
    await this.log.replaceAll(this.state, ops, (key) => isLocal(key, local) && !extraKeys.has(key));
  }

  /** Drops the import: its ranges are cleared in the background (or at the next open). */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.log.retireStreamIds(this.reserved);
  }

  private async addStreams(
    streams: Array<{ name: string; record: StreamRecord; value: Uint8Array }>,
  ): Promise<void> {
    if (streams.length === 0) return;
    const first = await this.log.reserveStreamIds(streams.length);
    streams.forEach(({ name, record }, i) => {
      const id = first + i;
      this.reserved.push(id);
      const index = new StreamIndex(id, record.config, record.lastSeq, record.vanishedHighSeq);
      this.state.streams.set(name, index);
      this.byRemoteId.set(record.id, { remoteId: record.id, index });
      this.streamOps.push({
        type: "put",
        key: streamKey(name),
        value: encodeStream({ ...record, id }),
      });
    });
  }
}

export function decodeName(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch (err) {
    throw corrupt("a name is not UTF-8", err);
  }
}

export interface RawRecord {
  kind: number;
  key: Uint8Array;
  value: Uint8Array;
}

/** Checks a chunk's format byte and CRC and splits it into records (views into it). */
export function parseChunk(chunk: Uint8Array): RawRecord[] {
  if (!(chunk instanceof Uint8Array) || chunk.byteLength < 1 + CRC_BYTES) {
    throw corrupt("chunk too short");
  }
  const body = chunk.byteLength - CRC_BYTES;
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (crc32c(chunk, 0, body) !== view.getUint32(body, true)) throw corrupt("checksum mismatch");
  if (chunk[0] !== FORMAT) throw corrupt(`unknown format ${chunk[0]}`);
  const out: RawRecord[] = [];
  let at = 1;
  while (at < body) {
    if (at + RECORD_HEADER_BYTES > body) throw corrupt("truncated record header");
    const kind = chunk[at]!;
    const keyLength = view.getUint32(at + 1);
    const valueLength = view.getUint32(at + 5);
    at += RECORD_HEADER_BYTES;
    if (at + keyLength + valueLength > body) throw corrupt("truncated record");
    out.push({
      kind,
      key: chunk.subarray(at, at + keyLength),
      value: chunk.subarray(at + keyLength, at + keyLength + valueLength),
    });
    at += keyLength + valueLength;
  }
  return out;
}
