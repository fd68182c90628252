/**
 * The in-memory index of one stream: which sequences are stored, each one's
 * subject/operation/size/timestamp, and each subject's sequences. It is rebuilt
 * by one scan at open and lets every mutation be validated and staged
 * synchronously; message bodies stay in LevelDB.
 *
 * Stored sequences are kept in `order`, an ascending array with lazy deletion
 * (a removed seq stays until the array is compacted); `messages` says which are
 * live. Appends only ever add the highest sequence, so the array stays sorted,
 * seeks are binary searches, and removal is O(1) amortized.
 */

import { assert } from "./assert.js";
import { SortedNames } from "./sorted_names.js";
import type { Operation, StreamConfig, StreamState } from "./types.js";

export interface MessageMeta {
  subject: string;
  operation: Operation;
  /** Payload bytes. */
  size: number;
  timestampMs: number;
}

/** Dead entries tolerated in `order` before compaction pays off. */
const COMPACT_MIN_DEAD = 64;

/** First position in `items[from..]` (ascending) whose value is >= `value`. */
export function lowerBound(items: readonly number[], from: number, value: number): number {
  let lo = from;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class StreamIndex {
  /** Live messages by seq. */
  readonly messages = new Map<number, MessageMeta>();
  /** Subject -> its stored seqs, ascending. */
  readonly subjects = new Map<string, number[]>();
  /** The keys of `subjects`, in order (key listing). */
  readonly names = new SortedNames();
  bytes = 0;
  /**
   * The largest payload added since the index was built (open, snapshot install): an
   * upper bound of any stored message's size, never lowered by removals. The client
   * port sizes what a `get` may answer by it.
   */
  largestPayload = 0;
  /** False once a message was appended with a timestamp below an earlier one. */
  timestampsOrdered = true;
  /**
   * The highest last seq of a subject whose every message was removed (it vanished,
   * leaving no marker: purgeDeletes, an expired marker, discard=old). A watch resuming
   * at or below it cannot be caught up key by key, since the vanished key says nothing.
   * Set by the batch (a subject trimmed and appended to in one batch did not vanish);
   * persisted in the stream record; never lowered.
   */
  vanishedHighSeq: number;
  /** Highest seq ever removed; -1 until first asked after the index was built. */
  private removedHigh = -1;
  private maxTimestampMs = 0;
  private order: number[] = [];
  private head = 0;
  private dead = 0;

  constructor(
    /** Names the key range of the messages (see keys.ts). */
    public id: number,
    public config: StreamConfig,
    /** Highest sequence ever assigned. */
    public lastSeq: number,
    vanishedHighSeq = 0,
  ) {
    this.vanishedHighSeq = vanishedHighSeq;
  }

  add(seq: number, meta: MessageMeta): void {
    const last = this.order.length > 0 ? this.order[this.order.length - 1]! : 0;
    assert(seq > last && seq <= this.lastSeq, `seq ${seq} added out of order`);
    this.order.push(seq);
    this.messages.set(seq, meta);
    let seqs = this.subjects.get(meta.subject);
    if (seqs === undefined) {
      seqs = [];
      this.subjects.set(meta.subject, seqs);
      this.names.add(meta.subject);
    }
    seqs.push(seq);
    this.bytes += meta.size;
    if (meta.size > this.largestPayload) this.largestPayload = meta.size;
    if (meta.timestampMs < this.maxTimestampMs) this.timestampsOrdered = false;
    else this.maxTimestampMs = meta.timestampMs;
  }

  remove(seq: number): MessageMeta | undefined {
    const meta = this.messages.get(seq);
    if (meta === undefined) return undefined;
    this.messages.delete(seq);
    this.bytes -= meta.size;
    const seqs = this.subjects.get(meta.subject)!;
    if (seqs[0] === seq) seqs.shift();
    else seqs.splice(lowerBound(seqs, 0, seq), 1);
    if (seqs.length === 0) {
      this.subjects.delete(meta.subject);
      this.names.remove(meta.subject);
    }
    if (this.removedHigh >= 0 && seq > this.removedHigh) this.removedHigh = seq;
    this.dead++;
    if (this.messages.size === 0) this.clear();
    else if (this.dead >= COMPACT_MIN_DEAD && this.dead * 2 > this.order.length - this.head) {
      this.order = this.order.slice(this.head).filter((s) => this.messages.has(s));
      this.head = 0;
      this.dead = 0;
    }
    return meta;
  }

  /** Forgets every message (the counters survive): every subject vanishes. */
  clear(): void {
    for (let i = this.order.length - 1; i >= this.head; i--) {
      const seq = this.order[i]!;
      if (!this.messages.has(seq)) continue;
      if (seq > this.vanishedHighSeq) this.vanishedHighSeq = seq;
      break;
    }
    if (this.messages.size > 0) this.removedHigh = this.lastSeq;
    this.messages.clear();
    this.subjects.clear();
    this.names.clear();
    this.bytes = 0;
    this.order = [];
    this.head = 0;
    this.dead = 0;
    this.timestampsOrdered = true;
    this.maxTimestampMs = 0;
  }

  /**
   * The highest seq ever removed from the stream (trimmed, purged, expired, deleted), 0 if
   * none: every stored seq above it is still stored, so a watch resuming above it can be
   * replayed exactly. Seqs are never reused, so "the highest seq not stored" is the same
   * thing; that is how it is found once after a restart or a snapshot install.
   */
  removedHighSeq(): number {
    if (this.removedHigh < 0) {
      let expected = this.lastSeq;
      for (let i = this.order.length - 1; i >= this.head && expected > 0; i--) {
        const seq = this.order[i]!;
        if (!this.messages.has(seq)) continue;
        if (seq !== expected) break;
        expected--;
      }
      this.removedHigh = expected;
    }
    return this.removedHigh;
  }

  firstSeq(): number {
    while (this.head < this.order.length && !this.messages.has(this.order[this.head]!)) {
      this.head++;
      this.dead--;
    }
    if (this.head >= this.order.length) return this.lastSeq + 1;
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
    return this.order[this.head]!;
  }

  /**
   * Visits stored seqs >= fromSeq in ascending order until `visit` returns
   * false. `visit` must not add or remove messages.
   */
  forEachFrom(fromSeq: number, visit: (seq: number, meta: MessageMeta) => boolean): void {
    for (let i = lowerBound(this.order, this.head, fromSeq); i < this.order.length; i++) {
      const seq = this.order[i]!;
      const meta = this.messages.get(seq);
      if (meta !== undefined && !visit(seq, meta)) return;
    }
  }

  state(): StreamState {
    return {
      firstSeq: this.firstSeq(),
      lastSeq: this.lastSeq,
      messages: this.messages.size,
      bytes: this.bytes,
      subjects: this.subjects.size,
    };
  }
}
