/**
 * The subjects of a stream in order, for key listing: a sorted array kept beside the
 * index's subject map, so a page of keys costs a binary search plus the page, not a
 * sort of every subject. Subjects added or removed since the last read wait in two sets
 * and are merged in at the next read (one pass over the array, plus sorting only what
 * was added), so a write costs a set insertion and a burst of new keys one merge.
 *
 * A read returns an array that is never changed afterwards (a merge builds a new one),
 * so a listing that holds it across awaits sees one consistent order; whether each
 * subject still exists is for the caller to check against the live index.
 */
export class SortedNames {
  private sorted: string[] = [];
  /** Present, not yet in `sorted`. */
  private readonly added = new Set<string>();
  /** In `sorted`, no longer present. */
  private readonly removed = new Set<string>();

  /** `name` became present (it was absent). */
  add(name: string): void {
    if (!this.removed.delete(name)) this.added.add(name);
  }

  /** `name` is no longer present (it was present). */
  remove(name: string): void {
    if (!this.added.delete(name)) this.removed.add(name);
  }

  /** Replaces every name with `sorted` (ascending, no repeats; the caller vouches). */
  reset(sorted: string[]): void {
    this.sorted = sorted;
    this.added.clear();
    this.removed.clear();
  }

  clear(): void {
    this.sorted = [];
    this.added.clear();
    this.removed.clear();
  }

  /** Every present name, ascending (code unit order, as `Array.prototype.sort`). */
  view(): readonly string[] {
    if (this.added.size === 0 && this.removed.size === 0) return this.sorted;
    const adds = [...this.added].sort();
    const out: string[] = new Array(this.sorted.length - this.removed.size + adds.length);
    let n = 0;
    let j = 0;
    for (const name of this.sorted) {
      if (this.removed.has(name)) continue;
      while (j < adds.length && adds[j]! < name) out[n++] = adds[j++]!;
      out[n++] = name;
    }
    while (j < adds.length) out[n++] = adds[j++]!;
    out.length = n;
    this.sorted = out;
    this.added.clear();
    this.removed.clear();
    return out;
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
