/**
 * SEMANTICS.md "Watch" against a real stream log: every option, wildcards,
 * the initial/live boundary under concurrent writes, slow consumers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StreamLog } from "../log/index.js";
import { isKvError } from "../proto/index.js";
import { KvStateMachine } from "./index.js";
import { bytes, Driver, errorCode, show, take } from "./test_support.js";
import type { Entry, Watcher } from "./types.js";

let dir: string;
let log: StreamLog;
let kv: KvStateMachine;
let d: Driver;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "streamkv-watch-"));
  log = await StreamLog.open(dir);
  kv = await KvStateMachine.open(log);
  d = new Driver(kv);
  await d.createBucket({ bucket: "b", history: 5 });
});

afterEach(async () => {
  kv.close();
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Takes entries until the init-done null (inclusive). */
async function initial(w: Watcher): Promise<Array<Entry | null>> {
  const out: Array<Entry | null> = [];
  for (;;) {
    const r = await w.next();
    if (r.done) throw new Error("watch ended before its initial values were done");
    out.push(r.value);
    if (r.value === null) return out;
  }
}

/** Puts t.name@1, t.age@2, x@3, t.name@4, t.age DEL@5. */
async function sample(): Promise<void> {
  await d.put("b", "t.name", "ann");
  await d.put("b", "t.age", "30");
  await d.put("b", "x", "other");
  await d.put("b", "t.name", "bob");
  await d.del("b", "t.age");
}

describe("watch", () => {
  it("default: latest entry per key (markers included) in revision order, null, then live", async () => {
    await sample();
    const w = kv.watch("b", "t.*");
    expect((await initial(w)).map(show)).toEqual(["4:t.name:PUT=bob", "5:t.age:DEL", "null"]);
    await d.put("b", "x", "ignored");
    await d.put("b", "t.age", "31");
    await d.purge("b", "t.name");
    expect((await take(w, 2)).map(show)).toEqual(["7:t.age:PUT=31", "8:t.name:PURGE"]);
    w.stop();
  });

  it("watchAll (>) covers every key", async () => {
    await sample();
    const w = kv.watch("b");
    expect((await initial(w)).map(show)).toEqual([
      "3:x:PUT=other",
      "4:t.name:PUT=bob",
      "5:t.age:DEL",
      "null",
    ]);
    w.stop();
  });

  it("an empty bucket gives the null at once", async () => {
    const w = kv.watch("b", ">");
    expect(await take(w, 1)).toEqual([null]);
    await d.put("b", "k", "v");
    expect((await take(w, 1)).map(show)).toEqual(["1:k:PUT=v"]);
    w.stop();
  });

  it("includeHistory: every retained entry", async () => {
    await sample();
    const w = kv.watch("b", "t.*", { includeHistory: true });
    expect((await initial(w)).map(show)).toEqual([
      "1:t.name:PUT=ann",
      "2:t.age:PUT=30",
      "4:t.name:PUT=bob",
      "5:t.age:DEL",
      "null",
    ]);
    w.stop();
  });

  it("ignoreDeletes drops DEL and PURGE, initial and live", async () => {
    await sample();
    const w = kv.watch("b", "t.*", { ignoreDeletes: true });
    expect((await initial(w)).map(show)).toEqual(["4:t.name:PUT=bob", "null"]);
    await d.del("b", "t.name");
    await d.purge("b", "t.name");
    await d.put("b", "t.age", "1");
    expect((await take(w, 1)).map(show)).toEqual(["8:t.age:PUT=1"]);
    w.stop();
    const h = kv.watch("b", "t.*", { ignoreDeletes: true, includeHistory: true });
    expect((await initial(h)).map(show)).toEqual(["2:t.age:PUT=30", "8:t.age:PUT=1", "null"]);
    h.stop();
  });

  it("metaOnly: no value bytes, the size is known", async () => {
    await d.put("b", "k", "hello");
    const w = kv.watch("b", "k", { metaOnly: true });
    const [first] = await take(w, 1);
    expect([first!.value.length, first!.size, first!.revision]).toEqual([0, 5, 1]);
    expect(await take(w, 1)).toEqual([null]);
    await d.put("b", "k", "abc");
    const [live] = await take(w, 1);
    expect([live!.value.length, live!.size]).toEqual([0, 3]);
    w.stop();
  });

  it("updatesOnly: no initial values, the null first, then live", async () => {
    await sample();
    const w = kv.watch("b", ">", { updatesOnly: true });
    expect(await take(w, 1)).toEqual([null]);
    await d.put("b", "t.name", "cid");
    expect((await take(w, 1)).map(show)).toEqual(["6:t.name:PUT=cid"]);
    w.stop();
  });

  it("resumeFromRevision: every retained matching entry from r, null, live", async () => {
    await sample();
    const w = kv.watch("b", ">", { resumeFromRevision: 2 });
    expect((await initial(w)).map(show)).toEqual([
      "2:t.age:PUT=30",
      "3:x:PUT=other",
      "4:t.name:PUT=bob",
      "5:t.age:DEL",
      "null",
    ]);
    await d.put("b", "y", "1");
    expect((await take(w, 1)).map(show)).toEqual(["6:y:PUT=1"]);
    w.stop();
    // A point beyond the last revision: only what comes from there on.
    const ahead = kv.watch("b", ">", { resumeFromRevision: 8 });
    expect(await take(ahead, 1)).toEqual([null]);
    await d.put("b", "y", "7");
    await d.put("b", "y", "8");
    expect((await take(ahead, 1)).map(show)).toEqual(["8:y:PUT=8"]);
    ahead.stop();
  });

  it("resumeFromRevision older than what is retained is REVISION_COMPACTED with firstRevision", async () => {
    await d.createBucket({ bucket: "h1" });
    await d.put("h1", "k", "1");
    await d.put("h1", "k", "2");
    await d.put("h1", "j", "3");
    let caught: unknown;
    try {
      kv.watch("h1", ">", { resumeFromRevision: 1 });
    } catch (err) {
      caught = err;
    }
    expect(isKvError(caught, "REVISION_COMPACTED")).toBe(true);
    if (isKvError(caught)) expect(caught.details.firstRevision).toBe(2);
    const w = kv.watch("h1", ">", { resumeFromRevision: 2 });
    expect((await initial(w)).map(show)).toEqual(["2:k:PUT=2", "3:j:PUT=3", "null"]);
    w.stop();
  });

  it("invalid option combinations are INVALID_OPTION", async () => {
    const cases = [
      { includeHistory: true, updatesOnly: true },
      { resumeFromRevision: 0 },
      { resumeFromRevision: 1.5 },
      { resumeFromRevision: 1, updatesOnly: true },
      { maxPending: 0 },
    ];
    for (const options of cases) {
      expect(await errorCode(() => kv.watch("b", ">", options))).toBe("INVALID_OPTION");
    }
    expect(kv.watcherCount()).toBe(0);
  });

  it("wildcards: * one token, > one or more, literal keys", async () => {
    for (const key of ["a", "a.b", "a.c", "a.b.c", "z.b"]) await d.put("b", key, "v");
    const keysOf = async (filter: string) => {
      const w = kv.watch("b", filter);
      const out = (await initial(w)).filter((e) => e !== null).map((e) => e!.key);
      w.stop();
      return out;
    };
    expect(await keysOf("a.*")).toEqual(["a.b", "a.c"]);
    expect(await keysOf("a.>")).toEqual(["a.b", "a.c", "a.b.c"]);
    expect(await keysOf("*.b")).toEqual(["a.b", "z.b"]);
    expect(await keysOf("a")).toEqual(["a"]);
    expect(await keysOf("*.*.*")).toEqual(["a.b.c"]);
    const w = kv.watch("b", "*.b", { updatesOnly: true });
    await take(w, 1);
    for (const key of ["a", "x.b", "a.b.c", "q.b"]) await d.put("b", key, "live");
    expect((await take(w, 2)).map((e) => e!.key)).toEqual(["x.b", "q.b"]);
    w.stop();
  });

  it("delta counts the entries still queued after this one", async () => {
    for (const key of ["a", "b", "c", "d"]) await d.put("b", key, "v");
    const w = kv.watch("b", ">");
    expect((await take(w, 5)).map((e) => e?.delta ?? "null")).toEqual([3, 2, 1, 0, "null"]);
    await Promise.all([d.put("b", "x", "1"), d.put("b", "y", "2"), d.put("b", "z", "3")]);
    expect((await take(w, 3)).map((e) => e!.delta)).toEqual([2, 1, 0]);
    w.stop();
    const h = kv.watch("b", "a", { includeHistory: true });
    await d.put("b", "a", "2");
    // Initial (1) plus the live entry already queued behind it.
    expect((await take(h, 3)).map((e) => e?.delta ?? "null")).toEqual([1, "null", 0]);
    h.stop();
  });

  it("expiry markers reach watchers", async () => {
    await d.createBucket({ bucket: "t", ttlMs: 1_000 });
    await d.put("t", "k", "v");
    const w = kv.watch("t", ">", { updatesOnly: true });
    await take(w, 1);
    await d.advance(1_000);
    expect((await take(w, 1)).map(show)).toEqual(["2:k:PURGE"]);
    w.stop();
  });

  it("stop ends the watch: a pending next resolves done, the hub forgets it", async () => {
    const w = kv.watch("b", ">", { updatesOnly: true });
    await take(w, 1);
    expect(kv.watcherCount("b")).toBe(1);
    const pending = w.next();
    w.stop();
    expect((await pending).done).toBe(true);
    expect(kv.watcherCount()).toBe(0);
    await d.put("b", "k", "v");
    expect((await w.next()).done).toBe(true);
  });

  it("breaking out of for-await stops the watch", async () => {
    await d.put("b", "k", "v");
    const w = kv.watch("b", ">");
    for await (const e of w) {
      expect(show(e)).toBe("1:k:PUT=v");
      break;
    }
    expect(kv.watcherCount()).toBe(0);
  });

  it("close ends every watch with SHUTTING_DOWN", async () => {
    const w = kv.watch("b", ">", { updatesOnly: true });
    await take(w, 1);
    kv.close();
    expect(await errorCode(() => w.next())).toBe("SHUTTING_DOWN");
  });
});

describe("boundaryRevision", () => {
  it("is the last written revision when the watch starts, whatever the options", async () => {
    expect(kv.watch("b").boundaryRevision).toBe(0);
    await sample();
    const watchers = [
      kv.watch("b"),
      kv.watch("b", "t.*", { includeHistory: true }),
      kv.watch("b", "nothing.matches"),
      kv.watch("b", ">", { updatesOnly: true }),
      kv.watch("b", ">", { resumeFromRevision: 2 }),
      kv.watch("b", ">", { resumeFromRevision: 9 }),
    ];
    expect(watchers.map((w) => w.boundaryRevision)).toEqual([5, 5, 5, 5, 5, 5]);
    await d.put("b", "t.name", "cid");
    // Fixed at start: later writes do not move it.
    expect(watchers.map((w) => w.boundaryRevision)).toEqual([5, 5, 5, 5, 5, 5]);
    for (const w of watchers) w.stop();
  });

  it("splits initial (<= B) from live (> B) while writes are being applied", async () => {
    await sample();
    const n = 40;
    const last = 5 + n;
    const writes: Array<Promise<number>> = [];
    for (let i = 0; i < n; i++) writes.push(d.put("b", `k.${i % 7}`, `v${i}`));
    // One watch while every write is still in flight, one once half of them are written.
    const early = kv.watch("b", ">", { includeHistory: true });
    await writes[n / 2 - 1];
    const late = kv.watch("b", ">", { includeHistory: true });
    expect(early.boundaryRevision).toBeGreaterThanOrEqual(5);
    expect(late.boundaryRevision).toBeGreaterThanOrEqual(5 + n / 2);
    await Promise.all(writes);
    for (const w of [early, late]) {
      const b = w.boundaryRevision;
      expect(b).toBeLessThanOrEqual(last);
      const before = (await initial(w)).slice(0, -1) as Entry[];
      const live = (await take(w, last - b)) as Entry[];
      w.stop();
      expect(before.every((e) => e.revision <= b)).toBe(true);
      // history 5 may have trimmed revisions <= B; everything > B arrives live, in order.
      expect(live.map((e) => e.revision)).toEqual(
        Array.from({ length: last - b }, (_, i) => b + 1 + i),
      );
    }
  });
});

describe("slow consumers", () => {
  it("a watcher that falls maxPending behind ends with SLOW_CONSUMER and its last revision", async () => {
    const slow = kv.watch("b", ">", { updatesOnly: true, maxPending: 5 });
    const fast = kv.watch("b", ">", { updatesOnly: true, maxPending: 5 });
    await take(slow, 1);
    await take(fast, 1);
    for (let i = 1; i <= 3; i++) await d.put("b", `k${i}`, "v");
    expect((await take(slow, 1)).map((e) => e!.revision)).toEqual([1]);
    const got: number[] = [];
    for (let i = 4; i <= 12; i++) {
      await d.put("b", `k${i}`, "v");
      got.push(...(await take(fast, 1)).map((e) => e!.revision));
    }
    let caught: unknown;
    try {
      await slow.next();
    } catch (err) {
      caught = err;
    }
    expect(isKvError(caught, "SLOW_CONSUMER")).toBe(true);
    if (isKvError(caught)) expect(caught.details.lastRevision).toBe(1);
    expect((await slow.next()).done).toBe(true);
    expect(kv.watcherCount()).toBe(1);
    // The fast one kept up throughout, unaffected.
    expect(got.length).toBe(9);
    // The client resumes from lastRevision + 1 and misses nothing.
    const resumed = kv.watch("b", ">", { resumeFromRevision: 2, includeHistory: true });
    const entries = (await initial(resumed)).filter((e) => e !== null);
    expect(entries.map((e) => e!.revision)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    resumed.stop();
    fast.stop();
  });

  it("maxPendingBytes bounds the queued value bytes", async () => {
    const w = kv.watch("b", ">", { updatesOnly: true, maxPendingBytes: 10 });
    await take(w, 1);
    await d.put("b", "a", "123456");
    await d.put("b", "b", "123456");
    expect(await errorCode(() => w.next())).toBe("SLOW_CONSUMER");
  });
});

describe("initial scan racing writes", () => {
  it("no gap and no duplicate while writes are applied during the scan", async () => {
    await d.createBucket({ bucket: "race", history: 1 });
    const keys = 300;
    await Promise.all(Array.from({ length: keys }, (_, i) => d.put("race", `k.${i}`, `v0-${i}`)));
    const w = kv.watch("race", "k.*", { maxPending: 100_000 });
    const boundary = keys;
    const seen: Array<Entry | null> = [];
    // Writers overwrite keys (history 1 drops the old entries the scan has not
    // reached yet), delete some and add new ones, while the scan is read slowly.
    const writes: Array<Promise<unknown>> = [];
    let written = 0;
    for (;;) {
      const r = await w.next();
      if (r.done) throw new Error("watch ended");
      seen.push(r.value);
      if (r.value === null) break;
      if (written < 400) {
        for (let j = 0; j < 4; j++, written++) {
          const key = `k.${(written * 37) % (keys + 50)}`;
          writes.push(
            written % 10 === 9 ? d.del("race", key) : d.put("race", key, `v1-${written}`),
          );
        }
      }
    }
    await Promise.all(writes);
    // Four writes per entry read; how many entries the scan still finds depends on how
    // many of them the writes trimmed first, so the count of writes is only bounded.
    expect(written).toBeGreaterThanOrEqual(200);
    const lastRevision = (await kv.history("race", ">")).reduce(
      (m, e) => Math.max(m, e.revision),
      0,
    );
    const live = (await take(w, lastRevision - boundary)) as Entry[];
    const initialEntries = seen.filter((e) => e !== null) as Entry[];
    // The race really happened: writes removed entries <= B before the scan got to them.
    expect(initialEntries.length).toBeLessThan(keys);
    expect(initialEntries.length).toBeGreaterThan(0);
    expect(initialEntries.every((e) => e.revision <= boundary)).toBe(true);
    expect(live.every((e) => e.revision > boundary)).toBe(true);
    // Every revision after B exactly once, in order.
    expect(live.map((e) => e.revision)).toEqual(
      Array.from({ length: lastRevision - boundary }, (_, i) => boundary + 1 + i),
    );
    const revisions = [...initialEntries, ...live].map((e) => e.revision);
    expect(new Set(revisions).size).toBe(revisions.length);
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
    // Replaying what the watcher saw rebuilds exactly the bucket's state.
    const state = new Map<string, string>();
    for (const e of [...initialEntries, ...live]) {
      if (e.operation === "PUT") state.set(e.key, new TextDecoder().decode(e.value));
      else state.delete(e.key);
    }
    const expected = new Map<string, string>();
    for (const key of await kv.keys("race")) {
      expected.set(key, new TextDecoder().decode((await kv.get("race", key))!.value));
    }
    expect(state).toEqual(expected);
    w.stop();
  });

  it("a key overwritten before the scan reaches it comes live only, once", async () => {
    await d.createBucket({ bucket: "h1" });
    await d.put("h1", "a", "old-a");
    await d.put("h1", "b", "old-b");
    const w = kv.watch("h1", ">");
    // Before the first next(), b is overwritten: old-b (rev 2) is gone, new-b is rev 3.
    await d.put("h1", "b", "new-b");
    expect((await take(w, 3)).map(show)).toEqual(["1:a:PUT=old-a", "null", "3:b:PUT=new-b"]);
    w.stop();
  });

  it("a key written during the scan with history keeps its value as of B in the initial part", async () => {
    await d.put("b", "a", "1");
    await d.put("b", "c", "1");
    const w = kv.watch("b", ">");
    await d.put("b", "a", "2");
    expect((await take(w, 4)).map(show)).toEqual(["1:a:PUT=1", "2:c:PUT=1", "null", "3:a:PUT=2"]);
    w.stop();
  });
});

describe("fan-out", () => {
  it("only matching watchers receive an entry", async () => {
    const watchers = Array.from({ length: 200 }, (_, i) =>
      kv.watch("b", i % 50 === 0 ? "hot.*" : `cold.${i}`, { updatesOnly: true }),
    );
    for (const w of watchers) await take(w, 1);
    await d.put("b", "hot.x", bytes("1"));
    await d.put("b", "cold.7", "2");
    for (let i = 0; i < watchers.length; i++) {
      const w = watchers[i]!;
      if (i % 50 === 0) expect((await take(w, 1)).map((e) => e!.key)).toEqual(["hot.x"]);
      if (i === 7) expect((await take(w, 1)).map((e) => e!.key)).toEqual(["cold.7"]);
      w.stop();
    }
    expect(kv.watcherCount()).toBe(0);
  });
});

describe("state replaced by a snapshot", () => {
  it("ends every watch with SLOW_CONSUMER, also one started while the new state was read", async () => {
    await d.put("b", "k", "v1");
    const before = kv.watch("b", ">", { updatesOnly: true });
    await take(before, 1);
    const restoring = kv.restored();
    // Started during restored()'s read of the new state: it must not outlive the swap.
    const during = kv.watch("b", ">", { updatesOnly: true });
    await restoring;
    // Checked first: on the old order the watch started during the read stays open.
    expect(kv.watcherCount()).toBe(0);
    expect(await errorCode(() => before.next())).toBe("SLOW_CONSUMER");
    expect(
      await errorCode(async () => {
        for (;;) if ((await during.next()).done) return;
      }),
    ).toBe("SLOW_CONSUMER");
    // The state read back is the same; new watches work on it.
    expect((await kv.get("b", "k"))?.revision).toBe(1);
  });
});

describe("resume with catch-up (resume.ts)", () => {
  /** h1 (history 1): a@1 b@2 a@3 c@4 b@5(DEL) a@6 -> retained: c@4, b@5 DEL, a@6. */
  async function trimmed(): Promise<void> {
    await d.createBucket({ bucket: "h1", history: 1 });
    await d.put("h1", "a", "1");
    await d.put("h1", "b", "2");
    await d.put("h1", "a", "3");
    await d.put("h1", "c", "4");
    await d.del("h1", "b");
    await d.put("h1", "a", "6");
  }

  it("replays exactly (no catch-up) while nothing from the resume point on was removed", async () => {
    await trimmed();
    const w = kv.watch("h1", ">", { resumeFromRevision: 4, catchUp: true });
    expect(w.catchUp).toBeUndefined();
    expect((await initial(w)).map(show)).toEqual(["4:c:PUT=4", "5:b:DEL", "6:a:PUT=6", "null"]);
    w.stop();
  });

  it("catches up past trimmed history: the latest entry of each changed key, markers included, then live", async () => {
    await trimmed();
    const w = kv.watch("h1", ">", { resumeFromRevision: 2, catchUp: true });
    expect(w.catchUp).toEqual({ fromRevision: 2, toRevision: 6, reset: false });
    expect((await initial(w)).map(show)).toEqual(["4:c:PUT=4", "5:b:DEL", "6:a:PUT=6", "null"]);
    // Live from B + 1: no duplicate of the catch-up, nothing lost.
    await d.put("h1", "b", "7");
    expect((await take(w, 1)).map(show)).toEqual(["7:b:PUT=7"]);
    w.stop();
  });

  it("a key unchanged since the resume point is not sent again", async () => {
    await trimmed();
    const w = kv.watch("h1", ">", { resumeFromRevision: 5, catchUp: true });
    // a@3 was trimmed (removedHigh 3 < 5): an exact replay of 5 and 6.
    expect(w.catchUp).toBeUndefined();
    expect((await initial(w)).map(show)).toEqual(["5:b:DEL", "6:a:PUT=6", "null"]);
    w.stop();
    await d.put("h1", "a", "7"); // trims a@6
    const w2 = kv.watch("h1", ">", { resumeFromRevision: 6, catchUp: true });
    expect(w2.catchUp).toEqual({ fromRevision: 6, toRevision: 7, reset: false });
    // c@4 and b@5 did not change after 5: not part of the catch-up.
    expect((await initial(w2)).map(show)).toEqual(["7:a:PUT=7", "null"]);
    w2.stop();
  });

  it("respects the filter, ignoreDeletes and metaOnly", async () => {
    await trimmed();
    const filtered = kv.watch("h1", "b", { resumeFromRevision: 1, catchUp: true });
    expect((await initial(filtered)).map(show)).toEqual(["5:b:DEL", "null"]);
    filtered.stop();
    const puts = kv.watch("h1", ">", { resumeFromRevision: 1, catchUp: true, ignoreDeletes: true });
    expect((await initial(puts)).map(show)).toEqual(["4:c:PUT=4", "6:a:PUT=6", "null"]);
    puts.stop();
    const meta = kv.watch("h1", "a", { resumeFromRevision: 1, catchUp: true, metaOnly: true });
    const [entry] = (await initial(meta)) as Entry[];
    expect([entry!.revision, entry!.value.length, entry!.size]).toEqual([6, 0, 1]);
    meta.stop();
  });

  it("without catchUp the strict rule stays: REVISION_COMPACTED below the oldest revision", async () => {
    await trimmed();
    expect(await errorCode(() => kv.watch("h1", ">", { resumeFromRevision: 1 }))).toBe(
      "REVISION_COMPACTED",
    );
  });

  it("a key that changed after the resume point and vanished needs a reset, or fails without allowReset", async () => {
    await trimmed();
    const purged = await d.ok({ type: "purgeDeletes", bucket: "h1", olderThanMs: -1 });
    expect(purged).toBe(0); // purgeDeletes takes no revision
    expect(await kv.history("h1", "b")).toEqual([]); // b (DEL@5) vanished
    expect(
      await errorCode(() => kv.watch("h1", ">", { resumeFromRevision: 3, catchUp: true })),
    ).toBe("REVISION_COMPACTED");
    const w = kv.watch("h1", ">", { resumeFromRevision: 3, catchUp: true, allowReset: true });
    expect(w.catchUp).toEqual({ fromRevision: 3, toRevision: 6, reset: true });
    // Every matching key's latest, also ones unchanged since the resume point.
    expect((await initial(w)).map(show)).toEqual(["4:c:PUT=4", "6:a:PUT=6", "null"]);
    w.stop();
    // A watcher that had seen b's marker (resumes after 5) needs no reset.
    const after = kv.watch("h1", ">", { resumeFromRevision: 6, catchUp: true });
    expect(after.catchUp).toBeUndefined();
    after.stop();
  });

  it("removals during the scan that the plan did not foresee end the watch, resumable", async () => {
    await d.createBucket({ bucket: "race", history: 1 });
    for (let i = 0; i < 50; i++) await d.put("race", `k.${i}`, "v0");
    // Nothing removed yet: an exact replay from 1 is planned.
    const w = kv.watch("race", ">", { resumeFromRevision: 1, catchUp: true, maxPending: 1000 });
    expect(w.catchUp).toBeUndefined();
    expect((await take(w, 1)).map(show)).toEqual(["1:k.0:PUT=v0"]);
    // An overwrite trims k.30 before the scan reaches it.
    await d.put("race", "k.30", "v1");
    const out: string[] = [];
    let error: unknown;
    try {
      for (;;) {
        const r = await w.next();
        if (r.done || r.value === null) break;
        out.push(show(r.value));
      }
    } catch (err) {
      error = err;
    }
    expect(isKvError(error) && error.code).toBe("SLOW_CONSUMER");
    // Not one entry more: a client moves its resume point past each entry it gets, so
    // one beyond the removed k.30@31 would hide the removal from the next resume.
    expect(out).toEqual([]);
    // The resume from the same point now catches up.
    const again = kv.watch("race", ">", { resumeFromRevision: 1, catchUp: true, maxPending: 1000 });
    expect(again.catchUp).toEqual({ fromRevision: 1, toRevision: 51, reset: false });
    again.stop();
  });
});

describe("progressRevision", () => {
  it("is 0 during the initial values, the bucket's revision while live and idle", async () => {
    await sample();
    const w = kv.watch("b", "t.name");
    expect(w.progressRevision()).toBe(0);
    await initial(w);
    expect(w.progressRevision()).toBe(5);
    await d.put("b", "x", "unrelated"); // 6: not matching, the promise moves on
    expect(w.progressRevision()).toBe(6);
    await d.put("b", "t.name", "cy"); // 7: queued, not yet taken
    expect(w.progressRevision()).toBe(4);
    expect((await take(w, 1)).map(show)).toEqual(["7:t.name:PUT=cy"]);
    expect(w.progressRevision()).toBe(7);
    w.stop();
    expect(w.progressRevision()).toBe(0);
  });
});
