/**
 * The in-memory index of one stream: which sequences are stored, each one's
 * subject/operation/size/timestamp, and each subject's sequences. It is rebuilt
 * at open and lets every mutation be validated and staged synchronously; message
 * bodies stay in LevelDB.
 *
 * Laid out for memory (a million keys must fit in a few hundred MB):
 * - the messages are columns in seq order (message_table.ts), about 29 bytes each;
 * - each subject maps to its one seq as a plain number (history 1, the common case,
 *   allocates nothing per key beyond the map entry), or to an ascending array of its
 *   seqs when it holds several;
 * - the subject names, sorted, for listing (sorted_names.ts), 8 to 16 bytes each.
 * What it costs per key and message is measured by `npm run bench -- log-index`.
 */

import { assert } from "./assert.js";
import { lowerBound, MessageTable } from "./message_table.js";
import { SortedNames } from "./sorted_names.js";
import type { Operation, StreamConfig, StreamState } from "./types.js";

export interface MessageMeta {
  subject: string;
  operation: Operation;
  /** Payload bytes. */
  size: number;
  timestampMs: number;
}

/** A subject's seqs: the only one, or several ascending (length >= 2). */
type SubjectSeqs = number | number[];

export class StreamIndex {
  /** Subject -> its stored seqs. */
  private readonly bySubject = new Map<string, SubjectSeqs>();
  private readonly table = new MessageTable();
  /** The keys of `bySubject`, in order (key listing). */
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

  /** Stored messages. */
  get messageCount(): number {
    return this.table.size;
  }

  /** Subjects with at least one stored message. */
  get subjectCount(): number {
    return this.bySubject.size;
  }

  /** Makes room for `messages` more messages at once (a bulk load). */
  reserve(messages: number): void {
    this.table.reserve(messages);
  }

  add(seq: number, meta: MessageMeta): void {
    this.addMessage(seq, meta.subject, meta.operation, meta.size, meta.timestampMs);
  }

  addMessage(
    seq: number,
    subject: string,
    operation: Operation,
    size: number,
    timestampMs: number,
    /** False when the caller sets the names itself afterwards (names.reset). */
    listName = true,
  ): void {
    if (seq > this.lastSeq) assert(false, `seq ${seq} added beyond the last seq`);
    this.table.push(seq, subject, operation, size, timestampMs);
    const seqs = this.bySubject.get(subject);
    if (seqs === undefined) {
      this.bySubject.set(subject, seq);
      if (listName) this.names.add(subject);
    } else if (typeof seqs === "number") {
      this.bySubject.set(subject, [seqs, seq]);
    } else {
      seqs.push(seq);
    }
    this.bytes += size;
    if (size > this.largestPayload) this.largestPayload = size;
    if (timestampMs < this.maxTimestampMs) this.timestampsOrdered = false;
    else this.maxTimestampMs = timestampMs;
  }

  remove(seq: number): MessageMeta | undefined {
    const slot = this.table.find(seq);
    if (slot < 0) return undefined;
    const meta = this.metaAt(slot);
    this.table.kill(slot);
    this.bytes -= meta.size;
    const seqs = this.bySubject.get(meta.subject)!;
    if (typeof seqs === "number") {
      this.bySubject.delete(meta.subject);
      this.names.remove(meta.subject);
    } else {
      if (seqs[0] === seq) seqs.shift();
      else seqs.splice(lowerBound(seqs, 0, seq), 1);
      if (seqs.length === 1) this.bySubject.set(meta.subject, seqs[0]!);
    }
    if (this.removedHigh >= 0 && seq > this.removedHigh) this.removedHigh = seq;
    if (this.table.size === 0) this.clear();
    return meta;
  }

  /** Forgets every message (the counters survive): every subject vanishes. */
  clear(): void {
    const last = this.table.lastSeq();
    if (last !== undefined) {
      if (last > this.vanishedHighSeq) this.vanishedHighSeq = last;
      this.removedHigh = this.lastSeq;
    }
    this.table.clear();
    this.bySubject.clear();
    this.names.clear();
    this.bytes = 0;
    this.timestampsOrdered = true;
    this.maxTimestampMs = 0;
  }

  has(seq: number): boolean {
    return this.table.find(seq) >= 0;
  }

  /** Subject, operation, size and timestamp of stored message `seq`. */
  meta(seq: number): MessageMeta | undefined {
    const slot = this.table.find(seq);
    return slot < 0 ? undefined : this.metaAt(slot);
  }

  /**
   * Whether message `seq`, read from disk with `subject` and `size`, agrees with the
   * index: undefined when it is no longer stored, false when it differs (corruption).
   */
  agreesWith(seq: number, subject: string, size: number): boolean | undefined {
    const slot = this.table.find(seq);
    if (slot < 0) return undefined;
    return this.table.subjectAt(slot) === subject && this.table.sizeAt(slot) === size;
  }

  /** Payload bytes of stored message `seq`. */
  sizeOf(seq: number): number | undefined {
    const slot = this.table.find(seq);
    return slot < 0 ? undefined : this.table.sizeAt(slot);
  }

  hasSubject(subject: string): boolean {
    return this.bySubject.has(subject);
  }

  /** Every subject with a stored message, in no particular order. */
  subjectNames(): IterableIterator<string> {
    return this.bySubject.keys();
  }

  /** The subject's stored seqs, ascending (a fresh array; empty when it has none). */
  seqsOf(subject: string): number[] {
    const seqs = this.bySubject.get(subject);
    if (seqs === undefined) return [];
    return typeof seqs === "number" ? [seqs] : seqs.slice();
  }

  /** The subject's `n` oldest seqs, ascending (a fresh array; fewer if it holds fewer). */
  oldestOf(subject: string, n: number): number[] {
    const seqs = this.bySubject.get(subject);
    if (seqs === undefined || n <= 0) return [];
    return typeof seqs === "number" ? [seqs] : seqs.slice(0, n);
  }

  /** How many messages the subject holds (0 when none). */
  countOf(subject: string): number {
    const seqs = this.bySubject.get(subject);
    if (seqs === undefined) return 0;
    return typeof seqs === "number" ? 1 : seqs.length;
  }

  /** The subject's newest seq, or undefined when it has none. */
  lastOf(subject: string): number | undefined {
    const seqs = this.bySubject.get(subject);
    if (seqs === undefined) return undefined;
    return typeof seqs === "number" ? seqs : seqs[seqs.length - 1];
  }

  /** The subject's newest seq at or below `toSeq`, or undefined when it has none there. */
  lastAtOrBelow(subject: string, toSeq: number): number | undefined {
    const seqs = this.bySubject.get(subject);
    if (seqs === undefined) return undefined;
    if (typeof seqs === "number") return seqs <= toSeq ? seqs : undefined;
    const last = seqs[seqs.length - 1]!;
    if (last <= toSeq) return last;
    const i = lowerBound(seqs, 0, toSeq + 1);
    return i === 0 ? undefined : seqs[i - 1];
  }

  /** Whether stored `seq` of `subject` is the subject's newest at or below `toSeq`. */
  isLastAtOrBelow(subject: string, seq: number, toSeq: number): boolean {
    const seqs = this.bySubject.get(subject);
    if (seqs === undefined) return false;
    if (typeof seqs === "number") return seqs === seq;
    const last = seqs[seqs.length - 1]!;
    if (last <= toSeq) return last === seq;
    const i = lowerBound(seqs, 0, seq);
    return seqs[i] === seq && (i + 1 === seqs.length || seqs[i + 1]! > toSeq);
  }

  /** Visits the subject's stored seqs in [fromSeq, toSeq], ascending, without a copy. */
  forEachSeqOf(
    subject: string,
    fromSeq: number,
    toSeq: number,
    visit: (seq: number) => boolean,
  ): void {
    const seqs = this.bySubject.get(subject);
    if (seqs === undefined) return;
    if (typeof seqs === "number") {
      if (seqs >= fromSeq && seqs <= toSeq) visit(seqs);
      return;
    }
    for (let i = lowerBound(seqs, 0, fromSeq); i < seqs.length && seqs[i]! <= toSeq; i++) {
      if (!visit(seqs[i]!)) return;
    }
  }

  /** The operation of stored message `seq` (it must be stored). */
  operationOf(seq: number): Operation {
    const slot = this.table.find(seq);
    // The message is built only on failure: listings call this once per key.
    if (slot < 0) assert(false, `seq ${seq} is not stored`);
    return this.table.operationAt(slot);
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
      this.table.forEachBackward((slot) => {
        if (this.table.seqAt(slot) !== expected) return false;
        expected--;
        return expected > 0;
      });
      this.removedHigh = expected;
    }
    return this.removedHigh;
  }

  firstSeq(): number {
    return this.table.firstSeq() ?? this.lastSeq + 1;
  }

  /**
   * Visits stored seqs >= fromSeq in ascending order until `visit` returns
   * false. `visit` must not add or remove messages.
   */
  forEachFrom(
    fromSeq: number,
    visit: (
      seq: number,
      subject: string,
      operation: Operation,
      timestampMs: number,
      size: number,
    ) => boolean,
  ): void {
    const table = this.table;
    table.forEachFrom(fromSeq, (slot) =>
      visit(
        table.seqAt(slot),
        table.subjectAt(slot),
        table.operationAt(slot),
        table.timestampAt(slot),
        table.sizeAt(slot),
      ),
    );
  }

  state(): StreamState {
    return {
      firstSeq: this.firstSeq(),
      lastSeq: this.lastSeq,
      messages: this.table.size,
      bytes: this.bytes,
      subjects: this.bySubject.size,
    };
  }

  private metaAt(slot: number): MessageMeta {
    const table = this.table;
    return {
      subject: table.subjectAt(slot),
      operation: table.operationAt(slot),
      size: table.sizeAt(slot),
      timestampMs: table.timestampAt(slot),
    };
  }
}
