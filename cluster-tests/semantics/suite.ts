/**
 * A contract suite: every rule of SEMANTICS.md, through the real client SDK, against
 * whatever `connectTo` starts (a single node, a three-node cluster). Each `it` works in
 * a fresh bucket and asserts exact values and error codes.
 *
 * Two clients: `a` (connected to `servers`; in a cluster, a follower, so its writes
 * are forwarded) and `b` (connected to `observers`, default the same servers; in a
 * cluster, the leader). Reads are made through both and must agree, and reads through
 * one must see writes acknowledged through the other (linearizable by default).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connect,
  type Entry,
  isKvError,
  type KeyValue,
  type KeyValueConfig,
  type KvConnection,
  type KvError,
  type KvWatch,
} from "../../client/index.js";
import { waitFor } from "../../test_support/index.js";
import { codeOf, str, take, text } from "../harness/util.js";

/** Where the suite connects: `servers` for client `a`, `observers` (default `servers`) for `b`. */
export interface SemanticsTarget {
  servers: string[];
  observers?: string[];
}

/** The error a promise rejects with; fails the test if it resolves or throws a non-KvError. */
async function errorOf(p: Promise<unknown>): Promise<KvError> {
  try {
    await p;
  } catch (err) {
    if (isKvError(err)) return err;
    throw new Error(`expected a KvError, got ${String(err)}`);
  }
  throw new Error("expected a KvError, the call succeeded");
}

/** A watch's iterator; `next(n)` takes the next n items (bounded by a timeout). */
function iter(w: KvWatch): { next(n: number, timeoutMs?: number): Promise<Array<Entry | null>> } {
  const it = w[Symbol.asyncIterator]();
  return { next: (n, timeoutMs = 8000) => take(it, n, timeoutMs) };
}

/** The first `KvError` a watch fails with, at subscribe or on the first item. */
async function watchError(start: () => Promise<KvWatch>): Promise<KvError> {
  return errorOf(
    (async () => {
      const w = await start();
      try {
        await w[Symbol.asyncIterator]().next();
      } finally {
        w.stop();
      }
    })(),
  );
}

/**
 * A watch started after a linearizable read through the same client. The node's watch
 * does not wait for ReadIndex (see "a watch started after an acked write ..."), so
 * without this a watch on a follower may start below a write already acknowledged.
 */
async function watchOn(
  kv: KeyValue,
  filter: string,
  opts: Parameters<KeyValue["watch"]>[1] = {},
): Promise<KvWatch> {
  await kv.status();
  return kv.watch(filter, opts);
}

const view = (e: Entry | null) =>
  e === null ? null : { key: e.key, op: e.operation, rev: e.revision, value: str(e.value) };

export function semanticsSuite(name: string, connectTo: () => Promise<SemanticsTarget>): void {
  describe(name, () => {
    let ncA: KvConnection;
    let ncB: KvConnection;
    let bucketSeq = 0;

    beforeAll(async () => {
      const target = await connectTo();
      ncA = await connect({ servers: target.servers, timeoutMs: 8000 });
      ncB = await connect({ servers: target.observers ?? target.servers, timeoutMs: 8000 });
    });

    afterAll(async () => {
      await ncA?.close();
      await ncB?.close();
    });

    /** A fresh bucket, bound through both clients. */
    async function fresh(cfg: Omit<KeyValueConfig, "bucket"> = {}) {
      const bucket = `s${++bucketSeq}_${Date.now().toString(36)}`;
      const a = await ncA.createKeyValue({ bucket, ...cfg });
      const b = await ncB.keyValue(bucket);
      /** Runs a read through both clients; they must agree. Returns a's answer. */
      async function both<T>(read: (kv: KeyValue) => Promise<T>): Promise<T> {
        const ra = await read(a);
        const rb = await read(b);
        expect(rb).toEqual(ra);
        return ra;
      }
      return { bucket, a, b, both };
    }

    describe("names", () => {
      it("accepts bucket names of [a-zA-Z0-9_-] and rejects others with INVALID_BUCKET", async () => {
        const base = `n${++bucketSeq}`;
        for (const ok of [`${base}_A-z09`, `${base}-x`]) {
          expect((await ncA.createKeyValue({ bucket: ok })).bucket).toBe(ok);
          expect((await ncB.keyValue(ok)).bucket).toBe(ok);
        }
        for (const bad of ["", "a.b", "a b", "a*", "a>", "$a", "a/b", "ä", "x".repeat(257)]) {
          expect(await codeOf(ncA.createKeyValue({ bucket: bad })), bad).toBe("INVALID_BUCKET");
          expect(await codeOf(ncB.createKeyValue({ bucket: bad })), bad).toBe("INVALID_BUCKET");
        }
      });

      it("accepts a bucket name of exactly 256 characters", async () => {
        const long = `n${++bucketSeq}_`.padEnd(256, "x");
        expect(long.length).toBe(256);
        const kv = await ncA.createKeyValue({ bucket: long });
        expect(await kv.put("k", text("v"))).toBe(1);
        expect(str((await (await ncB.keyValue(long)).get("k"))!.value)).toBe("v");
      });

      it("accepts valid keys and rejects invalid ones (wildcards included) for every write", async () => {
        const { a, b, both } = await fresh({ history: 5 });
        const good = ["a", "a.b.c", "-/_=", "A-z_0/9=x", "a.b-c/d=e_f"];
        let rev = 0;
        for (const k of good) expect(await a.put(k, text(k))).toBe(++rev);
        const bad = [
          "",
          ".a",
          "a.",
          "a..b",
          "a b",
          "a$",
          "$a",
          "*",
          "a.*",
          ">",
          "a.>",
          "a*b",
          "ä",
          "a\n",
        ];
        for (const k of bad) {
          for (const kv of [a, b]) {
            expect(await codeOf(kv.put(k, text("v"))), `put ${k}`).toBe("INVALID_KEY");
            expect(await codeOf(kv.create(k, text("v"))), `create ${k}`).toBe("INVALID_KEY");
            expect(await codeOf(kv.update(k, text("v"), 0)), `update ${k}`).toBe("INVALID_KEY");
            expect(await codeOf(kv.delete(k)), `delete ${k}`).toBe("INVALID_KEY");
            expect(await codeOf(kv.purge(k)), `purge ${k}`).toBe("INVALID_KEY");
          }
        }
        // The rejected writes took no revision.
        expect(await a.put("after", text("x"))).toBe(rev + 1);
        expect(await both((kv) => kv.keys())).toEqual([...good, "after"].sort());
      });

      it("accepts a 1024-byte key and rejects a 1025-byte one with INVALID_KEY", async () => {
        const { a, b, both } = await fresh();
        const k1024 = `${"a".repeat(511)}.${"b".repeat(512)}`;
        expect(new TextEncoder().encode(k1024).length).toBe(1024);
        expect(await a.put(k1024, text("v"))).toBe(1);
        expect((await both((kv) => kv.get(k1024)))?.revision).toBe(1);
        const k1025 = `${k1024}c`;
        expect(await codeOf(a.put(k1025, text("v")))).toBe("INVALID_KEY");
        expect(await codeOf(b.create(k1025, text("v")))).toBe("INVALID_KEY");
        expect(await codeOf(a.delete(k1025))).toBe("INVALID_KEY");
        expect(await a.put("next", text("v"))).toBe(2);
      });
    });

    describe("revisions", () => {
      it("are bucket-wide, start at 1 and take +1 per accepted write of any kind", async () => {
        const { a, b, both } = await fresh({ history: 5 });
        expect(await a.put("x", text("1"))).toBe(1);
        expect(await b.put("y", text("2"))).toBe(2);
        expect(await a.create("z", text("3"))).toBe(3);
        expect(await b.update("x", text("4"), 1)).toBe(4);
        expect(await a.delete("y")).toBe(5);
        expect(await b.purge("z")).toBe(6);
        expect(await a.delete("never")).toBe(7);
        const st = await both((kv) => kv.status());
        expect(st.lastRevision).toBe(7);
      });

      it("give a rejected write no revision", async () => {
        const { a, b, both } = await fresh({ maxValueSize: 4 });
        expect(await a.put("k", text("v"))).toBe(1);
        expect(await codeOf(a.create("k", text("v")))).toBe("KEY_EXISTS");
        expect(await codeOf(b.update("k", text("v"), 7))).toBe("WRONG_LAST_REVISION");
        expect(await codeOf(a.delete("k", { last: 9 }))).toBe("WRONG_LAST_REVISION");
        expect(await codeOf(b.purge("k", { last: 0 }))).toBe("WRONG_LAST_REVISION");
        expect(await codeOf(a.put("k", text("12345")))).toBe("VALUE_TOO_LARGE");
        expect(await codeOf(b.put("a..b", text("v")))).toBe("INVALID_KEY");
        expect((await both((kv) => kv.status())).lastRevision).toBe(1);
        expect(await b.put("k", text("w"))).toBe(2);
      });
    });

    describe("writes", () => {
      it("put appends a PUT and get returns it with exact fields", async () => {
        const { bucket, a, both } = await fresh({ history: 3 });
        expect(await a.put("a.b", text("one"))).toBe(1);
        expect(await a.putString("a.b", "two!")).toBe(2);
        const e = (await both((kv) => kv.get("a.b")))!;
        expect(e).toMatchObject({
          bucket,
          key: "a.b",
          revision: 2,
          operation: "PUT",
          delta: 0,
          size: 4,
        });
        expect(str(e.value)).toBe("two!");
        expect(e.created).toBeInstanceOf(Date);
        expect(Math.abs(e.created.getTime() - Date.now())).toBeLessThan(60_000);
        // An empty value is a PUT too, not a deletion.
        expect(await a.put("empty", new Uint8Array(0))).toBe(3);
        const empty = (await both((kv) => kv.get("empty")))!;
        expect(empty).toMatchObject({ operation: "PUT", size: 0, revision: 3 });
        expect(await both((kv) => kv.get("missing"))).toBeNull();
      });

      it("create succeeds on an absent key, after DEL, after PURGE; else KEY_EXISTS with currentRevision", async () => {
        const { a, b, both } = await fresh({ history: 5 });
        expect(await a.create("k", text("1"))).toBe(1);
        let err = await errorOf(b.create("k", text("2")));
        expect(err.code).toBe("KEY_EXISTS");
        expect(err.details.currentRevision).toBe(1);
        expect(await a.put("k", text("3"))).toBe(2);
        err = await errorOf(a.create("k", text("4")));
        expect(err.code).toBe("KEY_EXISTS");
        expect(err.details.currentRevision).toBe(2);
        expect(await b.delete("k")).toBe(3);
        expect(await a.create("k", text("5"))).toBe(4);
        expect(await b.purge("k")).toBe(5);
        expect(await b.create("k", text("6"))).toBe(6);
        const e = (await both((kv) => kv.get("k")))!;
        expect([e.revision, str(e.value)]).toEqual([6, "6"]);
        expect((await both((kv) => kv.history("k"))).map(view)).toEqual([
          { key: "k", op: "PURGE", rev: 5, value: "" },
          { key: "k", op: "PUT", rev: 6, value: "6" },
        ]);
      });

      it("update compares with the latest entry (markers count); last=0 means no entry at all", async () => {
        const { a, b, both } = await fresh({ history: 5 });
        let err = await errorOf(a.update("k", text("x"), 3));
        expect([err.code, err.details.currentRevision]).toEqual(["WRONG_LAST_REVISION", 0]);
        expect(await a.update("k", text("1"), 0)).toBe(1);
        err = await errorOf(b.update("k", text("x"), 0));
        expect([err.code, err.details.currentRevision]).toEqual(["WRONG_LAST_REVISION", 1]);
        expect(await b.update("k", text("2"), 1)).toBe(2);
        err = await errorOf(a.update("k", text("x"), 1));
        expect([err.code, err.details.currentRevision]).toEqual(["WRONG_LAST_REVISION", 2]);
        // A DEL marker is the latest entry: update must name its revision.
        expect(await a.delete("k")).toBe(3);
        err = await errorOf(b.update("k", text("x"), 2));
        expect([err.code, err.details.currentRevision]).toEqual(["WRONG_LAST_REVISION", 3]);
        err = await errorOf(b.update("k", text("x"), 0));
        expect([err.code, err.details.currentRevision]).toEqual(["WRONG_LAST_REVISION", 3]);
        expect(await b.update("k", text("4"), 3)).toBe(4);
        // Same for a PURGE marker.
        expect(await a.purge("k")).toBe(5);
        err = await errorOf(a.update("k", text("x"), 0));
        expect([err.code, err.details.currentRevision]).toEqual(["WRONG_LAST_REVISION", 5]);
        expect(await a.update("k", text("6"), 5)).toBe(6);
        // Another key's revision does not count.
        expect(await a.put("other", text("o"))).toBe(7);
        err = await errorOf(a.update("k", text("x"), 7));
        expect([err.code, err.details.currentRevision]).toEqual(["WRONG_LAST_REVISION", 6]);
        expect(str((await both((kv) => kv.get("k")))!.value)).toBe("6");
      });

      it("delete appends a DEL marker, keeps history, marks absent keys, and honours last", async () => {
        const { a, b, both } = await fresh({ history: 10 });
        await a.put("k", text("1"));
        await a.put("k", text("2"));
        expect(await b.delete("k")).toBe(3);
        expect(await both((kv) => kv.get("k"))).toBeNull();
        expect((await both((kv) => kv.history("k"))).map(view)).toEqual([
          { key: "k", op: "PUT", rev: 1, value: "1" },
          { key: "k", op: "PUT", rev: 2, value: "2" },
          { key: "k", op: "DEL", rev: 3, value: "" },
        ]);
        // Deleting a deleted key appends another marker.
        expect(await a.delete("k")).toBe(4);
        // Deleting a key that never existed appends a marker.
        expect(await a.delete("absent")).toBe(5);
        expect((await both((kv) => kv.history("absent"))).map(view)).toEqual([
          { key: "absent", op: "DEL", rev: 5, value: "" },
        ]);
        // Conditional.
        let err = await errorOf(b.delete("k", { last: 3 }));
        expect([err.code, err.details.currentRevision]).toEqual(["WRONG_LAST_REVISION", 4]);
        expect(await b.delete("k", { last: 4 })).toBe(6);
        err = await errorOf(a.delete("none", { last: 1 }));
        expect([err.code, err.details.currentRevision]).toEqual(["WRONG_LAST_REVISION", 0]);
        expect(await a.delete("none", { last: 0 })).toBe(7);
        expect((await both((kv) => kv.status())).values).toBe(7);
      });

      it("purge leaves exactly [PURGE] and honours last", async () => {
        const { a, b, both } = await fresh({ history: 10 });
        await a.put("k", text("1"));
        await a.delete("k");
        await a.put("k", text("3"));
        await a.put("other", text("o"));
        const err = await errorOf(b.purge("k", { last: 2 }));
        expect([err.code, err.details.currentRevision]).toEqual(["WRONG_LAST_REVISION", 3]);
        expect(await b.purge("k", { last: 3 })).toBe(5);
        expect((await both((kv) => kv.history("k"))).map(view)).toEqual([
          { key: "k", op: "PURGE", rev: 5, value: "" },
        ]);
        expect(await both((kv) => kv.get("k"))).toBeNull();
        expect(await both((kv) => kv.getRevision("k", 1))).toBeNull();
        // Other keys are untouched.
        expect((await both((kv) => kv.history("other"))).map((e) => e.revision)).toEqual([4]);
        // Purging a purged key replaces the marker.
        expect(await a.purge("k")).toBe(6);
        expect((await both((kv) => kv.history("k"))).map(view)).toEqual([
          { key: "k", op: "PURGE", rev: 6, value: "" },
        ]);
        expect(await a.purge("absent")).toBe(7);
        expect((await both((kv) => kv.history("absent"))).map((e) => e.operation)).toEqual([
          "PURGE",
        ]);
      });

      it("keeps the newest h entries per key, markers included; history outside 1..64 is INVALID_CONFIG", async () => {
        const { a, both } = await fresh({ history: 3 });
        for (let i = 1; i <= 5; i++) expect(await a.put("k", text(`v${i}`))).toBe(i);
        expect(await a.put("other", text("o"))).toBe(6);
        expect((await both((kv) => kv.history("k"))).map((e) => e.revision)).toEqual([3, 4, 5]);
        expect(await a.delete("k")).toBe(7);
        expect((await both((kv) => kv.history("k"))).map(view)).toEqual([
          { key: "k", op: "PUT", rev: 4, value: "v4" },
          { key: "k", op: "PUT", rev: 5, value: "v5" },
          { key: "k", op: "DEL", rev: 7, value: "" },
        ]);
        expect((await both((kv) => kv.status())).values).toBe(4);
        // Default history is 1.
        const d = await fresh();
        expect((await d.both((kv) => kv.status())).history).toBe(1);
        await d.a.put("k", text("1"));
        await d.a.put("k", text("2"));
        expect((await d.both((kv) => kv.history("k"))).map((e) => e.revision)).toEqual([2]);
        for (const history of [0, 65, -1]) {
          expect(
            await codeOf(ncA.createKeyValue({ bucket: `h${++bucketSeq}`, history })),
            `history ${history}`,
          ).toBe("INVALID_CONFIG");
        }
        expect((await ncB.createKeyValue({ bucket: `h${++bucketSeq}`, history: 64 })).bucket).toBe(
          `h${bucketSeq}`,
        );
      });

      it("maxValueSize counts value bytes only: larger is VALUE_TOO_LARGE", async () => {
        const { a, b, both } = await fresh({ maxValueSize: 10 });
        const longKey = `k.${"x".repeat(200)}`;
        expect(await a.put(longKey, new Uint8Array(10))).toBe(1);
        expect(await codeOf(a.put("k", new Uint8Array(11)))).toBe("VALUE_TOO_LARGE");
        expect(await codeOf(b.create("c", new Uint8Array(11)))).toBe("VALUE_TOO_LARGE");
        expect(await codeOf(b.update(longKey, new Uint8Array(11), 1))).toBe("VALUE_TOO_LARGE");
        expect(await b.update(longKey, new Uint8Array(9), 1)).toBe(2);
        expect((await both((kv) => kv.status())).maxValueSize).toBe(10);
        expect(await both((kv) => kv.keys())).toEqual([longKey]);
      });

      it("maxBytes rejects a write that would exceed it with BUCKET_FULL; DEL and PURGE still pass", async () => {
        const { a, b, both } = await fresh({ maxBytes: 100, history: 1 });
        expect(await a.put("a", new Uint8Array(60))).toBe(1);
        expect(await a.put("b", new Uint8Array(40))).toBe(2);
        expect((await both((kv) => kv.status())).bytes).toBe(100);
        expect(await codeOf(a.put("c", new Uint8Array(1)))).toBe("BUCKET_FULL");
        expect(await codeOf(b.create("c", new Uint8Array(1)))).toBe("BUCKET_FULL");
        // Replacing a value with one of the same size fits (history 1 drops the old one).
        expect(await b.put("b", new Uint8Array(40))).toBe(3);
        expect(await codeOf(b.put("b", new Uint8Array(41)))).toBe("BUCKET_FULL");
        // Nothing else was evicted.
        expect(await both((kv) => kv.keys())).toEqual(["a", "b"]);
        // Markers are accepted on the full bucket and free space.
        expect(await a.delete("c")).toBe(4);
        expect(await b.delete("b")).toBe(5);
        expect(await a.purge("a")).toBe(6);
        expect((await both((kv) => kv.status())).bytes).toBe(0);
        expect(await a.put("c", new Uint8Array(100))).toBe(7);
        expect((await both((kv) => kv.status())).maxBytes).toBe(100);
      });

      it("TTL: an expired key is gone, a PURGE marker is written and watched, create succeeds", async () => {
        const ttl = 1500;
        const { a, b, both } = await fresh({ ttl, history: 3 });
        expect((await both((kv) => kv.status())).ttl).toBe(ttl);
        const w = await watchOn(b, "k", { updatesOnly: true });
        const wit = iter(w);
        expect(await wit.next(1)).toEqual([null]);
        const written = Date.now();
        expect(await a.put("k", text("v"))).toBe(1);
        expect(await codeOf(a.create("k", text("again")))).toBe("KEY_EXISTS");
        await waitFor(async () => (await a.get("k")) === null, 15_000, "k to expire", 50);
        // Not before its ttl (reads do not refresh it, but it lives at least ttl).
        expect(Date.now() - written).toBeGreaterThanOrEqual(ttl - 100);
        expect(await both((kv) => kv.get("k"))).toBeNull();
        expect(await both((kv) => kv.keys())).toEqual([]);
        const hist = await both((kv) => kv.history("k"));
        expect(hist.map(view)).toEqual([{ key: "k", op: "PURGE", rev: 2, value: "" }]);
        const seen = await wit.next(2, 15_000);
        expect(seen.map(view)).toEqual([
          { key: "k", op: "PUT", rev: 1, value: "v" },
          { key: "k", op: "PURGE", rev: 2, value: "" },
        ]);
        w.stop();
        expect(await b.create("k", text("new"))).toBe(3);
        expect(str((await both((kv) => kv.get("k")))!.value)).toBe("new");
      });
    });

    describe("reads", () => {
      it("getRevision: the PUT of that key, else null", async () => {
        const { a, both } = await fresh({ history: 2 });
        await a.put("k", text("1")); // 1
        await a.put("o", text("2")); // 2
        await a.delete("o"); // 3
        await a.put("k", text("4")); // 4
        await a.put("k", text("5")); // 5, drops 1
        const e = (await both((kv) => kv.getRevision("k", 4)))!;
        expect([e.key, e.revision, e.operation, str(e.value), e.delta]).toEqual([
          "k",
          4,
          "PUT",
          "4",
          0,
        ]);
        expect(await both((kv) => kv.getRevision("k", 2))).toBeNull(); // another key's
        expect(await both((kv) => kv.getRevision("o", 3))).toBeNull(); // a marker
        expect(await both((kv) => kv.getRevision("k", 1))).toBeNull(); // dropped by history
        expect(await both((kv) => kv.getRevision("k", 99))).toBeNull(); // not yet written
        expect(str((await both((kv) => kv.getRevision("o", 2)))!.value)).toBe("2");
      });

      it("keys: sorted, de-duplicated, PUTs only, [] when none, filters with * and >", async () => {
        const { a, both } = await fresh({ history: 5 });
        expect(await both((kv) => kv.keys())).toEqual([]);
        expect(await both((kv) => kv.keys("a.>"))).toEqual([]);
        for (const k of ["b", "a", "a.x", "a.y.z", "a.y", "c.1.z", "a", "a.x", "d", "e"]) {
          await a.put(k, text(k));
        }
        await a.delete("d");
        await a.purge("e");
        await a.delete("never");
        expect(await both((kv) => kv.keys())).toEqual(["a", "a.x", "a.y", "a.y.z", "b", "c.1.z"]);
        expect(await both((kv) => kv.keys(">"))).toEqual([
          "a",
          "a.x",
          "a.y",
          "a.y.z",
          "b",
          "c.1.z",
        ]);
        expect(await both((kv) => kv.keys("a.>"))).toEqual(["a.x", "a.y", "a.y.z"]);
        expect(await both((kv) => kv.keys("a.*"))).toEqual(["a.x", "a.y"]);
        expect(await both((kv) => kv.keys("*"))).toEqual(["a", "b"]);
        expect(await both((kv) => kv.keys("*.*.z"))).toEqual(["a.y.z", "c.1.z"]);
        expect(await both((kv) => kv.keys("a"))).toEqual(["a"]);
        expect(await both((kv) => kv.keys("d"))).toEqual([]);
        expect(await both((kv) => kv.keys("zz.>"))).toEqual([]);
        expect(await codeOf(a.keys("a..b"))).toBe("INVALID_KEY");
        expect(await codeOf(a.keys("a.>.b"))).toBe("INVALID_KEY");
      });

      it("listKeys streams what keys returns, across pages", async () => {
        const { a, b, both } = await fresh();
        const n = 1205;
        // At most 200 writes in flight: a follower forwards at most 1024 at once.
        for (let i = 0; i < n; i += 200) {
          const writes: Promise<number>[] = [];
          for (let j = i; j < Math.min(n, i + 200); j++) {
            writes.push(a.put(`p.${String(j).padStart(5, "0")}`, text("v")));
          }
          await Promise.all(writes);
        }
        await a.put("q", text("v"));
        await b.delete("p.00007");
        for (const filter of [">", "p.*", "q", "r.>"]) {
          const streamed: string[] = [];
          for await (const k of b.listKeys(filter)) streamed.push(k);
          expect(streamed, filter).toEqual(await both((kv) => kv.keys(filter)));
        }
        const all = await a.keys();
        expect(all.length).toBe(n);
        expect(all).toEqual([...all].sort());
        expect(all).not.toContain("p.00007");
      });

      it("history: oldest first with markers; [] when none", async () => {
        const { a, b, both } = await fresh({ history: 64 });
        expect(await both((kv) => kv.history("k"))).toEqual([]);
        await a.put("k", text("1"));
        await b.put("x", text("x"));
        await b.delete("k");
        await a.put("k", text("3"));
        expect((await both((kv) => kv.history("k"))).map(view)).toEqual([
          { key: "k", op: "PUT", rev: 1, value: "1" },
          { key: "k", op: "DEL", rev: 3, value: "" },
          { key: "k", op: "PUT", rev: 4, value: "3" },
        ]);
      });

      it("status reports the config, counts entries with history and markers, and the Raft group", async () => {
        const { bucket, a, both } = await fresh({
          history: 5,
          maxValueSize: 1000,
          maxBytes: 10_000,
          description: "semantics status",
        });
        let st = await both((kv) => kv.status());
        expect(st).toMatchObject({
          bucket,
          values: 0,
          bytes: 0,
          history: 5,
          ttl: 0,
          maxValueSize: 1000,
          maxBytes: 10_000,
          description: "semantics status",
          firstRevision: 1,
          lastRevision: 0,
        });
        await a.put("k", text("abc"));
        await a.put("k", text("de"));
        await a.delete("k");
        await a.put("j", text("f"));
        st = await both((kv) => kv.status());
        expect(st).toMatchObject({ values: 4, bytes: 6, firstRevision: 1, lastRevision: 4 });
        expect(st.leader).not.toBe("");
        expect(st.replicaNodes).toContain(st.leader);
        expect(st.replicaNodes.length).toBe(st.replicas);
        const cluster = await ncB.clusterStatus();
        expect(st.leader).toBe(cluster.leader);
        expect([...st.replicaNodes].sort()).toEqual(cluster.peers.map((p) => p.id).sort());
        // Unspecified limits take the defaults.
        const d = await fresh();
        expect(await d.both((kv) => kv.status())).toMatchObject({
          history: 1,
          ttl: 0,
          maxBytes: -1,
          description: "",
          replicas: st.replicas,
        });
      });

      it("reads are linearizable by default: a write acked through one client is seen through the other", async () => {
        const { a, b } = await fresh();
        for (let i = 0; i < 20; i++) {
          const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
          const rev = await writer.put("k", text(`v${i}`));
          const e = (await reader.get("k"))!;
          expect([e.revision, str(e.value)]).toEqual([rev, `v${i}`]);
          expect(await reader.keys()).toEqual(["k"]);
          expect((await reader.status()).lastRevision).toBe(rev);
        }
        const d = await a.delete("k");
        expect(await b.get("k")).toBeNull();
        expect((await b.history("k")).map((e) => e.revision)).toEqual([d]);
      });

      it("purgeDeletes removes markers older than the bound; younger markers stay alone", async () => {
        const { a, b, both } = await fresh({ history: 3 });
        await a.put("a", text("1")); // 1
        await a.delete("a"); // 2
        await a.put("b", text("2")); // 3
        await a.purge("c"); // 4
        // Default bound (30 min): fresh markers stay, the entries under them go.
        expect(await b.purgeDeletes()).toBe(1);
        expect((await both((kv) => kv.history("a"))).map(view)).toEqual([
          { key: "a", op: "DEL", rev: 2, value: "" },
        ]);
        expect((await both((kv) => kv.history("c"))).map((e) => e.operation)).toEqual(["PURGE"]);
        expect(await a.purgeDeletes({ olderThanMs: 0 })).toBe(2);
        expect(await both((kv) => kv.history("a"))).toEqual([]);
        expect(await both((kv) => kv.history("c"))).toEqual([]);
        expect(await both((kv) => kv.keys())).toEqual(["b"]);
        const st = await both((kv) => kv.status());
        expect([st.values, st.lastRevision]).toEqual([1, 4]);
        expect(await a.purgeDeletes({ olderThanMs: 0 })).toBe(0);
        // purgeDeletes takes no revision.
        expect(await b.put("d", text("d"))).toBe(5);
        expect(await a.create("a", text("again"))).toBe(6);
      });
    });

    describe("watch", () => {
      it("default: latest per key (markers included) in revision order, one null, then live", async () => {
        const { a, b } = await fresh({ history: 5 });
        await a.put("w.1", text("1")); // 1
        await a.put("w.2", text("2")); // 2
        await a.put("x", text("x")); // 3
        await a.put("w.1", text("4")); // 4
        await a.delete("w.2"); // 5
        await a.put("w.3", text("6")); // 6
        await a.purge("w.3"); // 7
        for (const [client, kv] of [
          ["a", a],
          ["b", b],
        ] as const) {
          const w = await watchOn(kv, "w.*");
          const it = iter(w);
          expect((await it.next(4)).map(view), client).toEqual([
            { key: "w.1", op: "PUT", rev: 4, value: "4" },
            { key: "w.2", op: "DEL", rev: 5, value: "" },
            { key: "w.3", op: "PURGE", rev: 7, value: "" },
            null,
          ]);
          w.stop();
        }
        const wa = iter(await watchOn(a, "w.*"));
        const wb = iter(await watchOn(b, ">"));
        expect((await wa.next(4)).at(-1)).toBeNull();
        expect((await wb.next(5)).at(-1)).toBeNull();
        const r1 = await b.put("w.4", text("8"));
        await a.put("y", text("9"));
        const r3 = await b.delete("w.1");
        const r4 = await a.put("w.9", text("end"));
        // Exactly one null: the live part holds only entries, in order.
        expect((await wa.next(3)).map(view)).toEqual([
          { key: "w.4", op: "PUT", rev: r1, value: "8" },
          { key: "w.1", op: "DEL", rev: r3, value: "" },
          { key: "w.9", op: "PUT", rev: r4, value: "end" },
        ]);
        expect((await wb.next(4)).map((e) => e?.revision ?? null)).toEqual([8, 9, 10, 11]);
      });

      it("filters: * matches one token, > one or more trailing tokens, a.> not a", async () => {
        const { a, b } = await fresh();
        for (const k of ["a", "a.b", "a.b.c", "a.c", "b.b", "x.a.b"]) await a.put(k, text(k));
        const cases: Array<[string, string[]]> = [
          ["a.>", ["a.b", "a.b.c", "a.c"]],
          ["a.*", ["a.b", "a.c"]],
          ["*.b", ["a.b", "b.b"]],
          ["*.*.*", ["a.b.c", "x.a.b"]],
          ["a", ["a"]],
          [">", ["a", "a.b", "a.b.c", "a.c", "b.b", "x.a.b"]],
        ];
        for (const [filter, keys] of cases) {
          for (const kv of [a, b]) {
            const it = iter(await watchOn(kv, filter));
            const got = await it.next(keys.length + 1);
            expect(got.at(-1), filter).toBeNull();
            expect(
              got.slice(0, -1).map((e) => e!.key),
              filter,
            ).toEqual(keys);
          }
        }
        const it = iter(await watchOn(b, "a.>", { updatesOnly: true }));
        expect(await it.next(1)).toEqual([null]);
        await a.put("a", text("not matched"));
        await a.put("a.z", text("matched"));
        expect((await it.next(1)).map((e) => e?.key)).toEqual(["a.z"]);
        expect(await codeOf(a.watch("a.>.b"))).toBe("INVALID_KEY");
      });

      it("includeHistory: every retained entry in revision order, then null", async () => {
        const { a, b } = await fresh({ history: 2 });
        await a.put("k", text("1")); // 1, dropped by history
        await a.put("j", text("2")); // 2
        await a.put("k", text("3")); // 3
        await a.delete("k"); // 4
        const its = [];
        for (const kv of [a, b]) {
          const it = iter(await watchOn(kv, ">", { includeHistory: true }));
          expect((await it.next(4)).map(view)).toEqual([
            { key: "j", op: "PUT", rev: 2, value: "2" },
            { key: "k", op: "PUT", rev: 3, value: "3" },
            { key: "k", op: "DEL", rev: 4, value: "" },
            null,
          ]);
          its.push(it);
        }
        await b.put("j", text("live"));
        for (const it of its) {
          expect((await it.next(1)).map(view)).toEqual([
            { key: "j", op: "PUT", rev: 5, value: "live" },
          ]);
        }
      });

      it("ignoreDeletes drops DEL and PURGE, initial and live", async () => {
        const { a, b } = await fresh({ history: 5 });
        await a.put("a", text("1")); // 1
        await a.put("b", text("2")); // 2
        await a.delete("b"); // 3
        await a.purge("c"); // 4
        const latest = iter(await watchOn(b, ">", { ignoreDeletes: true }));
        expect((await latest.next(2)).map(view)).toEqual([
          { key: "a", op: "PUT", rev: 1, value: "1" },
          null,
        ]);
        const hist = iter(await watchOn(a, ">", { ignoreDeletes: true, includeHistory: true }));
        expect((await hist.next(3)).map(view)).toEqual([
          { key: "a", op: "PUT", rev: 1, value: "1" },
          { key: "b", op: "PUT", rev: 2, value: "2" },
          null,
        ]);
        await a.delete("a"); // 5
        await b.purge("b"); // 6
        await a.put("d", text("7")); // 7
        expect((await latest.next(1)).map(view)).toEqual([
          { key: "d", op: "PUT", rev: 7, value: "7" },
        ]);
        expect((await hist.next(1)).map(view)).toEqual([
          { key: "d", op: "PUT", rev: 7, value: "7" },
        ]);
      });

      it("metaOnly: entries without value bytes, size known", async () => {
        const { a, b } = await fresh();
        await a.put("k", text("hello"));
        const it = iter(await watchOn(b, ">", { metaOnly: true }));
        const [first, marker] = await it.next(2);
        expect(marker).toBeNull();
        expect(first).toMatchObject({ key: "k", revision: 1, operation: "PUT", size: 5 });
        expect(first!.value.length).toBe(0);
        await a.put("k", text("0123456789"));
        const [live] = await it.next(1);
        expect(live).toMatchObject({ key: "k", revision: 2, operation: "PUT", size: 10 });
        expect(live!.value.length).toBe(0);
      });

      it("updatesOnly: the null first, then only later writes", async () => {
        const { a, b } = await fresh({ history: 5 });
        await a.put("k", text("old"));
        const it = iter(await watchOn(b, ">", { updatesOnly: true }));
        expect(await it.next(1)).toEqual([null]);
        const r = await a.put("k", text("new"));
        const d = await a.delete("k");
        expect((await it.next(2)).map(view)).toEqual([
          { key: "k", op: "PUT", rev: r, value: "new" },
          { key: "k", op: "DEL", rev: d, value: "" },
        ]);
      });

      it("resumeFromRevision: every retained matching entry from r, history included, then null, then live", async () => {
        const { a, b } = await fresh({ history: 5 });
        await a.put("k", text("1")); // 1
        await a.put("k", text("2")); // 2
        await a.put("x", text("3")); // 3
        await a.delete("k"); // 4
        await a.put("k", text("5")); // 5
        for (const kv of [a, b]) {
          const w = await watchOn(kv, "k", { resumeFromRevision: 2 });
          const it = iter(w);
          expect((await it.next(4)).map(view)).toEqual([
            { key: "k", op: "PUT", rev: 2, value: "2" },
            { key: "k", op: "DEL", rev: 4, value: "" },
            { key: "k", op: "PUT", rev: 5, value: "5" },
            null,
          ]);
          w.stop();
        }
        // From a revision not yet written: nothing, then null, then live.
        const it = iter(await watchOn(b, ">", { resumeFromRevision: 6 }));
        expect(await it.next(1)).toEqual([null]);
        expect(await a.put("z", text("6"))).toBe(6);
        expect((await it.next(1)).map(view)).toEqual([{ key: "z", op: "PUT", rev: 6, value: "6" }]);
      });

      it("resumeFromRevision older than retained fails with REVISION_COMPACTED when catchUp is false", async () => {
        const { a, b, both } = await fresh({ history: 1 });
        await a.put("k", text("1"));
        await a.put("k", text("2"));
        await a.put("k", text("3"));
        expect((await both((kv) => kv.status())).firstRevision).toBe(3);
        for (const kv of [a, b]) {
          const err = await watchError(() =>
            watchOn(kv, ">", { resumeFromRevision: 1, catchUp: false }),
          );
          expect([err.code, err.details.firstRevision]).toEqual(["REVISION_COMPACTED", 3]);
        }
        const it = iter(await watchOn(b, ">", { resumeFromRevision: 3, catchUp: false }));
        expect((await it.next(2)).map((e) => e?.revision ?? null)).toEqual([3, null]);
      });

      it("a resume point no longer retained catches up: notice, latest of each changed key, caught_up, then live", async () => {
        const { a, b } = await fresh({ history: 2 });
        await a.put("x", text("1")); // 1
        for (let i = 2; i <= 6; i++) await a.put(i % 2 === 0 ? "k" : "m", text(String(i))); // 2..6
        await a.delete("m"); // 7: m keeps 5 and 7, k keeps 4 and 6
        const watches = [];
        for (const kv of [a, b]) {
          // No progress notices here: they would interleave at random (tested below).
          const w = await watchOn(kv, ">", {
            resumeFromRevision: 2,
            notices: true,
            progressIntervalMs: 0,
          });
          const it = w[Symbol.asyncIterator]();
          expect(await take(it, 5, 8000)).toEqual([
            { kind: "catch_up", fromRevision: 2, toRevision: 7, reset: false },
            expect.objectContaining({ key: "k", revision: 6, operation: "PUT" }),
            expect.objectContaining({ key: "m", revision: 7, operation: "DEL" }),
            { kind: "caught_up", revision: 7 },
            null,
          ]);
          watches.push({ w, it });
        }
        // Live continues after the boundary, with no repeat.
        expect(await a.put("k", text("8"))).toBe(8);
        for (const { w, it } of watches) {
          expect(await take(it, 1, 8000)).toEqual([
            expect.objectContaining({ key: "k", revision: 8 }),
          ]);
          w.stop();
        }
        // Without notices the entries alone come (announced by a watch_catch_up event):
        // now m's marker (7) and k's latest (8), then null.
        const plain = iter(await watchOn(b, ">", { resumeFromRevision: 2 }));
        expect((await plain.next(3)).map((e) => e?.revision ?? null)).toEqual([7, 8, null]);
      });

      it("an idle watch with notices gets progress: nothing matching up to the bucket's revision", async () => {
        const { a, b } = await fresh();
        await a.put("w.1", text("1")); // 1
        let last = await a.put("other", text("2")); // 2
        for (const kv of [a, b]) {
          const w = await watchOn(kv, "w.*", { notices: true, progressIntervalMs: 100 });
          const it = w[Symbol.asyncIterator]();
          expect(await take(it, 3, 8000)).toEqual([
            expect.objectContaining({ key: "w.1", revision: 1 }),
            null,
            { kind: "progress", revision: last },
          ]);
          // A write elsewhere in the bucket moves the promise on; one notice per new revision.
          last = await a.put("other", text("3"));
          expect(await take(it, 1, 8000)).toEqual([{ kind: "progress", revision: last }]);
          w.stop();
        }
      });

      it("a key that changed after the resume point and then vanished needs a reset (notices) or fails", async () => {
        const { a, b } = await fresh({ history: 1 });
        await a.put("gone", text("1")); // 1
        await a.put("stay", text("2")); // 2
        await a.delete("gone"); // 3
        expect(await a.purgeDeletes({ olderThanMs: 0 })).toBe(1); // "gone" vanishes
        for (const kv of [a, b]) {
          const err = await watchError(() => watchOn(kv, ">", { resumeFromRevision: 2 }));
          expect(err.code).toBe("REVISION_COMPACTED");
          const w = await watchOn(kv, ">", {
            resumeFromRevision: 2,
            notices: true,
            progressIntervalMs: 0,
          });
          expect(await take(w[Symbol.asyncIterator](), 4, 8000)).toEqual([
            { kind: "catch_up", fromRevision: 2, toRevision: 3, reset: true },
            expect.objectContaining({ key: "stay", revision: 2 }),
            { kind: "caught_up", revision: 3 },
            null,
          ]);
          w.stop();
        }
      });

      it("a watch started after an acked write reflects it in its initial values, on every node", async () => {
        const { a, b } = await fresh();
        // No read before the watch: the watch itself must be linearizable, like get.
        for (let i = 0; i < 10; i++) {
          for (const [writer, watcher] of [
            [b, a],
            [a, b],
            [a, a],
            [b, b],
          ] as const) {
            const rev = await writer.put("k", text(`v${i}`));
            const w = await watcher.watch("k");
            const got = (await iter(w).next(2)).map(view);
            w.stop();
            expect(
              got,
              `${i}: write through ${writer === a ? "a" : "b"}, watch through ${watcher === a ? "a" : "b"}`,
            ).toEqual([{ key: "k", op: "PUT", rev, value: `v${i}` }, null]);
            const u = await watcher.watch("k", { updatesOnly: true });
            const uit = iter(u);
            expect(await uit.next(1)).toEqual([null]);
            const next = await writer.put("k", text(`u${i}`));
            // The acked write before the watch is not delivered live: the next one is.
            expect((await uit.next(1)).map((e) => e?.revision)).toEqual([next]);
            u.stop();
          }
        }
      });

      it("includeHistory with updatesOnly is INVALID_OPTION", async () => {
        const { a, b } = await fresh();
        for (const kv of [a, b]) {
          const err = await watchError(() =>
            watchOn(kv, ">", { includeHistory: true, updatesOnly: true }),
          );
          expect(err.code).toBe("INVALID_OPTION");
        }
      });

      it("delta counts entries still queued after this one; 0 when caught up and on get", async () => {
        const { a, b } = await fresh({ history: 5 });
        await a.put("a", text("1"));
        await a.put("b", text("2"));
        await a.put("c", text("3"));
        const it = iter(await watchOn(b, ">"));
        const initial = await it.next(4);
        expect(initial.at(-1)).toBeNull();
        expect(initial.slice(0, 3).map((e) => e!.delta)).toEqual([2, 1, 0]);
        for (let i = 0; i < 3; i++) {
          await a.put("live", text(String(i)));
          const [e] = await it.next(1);
          expect([e!.revision, e!.delta]).toEqual([4 + i, 0]);
        }
        expect((await b.get("live"))!.delta).toBe(0);
      });
    });

    describe("buckets", () => {
      it("createKeyValue: identical config is a no-op, a different one BUCKET_EXISTS", async () => {
        const cfg = { history: 4, ttl: 0, maxValueSize: 100, description: "same" };
        const { bucket, a, both } = await fresh(cfg);
        await a.put("k", text("v"));
        await ncB.createKeyValue({ bucket, ...cfg });
        await ncA.createKeyValue({ bucket, ...cfg });
        expect((await both((kv) => kv.status())).lastRevision).toBe(1);
        expect(str((await both((kv) => kv.get("k")))!.value)).toBe("v");
        for (const diff of [
          { history: 5 },
          { maxValueSize: 101 },
          { description: "other" },
          { maxBytes: 1000 },
          { ttl: 60_000 },
        ]) {
          const err = await errorOf(ncB.createKeyValue({ bucket, ...cfg, ...diff }));
          expect(err.code, JSON.stringify(diff)).toBe("BUCKET_EXISTS");
        }
        expect((await both((kv) => kv.status())).history).toBe(4);
      });

      it("keyValue and deleteKeyValue of a missing bucket are BUCKET_NOT_FOUND; listBuckets is sorted", async () => {
        const missing = `missing${++bucketSeq}`;
        expect(await codeOf(ncA.keyValue(missing))).toBe("BUCKET_NOT_FOUND");
        expect(await codeOf(ncB.keyValue(missing))).toBe("BUCKET_NOT_FOUND");
        expect(await codeOf(ncA.deleteKeyValue(missing))).toBe("BUCKET_NOT_FOUND");
        const names = [`zz${++bucketSeq}`, `AA${bucketSeq}`, `mm${bucketSeq}`];
        for (const n of names) await ncA.createKeyValue({ bucket: n });
        for (const nc of [ncA, ncB]) {
          const listed = (await nc.listBuckets()).map((s) => s.bucket);
          expect(listed).toEqual([...listed].sort());
          for (const n of names) expect(listed).toContain(n);
          expect(listed).not.toContain(missing);
        }
      });

      it("deleteKeyValue removes the data and ends watchers with BUCKET_NOT_FOUND", async () => {
        const { bucket, a, b } = await fresh();
        await a.put("k", text("v"));
        const wa = (await watchOn(a, ">"))[Symbol.asyncIterator]();
        const wb = (await watchOn(b, ">", { updatesOnly: true }))[Symbol.asyncIterator]();
        expect((await take(wa, 2)).at(-1)).toBeNull();
        expect(await take(wb, 1)).toEqual([null]);
        await ncB.deleteKeyValue(bucket);
        expect(await codeOf(wa.next())).toBe("BUCKET_NOT_FOUND");
        expect(await codeOf(wb.next())).toBe("BUCKET_NOT_FOUND");
        expect(await codeOf(ncA.keyValue(bucket))).toBe("BUCKET_NOT_FOUND");
        expect(await codeOf(a.get("k"))).toBe("BUCKET_NOT_FOUND");
        expect(await codeOf(b.put("k", text("v")))).toBe("BUCKET_NOT_FOUND");
        expect((await ncA.listBuckets()).map((s) => s.bucket)).not.toContain(bucket);
        expect(await codeOf(ncA.deleteKeyValue(bucket))).toBe("BUCKET_NOT_FOUND");
        // Recreated, it starts empty at revision 1.
        const again = await ncA.createKeyValue({ bucket });
        expect(await again.get("k")).toBeNull();
        expect(await again.put("k", text("w"))).toBe(1);
      });
    });
  });
}
