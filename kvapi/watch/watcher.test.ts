/**
 * The watch engine on its own, fed by an injected source and hand-pushed live
 * events (no log): phases, delta, bounds, stop and failure.
 */
import { describe, expect, it } from "vitest";
import { isKvError, KvError } from "../../proto/index.js";
import { WatchHub } from "./hub.js";
import { type InitialSource, KvWatcher, type WatchEvent } from "./watcher.js";

function event(seq: number, subject = "k", operation: WatchEvent["operation"] = "PUT"): WatchEvent {
  return {
    seq,
    subject,
    payload: new Uint8Array([seq & 0xff]),
    operation,
    timestampMs: 1_000 + seq,
  };
}

/** The events in chunks of two (a log read at a time). */
function source(events: WatchEvent[], expected = events.length): InitialSource {
  async function* gen(): AsyncGenerator<WatchEvent[]> {
    for (let i = 0; i < events.length; i += 2) yield events.slice(i, i + 2);
  }
  return { chunks: gen(), expected };
}

function watcher(overrides: Partial<ConstructorParameters<typeof KvWatcher>[0]> = {}): KvWatcher {
  return new KvWatcher({
    bucket: "b",
    filter: ">",
    boundary: 0,
    fromRevision: 1,
    ignoreDeletes: false,
    metaOnly: false,
    maxPending: 4,
    maxPendingBytes: 1 << 20,
    initial: undefined,
    currentRevision: () => 0,
    onEnd: () => undefined,
    ...overrides,
  });
}

async function drain(w: KvWatcher, n: number): Promise<Array<number | null>> {
  const out: Array<number | null> = [];
  for (let i = 0; i < n; i++) {
    const r = await w.next();
    if (r.done) break;
    out.push(r.value === null ? null : r.value.revision);
  }
  return out;
}

describe("KvWatcher", () => {
  it("initial entries, null, then live entries queued during the scan", async () => {
    const w = watcher({ boundary: 3, initial: source([event(1), event(3)]) });
    w.push(event(4));
    w.push(event(5));
    expect(await drain(w, 5)).toEqual([1, 3, null, 4, 5]);
  });

  it("delta: initial entries left plus live entries queued", async () => {
    const w = watcher({ boundary: 3, initial: source([event(1), event(2), event(3)]) });
    w.push(event(4));
    const deltas: Array<number | null> = [];
    for (let i = 0; i < 5; i++) {
      const r = await w.next();
      deltas.push(r.value === null ? null : r.value!.delta);
    }
    expect(deltas).toEqual([3, 2, 1, null, 0]);
  });

  it("next calls made at once are served in order", async () => {
    const w = watcher({ initial: undefined });
    const a = w.next();
    const b = w.next();
    const c = w.next();
    w.push(event(1));
    w.push(event(2));
    expect([(await a).value, (await b).value?.revision, (await c).value?.revision]).toEqual([
      null,
      1,
      2,
    ]);
  });

  it("ends with SLOW_CONSUMER past maxPending, dropping its queue, and reports the end once", async () => {
    let ended = 0;
    const w = watcher({ maxPending: 2, onEnd: () => ended++ });
    expect(await drain(w, 1)).toEqual([null]);
    w.push(event(1));
    expect(await drain(w, 1)).toEqual([1]);
    w.push(event(2));
    w.push(event(3));
    w.push(event(4));
    expect(w.pending).toBe(0);
    expect(ended).toBe(1);
    const err = await w.next().catch((e: unknown) => e);
    expect(isKvError(err, "SLOW_CONSUMER") && err.details.lastRevision).toBe(1);
    expect((await w.next()).done).toBe(true);
    w.stop();
    expect(ended).toBe(1);
  });

  it("skips live events below fromRevision and deletes when asked", async () => {
    const w = watcher({ fromRevision: 3, ignoreDeletes: true });
    for (const e of [event(1), event(2), event(3, "k", "DEL"), event(4), event(5, "k", "PURGE")]) {
      w.push(e);
    }
    w.push(event(6));
    expect(await drain(w, 3)).toEqual([null, 4, 6]);
  });

  it("a failing scan ends the watcher with the scan's error", async () => {
    async function* broken(): AsyncGenerator<WatchEvent[]> {
      yield [event(1)];
      throw new KvError("CORRUPT_RECORD", "bad record");
    }
    const w = watcher({ boundary: 2, initial: { chunks: broken(), expected: 2 } });
    expect(await drain(w, 1)).toEqual([1]);
    const err = await w.next().catch((e: unknown) => e);
    expect(isKvError(err, "CORRUPT_RECORD")).toBe(true);
  });

  it("stop closes the scan's iterator", async () => {
    let closed = false;
    async function* gen(): AsyncGenerator<WatchEvent[]> {
      try {
        yield [event(1)];
        yield [event(2)];
      } finally {
        closed = true;
      }
    }
    const w = watcher({ boundary: 2, initial: { chunks: gen(), expected: 2 } });
    expect(await drain(w, 1)).toEqual([1]);
    w.stop();
    await Promise.resolve();
    expect(closed).toBe(true);
    expect((await w.next()).done).toBe(true);
  });

  it("takeReady hands out a read chunk without a wait, never ahead of a next() under way", async () => {
    const w = watcher({ boundary: 4, initial: source([event(1), event(2), event(3), event(4)]) });
    // Nothing read yet: the first chunk needs next().
    expect(w.takeReady()).toBeUndefined();
    const first = w.next();
    expect(w.takeReady()).toBeUndefined();
    expect((await first).value?.revision).toBe(1);
    expect(w.takeReady()?.value?.revision).toBe(2);
    expect(w.takeReady()).toBeUndefined(); // the chunk is used up
    expect(await drain(w, 2)).toEqual([3, 4]);
    expect(await drain(w, 1)).toEqual([null]);
    w.push(event(5));
    w.push(event(6));
    expect(w.takeReady()?.value?.revision).toBe(5);
    expect(w.takeReady()?.value?.revision).toBe(6);
    expect(w.takeReady()).toBeUndefined();
  });

  it("admit skips entries removed since their chunk was read, and its error ends the watch", async () => {
    const asked: Array<number | undefined> = [];
    const removed = new Set([2]);
    const w = watcher({
      boundary: 3,
      initial: {
        ...source([event(1), event(2), event(3)]),
        admit: (e) => {
          asked.push(e?.seq);
          return e === undefined || !removed.has(e.seq);
        },
      },
    });
    expect(await drain(w, 3)).toEqual([1, 3, null]);
    expect(asked).toEqual([1, 2, 3, undefined]);

    const failing = watcher({
      boundary: 2,
      initial: {
        ...source([event(1), event(2)]),
        admit: (e) => {
          if (e?.seq === 2) throw new KvError("SLOW_CONSUMER", "outgrown");
          return true;
        },
      },
    });
    expect(await drain(failing, 1)).toEqual([1]);
    expect(failing.takeReady()).toBeUndefined();
    const err = await failing.next().catch((e: unknown) => e);
    expect(isKvError(err, "SLOW_CONSUMER")).toBe(true);
  });

  it("a live event at or below the boundary is a programmer error", () => {
    const w = watcher({ boundary: 5, initial: source([]) });
    expect(() => w.push(event(5))).toThrow(/assertion/);
  });
});

describe("WatchHub", () => {
  it("delivers to matching watchers only and forgets ended ones", async () => {
    const hub = new WatchHub();
    const make = (filter: string, maxPending = 10) => {
      const w = watcher({ filter, maxPending, onEnd: (x) => hub.remove(x) });
      hub.add(w);
      return w;
    };
    const a = make("a.*");
    const b = make("b.>", 1);
    const all = make(">");
    hub.publish("b", [event(1, "a.x"), event(2, "b.y.z"), event(3, "b.q")]);
    expect(await drain(a, 2)).toEqual([null, 1]);
    expect(await drain(all, 4)).toEqual([null, 1, 2, 3]);
    expect(hub.watcherCount("b")).toBe(2); // b overflowed at its second entry
    expect(b.isEnded).toBe(true);
    hub.endBucket("b", new KvError("BUCKET_NOT_FOUND", "gone"));
    expect(hub.watcherCount()).toBe(0);
    expect(isKvError(await a.next().catch((e: unknown) => e), "BUCKET_NOT_FOUND")).toBe(true);
  });
});
