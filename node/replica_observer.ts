/**
 * What a replica tells the metrics while it works: how long each Raft persist (the
 * synced LevelDB write, group commit included) and each apply took, snapshot
 * transfers and their duration, and leader changes. The replica calls it; production
 * passes NodeMetrics' implementation, the simulator none (nothing is measured there,
 * so virtual time never meets a wall-clock reading).
 *
 * The timing wrappers sit at the seams (RaftStorage.persist, RaftStateMachine.apply) so
 * raft/ stays free of clocks: the driver never knows it is being timed.
 */
import type { RaftStateMachine, RaftStorage } from "../raft/index.js";

export interface ReplicaObserver {
  /** A Raft Ready was made durable (fsync) in `seconds`. */
  persisted(seconds: number): void;
  /** `entries` committed entries were applied to the KV state in `seconds`. */
  applied(seconds: number, entries: number): void;
  /** This node knows a new leader (null: none). Called once per change, not per term. */
  leaderChanged(leader: string | null): void;
  /**
   * A snapshot transfer ended: `send` is a leader's, from opening the image to reading
   * its last chunk for the follower, `install` a follower's, from its first chunk to the
   * synced install. Abandoned transfers are not timed (the driver counts them as failed).
   */
  snapshotTransfer(kind: "send" | "install", seconds: number): void;
}

const secondsSince = (startedMs: number) => (performance.now() - startedMs) / 1000;

/** `storage` whose persists report their duration; everything else passes through. */
export function timedStorage(storage: RaftStorage, observer: ReplicaObserver): RaftStorage {
  return new Proxy(storage, {
    get(target, prop, receiver) {
      if (prop !== "persist") {
        const value = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      }
      return async (request: Parameters<RaftStorage["persist"]>[0]) => {
        const started = performance.now();
        await target.persist(request);
        observer.persisted(secondsSince(started));
      };
    },
  });
}

/** `sm` whose applies report their duration; the rest of the seam is `sm` itself. */
export function timedStateMachine<R>(
  sm: RaftStateMachine<R>,
  observer: ReplicaObserver,
): RaftStateMachine<R> {
  return new Proxy(sm, {
    get(target, prop, receiver) {
      if (prop !== "apply") {
        const value = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      }
      return async (entries: Parameters<RaftStateMachine<R>["apply"]>[0]) => {
        const started = performance.now();
        const results = await target.apply(entries);
        observer.applied(secondsSince(started), entries.length);
        return results;
      };
    },
  });
}

/** A stopwatch for one snapshot transfer: the first call reports, later ones do nothing. */
export function transferTimer(
  observer: ReplicaObserver | undefined,
  kind: "send" | "install",
): () => void {
  const started = performance.now();
  let reported = false;
  return () => {
    if (reported || observer === undefined) return;
    reported = true;
    observer.snapshotTransfer(kind, secondsSince(started));
  };
}
