import { describe, expect, it } from "vitest";
import { StreamLog } from "../log/index.js";
import { Sfc32 } from "../raft/index.js";
import { EventQueue } from "../raft/sim/event_queue.js";
import { SimLevelDisk } from "./sim_level_disk.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

/** Runs the queue's events, letting promise continuations settle between them. */
async function drain(events: EventQueue): Promise<void> {
  for (;;) {
    await new Promise((r) => setImmediate(r));
    const ev = events.pop();
    if (!ev) return;
    ev.run();
  }
}

describe("SimLevelDisk", () => {
  it("keeps synced writes and the unsynced ones before them, and loses the rest", async () => {
    const events = new EventQueue();
    const disk = new SimLevelDisk(events, new Sfc32(1));
    const log = await StreamLog.open(await disk.open());
    await log.writeMeta({ a: enc("1") });
    const synced = log.writeMeta({ b: enc("2") }, { sync: true });
    let done = false;
    void synced.then(() => {
      done = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    await drain(events);
    expect(done).toBe(true);
    await log.writeMeta({ c: enc("3") });
    expect(dec(await log.getMeta("c"))).toBe("3");
    disk.crash();
    const again = await StreamLog.open(await disk.open());
    expect(
      [await again.getMeta("a"), await again.getMeta("b"), await again.getMeta("c")].map(dec),
    ).toEqual(["1", "2", null]);
  });

  it("a synced write in flight at the crash is lost and never resolves", async () => {
    const events = new EventQueue();
    const disk = new SimLevelDisk(events, new Sfc32(2));
    const log = await StreamLog.open(await disk.open());
    let settled = false;
    void log.writeMeta({ a: enc("1") }, { sync: true }).finally(() => {
      settled = true;
    });
    await new Promise((r) => setImmediate(r));
    disk.crash();
    await drain(events);
    expect(settled).toBe(false);
    const again = await StreamLog.open(await disk.open());
    expect(await again.getMeta("a")).toBeNull();
    // The old incarnation's later writes reach neither image.
    void log.writeMeta({ z: enc("9") }, { sync: true });
    await drain(events);
    disk.crash();
    const third = await StreamLog.open(await disk.open());
    expect(await third.getMeta("z")).toBeNull();
  });
});
