/**
 * The log as the core sees it: what storage holds plus an "unstable" tail of
 * entries (and possibly a snapshot from the leader) not yet acknowledged as
 * durable (etcd-io/raft log.go + log_unstable.go). The core never waits for
 * storage: it appends here, hands the tail out through `ready()`, and drops it
 * from the tail once `advance()` says the write is durable. Reads are O(1)
 * per index; nothing here scans the whole log.
 */
import { assert } from "./assert.js";
import type { Entry, RaftLogReader, SnapshotMeta } from "./storage.js";

export class RaftLog {
  /** Entries not yet known durable; unstable[i].index === offset + i. */
  private unstable: Entry[] = [];
  private offset: number;
  /** A snapshot received from the leader, not yet durable. */
  private pendingSnapshot: SnapshotMeta | null = null;
  private snapshotHandedOut = false;
  /** Last index whose entry was handed out in a Ready. */
  private handedOutIndex: number;

  constructor(private readonly storage: RaftLogReader) {
    this.offset = storage.lastIndex() + 1;
    this.handedOutIndex = storage.lastIndex();
  }

  firstIndex(): number {
    if (this.pendingSnapshot) return this.pendingSnapshot.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.offset + this.unstable.length - 1;
    if (this.pendingSnapshot) return this.pendingSnapshot.index;
    return this.storage.lastIndex();
  }

  /** Highest index known durable on this node (the leader counts itself only up to here). */
  persistedIndex(): number {
    if (this.pendingSnapshot) return 0;
    if (this.unstable.length > 0) return Math.min(this.offset - 1, this.storage.lastIndex());
    return this.storage.lastIndex();
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, `no term at lastIndex ${this.lastIndex()}`);
    return t;
  }

  /** Term at `index`; undefined when compacted or beyond the end. */
  term(index: number): number | undefined {
    if (this.unstable.length > 0 && index >= this.offset) {
      return this.unstable[index - this.offset]?.term;
    }
    const snap = this.pendingSnapshot;
    if (snap) {
      if (index === snap.index) return snap.term;
      return undefined;
    }
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Entries in [lo, hi), at most `maxBytes` of data (at least one); lo must not be compacted. */
  entries(lo: number, hi: number, maxBytes = Number.MAX_SAFE_INTEGER): Entry[] {
    assert(lo >= this.firstIndex(), `entries(${lo}): compacted below ${this.firstIndex()}`);
    assert(hi <= this.lastIndex() + 1, `entries(${hi}): beyond lastIndex ${this.lastIndex()}`);
    if (lo >= hi) return [];
    const out: Entry[] = [];
    const stableHi = this.unstable.length > 0 ? Math.min(hi, this.offset) : hi;
    if (lo < stableHi) {
      for (const e of this.storage.entries(lo, stableHi, maxBytes)) out.push(e);
      if (out.length < stableHi - lo) return out;
    }
    let bytes = 0;
    for (const e of out) bytes += e.data.byteLength;
    for (let i = Math.max(lo, this.offset); i < hi && this.unstable.length > 0; i++) {
      const e = this.unstable[i - this.offset]!;
      if (out.length > 0 && bytes + e.data.byteLength > maxBytes) break;
      bytes += e.data.byteLength;
      out.push(e);
    }
    return out;
  }

  /** Appends entries; any entry at an index >= entries[0].index is replaced. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(first <= this.lastIndex() + 1, `append at ${first} leaves a gap`);
    assert(first >= this.firstIndex(), `append at ${first} below firstIndex ${this.firstIndex()}`);
    if (this.unstable.length > 0 && first >= this.offset) {
      this.unstable.length = first - this.offset;
    } else {
      this.unstable = [];
      this.offset = first;
    }
    for (const e of entries) this.unstable.push(e);
    if (this.handedOutIndex >= first) this.handedOutIndex = first - 1;
  }

  /** Replaces the whole log by a snapshot from the leader. */
  restore(meta: SnapshotMeta): void {
    this.pendingSnapshot = meta;
    this.snapshotHandedOut = false;
    this.unstable = [];
    this.offset = meta.index + 1;
    this.handedOutIndex = meta.index;
  }

  hasPendingSnapshot(): boolean {
    return this.pendingSnapshot !== null;
  }

  /** The snapshot to hand out in the next Ready, once. */
  takeSnapshotToHandOut(): SnapshotMeta | null {
    if (!this.pendingSnapshot || this.snapshotHandedOut) return null;
    this.snapshotHandedOut = true;
    return this.pendingSnapshot;
  }

  hasEntriesToHandOut(): boolean {
    return this.unstable.length > 0 && this.handedOutIndex < this.lastIndex();
  }

  /** Entries not yet handed out in a Ready; marks them handed out. */
  takeEntriesToHandOut(): Entry[] {
    const last = this.lastIndex();
    if (this.unstable.length === 0 || this.handedOutIndex >= last) return [];
    const from = Math.max(this.handedOutIndex + 1, this.offset);
    const out = this.unstable.slice(from - this.offset);
    this.handedOutIndex = last;
    return out;
  }

  /** A Ready whose entries ended at (index, term) is durable. */
  stableTo(index: number, term: number): void {
    if (this.unstable.length === 0 || index < this.offset) return;
    const e = this.unstable[index - this.offset];
    // A later append may have replaced the entry; then a later Ready makes it durable.
    if (!e || e.term !== term) return;
    this.unstable = this.unstable.slice(index - this.offset + 1);
    this.offset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.pendingSnapshot && this.pendingSnapshot.index === index) this.pendingSnapshot = null;
  }

  /**
   * The highest index <= `index` whose term is <= `term` (etcd's
   * findConflictByTerm): where a follower's log can still match the leader's.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    // Bounded by the number of entries of higher terms, usually a handful.
    for (; i > 0; i--) {
      const t = this.term(i);
      if (t === undefined || t <= term) break;
    }
    return i;
  }

  /** The last index of the longest prefix of `entries` this log already holds, or the first conflict. */
  findConflict(entries: Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }
}
