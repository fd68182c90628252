/**
 * Named failure points (etcd's gofail) at the steps of the driver's ordering
 * contract, so tests and the simulator can crash a node exactly between two of
 * them (after a snapshot restore but before the log forgets, before a send, ...).
 * Inert unless a test enables one: production builds the same driver with an
 * empty set.
 */

export const FAIL_POINTS = [
  "raft_before_persist",
  "raft_after_snapshot_restore",
  "raft_before_send",
  "apply_before_commit_batch",
  "raft_before_advance",
  "raft_before_compact",
] as const;
export type FailPointName = (typeof FAIL_POINTS)[number];

/** The enabled points; an action that throws crashes the driver at that point. */
export class FailPoints {
  private readonly actions = new Map<FailPointName, () => void>();

  enable(name: FailPointName, action: () => void): void {
    this.actions.set(name, action);
  }

  disable(name: FailPointName): void {
    this.actions.delete(name);
  }

  trigger(name: FailPointName): void {
    const action = this.actions.get(name);
    if (action) action();
  }
}

/** Thrown by a fail point action to simulate a crash at that point. */
export class InjectedCrash extends Error {
  override readonly name = "InjectedCrash";
}
