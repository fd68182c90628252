/**
 * SEMANTICS.md, rule by rule (names, revisions, writes, reads, buckets,
 * errors, request ids), against a real stream log in a temp directory.
 * Watch rules are in watch.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StreamLog } from "../log/index.js";
import { KvError } from "../proto/index.js";
import {
  type BucketConfigInput,
  encodeCommand,
  type KvLog,
  KvStateMachine,
  normalizeBucketConfig,
  SERVER_MAX_VALUE_BYTES,
} from "./index.js";
import { bytes, Driver, errorCode, show, take, text } from "./test_support.js";

let dir: string;
let log: StreamLog;
let kv: KvStateMachine;
let d: Driver;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "streamkv-kv-"));
  log = await StreamLog.open(dir);
  kv = await KvStateMachine.open(log);
  d = new Driver(kv);
});

afterEach(async () => {
  kv.close();
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

async function reopen(): Promise<void> {
  kv.close();
  await log.close();
  log = await StreamLog.open(dir);
  kv = await KvStateMachine.open(log);
  const index = d.index;
  const nowMs = d.nowMs;
  d = new Driver(kv);
  d.index = index;
  d.nowMs = nowMs;
}

/** Test titles show long names shortened. */
function label(name: string): string {
  return name.length > 20 ? `${name.slice(0, 3)}... (${name.length} chars)` : JSON.stringify(name);
}

describe("names", () => {
  it("accepts bucket names of [a-zA-Z0-9_-], 1..256 chars", async () => {
    await d.createBucket({ bucket: "a-Z_09" });
    await d.createBucket({ bucket: "b".repeat(256) });
    expect(kv.listBuckets().map((s) => s.bucket)).toEqual(["a-Z_09", "b".repeat(256)]);
  });

  it.each(
    ["", "b".repeat(257), "b".repeat(300), "a.b", "a b", "a*", "a>", "$KV", "ä", "a/b"].map((n) => [
      label(n),
      n,
    ]),
  )("rejects bucket name %s with INVALID_BUCKET", async (_, name) => {
    expect(await errorCode(() => normalizeBucketConfig({ bucket: name }))).toBe("INVALID_BUCKET");
    const config = { ...normalizeBucketConfig({ bucket: "x" }), bucket: name };
    expect(await d.code({ type: "createBucket", config })).toBe("INVALID_BUCKET");
    expect(await errorCode(() => kv.status(name))).toBe("INVALID_BUCKET");
    expect(await d.code({ type: "put", bucket: name, key: "k", value: bytes("v") })).toBe(
      "INVALID_BUCKET",
    );
  });

  it("accepts keys of [-/_=.a-zA-Z0-9] up to 1024 bytes", async () => {
    await d.createBucket({ bucket: "b" });
    for (const key of ["a", "a.b.c", "A-b_c/d=e", "x".repeat(1024), "1.2.3"]) {
      await d.put("b", key, "v");
      expect(text((await kv.get("b", key))!.value)).toBe("v");
    }
  });

  it.each(
    [
      "",
      ".a",
      "a.",
      "a..b",
      "x".repeat(1025),
      "a*",
      "*",
      ">",
      "a.*",
      "a.>",
      "a b",
      "$KV.a",
      "ä",
      "a\tb",
    ].map((k) => [label(k), k]),
  )("rejects key %s with INVALID_KEY for every write and read", async (_, key) => {
    await d.createBucket({ bucket: "b" });
    const value = bytes("v");
    expect(await d.code({ type: "put", bucket: "b", key, value })).toBe("INVALID_KEY");
    expect(await d.code({ type: "create", bucket: "b", key, value })).toBe("INVALID_KEY");
    expect(await d.code({ type: "update", bucket: "b", key, value, last: 0 })).toBe("INVALID_KEY");
    expect(await d.code({ type: "delete", bucket: "b", key })).toBe("INVALID_KEY");
    expect(await d.code({ type: "purge", bucket: "b", key })).toBe("INVALID_KEY");
    expect(await errorCode(() => kv.get("b", key))).toBe("INVALID_KEY");
    expect(await errorCode(() => kv.getRevision("b", key, 1))).toBe("INVALID_KEY");
    expect(kv.status("b").values).toBe(0);
  });

  it("filters: * is one token, > one or more trailing tokens, > alone is everything", async () => {
    await d.createBucket({ bucket: "b" });
    for (const key of ["a", "a.b", "a.c", "a.b.c", "x.b"]) await d.put("b", key, "v");
    expect(await kv.keys("b", "a.*")).toEqual(["a.b", "a.c"]);
    expect(await kv.keys("b", "a.>")).toEqual(["a.b", "a.b.c", "a.c"]);
    expect(await kv.keys("b", "*.b")).toEqual(["a.b", "x.b"]);
    expect(await kv.keys("b", ">")).toEqual(["a", "a.b", "a.b.c", "a.c", "x.b"]);
    expect(await kv.keys("b", "a")).toEqual(["a"]);
    expect(await kv.keys("b")).toEqual(["a", "a.b", "a.b.c", "a.c", "x.b"]);
  });

  it.each(["a.>.b", "a*", "a.b*", ">.a", "", ".a", "a..b", "a b"])(
    "rejects filter %j with INVALID_KEY",
    async (filter) => {
      await d.createBucket({ bucket: "b" });
      expect(await errorCode(() => kv.keys("b", filter))).toBe("INVALID_KEY");
      expect(await errorCode(() => kv.history("b", filter))).toBe("INVALID_KEY");
      expect(await errorCode(() => kv.watch("b", filter))).toBe("INVALID_KEY");
    },
  );
});

describe("revisions", () => {
  it("one counter per bucket from 1; every accepted write takes the next, a rejected one none", async () => {
    await d.createBucket({ bucket: "b", history: 5 });
    await d.createBucket({ bucket: "c" });
    expect(await d.put("b", "x", "1")).toBe(1);
    expect(await d.put("b", "y", "2")).toBe(2);
    expect(await d.put("c", "x", "1")).toBe(1);
    expect(await d.code({ type: "create", bucket: "b", key: "x", value: bytes("3") })).toBe(
      "KEY_EXISTS",
    );
    expect(
      await d.code({ type: "update", bucket: "b", key: "x", value: bytes("3"), last: 2 }),
    ).toBe("WRONG_LAST_REVISION");
    expect(await d.ok({ type: "create", bucket: "b", key: "z", value: bytes("3") })).toBe(3);
    expect(await d.ok({ type: "update", bucket: "b", key: "x", value: bytes("4"), last: 1 })).toBe(
      4,
    );
    expect(await d.del("b", "x")).toBe(5);
    expect(await d.purge("b", "y")).toBe(6);
    expect(await d.put("b", "x", "7")).toBe(7);
    expect(await d.put("c", "y", "2")).toBe(2);
  });
});

describe("writes", () => {
  beforeEach(async () => {
    await d.createBucket({ bucket: "b", history: 10 });
  });

  it("put appends a PUT and returns its revision", async () => {
    expect(await d.put("b", "k", "one")).toBe(1);
    expect(await d.put("b", "k", "two")).toBe(2);
    const e = (await kv.get("b", "k"))!;
    expect([e.revision, e.operation, text(e.value), e.delta, e.bucket, e.key]).toEqual([
      2,
      "PUT",
      "two",
      0,
      "b",
      "k",
    ]);
    expect(e.created.getTime()).toBe(d.nowMs);
  });

  it("create succeeds iff the key has no entry or its latest is a DEL/PURGE marker", async () => {
    const create = (key: string) => d.run({ type: "create", bucket: "b", key, value: bytes("c") });
    expect((await create("k")).ok).toBe(true);
    const again = await create("k");
    expect(again.ok).toBe(false);
    if (!again.ok) {
      expect(again.error).toBeInstanceOf(KvError);
      expect(again.error.code).toBe("KEY_EXISTS");
      expect(again.error.details.currentRevision).toBe(1);
    }
    await d.del("b", "k");
    expect((await create("k")).ok).toBe(true);
    await d.purge("b", "k");
    expect((await create("k")).ok).toBe(true);
  });

  it("update succeeds iff the latest revision (markers included) is last; 0 = no entry", async () => {
    const update = (key: string, last: number) =>
      d.run({ type: "update", bucket: "b", key, value: bytes("u"), last });
    const none = await update("k", 5);
    expect(none.ok).toBe(false);
    if (!none.ok) {
      expect(none.error.code).toBe("WRONG_LAST_REVISION");
      expect(none.error.details.currentRevision).toBe(0);
    }
    expect(await update("k", 0)).toMatchObject({ ok: true, revision: 1 });
    const stale = await update("k", 0);
    expect(stale.ok).toBe(false);
    if (!stale.ok) expect(stale.error.details.currentRevision).toBe(1);
    expect(await update("k", 1)).toMatchObject({ ok: true, revision: 2 });
    const marker = await d.del("b", "k");
    // The marker's revision is the one to update against.
    expect(await update("k", marker)).toMatchObject({ ok: true, revision: 4 });
  });

  it("delete appends a DEL marker and keeps history; deleting an absent key still appends", async () => {
    await d.put("b", "k", "1");
    expect(await d.del("b", "k")).toBe(2);
    expect(await d.del("b", "k")).toBe(3);
    expect(await d.del("b", "never")).toBe(4);
    expect((await kv.history("b", "k")).map(show)).toEqual(["1:k:PUT=1", "2:k:DEL", "3:k:DEL"]);
    expect((await kv.history("b", "k"))[1]!.value.length).toBe(0);
    expect(await kv.get("b", "k")).toBeNull();
  });

  it("delete and purge with last are conditional like update", async () => {
    await d.put("b", "k", "1");
    const bad = await d.run({ type: "delete", bucket: "b", key: "k", last: 7 });
    expect(bad.ok ? "none" : [bad.error.code, bad.error.details.currentRevision]).toEqual([
      "WRONG_LAST_REVISION",
      1,
    ]);
    expect(await d.del("b", "k", 1)).toBe(2);
    expect(await d.code({ type: "purge", bucket: "b", key: "k", last: 1 })).toBe(
      "WRONG_LAST_REVISION",
    );
    expect(await d.purge("b", "k", 2)).toBe(3);
    expect(await d.code({ type: "delete", bucket: "b", key: "new", last: 1 })).toBe(
      "WRONG_LAST_REVISION",
    );
    expect(await d.del("b", "new", 0)).toBe(4);
  });

  it("purge appends a PURGE marker and removes every earlier revision", async () => {
    await d.put("b", "k", "1");
    await d.put("b", "other", "x");
    await d.put("b", "k", "2");
    await d.del("b", "k");
    expect(await d.purge("b", "k")).toBe(5);
    expect((await kv.history("b", "k")).map(show)).toEqual(["5:k:PURGE"]);
    expect((await kv.history("b", "other")).map(show)).toEqual(["2:other:PUT=x"]);
    expect(kv.status("b").values).toBe(2);
  });

  it("history keeps the newest h entries of a key, markers included", async () => {
    await d.createBucket({ bucket: "h3", history: 3 });
    for (let i = 1; i <= 5; i++) await d.put("h3", "k", String(i));
    await d.put("h3", "j", "other");
    expect((await kv.history("h3", "k")).map((e) => e.revision)).toEqual([3, 4, 5]);
    await d.del("h3", "k");
    expect((await kv.history("h3", "k")).map(show)).toEqual(["4:k:PUT=4", "5:k:PUT=5", "7:k:DEL"]);
    await d.createBucket({ bucket: "h1" });
    await d.put("h1", "k", "1");
    await d.put("h1", "k", "2");
    expect((await kv.history("h1", "k")).map(show)).toEqual(["2:k:PUT=2"]);
  });

  it("history outside 1..64 is INVALID_CONFIG", async () => {
    for (const history of [0, 65, -1, 1.5]) {
      expect(await errorCode(() => normalizeBucketConfig({ bucket: "x", history }))).toBe(
        "INVALID_CONFIG",
      );
    }
    // A proposer that skipped validation: the state machine rejects it as well.
    for (const history of [0, 65, 1000]) {
      const config = { ...normalizeBucketConfig({ bucket: "x" }), history };
      expect(await d.code({ type: "createBucket", config })).toBe("INVALID_CONFIG");
    }
    await d.createBucket({ bucket: "x", history: 64 });
    expect(kv.status("x").history).toBe(64);
  });

  it("maxValueSize counts value bytes only; larger is VALUE_TOO_LARGE", async () => {
    await d.createBucket({ bucket: "small", maxValueSize: 4 });
    expect(await d.put("small", "a.long.key.name.that.is.not.counted", "1234")).toBe(1);
    const over = { bucket: "small", key: "k", value: bytes("12345") };
    expect(await d.code({ type: "put", ...over })).toBe("VALUE_TOO_LARGE");
    expect(await d.code({ type: "create", ...over })).toBe("VALUE_TOO_LARGE");
    expect(await d.code({ type: "update", ...over, last: 0 })).toBe("VALUE_TOO_LARGE");
    expect(kv.status("small").values).toBe(1);
  });

  it("a bucket without maxValueSize still has the server's limit", async () => {
    const big = new Uint8Array(SERVER_MAX_VALUE_BYTES + 1);
    expect(await d.code({ type: "put", bucket: "b", key: "k", value: big })).toBe(
      "VALUE_TOO_LARGE",
    );
    expect(await d.put("b", "k", big.subarray(1))).toBe(1);
  });

  it("maxBytes rejects a write that would exceed it with BUCKET_FULL, evicting nothing", async () => {
    await d.createBucket({ bucket: "full", maxBytes: 10 });
    await d.put("full", "a", "12345");
    await d.put("full", "b", "1234");
    expect(await d.code({ type: "put", bucket: "full", key: "c", value: bytes("12") })).toBe(
      "BUCKET_FULL",
    );
    expect(await kv.keys("full")).toEqual(["a", "b"]);
    // Replacing a value (history 1) frees the old one first.
    expect(await d.put("full", "a", "123456")).toBe(3);
    expect(kv.status("full").bytes).toBe(10);
    // Markers carry no bytes: accepted on a full bucket, and they free space.
    expect(await d.del("full", "a")).toBe(4);
    expect(await d.purge("full", "b")).toBe(5);
    expect(kv.status("full").bytes).toBe(0);
    expect(await d.put("full", "c", "1234567890")).toBe(6);
  });

  it("markers are accepted on a bucket whose maxBytes was lowered below its size", async () => {
    await d.put("b", "a", "12345678");
    const cfg = normalizeBucketConfig({ bucket: "b", history: 10, maxBytes: 4 });
    await d.ok({ type: "updateBucket", config: cfg });
    expect(await kv.keys("b")).toEqual(["a"]);
    expect(await d.code({ type: "put", bucket: "b", key: "c", value: bytes("1") })).toBe(
      "BUCKET_FULL",
    );
    expect(await d.del("b", "a")).toBe(2);
    expect(await d.purge("b", "a")).toBe(3);
    expect(await d.put("b", "c", "1234")).toBe(4);
  });
});

describe("ttl", () => {
  it("entries expire ttl after they were written, only when a time-advance is applied", async () => {
    await d.createBucket({ bucket: "t", ttlMs: 1_000, history: 5 });
    await d.put("t", "a", "1");
    d.nowMs += 600;
    await d.put("t", "b", "2");
    await d.put("t", "a", "3");
    // Reads do not refresh, and time alone does nothing without a time-advance entry.
    d.nowMs += 500;
    expect(text((await kv.get("t", "a"))!.value)).toBe("3");
    expect((await kv.history("t", "a")).length).toBe(2);
    const r = await d.advance(0);
    expect(r).toMatchObject({ ok: true, count: 1 });
    expect((await kv.history("t", "a")).map(show)).toEqual(["3:t:PUT=3".replace("t:", "a:")]);
    await d.advance(500);
    expect(await kv.get("t", "a")).toBeNull();
    expect(await kv.get("t", "b")).toBeNull();
  });

  it("when a key's latest entry expires a PURGE marker takes the next revision, and create succeeds", async () => {
    await d.createBucket({ bucket: "t", ttlMs: 1_000 });
    await d.put("t", "a", "1");
    await d.put("t", "b", "2");
    await d.advance(999);
    expect(await kv.keys("t")).toEqual(["a", "b"]);
    const r = await d.advance(1);
    expect(r).toMatchObject({ ok: true, count: 2 });
    expect((await kv.history("t", ">")).map(show)).toEqual(["3:a:PURGE", "4:b:PURGE"]);
    expect(await kv.keys("t")).toEqual([]);
    d.nowMs += 500;
    expect(await d.ok({ type: "create", bucket: "t", key: "a", value: bytes("new") })).toBe(5);
    // The markers expire too, without markers of their own.
    await d.advance(500);
    expect((await kv.history("t", ">")).map(show)).toEqual(["5:a:PUT=new"]);
    await d.advance(500);
    expect((await kv.history("t", ">")).map(show)).toEqual(["6:a:PURGE"]);
    await d.advance(1_000);
    expect(kv.status("t").values).toBe(0);
  });

  it("a deleted key's expiry writes no marker", async () => {
    await d.createBucket({ bucket: "t", ttlMs: 100, history: 2 });
    await d.put("t", "a", "1");
    await d.del("t", "a");
    await d.advance(100);
    expect(kv.status("t").values).toBe(0);
    expect(await kv.history("t", "a")).toEqual([]);
  });

  it("the clock never runs backwards: an older leader time does not undo expiry order", async () => {
    d.nowMs = 10_000;
    await d.createBucket({ bucket: "t", ttlMs: 1_000 });
    await d.put("t", "a", "1");
    d.nowMs = 5_000; // a new leader with a slower clock
    await d.put("t", "b", "2");
    expect((await kv.get("t", "b"))!.created.getTime()).toBe(10_000);
    expect(kv.clockMs()).toBe(10_000);
    d.nowMs = 11_000;
    await d.advance(0);
    expect(await kv.keys("t")).toEqual([]);
  });
});

describe("reads", () => {
  beforeEach(async () => {
    await d.createBucket({ bucket: "b", history: 3 });
  });

  it("get returns the latest entry if it is a PUT, else null", async () => {
    expect(await kv.get("b", "k")).toBeNull();
    await d.put("b", "k", "v");
    expect(show(await kv.get("b", "k"))).toBe("1:k:PUT=v");
    await d.del("b", "k");
    expect(await kv.get("b", "k")).toBeNull();
    await d.put("b", "k", "w");
    await d.purge("b", "k");
    expect(await kv.get("b", "k")).toBeNull();
  });

  it("getRevision returns the entry iff it exists, belongs to the key and is a PUT", async () => {
    await d.put("b", "k", "1");
    await d.put("b", "j", "2");
    await d.del("b", "k");
    for (let i = 0; i < 3; i++) await d.put("b", "k", `v${i}`);
    expect(await kv.getRevision("b", "k", 1)).toBeNull(); // dropped by history 3
    expect(await kv.getRevision("b", "k", 2)).toBeNull(); // another key's
    expect(show(await kv.getRevision("b", "j", 2))).toBe("2:j:PUT=2");
    expect(await kv.getRevision("b", "k", 3)).toBeNull(); // dropped
    expect(show(await kv.getRevision("b", "k", 5))).toBe("5:k:PUT=v1");
    expect(await kv.getRevision("b", "k", 99)).toBeNull();
    await d.del("b", "k");
    expect(await kv.getRevision("b", "k", 7)).toBeNull(); // a marker
    expect(await errorCode(() => kv.getRevision("b", "k", 0))).toBe("INVALID_ARGUMENT");
  });

  it("keys lists keys whose latest entry is a PUT, sorted, once each; [] when none", async () => {
    expect(await kv.keys("b")).toEqual([]);
    await d.put("b", "z", "1");
    await d.put("b", "a", "1");
    await d.put("b", "a", "2");
    await d.put("b", "m", "1");
    await d.del("b", "m");
    await d.put("b", "p", "1");
    await d.purge("b", "p");
    expect(await kv.keys("b")).toEqual(["a", "z"]);
    const streamed: string[] = [];
    for await (const key of kv.listKeys("b")) streamed.push(key);
    expect(streamed).toEqual(["a", "z"]);
  });

  it("listKeys streams a large bucket", async () => {
    await d.createBucket({ bucket: "big" });
    const n = 2_000;
    const pending: Array<Promise<unknown>> = [];
    for (let i = 0; i < n; i++) {
      pending.push(d.put("big", `k.${String(i).padStart(5, "0")}`, "v"));
    }
    await Promise.all(pending);
    let count = 0;
    let previous = "";
    for await (const key of kv.listKeys("big", "k.*")) {
      expect(key > previous).toBe(true);
      previous = key;
      count++;
    }
    expect(count).toBe(n);
  });

  it("listKeys startAfter: keys strictly after it, sorted, markers' keys left out", async () => {
    for (const key of ["a", "b.1", "b.2", "b.3", "c"]) await d.put("b", key, "v");
    await d.del("b", "b.2");
    const list = async (filter: string, startAfter?: string) => {
      const out: string[] = [];
      const options = startAfter === undefined ? {} : { startAfter };
      for await (const key of kv.listKeys("b", filter, options)) out.push(key);
      return out;
    };
    expect(await list(">", "")).toEqual(["a", "b.1", "b.3", "c"]);
    expect(await list(">", "a")).toEqual(["b.1", "b.3", "c"]);
    expect(await list(">", "b.1")).toEqual(["b.3", "c"]);
    expect(await list(">", "b.2")).toEqual(["b.3", "c"]); // a deleted key as the cursor
    expect(await list(">", "b")).toEqual(["b.1", "b.3", "c"]); // not a key at all
    expect(await list(">", "c")).toEqual([]);
    expect(await list(">", "zzz")).toEqual([]);
    expect(await list("b.*", "b.1")).toEqual(["b.3"]);
    expect(await list("c", "b.9")).toEqual(["c"]); // literal filter
    expect(await list("c", "c")).toEqual([]);
    expect(await kv.keys("b", "b.>", { startAfter: "b.1" })).toEqual(["b.3"]);
    const bad = { startAfter: 7 } as unknown as { startAfter: string };
    expect(await errorCode(() => kv.listKeys("b", ">", bad))).toBe("INVALID_OPTION");
    expect(await errorCode(() => kv.listKeys("nope", ">", { startAfter: "a" }))).toBe(
      "BUCKET_NOT_FOUND",
    );
  });

  it("listKeys startAfter pages through a large bucket, every key exactly once", async () => {
    await d.createBucket({ bucket: "big" });
    const n = 1_000;
    const pending: Array<Promise<unknown>> = [];
    for (let i = 0; i < n; i++) pending.push(d.put("big", `k.${i}`, "v"));
    await Promise.all(pending);
    const pageSize = 64;
    const seen: string[] = [];
    let after = "";
    // A pager as the node runs it: take one page, remember its last key, ask again.
    for (let pages = 0; pages <= n / pageSize + 1; pages++) {
      const page: string[] = [];
      for await (const key of kv.listKeys("big", ">", { startAfter: after })) {
        page.push(key);
        if (page.length === pageSize) break;
      }
      seen.push(...page);
      if (page.length < pageSize) break;
      after = page[page.length - 1]!;
    }
    expect(seen).toEqual(await kv.keys("big"));
    expect(new Set(seen).size).toBe(n);
  });

  it("listKeys startAfter works over a log that streams its subjects", async () => {
    await d.put("b", "x.1", "v");
    await d.put("b", "x.2", "v");
    await d.put("b", "x.3", "v");
    await d.del("b", "x.3");
    // Another KvLog implementation: subjects as an async iterable, not an array.
    const streaming: KvLog = Object.create(log, {
      subjects: {
        value: async function* (stream: string, filter?: string) {
          yield* log.subjects(stream, filter);
        },
      },
    });
    const other = await KvStateMachine.open(streaming);
    try {
      const out: string[] = [];
      for await (const key of other.listKeys("b", "x.*", { startAfter: "x.1" })) out.push(key);
      expect(out).toEqual(["x.2"]);
    } finally {
      other.close();
    }
  });

  it("history lists retained entries oldest first with markers; [] when none", async () => {
    expect(await kv.history("b", "k")).toEqual([]);
    await d.put("b", "k", "1");
    await d.put("b", "k.sub", "x");
    await d.del("b", "k");
    await d.put("b", "k", "2");
    expect((await kv.history("b", "k")).map(show)).toEqual(["1:k:PUT=1", "3:k:DEL", "4:k:PUT=2"]);
    expect((await kv.history("b", "k.>")).map(show)).toEqual(["2:k.sub:PUT=x"]);
    expect((await kv.history("b", ">")).map((e) => e.revision)).toEqual([1, 2, 3, 4]);
  });

  it("status counts entries with history and markers, bytes, and the config", async () => {
    await d.createBucket({
      bucket: "s",
      history: 4,
      ttlMs: 60_000,
      maxValueSize: 100,
      maxBytes: 1_000,
      replicas: 3,
      description: "settings",
    });
    await d.put("s", "a", "12");
    await d.put("s", "a", "345");
    await d.del("s", "b");
    expect(kv.status("s")).toEqual({
      bucket: "s",
      values: 3,
      bytes: 5,
      history: 4,
      ttlMs: 60_000,
      maxValueSize: 100,
      maxBytes: 1_000,
      replicas: 3,
      description: "settings",
    });
  });

  it("reads of a missing bucket are BUCKET_NOT_FOUND", async () => {
    for (const read of [
      () => kv.get("nope", "k"),
      () => kv.getRevision("nope", "k", 1),
      () => kv.keys("nope"),
      () => kv.history("nope", "k"),
      () => kv.status("nope"),
      () => kv.watch("nope", ">"),
    ]) {
      expect(await errorCode(read)).toBe("BUCKET_NOT_FOUND");
    }
  });
});

describe("buckets", () => {
  it("creating again with the identical config is a no-op; a different one is BUCKET_EXISTS", async () => {
    await d.createBucket({ bucket: "b", history: 2 });
    await d.put("b", "k", "v");
    expect(await d.createBucket({ bucket: "b", history: 2 })).toBe(0);
    expect(await kv.keys("b")).toEqual(["k"]);
    const r = await d.run({
      type: "createBucket",
      config: normalizeBucketConfig({ bucket: "b", history: 3 }),
    });
    expect(r.ok ? "none" : r.error.code).toBe("BUCKET_EXISTS");
    expect(kv.status("b").history).toBe(2);
  });

  it("writes to a missing bucket are BUCKET_NOT_FOUND", async () => {
    const value = bytes("v");
    expect(await d.code({ type: "put", bucket: "nope", key: "k", value })).toBe("BUCKET_NOT_FOUND");
    expect(await d.code({ type: "delete", bucket: "nope", key: "k" })).toBe("BUCKET_NOT_FOUND");
    expect(await d.code({ type: "purgeDeletes", bucket: "nope", olderThanMs: 0 })).toBe(
      "BUCKET_NOT_FOUND",
    );
    expect(await d.code({ type: "deleteBucket", bucket: "nope" })).toBe("BUCKET_NOT_FOUND");
    expect(
      await d.code({ type: "updateBucket", config: normalizeBucketConfig({ bucket: "nope" }) }),
    ).toBe("BUCKET_NOT_FOUND");
  });

  it("delete removes the bucket and its data and ends its watchers with BUCKET_NOT_FOUND", async () => {
    await d.createBucket({ bucket: "b" });
    await d.createBucket({ bucket: "keep" });
    await d.put("b", "k", "v");
    const w = kv.watch("b", ">", { updatesOnly: true });
    const other = kv.watch("keep", ">", { updatesOnly: true });
    expect(await take(w, 1)).toEqual([null]);
    await d.ok({ type: "deleteBucket", bucket: "b" });
    expect(await errorCode(() => w.next())).toBe("BUCKET_NOT_FOUND");
    expect((await w.next()).done).toBe(true);
    expect(kv.listBuckets().map((s) => s.bucket)).toEqual(["keep"]);
    expect(await errorCode(() => kv.get("b", "k"))).toBe("BUCKET_NOT_FOUND");
    // A new bucket of the same name starts empty.
    await d.createBucket({ bucket: "b" });
    expect(await kv.keys("b")).toEqual([]);
    expect(await d.put("b", "k", "again")).toBe(1);
    other.stop();
    expect(kv.watcherCount()).toBe(0);
  });

  it("listBuckets returns statuses sorted by name", async () => {
    for (const name of ["m", "a", "Z", "b_2"]) await d.createBucket({ bucket: name });
    expect(kv.listBuckets().map((s) => s.bucket)).toEqual(["Z", "a", "b_2", "m"]);
  });

  it("update changes the config; a smaller history trims at once", async () => {
    await d.createBucket({ bucket: "b", history: 5 });
    for (let i = 0; i < 5; i++) await d.put("b", "k", String(i));
    await d.ok({
      type: "updateBucket",
      config: normalizeBucketConfig({ bucket: "b", history: 2 }),
    });
    expect((await kv.history("b", "k")).map((e) => e.revision)).toEqual([4, 5]);
    expect(kv.status("b").history).toBe(2);
  });

  it("rejects invalid configs with INVALID_CONFIG", async () => {
    const bad = [
      { ttlMs: -1 },
      { ttlMs: 0.5 },
      { maxValueSize: 0 },
      { maxValueSize: -2 },
      { maxValueSize: 2 * 1024 * 1024 },
      { maxBytes: 0 },
      { replicas: -1 },
      { replicas: 1.5 },
      { description: "x".repeat(5000) },
      // What JavaScript callers pass: never coerced (protobufjs would read "30s" as 30).
      { ttlMs: "30s" as unknown as number },
      { maxBytes: "10MB" as unknown as number },
      { history: "5x" as unknown as number },
      { description: 5 as unknown as string },
    ];
    for (const extra of bad) {
      expect(await errorCode(() => normalizeBucketConfig({ bucket: "b", ...extra }))).toBe(
        "INVALID_CONFIG",
      );
      const config = { ...normalizeBucketConfig({ bucket: "b" }), ...extra };
      // What protobuf cannot carry fails at encoding; the rest at apply.
      const code = await errorCode(() => d.encode({ type: "createBucket", config }));
      if (code === "none")
        expect(await d.code({ type: "createBucket", config })).toBe("INVALID_CONFIG");
      else expect(code).toBe("INVALID_ARGUMENT");
    }
    expect(kv.listBuckets()).toEqual([]);
  });

  it("an INVALID_CONFIG names the field and the value as given", async () => {
    const message = async (extra: Partial<BucketConfigInput>) => {
      try {
        normalizeBucketConfig({ bucket: "b", ...extra });
      } catch (err) {
        return (err as Error).message;
      }
      return "none";
    };
    expect(await message({ ttlMs: "30s" as unknown as number })).toBe(
      'bucket "b": ttl must be an integer number of milliseconds >= 0 (0 = forever), got "30s"',
    );
    expect(await message({ ttlMs: 1.7 })).toContain("ttl must be an integer");
    expect(await message({ history: "5x" as unknown as number })).toContain(
      'history must be an integer 1..64 (revisions kept per key), got "5x"',
    );
    expect(await message({ maxValueSize: "1k" as unknown as number })).toContain(
      'maxValueSize must be -1 (the server\'s limit, 1048576 bytes) or an integer number of bytes 1..1048576, got "1k"',
    );
    expect(await message({ maxBytes: 2 ** 60 })).toContain(`got ${2 ** 60}`);
  });

  it("replicas other than the stamped voter count (or 0) is INVALID_CONFIG at apply; it is not part of the no-op check", async () => {
    const create = (replicas: number, voters: number) =>
      d.kv.apply(
        ++d.index,
        encodeCommand({
          type: "createBucket",
          config: normalizeBucketConfig({ bucket: "r", replicas }),
          timestampMs: d.nowMs,
          limits: { maxBuckets: 0, maxStoredBytes: 0, voters },
        }),
      );
    for (const replicas of [1, 5]) {
      const r = await create(replicas, 3);
      expect(r.ok ? "none" : r.error.message).toContain(
        `replicas must be the cluster's voter count, 3: every bucket is replicated on every voter (omit replicas or give 0 for that count), got ${replicas}`,
      );
    }
    expect(kv.listBuckets()).toEqual([]);
    expect((await create(3, 3)).ok).toBe(true);
    // The same bucket, asked for with 0 or with the count after a membership change.
    expect((await create(0, 3)).ok).toBe(true);
    expect((await create(4, 4)).ok).toBe(true);
    expect(kv.listBuckets().map((b) => b.bucket)).toEqual(["r"]);
    // Entries without a stamped count (written before it existed) are not judged.
    expect((await create(7, 0)).ok).toBe(true);
  });
});

describe("purgeDeletes", () => {
  it("removes old markers entirely, keeps younger ones alone, and keeps the keys absent", async () => {
    await d.createBucket({ bucket: "b", history: 5 });
    await d.put("b", "old", "1");
    await d.del("b", "old");
    d.nowMs += 60_000;
    await d.put("b", "young", "1");
    await d.purge("b", "young");
    await d.put("b", "live", "1");
    await d.put("b", "young2", "1");
    await d.del("b", "young2");
    const r = await d.run({ type: "purgeDeletes", bucket: "b", olderThanMs: 30_000 });
    expect(r).toMatchObject({ ok: true, count: 3 });
    expect(await kv.history("b", "old")).toEqual([]);
    expect((await kv.history("b", "young")).map(show)).toEqual(["4:young:PURGE"]);
    expect((await kv.history("b", "young2")).map(show)).toEqual(["7:young2:DEL"]);
    expect(await kv.keys("b")).toEqual(["live"]);
    const all = await d.run({ type: "purgeDeletes", bucket: "b", olderThanMs: -1 });
    expect(all).toMatchObject({ ok: true, count: 2 });
    expect((await kv.history("b", ">")).map(show)).toEqual(["5:live:PUT=1"]);
    expect(await d.put("b", "x", "next")).toBe(8);
  });
});

describe("apply: malformed commands, replays and request ids", () => {
  it("a malformed command is INVALID_ARGUMENT and still advances the applied index", async () => {
    for (const data of [new Uint8Array([0xff, 0xff, 0xff]), new Uint8Array(0), bytes("garbage")]) {
      const r = await kv.apply(++d.index, data);
      expect(r.ok ? "none" : r.error.code).toBe("INVALID_ARGUMENT");
      expect(kv.appliedIndex()).toBe(d.index);
    }
  });

  it("applying an index <= appliedIndex is a no-op returning the remembered result", async () => {
    await d.createBucket({ bucket: "b" });
    const data = d.encode({ type: "put", bucket: "b", key: "k", value: bytes("v") });
    const first = await kv.apply(2, data);
    expect(first).toMatchObject({ ok: true, revision: 1, index: 2, disposition: "applied" });
    const again = await kv.apply(2, data);
    expect(again).toMatchObject({ ok: true, revision: 1, index: 2, disposition: "replay" });
    const older = await kv.apply(1, new Uint8Array([1, 2, 3]));
    expect(older).toMatchObject({ ok: true, revision: 0, disposition: "replay" });
    expect(kv.status("b").values).toBe(1);
    expect(kv.appliedIndex()).toBe(2);
  });

  it("a retried request id is applied at most once and returns the first result", async () => {
    await d.createBucket({ bucket: "b" });
    const req = { clientId: "c1", sequence: 7 };
    const a = await d.run({ type: "put", bucket: "b", key: "k", value: bytes("1") }, req);
    const b = await d.run({ type: "put", bucket: "b", key: "k", value: bytes("1") }, req);
    expect(a).toMatchObject({ ok: true, revision: 1, disposition: "applied" });
    expect(b).toMatchObject({ ok: true, revision: 1, disposition: "duplicate" });
    const failedFirst = await d.run(
      { type: "create", bucket: "b", key: "k", value: bytes("x") },
      { id: "req-9" },
    );
    await d.del("b", "k");
    const retried = await d.run(
      { type: "create", bucket: "b", key: "k", value: bytes("x") },
      { id: "req-9" },
    );
    expect(failedFirst.ok ? "none" : failedFirst.error.code).toBe("KEY_EXISTS");
    expect(retried).toMatchObject({ ok: false, disposition: "duplicate" });
    if (!retried.ok) expect(retried.error.details.currentRevision).toBe(1);
    // Same sequence, other client: a different request.
    const c = await d.run(
      { type: "put", bucket: "b", key: "k", value: bytes("1") },
      { clientId: "c2", sequence: 7 },
    );
    expect(c).toMatchObject({ ok: true, revision: 3, disposition: "applied" });
    expect(kv.status("b").values).toBe(1);
  });

  it("request ids and results survive a reopen; the window is bounded by count", async () => {
    kv.close();
    kv = await KvStateMachine.open(log, { dedupeWindow: 4 });
    d = new Driver(kv);
    await d.createBucket({ bucket: "b", history: 64 });
    const put = (i: number) =>
      d.run({ type: "put", bucket: "b", key: "k", value: bytes(String(i)) }, { id: `r${i}` });
    await put(1);
    await reopen();
    expect(kv.appliedIndex()).toBe(2);
    expect(await put(1)).toMatchObject({ disposition: "duplicate", revision: 1 });
    expect(await kv.apply(2, new Uint8Array(0))).toMatchObject({
      disposition: "replay",
      revision: 1,
    });
    for (let i = 2; i <= 6; i++) await put(i);
    // r1's records (indexes 2 and 3) have left the 4-entry window: a retry now applies again.
    expect(await put(1)).toMatchObject({ disposition: "applied", revision: 7 });
    expect(await kv.apply(2, new Uint8Array(0))).toMatchObject({
      disposition: "forgotten",
      ok: false,
    });
    await reopen();
    expect(await put(6)).toMatchObject({ disposition: "duplicate", revision: 6 });
    expect(kv.appliedIndex()).toBe(d.index);
  });

  it("reopen restores buckets, data, applied index and clock", async () => {
    await d.createBucket({ bucket: "b", history: 3, ttlMs: 5_000, description: "d" });
    await d.put("b", "k", "1");
    await d.put("b", "k", "2");
    await d.del("b", "j");
    const before = {
      status: kv.status("b"),
      history: (await kv.history("b", ">")).map(show),
      applied: kv.appliedIndex(),
      clock: kv.clockMs(),
    };
    await reopen();
    expect({
      status: kv.status("b"),
      history: (await kv.history("b", ">")).map(show),
      applied: kv.appliedIndex(),
      clock: kv.clockMs(),
    }).toEqual(before);
    expect(await d.put("b", "k", "3")).toBe(4);
  });

  it("pipelined applies resolve in index order and share writes", async () => {
    await d.createBucket({ bucket: "b" });
    const writesBefore = log.writeCount;
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => d.put("b", `k${i % 10}`, String(i))),
    );
    expect(results).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(log.writeCount - writesBefore).toBeLessThan(200);
    expect(kv.appliedIndex()).toBe(d.index);
  });
});
