/**
 * The subjects of a stream in order, for key listing: sorted chunks of at most
 * `chunkMax` names each (every name of a chunk is below every name of the next), kept
 * beside the index's subject map. A write inserts its new name in place (a binary search
 * and a move within one chunk, about a microsecond), so a page of keys costs a binary
 * search plus the page, also right after a bulk load: sorting a burst of new names at
 * the next read, as a single sorted array had to, cost that first page 97 ms at 300k
 * names (issue 10).
 *
 * A listing holds no array across awaits: `from` remembers the last name it yielded and,
 * when the names changed meanwhile, finds its place again by that name, so it sees
 * every name present throughout, in order, once; whether a name still exists when
 * yielded is for the caller to check against the live index.
 */
import { assert } from "./assert.js";

export class SortedNames {
  private chunks: string[][] = [];
  private count = 0;
  /** Bumped by every change, so a listing knows when to find its place again. */
  private version = 0;
  /** A chunk shrunk below this merges with its next one when both fit in one. */
  private readonly chunkMin: number;

  constructor(
    /** A chunk splits in two when it grows past this (a move within it stays short). */
    private readonly chunkMax = 1024,
  ) {
    assert(chunkMax >= 4 && chunkMax % 2 === 0, "SortedNames chunk size");
    this.chunkMin = chunkMax / 4;
  }

  get size(): number {
    return this.count;
  }

  /** `name` became present (it was absent). */
  add(name: string): void {
    this.version++;
    this.count++;
    if (this.chunks.length === 0) {
      this.chunks.push([name]);
      return;
    }
    const c = this.chunkOf(name);
    const chunk = this.chunks[c]!;
    const at = firstIndexAfter(chunk, name, true);
    assert(chunk[at] !== name, "a listed name added again");
    chunk.splice(at, 0, name);
    if (chunk.length > this.chunkMax) this.chunks.splice(c + 1, 0, chunk.splice(this.chunkMax / 2));
  }

  /** `name` is no longer present (it was present). */
  remove(name: string): void {
    const c = this.chunkOf(name);
    const chunk = this.chunks[c];
    const at = chunk === undefined ? -1 : firstIndexAfter(chunk, name, true);
    assert(chunk !== undefined && chunk[at] === name, "an unlisted name removed");
    this.version++;
    this.count--;
    chunk.splice(at, 1);
    const next = this.chunks[c + 1];
    if (chunk.length === 0) this.chunks.splice(c, 1);
    else if (
      chunk.length < this.chunkMin &&
      next !== undefined &&
      chunk.length + next.length <= this.chunkMax
    ) {
      for (const n of next) chunk.push(n);
      this.chunks.splice(c + 1, 1);
    }
  }

  /** Replaces every name with `sorted` (ascending, no repeats; the caller vouches). */
  reset(sorted: readonly string[]): void {
    this.version++;
    this.count = sorted.length;
    this.chunks = [];
    for (let i = 0; i < sorted.length; i += this.chunkMax / 2) {
      this.chunks.push(sorted.slice(i, i + this.chunkMax / 2));
    }
  }

  clear(): void {
    this.version++;
    this.count = 0;
    this.chunks = [];
  }

  /**
   * The present names > `after` (>= when `inclusive`), ascending (code unit order, as
   * `Array.prototype.sort`), lazily. Changes between two steps are allowed: a name
   * added meanwhile is seen if it sorts after the last one yielded.
   */
  *from(after: string, inclusive = false): Generator<string, void, undefined> {
    let version = this.version;
    let c = this.chunkOf(after);
    let i = this.chunks[c] === undefined ? 0 : firstIndexAfter(this.chunks[c]!, after, inclusive);
    for (;;) {
      let chunk = this.chunks[c];
      if (chunk !== undefined && i >= chunk.length) {
        c++;
        i = 0;
        chunk = this.chunks[c];
      }
      if (chunk === undefined) return;
      const name = chunk[i]!;
      yield name;
      if (this.version === version) {
        i++;
      } else {
        version = this.version;
        c = this.chunkOf(name);
        i = this.chunks[c] === undefined ? 0 : firstIndexAfter(this.chunks[c]!, name);
      }
    }
  }

  /** The chunk `name` belongs in: the last whose first name is <= `name` (0 if none is). */
  private chunkOf(name: string): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.chunks[mid]![0]! <= name) lo = mid + 1;
      else hi = mid;
    }
    return Math.max(0, lo - 1);
  }
}

/** Index of the first name in `sorted` that is > `after` (>= when `inclusive`). */
export function firstIndexAfter(
  sorted: readonly string[],
  after: string,
  inclusive = false,
): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const name = sorted[mid]!;
    if (inclusive ? name < after : name <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
