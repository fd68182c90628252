import { describe, expect, it } from "vitest";
import { MemoryRaftStorage } from "./memory_storage.js";
import { EntryType } from "./storage.js";
import { raftStorageContract } from "./storage_contract.js";

raftStorageContract("MemoryRaftStorage", async (options) => ({
  storage: new MemoryRaftStorage(options),
  cleanup: async () => {},
}));

/** The contract again, with a reopen that is a crash after every pending persist synced. */
raftStorageContract("MemoryRaftStorage (manual sync, reopen = crash)", async (options) => {
  let current = new MemoryRaftStorage({ ...options, manualSync: true });
  // Syncs on every microtask turn, so awaiting a persist works as in auto mode.
  let stopped = false;
  const pump = (): void => {
    if (stopped) return;
    current.sync();
    setImmediate(pump);
  };
  pump();
  const wrapper = {
    get storage() {
      return current;
    },
    reopen: async () => {
      current.sync();
      current = current.crash();
      return current;
    },
    cleanup: async () => {
      stopped = true;
    },
  };
  return wrapper;
});

const entry = (index: number, term: number) => ({
  index,
  term,
  type: EntryType.Normal,
  data: new Uint8Array([index]),
});

describe("MemoryRaftStorage manual sync", () => {
  it("keeps persists pending until sync, then resolves them in order", async () => {
    const s = new MemoryRaftStorage({ manualSync: true });
    const resolved: number[] = [];
    const p1 = s.persist({ entries: [entry(1, 1)] }).then(() => resolved.push(1));
    const p2 = s.persist({ entries: [entry(2, 1)] }).then(() => resolved.push(2));
    expect(s.lastIndex()).toBe(2);
    expect(s.stats().pending).toBe(2);
    await Promise.resolve();
    expect(resolved).toEqual([]);
    expect(s.sync(1)).toBe(1);
    await p1;
    expect(resolved).toEqual([1]);
    expect(s.sync()).toBe(1);
    await p2;
    expect(resolved).toEqual([1, 2]);
    expect(s.stats().syncs).toBe(2);
  });

  it("crash() keeps only what was synced", async () => {
    const s = new MemoryRaftStorage({ manualSync: true });
    void s.persist({ entries: [entry(1, 1), entry(2, 1)] });
    void s.persist({ hardState: { currentTerm: 1, votedFor: "a", commitIndex: 0 } });
    s.sync(1);
    void s.persist({ entries: [entry(3, 1)] });
    void s.compact(2, { index: 2, term: 1, conf: { voters: ["a"], learners: [] } });
    const after = s.crash();
    expect(after.lastIndex()).toBe(2);
    expect(after.firstIndex()).toBe(1);
    expect(after.initialState().hardState.votedFor).toBeNull();
    expect(() => s.persist({ entries: [entry(3, 1)] })).toThrow();
    // The new disk works on its own.
    const p = after.persist({ entries: [entry(3, 2)] });
    after.sync();
    await p;
    expect(after.crash().term(3)).toBe(2);
  });

  it("resolves an unsynced commit-index update at once, and a crash before the next sync loses it", async () => {
    const s = new MemoryRaftStorage({ manualSync: true });
    const first = s.persist({ hardState: { currentTerm: 1, votedFor: "a", commitIndex: 0 } });
    s.sync();
    await first;
    await s.persist({ hardState: { currentTerm: 1, votedFor: "a", commitIndex: 4 }, sync: false });
    expect(s.initialState().hardState.commitIndex).toBe(4);
    expect(s.crash().initialState().hardState).toEqual({
      currentTerm: 1,
      votedFor: "a",
      commitIndex: 0,
    });
  });

  it("sync() is refused in auto mode", () => {
    expect(() => new MemoryRaftStorage().sync()).toThrow();
  });
});
