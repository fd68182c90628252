/**
 * The driver's bookkeeping of requests waiting on the log: proposals until their
 * entry is applied, reads until their ReadIndex is applied, membership changes
 * until their entry is applied, a leadership transfer until the new leader shows.
 * Each is settled exactly once: by the outcome, by a timeout (the caller must not
 * wait forever on a lost message), or by the driver stopping. Bounded: proposals
 * by `proposalsMax`, changes to one in the log at a time, one transfer.
 */
import { KvError } from "../proto/index.js";
import type { Entry, NodeId } from "./storage.js";
import type { ConfChangeType, ReadState } from "./types.js";

export interface PendingLimits {
  /** A proposal, read or membership change not done within this many ticks fails with TIMEOUT. */
  requestTimeoutTicks: number;
  /** A transfer whose target has not taken over within this many ticks fails with TIMEOUT. */
  transferTimeoutTicks: number;
  /** Most proposals waiting for commit at once. */
  proposalsMax: number;
  /**
   * A read with no answer yet is asked again after this many ticks (a MsgReadIndex or its
   * answer lost, or a leader that died with it), and at once when the leader changes.
   */
  readReaskTicks: number;
}

interface PendingProposal<R> {
  term: number;
  ticks: number;
  resolve: (v: { index: number; result: R }) => void;
  reject: (err: unknown) => void;
}

interface PendingRead {
  index: number | null;
  ticks: number;
  /** Ticks since this read was last asked of a leader. */
  sinceAsked: number;
  resolve: (index: number) => void;
  reject: (err: unknown) => void;
}

interface PendingConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Travels in the committed entry (ConfChange.context: an AddLearner's address). */
  context?: Uint8Array;
  ticks: number;
  index: number | null;
  term: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface PendingTransfer {
  to: NodeId;
  ticks: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class PendingRequests<R> {
  private readonly proposals = new Map<number, PendingProposal<R>>();
  private readonly reads = new Map<number, PendingRead>();
  private readonly confChanges: PendingConfChange[] = [];
  private transfer: PendingTransfer | null = null;

  /** `leaderId` names the leader a dropped proposal should be retried at. */
  constructor(
    private readonly limits: PendingLimits,
    private readonly leaderId: () => NodeId | null,
  ) {}

  proposalsFull(): boolean {
    return this.proposals.size >= this.limits.proposalsMax;
  }

  /** A proposal placed at `index` in `term`; settled when that index is applied. */
  addProposal(placed: { index: number; term: number }): Promise<{ index: number; result: R }> {
    return new Promise((resolve, reject) => {
      this.proposals.set(placed.index, { term: placed.term, ticks: 0, resolve, reject });
    });
  }

  /** A read asked with `context`; its index comes in a ReadState. */
  addRead(context: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.reads.set(context, { index: null, ticks: 0, sinceAsked: 0, resolve, reject });
    });
  }

  /** A transfer to `to`; it supersedes one still waiting. */
  addTransfer(to: NodeId): Promise<void> {
    return new Promise((resolve, reject) => {
      this.transfer?.reject(new KvError("TIMEOUT", "superseded by another transfer"));
      this.transfer = { to, ticks: 0, resolve, reject };
    });
  }

  /** A membership change, queued: `proposeConfChanges` places them one at a time. */
  addConfChange(type: ConfChangeType, nodeId: NodeId, context?: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.confChanges.push({
        type,
        nodeId,
        ...(context === undefined ? {} : { context }),
        ticks: 0,
        index: null,
        term: 0,
        resolve,
        reject,
      });
    });
  }

  /**
   * Proposes the first waiting change through `propose` (the core's
   * proposeConfChange, which answers null while it cannot take one yet).
   */
  proposeConfChanges(
    propose: (
      type: ConfChangeType,
      nodeId: NodeId,
      context: Uint8Array | undefined,
    ) => { index: number; term: number } | null,
  ): void {
    const cc = this.confChanges[0];
    if (!cc || cc.index !== null) return;
    try {
      const placed = propose(cc.type, cc.nodeId, cc.context);
      if (placed) {
        cc.index = placed.index;
        cc.term = placed.term;
      }
    } catch (err) {
      this.confChanges.shift();
      cc.reject(err);
    }
  }

  /** `entry` was applied with `result`: settles the proposal or change placed there. */
  applied(entry: Entry, result: R): void {
    this.settleProposal(entry, result);
    this.settleConfChange(entry);
  }

  /** The entry's result is known before its apply is written: its proposal is answered. */
  decided(entry: Entry, result: R): void {
    this.settleProposal(entry, result);
  }

  private settleProposal(entry: Entry, result: R): void {
    const p = this.proposals.get(entry.index);
    if (!p) return;
    this.proposals.delete(entry.index);
    if (p.term === entry.term) {
      p.resolve({ index: entry.index, result });
    } else {
      // Another leader's entry took this slot: ours was never committed.
      const leaderId = this.leaderId();
      p.reject(
        new KvError("NOT_LEADER", "proposal dropped by a leadership change", {
          ...(leaderId ? { leaderId } : {}),
        }),
      );
    }
  }

  /** The conf change we proposed was applied here (same term) or replaced (other term). */
  private settleConfChange(entry: Entry): void {
    const cc = this.confChanges[0];
    if (!cc || cc.index !== entry.index) return;
    this.confChanges.shift();
    if (cc.term === entry.term) cc.resolve();
    else cc.reject(new KvError("NOT_LEADER", "membership change dropped by a leadership change"));
  }

  /** A snapshot jumped over indexes up to `index`: requests there have an unknown outcome. */
  replacedBySnapshot(index: number): void {
    for (const [i, p] of this.proposals) {
      if (i > index) continue;
      this.proposals.delete(i);
      p.reject(new KvError("TIMEOUT", "outcome unknown: replaced by a snapshot"));
    }
    const cc = this.confChanges[0];
    if (cc && cc.index !== null && cc.index <= index) {
      this.confChanges.shift();
      cc.reject(new KvError("TIMEOUT", "outcome unknown: replaced by a snapshot"));
    }
  }

  /** The core answered reads: each resolves once `appliedIndex` reaches its index. */
  readStates(states: ReadState[]): void {
    for (const rs of states) {
      const read = this.reads.get(rs.context);
      // The first answer counts: a read asked again may be answered twice (by the old
      // and the new leader), and either index is a safe read point for it.
      if (read && read.index === null) read.index = rs.index;
    }
  }

  settleReads(appliedIndex: number): void {
    for (const [ctx, r] of this.reads) {
      if (r.index !== null && appliedIndex >= r.index) {
        this.reads.delete(ctx);
        r.resolve(r.index);
      }
    }
  }

  /** The known leader changed: a transfer to it is done. */
  leaderChanged(leaderId: NodeId | null): void {
    if (this.transfer && leaderId === this.transfer.to) {
      const t = this.transfer;
      this.transfer = null;
      t.resolve();
    }
  }

  /**
   * Contexts of reads still waiting for their read index that should be asked (again):
   * all of them when `all` (the leader changed), else those unanswered for
   * `readReaskTicks`. Their ask counters restart.
   */
  readsToAsk(all: boolean): number[] {
    const out: number[] = [];
    for (const [ctx, r] of this.reads) {
      if (r.index !== null) continue;
      if (!all && r.sinceAsked < this.limits.readReaskTicks) continue;
      r.sinceAsked = 0;
      out.push(ctx);
    }
    return out;
  }

  /** One tick: fails the requests that waited too long with TIMEOUT. */
  tick(): void {
    const timeout = new KvError("TIMEOUT", "request timed out");
    const ticksMax = this.limits.requestTimeoutTicks;
    for (const [i, p] of this.proposals) {
      if (++p.ticks < ticksMax) continue;
      this.proposals.delete(i);
      p.reject(timeout);
    }
    for (const [ctx, r] of this.reads) {
      r.sinceAsked++;
      if (++r.ticks < ticksMax) continue;
      this.reads.delete(ctx);
      r.reject(timeout);
    }
    for (let i = 0; i < this.confChanges.length; i++) {
      const cc = this.confChanges[i]!;
      if (++cc.ticks < ticksMax) continue;
      this.confChanges.splice(i, 1);
      i--;
      cc.reject(timeout);
    }
    if (this.transfer && ++this.transfer.ticks >= this.limits.transferTimeoutTicks) {
      const t = this.transfer;
      this.transfer = null;
      t.reject(new KvError("TIMEOUT", `leadership did not move to ${t.to}`));
    }
  }

  /** The driver stops: everything still waiting fails with `err`. */
  failAll(err: KvError): void {
    for (const p of this.proposals.values()) p.reject(err);
    this.proposals.clear();
    for (const r of this.reads.values()) r.reject(err);
    this.reads.clear();
    for (const cc of this.confChanges) cc.reject(err);
    this.confChanges.length = 0;
    this.transfer?.reject(err);
    this.transfer = null;
  }
}
