/**
 * The simulator's safety checker. It sits outside the code under test and is
 * fed after every event: election safety (at most one leader per term), commit
 * index monotonic per incarnation, committed entries never change or vanish,
 * every node applies the same sequence, leader completeness, log matching, and
 * the client-visible guarantees (acked writes survive; a ReadIndex read sees
 * every write acknowledged before it began).
 */
import { type Entry, EntryType, type NodeId } from "../storage.js";

export interface LogView {
  summary(): {
    role: string;
    term: number;
    commitIndex: number;
    firstIndex: number;
    lastIndex: number;
  };
  termAt(index: number): number | undefined;
  entriesIn(lo: number, hi: number): Entry[];
}

interface Committed {
  term: number;
  hash: number;
}

function hashEntry(e: Entry): number {
  let h = 0x811c9dc5 ^ e.type;
  for (let i = 0; i < e.data.length; i++) h = Math.imul(h ^ e.data[i]!, 0x01000193);
  return h >>> 0;
}

export class Checker {
  readonly violations: string[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly committed = new Map<number, Committed>();
  private maxCommitted = 0;
  private readonly lastCommit = new Map<string, number>();
  private readonly lastLeaderTerm = new Map<NodeId, number>();
  /** Values acknowledged to clients, in ack order, with the virtual time of the ack. */
  readonly acked: { value: string; index: number; atMs: number }[] = [];
  elections = 0;

  fail(message: string): void {
    if (this.violations.length < 20) this.violations.push(message);
  }

  /** Polls one node after an event. `incarnation` changes on every restart. */
  observe(id: NodeId, incarnation: string, view: LogView): void {
    const s = view.summary();
    if (s.role === "leader" && this.lastLeaderTerm.get(id) !== s.term) {
      this.lastLeaderTerm.set(id, s.term);
      const other = this.leaderOfTerm.get(s.term);
      if (other !== undefined && other !== id) {
        this.fail(`election safety: ${other} and ${id} both leaders in term ${s.term}`);
      }
      this.leaderOfTerm.set(s.term, id);
      this.elections++;
      this.checkLeaderCompleteness(id, view);
    }
    const prev = this.lastCommit.get(incarnation) ?? 0;
    if (s.commitIndex < prev)
      this.fail(`${id}: commit index went back from ${prev} to ${s.commitIndex}`);
    if (s.commitIndex > prev) {
      this.lastCommit.set(incarnation, s.commitIndex);
      this.recordCommitted(id, view, Math.max(prev + 1, s.firstIndex), s.commitIndex);
    }
  }

  private recordCommitted(id: NodeId, view: LogView, lo: number, hi: number): void {
    if (lo > hi) return;
    for (const e of view.entriesIn(lo, hi + 1)) this.noteCommitted(id, e, "committed");
    if (hi > this.maxCommitted) this.maxCommitted = hi;
  }

  private noteCommitted(id: NodeId, e: Entry, what: string): void {
    const c = this.committed.get(e.index);
    const hash = hashEntry(e);
    if (!c) {
      this.committed.set(e.index, { term: e.term, hash });
    } else if (c.term !== e.term || c.hash !== hash) {
      this.fail(
        `state machine safety: ${id} ${what} ${e.index}/${e.term} but ${e.index}/${c.term} was committed`,
      );
    }
  }

  /** Every applied entry must be the committed one at that index. */
  onApply(id: NodeId, e: Entry): void {
    this.noteCommitted(id, e, "applied");
  }

  private checkLeaderCompleteness(id: NodeId, view: LogView): void {
    const s = view.summary();
    if (s.lastIndex < this.maxCommitted) {
      this.fail(
        `leader completeness: ${id} leads term ${s.term} with lastIndex ${s.lastIndex} < committed ${this.maxCommitted}`,
      );
      return;
    }
    for (let i = Math.max(s.firstIndex, 1); i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      if (c && view.termAt(i) !== c.term) {
        this.fail(
          `leader completeness: ${id} (term ${s.term}) has ${i}/${view.termAt(i)}, committed ${i}/${c.term}`,
        );
        return;
      }
    }
  }

  /** Log matching between two live logs: equal (index, term) implies equal prefixes. */
  checkLogMatching(a: NodeId, va: LogView, b: NodeId, vb: LogView): void {
    const sa = va.summary();
    const sb = vb.summary();
    const lo = Math.max(sa.firstIndex, sb.firstIndex);
    const hi = Math.min(sa.lastIndex, sb.lastIndex);
    if (lo > hi) return;
    let top = 0;
    for (let i = hi; i >= lo; i--) {
      if (va.termAt(i) === vb.termAt(i)) {
        top = i;
        break;
      }
    }
    if (top === 0) return;
    const ea = va.entriesIn(lo, top + 1);
    const eb = vb.entriesIn(lo, top + 1);
    for (let k = 0; k < ea.length; k++) {
      const x = ea[k]!;
      const y = eb[k]!;
      if (x.term !== y.term || hashEntry(x) !== hashEntry(y)) {
        this.fail(
          `log matching: ${a} and ${b} agree at ${top} but differ at ${x.index} (${x.term} vs ${y.term})`,
        );
        return;
      }
    }
  }

  onAck(value: string, index: number, atMs: number, appliedEntry: Entry | undefined): void {
    this.acked.push({ value, index, atMs });
    const c = this.committed.get(index);
    if (appliedEntry && appliedEntry.type !== EntryType.Normal) {
      this.fail(`ack of ${value} at ${index} which is not a client entry`);
    }
    if (!c) this.fail(`ack of ${value} at ${index} before anyone committed it`);
  }

  /** A read issued at `issuedMs` saw `values`: it must contain every write acked before. */
  checkRead(node: NodeId, issuedMs: number, values: ReadonlySet<string>): void {
    for (const a of this.acked) {
      if (a.atMs >= issuedMs) break;
      if (!values.has(a.value)) {
        this.fail(
          `linearizable read on ${node} at ${issuedMs}ms misses ${a.value} acked at ${a.atMs}ms`,
        );
        return;
      }
    }
  }

  /** After the liveness phase: every acked write is in the final state of `node`. */
  checkFinal(node: NodeId, values: ReadonlySet<string>): void {
    for (const a of this.acked) {
      if (!values.has(a.value)) {
        this.fail(
          `lost write: ${a.value} (acked at ${a.atMs}ms, index ${a.index}) missing on ${node}`,
        );
        return;
      }
    }
  }

  committedCount(): number {
    return this.maxCommitted;
  }
}
