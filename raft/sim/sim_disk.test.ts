import { describe, expect, it } from "vitest";
import { Sfc32 } from "../prng.js";
import { type Entry, EntryType, type HardState } from "../storage.js";
import { EventQueue } from "./event_queue.js";
import { SimDisk } from "./sim_disk.js";

const conf = { voters: ["n1", "n2", "n3"], learners: [] };

function entry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array([index]) };
}

function hs(currentTerm: number, votedFor: string | null, commitIndex = 0): HardState {
  return { currentTerm, votedFor, commitIndex };
}

/** Runs every event due up to `untilMs` (the fsyncs). */
function runUntil(events: EventQueue, untilMs: number): void {
  for (let i = 0; i < 1000; i++) {
    const ev = events.pop();
    if (!ev) return;
    if (ev.timeMs > untilMs) {
      events.at(ev.timeMs, ev.run);
      return;
    }
    ev.run();
  }
}

describe("SimDisk", () => {
  it("a vote that was not fsynced is gone after a crash; a synced one stays", async () => {
    const events = new EventQueue();
    const disk = new SimDisk(events, new Sfc32(1), conf);
    const storage = disk.open();
    let synced = false;
    void storage.persist({ hardState: hs(3, "n2") }).then(() => {
      synced = true;
    });
    // Readers see the write at once, as the storage contract says...
    expect(disk.initialState().hardState).toEqual(hs(3, "n2"));
    // ...but the durable image does not have it until the fsync.
    expect(disk.durableImage().hardState()).toEqual(hs(0, null));
    disk.crash();
    expect(disk.initialState().hardState).toEqual(hs(0, null));
    runUntil(events, 100);
    await Promise.resolve();
    expect(synced).toBe(false);

    const again = disk.open();
    let done = false;
    void again.persist({ hardState: hs(3, "n3") }).then(() => {
      done = true;
    });
    runUntil(events, 200);
    await Promise.resolve();
    expect(done).toBe(true);
    disk.crash();
    expect(disk.initialState().hardState).toEqual(hs(3, "n3"));
  });

  it("unsynced entries and compactions are dropped by a crash", () => {
    const events = new EventQueue();
    const disk = new SimDisk(events, new Sfc32(2), conf);
    const storage = disk.open();
    void storage.persist({ entries: [entry(1, 1), entry(2, 1)] });
    runUntil(events, 100);
    void storage.persist({ entries: [entry(3, 1)], hardState: hs(1, null, 2) });
    void storage.compact(2, { index: 2, term: 1, conf });
    expect(disk.lastIndex()).toBe(3);
    expect(disk.firstIndex()).toBe(3);
    disk.crash();
    expect(disk.lastIndex()).toBe(2);
    expect(disk.firstIndex()).toBe(1);
    expect(disk.initialState().hardState).toEqual(hs(0, null));
  });

  it("a torn crash keeps a prefix of the unsynced writes, in order", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const events = new EventQueue();
      const disk = new SimDisk(events, new Sfc32(seed), conf);
      disk.tornKeepP = 1;
      const storage = disk.open();
      for (let i = 1; i <= 5; i++) {
        void storage.persist({ entries: [entry(i, 1)], hardState: hs(1, null, i - 1) });
      }
      disk.crash();
      const last = disk.lastIndex();
      expect(last).toBeGreaterThanOrEqual(0);
      expect(last).toBeLessThanOrEqual(5);
      // Whatever survived came with the hard state written in the same request.
      expect(disk.initialState().hardState.commitIndex).toBe(Math.max(0, last - 1));
      expect(disk.initialState().hardState.currentTerm).toBe(last === 0 ? 0 : 1);
    }
  });

  it("writes from an incarnation that lost power never reach the new images", () => {
    const events = new EventQueue();
    const disk = new SimDisk(events, new Sfc32(3), conf);
    const old = disk.open();
    disk.crash();
    let settled = false;
    void old.persist({ hardState: hs(9, "n1") }).then(() => {
      settled = true;
    });
    runUntil(events, 100);
    expect(disk.initialState().hardState).toEqual(hs(0, null));
    expect(disk.unsyncedCount()).toBe(0);
    expect(settled).toBe(false);
  });

  it("reports every append with the term before it, and every fsync of the hard state", () => {
    const events = new EventQueue();
    const disk = new SimDisk(events, new Sfc32(4), conf);
    const appends: string[] = [];
    const syncs: string[] = [];
    disk.observer = {
      onAppend: (entries, prevTerms) => {
        entries.forEach((e, i) => {
          appends.push(`${e.index}/${e.term}<${prevTerms[i]}`);
        });
      },
      onSync: (before, after) => syncs.push(`${before.currentTerm}->${after.currentTerm}`),
    };
    const storage = disk.open();
    void storage.persist({ entries: [entry(1, 1), entry(2, 1)], hardState: hs(1, "n1") });
    void storage.persist({ entries: [entry(2, 2)], hardState: hs(2, "n2") });
    runUntil(events, 100);
    expect(appends).toEqual(["1/1<0", "2/1<1", "2/2<1"]);
    // The second write arrived after the first fsync had started: it needs its own.
    expect(syncs).toEqual(["0->1", "1->2"]);
  });
});
