/**
 * The window of AppendEntries in flight to one follower (etcd-io/raft
 * tracker/inflights.go): the leader pipelines several messages, each
 * remembered by its last index, and stops when the window is full (by count
 * or by bytes) until acknowledgements free it.
 */
import { assert } from "./assert.js";

export class Inflights {
  /** Last index of each message in flight, ascending. */
  private readonly lastIndexes: number[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    readonly countMax: number,
    readonly bytesMax: number,
  ) {
    assert(countMax >= 1, "inflights countMax must be >= 1");
    assert(bytesMax >= 1, "inflights bytesMax must be >= 1");
  }

  /** Records a message whose last entry is `lastIndex` and whose entries weigh `size` bytes. */
  add(lastIndex: number, size: number): void {
    assert(!this.full(), "inflights: add to a full window");
    const n = this.count();
    assert(
      n === 0 || lastIndex > this.lastIndexes[this.lastIndexes.length - 1]!,
      `inflights: index ${lastIndex} not after the previous one`,
    );
    this.lastIndexes.push(lastIndex);
    this.sizes.push(size);
    this.bytes += size;
  }

  /** Frees every message whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    while (this.head < this.lastIndexes.length && this.lastIndexes[this.head]! <= index) {
      this.bytes -= this.sizes[this.head]!;
      this.head++;
    }
    // Compact now and then so the arrays do not grow without bound.
    if (this.head > 64 && this.head * 2 > this.lastIndexes.length) {
      this.lastIndexes.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }

  full(): boolean {
    return this.count() >= this.countMax || this.bytes >= this.bytesMax;
  }

  count(): number {
    return this.lastIndexes.length - this.head;
  }

  inflightBytes(): number {
    return this.bytes;
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.head = 0;
    this.bytes = 0;
  }
}
