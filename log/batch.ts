/**
 * LogBatch: validates each mutation, applies it to the in-memory indexes at
 * once, and stages the LevelDB operations; `commit` writes them as one batch.
 * Every method checks all of its input and limits before it changes anything,
 * so a method that throws leaves the log as it was.
 */
import { KvError } from "../proto/index.js";
import { assert } from "./assert.js";
import { sameConfig, validateConfig, validateStreamName } from "./config.js";
import { HEADER_KEY, messageKey, metaKey, streamKey } from "./keys.js";
import { type LogState, type MetaSlot, pendingKey } from "./log_state.js";
import {
  encodeHeader,
  encodeMessage,
  encodeMeta,
  encodeStream,
  FORMAT_VERSION,
} from "./records.js";
import { StreamIndex } from "./stream_index.js";
import { compileFilter, isLiteralSubject, validateFilter, validateSubject } from "./subjects.js";
import type {
  AppendInput,
  ExpiredMessage,
  LogBatch,
  Operation,
  PurgeOptions,
  StreamConfig,
} from "./types.js";
import type { WriteOp, WriteQueue } from "./write_queue.js";

/** Longest meta key in UTF-8 bytes. */
export const MAX_META_KEY_BYTES = 1024;

const OPERATIONS: ReadonlySet<string> = new Set<Operation>(["PUT", "DEL", "PURGE"]);
const encoder = new TextEncoder();

function invalidArgument(message: string): KvError {
  return new KvError("INVALID_ARGUMENT", message);
}

export function validateMeta(key: unknown, value: unknown): void {
  if (typeof key !== "string" || key.length === 0) {
    throw invalidArgument("meta key must be a non-empty string");
  }
  if (encoder.encode(key).length > MAX_META_KEY_BYTES) {
    throw invalidArgument(`meta key longer than ${MAX_META_KEY_BYTES} bytes`);
  }
  if (value !== null && !(value instanceof Uint8Array)) {
    throw invalidArgument(`meta ${JSON.stringify(key)} must be a Uint8Array or null`);
  }
}

/** The write-queue slot of a stream's record (write_queue.ts withoutOverwritten). */
const streamSlot = (name: string) => `s${name}`;

/** Called after a batch's write succeeded, with the message ranges it retired. */
export type RetireRanges = (streamIds: number[]) => void;

export class LogBatchImpl implements LogBatch {
  private readonly ops: WriteOp[] = [];
  private readonly dirtyStreams = new Set<StreamIndex>();
  private headerDirty = false;
  private readonly stagedMessages: string[] = [];
  private readonly stagedMeta = new Map<string, MetaSlot>();
  private readonly retiredIds: number[] = [];
  /** Subjects whose last message this batch removed (see removeSeq). */
  private readonly emptied: Array<{ stream: StreamIndex; subject: string; seq: number }> = [];
  private committed = false;

  constructor(
    private readonly state: LogState,
    private readonly queue: WriteQueue,
    private readonly retire: RetireRanges,
  ) {}

  createStream(config: StreamConfig): void {
    this.assertOpen();
    const cfg = validateConfig(config);
    const existing = this.state.streams.get(cfg.name);
    if (existing !== undefined) {
      if (sameConfig(existing.config, cfg)) return;
      throw new KvError(
        "STREAM_EXISTS",
        `stream ${JSON.stringify(cfg.name)} exists with a different config`,
      );
    }
    const stream = new StreamIndex(this.newStreamId(), cfg, 0);
    this.state.streams.set(cfg.name, stream);
    this.dirtyStreams.add(stream);
  }

  updateStream(config: StreamConfig): void {
    this.assertOpen();
    const cfg = validateConfig(config);
    const stream = this.state.requireStream(cfg.name);
    stream.config = cfg;
    this.dirtyStreams.add(stream);
    // Tighter limits apply at once (as NATS does on update), oldest first.
    if (cfg.maxMsgsPerSubject > 0) {
      for (const subject of [...stream.subjectNames()]) {
        const excess = stream.countOf(subject) - cfg.maxMsgsPerSubject;
        if (excess <= 0) continue;
        for (const seq of stream.oldestOf(subject, excess)) this.removeSeq(stream, seq);
      }
    }
    this.dropOldestOverLimits(stream);
  }

  deleteStream(name: string): void {
    this.assertOpen();
    validateStreamName(name);
    const stream = this.state.requireStream(name);
    this.state.streams.delete(name);
    this.dirtyStreams.delete(stream);
    this.ops.push({ type: "del", key: streamKey(name), slot: streamSlot(name) });
    this.retiredIds.push(stream.id);
  }

  append(streamName: string, input: AppendInput): number {
    this.assertOpen();
    const stream = this.state.requireStream(streamName);
    if (typeof input !== "object" || input === null) throw invalidArgument("append input missing");
    validateSubject(input.subject);
    if (!(input.payload instanceof Uint8Array))
      throw invalidArgument("payload must be a Uint8Array");
    const operation = input.operation ?? "PUT";
    if (!OPERATIONS.has(operation)) throw invalidArgument(`unknown operation ${String(operation)}`);
    if (!Number.isSafeInteger(input.timestampMs) || input.timestampMs < 0) {
      throw invalidArgument(`timestampMs must be a non-negative integer, got ${input.timestampMs}`);
    }
    const cfg = stream.config;
    const size = input.payload.length;
    const hardLimit = this.state.maxMessageSizeBytes;
    const limit = cfg.maxMsgSize === -1 ? hardLimit : Math.min(cfg.maxMsgSize, hardLimit);
    if (size > limit) {
      throw new KvError(
        "MESSAGE_TOO_LARGE",
        `message of ${size} bytes exceeds the limit of ${limit} bytes of stream ${JSON.stringify(streamName)}`,
      );
    }

    // The subject's oldest messages beyond the per-subject limit go in this batch;
    // the stream limits are judged on what remains after that.
    const excess =
      cfg.maxMsgsPerSubject > 0 ? stream.countOf(input.subject) + 1 - cfg.maxMsgsPerSubject : 0;
    const trim = stream.oldestOf(input.subject, excess);
    let trimmedBytes = 0;
    for (const seq of trim) trimmedBytes += stream.sizeOf(seq)!;
    const messagesAfter = stream.messageCount - trim.length + 1;
    const bytesAfter = stream.bytes - trimmedBytes + size;
    const overMsgs = cfg.maxMsgs > 0 && messagesAfter > cfg.maxMsgs;
    const overBytes = cfg.maxBytes > 0 && bytesAfter > cfg.maxBytes;
    if (
      (overMsgs || overBytes) &&
      (cfg.discard === "new" || (cfg.maxBytes > 0 && size > cfg.maxBytes))
    ) {
      const what = overMsgs ? `${cfg.maxMsgs} messages` : `${cfg.maxBytes} bytes`;
      throw new KvError(
        "STREAM_FULL",
        `stream ${JSON.stringify(streamName)} is full (limit ${what}, discard ${cfg.discard})`,
      );
    }

    for (const seq of trim) this.removeSeq(stream, seq);
    const seq = stream.lastSeq + 1;
    stream.lastSeq = seq;
    stream.add(seq, { subject: input.subject, operation, size, timestampMs: input.timestampMs });
    const record = encodeMessage({
      streamId: stream.id,
      seq,
      subject: input.subject,
      payload: input.payload,
      operation,
      timestampMs: input.timestampMs,
    });
    const key = pendingKey(stream.id, seq);
    this.state.pendingMessages.set(key, record);
    this.stagedMessages.push(key);
    this.ops.push({ type: "put", key: messageKey(stream.id, seq), value: record });
    this.dirtyStreams.add(stream);
    this.dropOldestOverLimits(stream);
    return seq;
  }

  purge(streamName: string, options: PurgeOptions = {}): number {
    this.assertOpen();
    const stream = this.state.requireStream(streamName);
    const keep = options.keep ?? 0;
    if (!Number.isSafeInteger(keep) || keep < 0) {
      throw invalidArgument(`purge keep must be a non-negative integer, got ${keep}`);
    }
    if (options.subject !== undefined) validateFilter(options.subject);

    if (options.subject === undefined && keep === 0) {
      const removed = stream.messageCount;
      if (removed === 0) return 0;
      // Everything goes: retire the id (one small write) instead of one delete per message.
      this.retiredIds.push(stream.id);
      stream.id = this.newStreamId();
      stream.clear();
      this.dirtyStreams.add(stream);
      return removed;
    }

    const filter = options.subject ?? ">";
    const names = isLiteralSubject(filter)
      ? stream.hasSubject(filter)
        ? [filter]
        : []
      : [...stream.subjectNames()].filter(compileFilter(filter));
    const doomed: number[] = [];
    for (const name of names) {
      const excess = stream.countOf(name) - keep;
      doomed.push(...stream.oldestOf(name, excess));
    }
    for (const seq of doomed) this.removeSeq(stream, seq);
    return doomed.length;
  }

  expire(streamName: string, nowMs: number): ExpiredMessage[] {
    this.assertOpen();
    const stream = this.state.requireStream(streamName);
    if (!Number.isSafeInteger(nowMs))
      throw invalidArgument(`nowMs must be an integer, got ${nowMs}`);
    if (stream.config.maxAgeMs === 0) return [];
    const cutoffMs = nowMs - stream.config.maxAgeMs;
    const expired: ExpiredMessage[] = [];
    // While timestamps never went backwards, the expired messages are a prefix.
    stream.forEachFrom(0, (seq, subject, operation, timestampMs) => {
      if (timestampMs <= cutoffMs) {
        expired.push({ seq, subject, operation, timestampMs });
        return true;
      }
      return !stream.timestampsOrdered;
    });
    for (const m of expired) this.removeSeq(stream, m.seq);
    return expired;
  }

  removeMessage(streamName: string, seq: number): boolean {
    this.assertOpen();
    const stream = this.state.requireStream(streamName);
    if (!Number.isSafeInteger(seq)) throw invalidArgument(`seq must be an integer, got ${seq}`);
    if (!stream.has(seq)) return false;
    this.removeSeq(stream, seq);
    return true;
  }

  putMeta(key: string, value: Uint8Array | null): void {
    this.assertOpen();
    validateMeta(key, value);
    const slot: MetaSlot = { value: value === null ? null : value.slice() };
    this.state.pendingMeta.set(key, slot);
    this.stagedMeta.set(key, slot);
    this.ops.push(
      slot.value === null
        ? { type: "del", key: metaKey(key), slot: `m${key}` }
        : { type: "put", key: metaKey(key), value: encodeMeta(key, slot.value), slot: `m${key}` },
    );
  }

  commit(options: { sync?: boolean } = {}): Promise<void> {
    this.assertOpen();
    this.endOfCommand();
    this.committed = true;
    this.state.openBatch = null;
    if (this.headerDirty) {
      this.ops.push({
        type: "put",
        key: HEADER_KEY,
        slot: "h",
        value: encodeHeader({
          formatVersion: FORMAT_VERSION,
          nextStreamId: this.state.nextStreamId,
        }),
      });
    }
    for (const stream of this.dirtyStreams) {
      // A stream deleted later in this batch has no record to write.
      if (this.state.streams.get(stream.config.name) !== stream) continue;
      this.ops.push({
        type: "put",
        key: streamKey(stream.config.name),
        slot: streamSlot(stream.config.name),
        value: encodeStream({
          id: stream.id,
          config: stream.config,
          lastSeq: stream.lastSeq,
          vanishedHighSeq: stream.vanishedHighSeq,
        }),
      });
    }
    return this.queue.enqueue(this.ops, options.sync === true, () => this.written());
  }

  endOfCommand(): void {
    this.assertOpen();
    for (const { stream, subject, seq } of this.emptied) {
      if (stream.hasSubject(subject) || seq <= stream.vanishedHighSeq) continue;
      // Vanished: the stream record keeps the watch horizon across restarts.
      stream.vanishedHighSeq = seq;
      this.dirtyStreams.add(stream);
    }
    this.emptied.length = 0;
  }

  private written(): void {
    for (const key of this.stagedMessages) this.state.pendingMessages.delete(key);
    for (const [key, slot] of this.stagedMeta) {
      // A later batch may have staged a newer value for the key meanwhile.
      if (this.state.pendingMeta.get(key) === slot) this.state.pendingMeta.delete(key);
    }
    if (this.retiredIds.length > 0) this.retire(this.retiredIds);
  }

  private assertOpen(): void {
    assert(!this.committed, "batch used after commit");
    assert(this.state.openBatch === this, "batch is not the open batch");
  }

  private newStreamId(): number {
    this.headerDirty = true;
    return this.state.nextStreamId++;
  }

  private removeSeq(stream: StreamIndex, seq: number): void {
    const meta = stream.remove(seq);
    assert(meta !== undefined, `removing seq ${seq} that is not stored`);
    // The subject's last message went; whether it vanished is judged at commit, since a
    // write trims before it appends and an expiry appends a marker after it removes.
    if (!stream.hasSubject(meta.subject)) {
      this.emptied.push({ stream, subject: meta.subject, seq });
    }
    // The stream record is untouched: removals change neither lastSeq nor the config.
    this.ops.push({ type: "del", key: messageKey(stream.id, seq) });
  }

  /** discard=old: drops the oldest messages until maxMsgs and maxBytes hold. */
  private dropOldestOverLimits(stream: StreamIndex): void {
    const cfg = stream.config;
    while (
      stream.messageCount > 0 &&
      ((cfg.maxMsgs > 0 && stream.messageCount > cfg.maxMsgs) ||
        (cfg.maxBytes > 0 && stream.bytes > cfg.maxBytes))
    ) {
      this.removeSeq(stream, stream.firstSeq());
    }
  }
}
