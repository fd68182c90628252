/**
 * The Raft state machine of a node: kvapi's `KvStateMachine`, seen through the driver's
 * `RaftStateMachine` seam (raft/driver.ts). Normal entries are kvapi commands; Raft's own
 * entries (no-ops, membership) never reach kvapi but still count as applied, so the
 * driver and ReadIndex see every committed entry applied.
 */
import type { ApplyResult, KvStateMachine } from "../kvapi/index.js";
import { assert } from "../proto/index.js";
import {
  ConfChangeType,
  decodeConfChange,
  type Entry,
  EntryType,
  type RaftStateMachine,
  type SnapshotMeta,
} from "../raft/index.js";
import type { Logger } from "./log.js";
import type { KvSnapshotStore } from "./snapshot_store.js";

export type KvApplyResult = ApplyResult | undefined;

const CONF_CHANGE_NAMES: Record<ConfChangeType, string> = {
  [ConfChangeType.AddLearner]: "add learner",
  [ConfChangeType.PromoteLearner]: "promote learner",
  [ConfChangeType.RemoveServer]: "remove server",
};

export class KvRaftStateMachine implements RaftStateMachine<KvApplyResult> {
  /** Highest Raft-only entry applied (kvapi records its own applied index). */
  private appliedOther = 0;

  constructor(
    private readonly kv: KvStateMachine,
    readonly snapshots: KvSnapshotStore,
    /**
     * A committed AddLearner entry carried the new member's peer address (its context):
     * the one place, with --peers, that peer addresses come from.
     */
    private readonly onMemberAddress?: (id: string, address: string) => void,
    /** Committed membership changes are logged at info, on every member. */
    private readonly log?: Logger,
  ) {}

  appliedIndex(): number {
    return Math.max(this.kv.appliedIndex(), this.appliedOther);
  }

  restoredMeta(): SnapshotMeta {
    return this.snapshots.restoredMeta();
  }

  async apply(
    entries: Entry[],
    decided?: (entry: Entry, result: KvApplyResult) => void,
  ): Promise<KvApplyResult[]> {
    // The normal entries of a round go to kvapi as one batch. Not synced: they are
    // already durable in the Raft log, which replays them after a crash (kvapi dedupes
    // by index and request id). Each result is passed on as soon as kvapi decided it, so
    // a write is answered without waiting for the apply's LevelDB write (issue 11).
    const normal = entries.filter((e) => e.type === EntryType.Normal);
    let heard = 0;
    const onDecided =
      decided &&
      ((r: ApplyResult) => {
        const entry = normal[heard++]!;
        assert(entry.index === r.index, `decided entry ${r.index}, expected ${entry.index}`);
        decided(entry, r);
      });
    const applied =
      normal.length > 0
        ? await this.kv.applyBatch(normal, { sync: false, ...(onDecided ? { onDecided } : {}) })
        : [];
    let next = 0;
    const results = entries.map((e) => (e.type === EntryType.Normal ? applied[next++] : undefined));
    for (const e of entries) {
      if (e.type !== EntryType.ConfChange) continue;
      const cc = decodeConfChange(e.data);
      this.log?.info("membership change applied", {
        change: CONF_CHANGE_NAMES[cc.type],
        member: cc.nodeId,
        index: e.index,
      });
      if (!this.onMemberAddress) continue;
      if (cc.type === ConfChangeType.AddLearner && cc.context && cc.context.length > 0) {
        this.onMemberAddress(cc.nodeId, new TextDecoder().decode(cc.context));
      }
    }
    const last = entries[entries.length - 1];
    if (last && last.index > this.appliedOther) this.appliedOther = last.index;
    return results;
  }
}
