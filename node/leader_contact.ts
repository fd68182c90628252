/**
 * Whether this node is in touch with a working leader, judged from the Raft messages it
 * receives: a follower must have heard from its leader, a leader from a majority of the
 * voters, within `timeoutMs`; a node with no leader keeps the time it last was in touch.
 * A node out of touch for longer than that cannot promise its watches anything new (it
 * is partitioned, or behind a leader it cannot reach), so it ends them and its clients
 * move to another node (etcd's WithRequireLeader, always on here).
 *
 * Pure: the caller passes the time and the Raft role; no timers of its own. The time is
 * elapsed time (`Clock.elapsedMs`), never the wall clock: a wall clock stepped back would
 * stretch "in touch" by the step, and one stepped forward would end watches for nothing.
 */
export interface ContactView {
  role: string;
  leaderId: string | null;
  voters: readonly string[];
}

export class LeaderContact {
  private readonly lastHeardMs = new Map<string, number>();
  private lastInTouchMs: number;

  constructor(
    private readonly selfId: string,
    readonly timeoutMs: number,
    nowMs: number,
  ) {
    // A node that just started has had no chance to hear anyone yet.
    this.lastInTouchMs = nowMs;
  }

  /** A Raft message from `from` arrived. */
  heard(from: string, nowMs: number): void {
    this.lastHeardMs.set(from, nowMs);
  }

  /** Whether the node was in touch with a working leader within the timeout. */
  inTouch(view: ContactView, nowMs: number): boolean {
    const since = this.touchedAt(view, nowMs);
    if (since > this.lastInTouchMs) this.lastInTouchMs = since;
    return nowMs - this.lastInTouchMs <= this.timeoutMs;
  }

  /** How long ago this node was last in touch with a working leader. */
  outOfTouchMs(view: ContactView, nowMs: number): number {
    this.inTouch(view, nowMs);
    return nowMs - this.lastInTouchMs;
  }

  /** Peers that left the configuration are forgotten, so the map stays bounded. */
  forgetAllBut(members: readonly string[]): void {
    const keep = new Set(members);
    for (const id of this.lastHeardMs.keys()) if (!keep.has(id)) this.lastHeardMs.delete(id);
  }

  private touchedAt(view: ContactView, nowMs: number): number {
    if (view.role === "leader") {
      // The time by which a majority of voters (this node counts, now) had been heard.
      const times = view.voters
        .map((id) => (id === this.selfId ? nowMs : (this.lastHeardMs.get(id) ?? 0)))
        .sort((a, b) => b - a);
      if (times.length === 0) return nowMs;
      return times[Math.floor(times.length / 2)]!;
    }
    if (view.leaderId === null || view.leaderId === this.selfId) return 0;
    return this.lastHeardMs.get(view.leaderId) ?? 0;
  }
}
