/**
 * The simulator's safety checker. It sits outside the code under test and is
 * fed by the cluster (after every event), by the network (every message a
 * node sends), and by the disks (every append, every fsync, every crash).
 *
 * Raft's own invariants:
 * - election safety: at most one leader per term, across restarts;
 * - one vote per term: a node never grants votes to two candidates in a term,
 *   across restarts;
 * - durable promises: a crash never takes back what a node said in a message
 *   (a vote, a term, an append acknowledgement): those leave only after fsync;
 *   and the durable hard state never goes back (term, vote, commit index);
 * - commit index never decreases, within an incarnation or across a restart;
 * - log matching, incrementally: an entry (index, term) has one content and one
 *   predecessor term wherever it is written, which by induction makes equal
 *   (index, term) imply equal prefixes; plus a pairwise check as a backstop;
 * - committed entries never change (state machine safety on commit and apply);
 * - leader completeness, on every election and for every node that *could*
 *   win one: a node whose log is at least as up to date as the logs of a
 *   majority of its voters must hold every committed entry. This is the
 *   invariant the paper's proof rests on; checking it on the current state
 *   catches an unsafe commit when it happens, not only when a later leader
 *   happens to overwrite it;
 * Client-visible guarantees:
 * - an acknowledged write is the committed entry at its index, and is in the
 *   final state of every member;
 * - a ReadIndex read is served at an index that covers every write
 *   acknowledged before the read was issued (the state at that index, not
 *   merely the state when the answer came back) and that is committed.
 */
import { type Entry, EntryType, type HardState, type NodeId } from "../storage.js";
import type { Message } from "../types.js";

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

/** A log as an election sees it. */
export interface LogImage {
  firstIndex(): number;
  lastIndex(): number;
  term(index: number): number | undefined;
}

/** One node as a possible candidate and voter (see `checkPotentialLeaders`). */
export interface ElectorView {
  /** Voters of the configuration this node would campaign with. */
  voters: readonly NodeId[];
  /** The log it would campaign with. */
  candidate: LogImage;
  /** The logs it could vote with: its running log and, were it to crash, its durable one. */
  voterLogs: readonly LogImage[];
}

interface Committed {
  term: number;
  hash: number;
  /**
   * Lowest current term of a node seen holding the entry as committed: the
   * entry was committed in this term or an earlier one, so every leader of a
   * higher term must have it (the paper's leader completeness). A leader of a
   * lower term may legally be elected late, by votes that were delayed.
   */
  commitTerm: number;
}

interface LogEntryId {
  term: number;
  hash: number;
  prevTerm: number;
  by: NodeId;
}

interface Promises {
  /** Highest term of any message sent (pre-vote messages carry future terms and do not count). */
  term: number;
  vote: { term: number; candidate: NodeId } | null;
  /** Latest append acknowledgement: the log matched the leader's up to `index` in `term`. */
  ack: { term: number; index: number } | null;
}

const encoder = new TextEncoder();

export function hashEntry(e: { type: number; data: Uint8Array }): number {
  let h = 0x811c9dc5 ^ e.type;
  for (let i = 0; i < e.data.length; i++) h = Math.imul(h ^ e.data[i]!, 0x01000193);
  return h >>> 0;
}

function upToDate(candidate: LogImage, voter: LogImage): boolean {
  const cIndex = candidate.lastIndex();
  const vIndex = voter.lastIndex();
  const cTerm = candidate.term(cIndex) ?? 0;
  const vTerm = voter.term(vIndex) ?? 0;
  return cTerm > vTerm || (cTerm === vTerm && cIndex >= vIndex);
}

export class Checker {
  readonly violations: string[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly committed = new Map<number, Committed>();
  private maxCommitted = 0;
  /** Term of the entry at `maxCommitted` (known even when it is only a snapshot's last entry). */
  private maxCommittedTerm = 0;
  private readonly lastCommit = new Map<string, number>();
  /** Per node: the commit index its disk and state machine guarantee after a restart. */
  private readonly commitFloor = new Map<NodeId, number>();
  private readonly lastLeaderTerm = new Map<NodeId, number>();
  private readonly votes = new Map<string, NodeId>();
  private readonly promises = new Map<NodeId, Promises>();
  private readonly logEntries = new Map<number, LogEntryId[]>();
  /** Values acknowledged to clients, in ack order, with the virtual time of the ack. */
  readonly acked: { value: string; index: number; atMs: number }[] = [];
  /** ackedIndexMax[i] = highest index among acked[0..i]. */
  private readonly ackedIndexMax: number[] = [];
  elections = 0;
  /** How many times each kind of check ran (to show the checks are exercised). */
  readonly checks = { potentialLeaders: 0, appends: 0, promisesAtCrash: 0, reads: 0 };

  fail(message: string): void {
    if (this.violations.length < 20) this.violations.push(message);
  }

  // ------------------------------------------------------- per-event polling

  /** Polls one running node after an event. `incarnation` changes on every restart. */
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
      this.checkLeaderCompleteness(id, view, s.term);
    }
    const floor = this.commitFloor.get(id) ?? 0;
    if (s.commitIndex < floor) {
      this.fail(
        `${id}: commit index ${s.commitIndex} after a restart is below ${floor}, which its disk held`,
      );
    }
    const prev = this.lastCommit.get(incarnation) ?? 0;
    if (s.commitIndex < prev)
      this.fail(`${id}: commit index went back from ${prev} to ${s.commitIndex}`);
    if (s.commitIndex > prev) {
      this.lastCommit.set(incarnation, s.commitIndex);
      this.recordCommitted(id, view, Math.max(prev + 1, s.firstIndex), s.commitIndex, s.term);
    }
  }

  private recordCommitted(
    id: NodeId,
    view: LogView,
    lo: number,
    hi: number,
    nodeTerm: number,
  ): void {
    if (lo <= hi) {
      for (const e of view.entriesIn(lo, hi + 1)) {
        this.noteCommitted(id, e, "committed", nodeTerm);
      }
    }
    if (hi > this.maxCommitted) {
      this.maxCommitted = hi;
      this.maxCommittedTerm = view.termAt(hi) ?? 0;
    }
  }

  private noteCommitted(id: NodeId, e: Entry, what: string, nodeTerm: number): void {
    const c = this.committed.get(e.index);
    const hash = hashEntry(e);
    if (!c) {
      this.committed.set(e.index, { term: e.term, hash, commitTerm: nodeTerm });
    } else if (c.term === e.term && c.hash === hash) {
      if (nodeTerm < c.commitTerm) c.commitTerm = nodeTerm;
    } else {
      this.fail(
        `state machine safety: ${id} ${what} ${e.index}/${e.term} but ${e.index}/${c.term} was committed`,
      );
    }
  }

  /** Every applied entry must be the committed one at that index. */
  onApply(id: NodeId, e: Entry): void {
    // The applier's term is unknown here; observe() lowers commitTerm when it polls.
    this.noteCommitted(id, e, "applied", Number.MAX_SAFE_INTEGER);
  }

  /** A new leader of `term` holds every entry committed in an earlier term. */
  private checkLeaderCompleteness(id: NodeId, view: LogView, term: number): void {
    const s = view.summary();
    for (let i = Math.max(s.firstIndex, 1); i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      if (!c || c.commitTerm >= term) continue;
      if (i > s.lastIndex) {
        this.fail(
          `leader completeness: ${id} leads term ${term} with lastIndex ${s.lastIndex}, but ${i}/${c.term} was committed in term ${c.commitTerm} or before`,
        );
        return;
      }
      if (view.termAt(i) !== c.term) {
        this.fail(
          `leader completeness: ${id} (term ${term}) has ${i}/${view.termAt(i)}, committed ${i}/${c.term}`,
        );
        return;
      }
    }
  }

  /**
   * Leader completeness for every election that could happen next: each node
   * whose log is at least as up to date as the logs of a majority of its
   * voters (itself included) could win, so it must hold the highest committed
   * entry (and by log matching everything before it). Correct Raft guarantees
   * this at every instant; a leader that commits an earlier term's entry by
   * counting replicas (Figure 8) breaks it the moment it does so.
   */
  checkPotentialLeaders(nodes: ReadonlyMap<NodeId, ElectorView>): void {
    if (this.maxCommitted === 0) return;
    this.checks.potentialLeaders++;
    const k = this.maxCommitted;
    for (const [id, x] of nodes) {
      if (!x.voters.includes(id)) continue;
      let granted = 0;
      for (const v of x.voters) {
        if (v === id) {
          granted++;
          continue;
        }
        const y = nodes.get(v);
        if (y?.voterLogs.some((log) => upToDate(x.candidate, log))) granted++;
      }
      if (granted * 2 <= x.voters.length) continue;
      const log = x.candidate;
      const snapshotIndex = log.firstIndex() - 1;
      if (k < snapshotIndex) continue;
      const term = log.term(k);
      if (term !== this.maxCommittedTerm) {
        this.fail(
          `leader completeness: ${id} could win an election (log at least as up to date as ${granted} of ${x.voters.length} voters) but has ${k}/${term ?? "none"}, committed ${k}/${this.maxCommittedTerm}`,
        );
        return;
      }
    }
  }

  // ------------------------------------------------------------ the network

  /** Every message a node hands to the transport, before any loss. */
  onSent(m: Message): void {
    if (m.type === "MsgPreVote" || m.type === "MsgPreVoteResp") return;
    const p = this.promisesOf(m.from);
    if (m.term > p.term) p.term = m.term;
    if (m.type === "MsgVoteResp" && !m.reject) {
      const key = `${m.from}@${m.term}`;
      const before = this.votes.get(key);
      if (before !== undefined && before !== m.to) {
        this.fail(`one vote per term: ${m.from} voted for ${before} and ${m.to} in term ${m.term}`);
      }
      this.votes.set(key, m.to);
      p.vote = { term: m.term, candidate: m.to };
    } else if (m.type === "MsgAppResp" && !m.reject && m.index > 0) {
      if (!p.ack || m.term > p.ack.term || (m.term === p.ack.term && m.index > p.ack.index)) {
        p.ack = { term: m.term, index: m.index };
      }
    }
  }

  private promisesOf(id: NodeId): Promises {
    let p = this.promises.get(id);
    if (!p) {
      p = { term: 0, vote: null, ack: null };
      this.promises.set(id, p);
    }
    return p;
  }

  // --------------------------------------------------------------- the disks

  /** Entries written to `id`'s log: (index, term) must always mean the same entry. */
  onAppend(id: NodeId, entries: readonly Entry[], prevTerms: readonly number[]): void {
    this.checks.appends++;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const hash = hashEntry(e);
      const prevTerm = prevTerms[i]!;
      let seen = this.logEntries.get(e.index);
      if (!seen) {
        seen = [];
        this.logEntries.set(e.index, seen);
      }
      const same = seen.find((s) => s.term === e.term);
      if (!same) {
        seen.push({ term: e.term, hash, prevTerm, by: id });
      } else if (same.hash !== hash || same.prevTerm !== prevTerm) {
        this.fail(
          `log matching: ${id} wrote ${e.index}/${e.term} after term ${prevTerm}, but ${same.by} holds a different ${e.index}/${e.term} (after term ${same.prevTerm})`,
        );
        return;
      }
    }
  }

  /** One fsync of `id`'s disk: the durable hard state only moves forward. */
  onSync(id: NodeId, before: HardState, after: HardState): void {
    if (after.currentTerm < before.currentTerm) {
      this.fail(`${id}: durable term went back from ${before.currentTerm} to ${after.currentTerm}`);
    } else if (
      after.currentTerm === before.currentTerm &&
      before.votedFor !== null &&
      after.votedFor !== before.votedFor
    ) {
      this.fail(
        `${id}: durable vote in term ${after.currentTerm} changed from ${before.votedFor} to ${after.votedFor}`,
      );
    }
    if (after.commitIndex < before.commitIndex) {
      this.fail(
        `${id}: durable commit index went back from ${before.commitIndex} to ${after.commitIndex}`,
      );
    }
  }

  /**
   * `id` lost power; `durable` is what it restarts from and `appliedIndex` its
   * state machine's durable applied index. Everything it promised in a message
   * must be there.
   */
  onCrash(id: NodeId, durable: LogImage & { hardState(): HardState }, appliedIndex: number): void {
    this.checks.promisesAtCrash++;
    const hs = durable.hardState();
    const floor = Math.max(this.commitFloor.get(id) ?? 0, hs.commitIndex, appliedIndex);
    this.commitFloor.set(id, floor);
    const p = this.promises.get(id);
    if (!p) return;
    if (hs.currentTerm < p.term) {
      this.fail(
        `durability: ${id} sent messages in term ${p.term} but its disk says term ${hs.currentTerm}`,
      );
      return;
    }
    if (p.vote && p.vote.term === hs.currentTerm && hs.votedFor !== p.vote.candidate) {
      this.fail(
        `durability: ${id} voted for ${p.vote.candidate} in term ${p.vote.term} but after the crash its disk says votedFor ${hs.votedFor ?? "none"}`,
      );
      return;
    }
    if (p.ack && p.ack.term === hs.currentTerm && durable.lastIndex() < p.ack.index) {
      this.fail(
        `durability: ${id} acknowledged entries up to ${p.ack.index} in term ${p.ack.term} but after the crash its log ends at ${durable.lastIndex()}`,
      );
    }
  }

  /** Pairwise log matching between two live logs: equal (index, term) implies equal prefixes. */
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

  // ----------------------------------------------------------------- clients

  /** A client was told `value` is committed at `index`. */
  onAck(value: string, index: number, atMs: number): void {
    this.acked.push({ value, index, atMs });
    const before = this.ackedIndexMax[this.ackedIndexMax.length - 1] ?? 0;
    this.ackedIndexMax.push(Math.max(before, index));
    const c = this.committed.get(index);
    if (!c) {
      this.fail(`ack of ${value} at ${index} before anyone committed it`);
    } else if (c.hash !== hashEntry({ type: EntryType.Normal, data: encoder.encode(value) })) {
      this.fail(`ack of ${value} at ${index}, but the entry committed there is another one`);
    }
  }

  /**
   * A ReadIndex read issued at `issuedMs` on `node` was served at `readIndex`,
   * with the node's state machine at `appliedIndex`. The state at the read
   * index must contain every write acknowledged before the read was issued,
   * and the read index must be committed.
   */
  checkRead(node: NodeId, issuedMs: number, readIndex: number, appliedIndex: number): void {
    this.checks.reads++;
    // The last ack strictly before issuedMs (acks are pushed in time order).
    let lo = 0;
    let hi = this.acked.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.acked[mid]!.atMs < issuedMs) lo = mid + 1;
      else hi = mid;
    }
    const needed = lo > 0 ? this.ackedIndexMax[lo - 1]! : 0;
    if (readIndex < needed) {
      const a = this.acked.slice(0, lo).find((x) => x.index > readIndex)!;
      this.fail(
        `linearizable read on ${node} at ${issuedMs}ms served at index ${readIndex}, missing ${a.value} acked at ${a.atMs}ms at index ${a.index}`,
      );
    } else if (readIndex > this.maxCommitted) {
      this.fail(
        `linearizable read on ${node} served at index ${readIndex}, beyond anything committed (${this.maxCommitted})`,
      );
    } else if (appliedIndex < readIndex) {
      this.fail(
        `linearizable read on ${node} answered at applied ${appliedIndex} before its read index ${readIndex}`,
      );
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

  /** Highest index of any acknowledged write. */
  ackedIndexMaxSoFar(): number {
    return this.ackedIndexMax[this.ackedIndexMax.length - 1] ?? 0;
  }

  committedCount(): number {
    return this.maxCommitted;
  }
}
