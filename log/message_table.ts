/**
 * The stored messages of one stream in seq order, columnar: one typed array per field
 * (seq, payload size, timestamp, operation) and one array of subject references, so a
 * message costs about 29 bytes of memory instead of a map entry and an object
 * (~150 bytes). Sequences only ever grow, so appends go at the end and the columns stay
 * sorted by seq: a lookup is a binary search. Removal marks a slot dead; dead slots are
 * squeezed out once they are the majority (amortized O(1) per removal).
 */
import { assert } from "./assert.js";
import type { Operation } from "./types.js";

/** First position in `items[from..to)` (ascending) whose value is >= `value`. */
export function lowerBound(
  items: ArrayLike<number>,
  from: number,
  value: number,
  to = items.length,
): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const OPERATIONS: readonly Operation[] = ["PUT", "DEL", "PURGE"];
const OPERATION_CODES: Readonly<Record<Operation, number>> = { PUT: 0, DEL: 1, PURGE: 2 };
const DEAD = 255;
/** Dead slots tolerated before a compaction pays off. */
const COMPACT_MIN_DEAD = 64;
const INITIAL_CAPACITY = 16;

export class MessageTable {
  private seqs = new Float64Array(INITIAL_CAPACITY);
  private sizes = new Uint32Array(INITIAL_CAPACITY);
  private times = new Float64Array(INITIAL_CAPACITY);
  private ops = new Uint8Array(INITIAL_CAPACITY);
  private subjects: Array<string | undefined> = [];
  /** Slots [head, end) are in use; dead ones among them are marked DEAD. */
  private head = 0;
  private end = 0;
  private dead = 0;

  /** Live messages. */
  get size(): number {
    return this.end - this.head - this.dead;
  }

  /** Appends a message whose seq is above every stored one. */
  push(
    seq: number,
    subject: string,
    operation: Operation,
    size: number,
    timestampMs: number,
  ): void {
    // Checked before the message is built: this runs for every message of a bulk load.
    if (!(this.end === this.head || seq > this.seqs[this.end - 1]!) || size > 0xffff_ffff) {
      assert(false, `seq ${seq} out of order, or a payload of ${size} bytes`);
    }
    if (this.end === this.seqs.length) this.makeRoom();
    const slot = this.end++;
    this.seqs[slot] = seq;
    this.sizes[slot] = size;
    this.times[slot] = timestampMs;
    this.ops[slot] = OPERATION_CODES[operation];
    this.subjects[slot] = subject;
  }

  /** The slot of live message `seq`, or -1. Slots are valid until the next push or removal. */
  find(seq: number): number {
    const slot = lowerBound(this.seqs, this.head, seq, this.end);
    return slot < this.end && this.seqs[slot] === seq && this.ops[slot] !== DEAD ? slot : -1;
  }

  seqAt(slot: number): number {
    return this.seqs[slot]!;
  }
  subjectAt(slot: number): string {
    return this.subjects[slot]!;
  }
  sizeAt(slot: number): number {
    return this.sizes[slot]!;
  }
  timestampAt(slot: number): number {
    return this.times[slot]!;
  }
  operationAt(slot: number): Operation {
    return OPERATIONS[this.ops[slot]!]!;
  }

  /** Marks a live slot dead (found with `find`). */
  kill(slot: number): void {
    assert(this.ops[slot] !== DEAD, "slot killed twice");
    this.ops[slot] = DEAD;
    this.subjects[slot] = undefined;
    this.dead++;
    if (this.size === 0) this.clear();
    else if (this.dead >= COMPACT_MIN_DEAD && this.dead * 2 > this.end - this.head) this.compact();
  }

  /** The oldest live seq, or undefined when empty. */
  firstSeq(): number | undefined {
    while (this.head < this.end && this.ops[this.head] === DEAD) {
      this.head++;
      this.dead--;
    }
    return this.head < this.end ? this.seqs[this.head] : undefined;
  }

  /** The newest live seq, or undefined when empty. */
  lastSeq(): number | undefined {
    for (let slot = this.end - 1; slot >= this.head; slot--) {
      if (this.ops[slot] !== DEAD) return this.seqs[slot];
    }
    return undefined;
  }

  /**
   * Visits live slots with seq >= `fromSeq` in ascending order until `visit` returns
   * false. `visit` must not push or remove.
   */
  forEachFrom(fromSeq: number, visit: (slot: number) => boolean): void {
    for (let slot = lowerBound(this.seqs, this.head, fromSeq, this.end); slot < this.end; slot++) {
      if (this.ops[slot] !== DEAD && !visit(slot)) return;
    }
  }

  /** Visits live slots from the newest down until `visit` returns false. */
  forEachBackward(visit: (slot: number) => boolean): void {
    for (let slot = this.end - 1; slot >= this.head; slot--) {
      if (this.ops[slot] !== DEAD && !visit(slot)) return;
    }
  }

  clear(): void {
    this.seqs = new Float64Array(INITIAL_CAPACITY);
    this.sizes = new Uint32Array(INITIAL_CAPACITY);
    this.times = new Float64Array(INITIAL_CAPACITY);
    this.ops = new Uint8Array(INITIAL_CAPACITY);
    this.subjects = [];
    this.head = 0;
    this.end = 0;
    this.dead = 0;
  }

  /** Makes room for `more` pushes without growing the columns again. */
  reserve(more: number): void {
    if (this.end + more > this.seqs.length) this.resize(this.end + more);
  }

  /** Grows the columns, or squeezes dead slots out when that frees enough. */
  private makeRoom(): void {
    if (this.head + this.dead > this.seqs.length / 4) {
      this.compact();
      if (this.end < this.seqs.length) return;
    }
    this.resize(Math.max(INITIAL_CAPACITY, Math.ceil(this.seqs.length * 1.5)));
  }

  private resize(capacity: number): void {
    this.seqs = grow(this.seqs, new Float64Array(capacity), this.end);
    this.sizes = grow(this.sizes, new Uint32Array(capacity), this.end);
    this.times = grow(this.times, new Float64Array(capacity), this.end);
    this.ops = grow(this.ops, new Uint8Array(capacity), this.end);
  }

  /** Moves the live slots to the front, in order. */
  private compact(): void {
    let to = 0;
    for (let from = this.head; from < this.end; from++) {
      if (this.ops[from] === DEAD) continue;
      if (to !== from) {
        this.seqs[to] = this.seqs[from]!;
        this.sizes[to] = this.sizes[from]!;
        this.times[to] = this.times[from]!;
        this.ops[to] = this.ops[from]!;
        this.subjects[to] = this.subjects[from];
      }
      to++;
    }
    this.subjects.length = to;
    this.head = 0;
    this.end = to;
    this.dead = 0;
    // Shrink what a burst of removals left mostly empty.
    if (this.seqs.length > INITIAL_CAPACITY && to * 4 < this.seqs.length) {
      this.resize(Math.max(INITIAL_CAPACITY, to * 2));
    }
  }
}

function grow<T extends Float64Array | Uint32Array | Uint8Array>(
  from: T,
  to: T,
  length: number,
): T {
  to.set(from.subarray(0, length));
  return to;
}
