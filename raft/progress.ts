/**
 * What the leader knows about one follower (etcd-io/raft tracker/progress.go):
 * `matchIndex` (highest index known replicated) and `nextIndex` (next to send),
 * and how to send: `probe` (one message at a time until the follower's log is
 * found), `replicate` (pipelined, optimistic nextIndex, bounded by Inflights),
 * `snapshot` (an InstallSnapshot transfer is running; nothing else is sent).
 */
import { assert } from "./assert.js";
import { Inflights } from "./inflights.js";

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  matchIndex = 0;
  nextIndex: number;
  state: ProgressState = "probe";
  /** In probe state: a message was sent and no answer came back since the last heartbeat. */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  isLearner: boolean;
  readonly inflights: Inflights;
  /** Snapshot state: index of the snapshot being sent and bytes acknowledged so far. */
  snapshotIndex = 0;
  snapshotOffset = 0;
  /** Snapshot state: ticks since the last chunk acknowledgement (to restart a stuck transfer). */
  snapshotIdleTicks = 0;
  /** Heartbeat answers in a row during which appends were in flight and matchIndex did not move. */
  stalledHeartbeats = 0;
  matchAtLastHeartbeat = 0;
  /** Highest ReadIndex round this follower has acknowledged through a heartbeat. */
  readRoundAcked = 0;

  constructor(
    nextIndex: number,
    isLearner: boolean,
    inflightCountMax: number,
    inflightBytesMax: number,
  ) {
    this.nextIndex = nextIndex;
    this.isLearner = isLearner;
    this.inflights = new Inflights(inflightCountMax, inflightBytesMax);
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      this.nextIndex = Math.max(this.matchIndex + 1, this.snapshotIndex + 1);
      this.snapshotIndex = 0;
    } else {
      this.nextIndex = this.matchIndex + 1;
    }
    this.state = "probe";
    this.probeSent = false;
    this.inflights.reset();
  }

  /**
   * Called on each heartbeat answer. The network may lose appends (etcd relies
   * on TCP and unreachable reports instead); when two answers in a row come
   * back with appends in flight and no progress, they are presumed lost and
   * the follower is probed again. Returns true when it went back to probe.
   */
  heartbeatAnswered(): boolean {
    const stalled =
      this.state === "replicate" &&
      this.inflights.count() > 0 &&
      this.matchIndex === this.matchAtLastHeartbeat;
    this.matchAtLastHeartbeat = this.matchIndex;
    this.stalledHeartbeats = stalled ? this.stalledHeartbeats + 1 : 0;
    if (this.stalledHeartbeats < 2) return false;
    this.stalledHeartbeats = 0;
    this.becomeProbe();
    return true;
  }

  becomeReplicate(): void {
    this.state = "replicate";
    this.nextIndex = this.matchIndex + 1;
    this.probeSent = false;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = "snapshot";
    this.snapshotIndex = snapshotIndex;
    this.snapshotOffset = 0;
    this.snapshotIdleTicks = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** An acknowledgement up to `index`; returns whether it told us anything new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.matchIndex) {
      this.matchIndex = index;
      updated = true;
      this.probeSent = false;
    }
    this.nextIndex = Math.max(this.nextIndex, index + 1);
    return updated;
  }

  /**
   * A rejection of the append at `rejected`; `hintIndex` is the highest index
   * that may still match. Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, hintIndex: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.matchIndex) return false;
      this.nextIndex = this.matchIndex + 1;
      return true;
    }
    if (this.nextIndex - 1 !== rejected) return false;
    this.nextIndex = Math.max(Math.min(rejected, hintIndex + 1), this.matchIndex + 1);
    this.probeSent = false;
    return true;
  }

  /** Records that entries up to `lastIndex` (weighing `bytes`) were sent. */
  sentEntries(lastIndex: number, bytes: number, entryCount: number): void {
    if (this.state === "replicate") {
      if (entryCount > 0) {
        this.nextIndex = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    } else {
      assert(false, "sentEntries in snapshot state");
    }
  }

  /** Whether an append to this follower must wait (window full, probe outstanding, snapshot). */
  isPaused(): boolean {
    if (this.state === "probe") return this.probeSent;
    if (this.state === "replicate") return this.inflights.full();
    return true;
  }
}
