import { describe, expect, it } from "vitest";
import type { RaftStateMachine, RaftStorage } from "../raft/index.js";
import {
  type ReplicaObserver,
  timedStateMachine,
  timedStorage,
  transferTimer,
} from "./replica_observer.js";

function recorder() {
  const seen: string[] = [];
  const observer: ReplicaObserver = {
    persisted: (s) => seen.push(`persisted ${s >= 0}`),
    applied: (s, n) => seen.push(`applied ${n} ${s >= 0}`),
    leaderChanged: (l) => seen.push(`leader ${l}`),
    snapshotTransfer: (kind, s) => seen.push(`${kind} ${s >= 0}`),
  };
  return { seen, observer };
}

/** A stand-in with a private field: a method called on the wrong `this` would throw. */
class FakeStorage {
  #persists = 0;
  #fail = false;
  async persist(): Promise<void> {
    this.#persists++;
    if (this.#fail) throw new Error("disk gone");
  }
  firstIndex(): number {
    return this.#persists + 1;
  }
  failNext(): void {
    this.#fail = true;
  }
}

describe("replica observer", () => {
  it("times each persist and passes every other call through to the storage", async () => {
    const { seen, observer } = recorder();
    const real = new FakeStorage();
    const storage = timedStorage(real as unknown as RaftStorage, observer);
    await storage.persist({} as never);
    await storage.persist({} as never);
    expect(storage.firstIndex()).toBe(3);
    expect(seen).toEqual(["persisted true", "persisted true"]);
    // A failed persist is fatal upstream: it is not timed as if it had been durable.
    real.failNext();
    await expect(storage.persist({} as never)).rejects.toThrow("disk gone");
    expect(seen).toHaveLength(2);
  });

  it("times each apply with its entry count and returns the state machine's results", async () => {
    const { seen, observer } = recorder();
    const sm = {
      snapshots: "kept",
      appliedIndex: () => 7,
      apply: async (entries: unknown[]) => entries.map((_, i) => i),
    } as unknown as RaftStateMachine<number>;
    const timed = timedStateMachine(sm, observer);
    expect(await timed.apply([{}, {}, {}] as never)).toEqual([0, 1, 2]);
    expect(timed.appliedIndex()).toBe(7);
    expect(timed.snapshots).toBe("kept");
    expect(seen).toEqual(["applied 3 true"]);
  });

  it("reports a snapshot transfer once however often it is told, and not without an observer", () => {
    const { seen, observer } = recorder();
    const done = transferTimer(observer, "install");
    done();
    done();
    expect(seen).toEqual(["install true"]);
    expect(() => transferTimer(undefined, "send")()).not.toThrow();
  });
});
