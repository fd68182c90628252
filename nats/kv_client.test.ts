/**
 * The official NATS KV client (`@nats-io/kv` over `@nats-io/transport-node`, from npm,
 * unmodified) against real `streamkv server` processes on their NATS port: one node, and
 * a three-node cluster where the writes go through one node and the reads, keys,
 * histories and watches through another (so a follower forwards, and reads on another
 * node see every acknowledged write). The same checks run against Debian's nats-server
 * (skipped without it, with the hint, unless CI is set), so a difference shows as a
 * check that passes there and fails here, or the reverse.
 */
import { type Bucket, type KV, type KvEntry, Kvm, type KvWatchEntry } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NATS_INSTALL_HINT, type NatsReference, startNats } from "../bench/reference/nats.js";
import { findBinary } from "../bench/reference/process.js";
import {
  freePort,
  removeDir,
  type ServerProcess,
  startCluster,
  startServer,
  waitFor,
} from "../test_support/index.js";

const text = (e: KvEntry | null) => (e === null ? null : new TextDecoder().decode(e.value));

/** Collects `n` watch entries (bounded by time). */
async function take(
  iter: AsyncIterable<KvWatchEntry>,
  n: number,
  timeoutMs = 10_000,
): Promise<KvWatchEntry[]> {
  const out: KvWatchEntry[] = [];
  const timer = new Promise<"timeout">((resolve) =>
    setTimeout(() => resolve("timeout"), timeoutMs),
  );
  const it = iter[Symbol.asyncIterator]();
  while (out.length < n) {
    const next = await Promise.race([it.next(), timer]);
    if (next === "timeout") throw new Error(`only ${out.length} of ${n} watch entries arrived`);
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

async function drain<T>(iter: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of iter) out.push(v);
  return out;
}

/** A JetStream error's code (10071, 10059, ...), or the message when it has none. */
async function errorOf(p: Promise<unknown>): Promise<number | string> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: unknown; message: string };
    return typeof e.code === "number" ? e.code : e.message;
  }
  throw new Error("expected a failure");
}

const short = (e: KvEntry) => `${e.key}@${e.revision}:${e.operation}`;

/** The KV API of the client, writes through `w`, reads through `r` (maybe another node). */
function conformance(conns: () => { w: NatsConnection; r: NatsConnection }, prefix: string) {
  let kv: KV;
  let ro: KV;
  const bucket = `${prefix}cfg`;

  beforeAll(async () => {
    const { w, r } = conns();
    // The first create may meet a cluster still electing (503 "temporarily unavailable").
    await waitFor(
      async () => {
        try {
          kv = await new Kvm(w).create(bucket, { history: 5 });
          return true;
        } catch {
          return false;
        }
      },
      20_000,
      "the bucket to be created",
      200,
    );
    ro = await new Kvm(r).open(bucket);
  });

  it("create and status", async () => {
    const status = await ro.status();
    expect(status.bucket).toBe(bucket);
    expect(status.history).toBe(5);
    expect(status.values).toBe(0);
    // Creating it again binds the same bucket.
    const again = await new Kvm(conns().w).create(bucket, { history: 5 });
    expect((await again.status()).history).toBe(5);
  });

  it("put, get, get by revision", async () => {
    const r1 = await kv.put("a", "one");
    const r2 = await kv.put("a", "two");
    expect(r2).toBeGreaterThan(r1);
    const e = await ro.get("a");
    expect(text(e)).toBe("two");
    expect(e?.revision).toBe(r2);
    expect(e?.operation).toBe("PUT");
    expect(text(await ro.get("a", { revision: r1 }))).toBe("one");
    expect(await ro.get("never")).toBeNull();
    const other = await kv.put("other", "x");
    // A revision of another key is not this key's.
    expect(await ro.get("a", { revision: other })).toBeNull();
  });

  it("create: KEY_EXISTS is wrong last sequence (10071); allowed after a delete", async () => {
    const rev = await kv.create("c", "first");
    expect(await errorOf(kv.create("c", "second"))).toBe(10071);
    await kv.delete("c");
    const deleted = await ro.get("c");
    expect(deleted?.operation).toBe("DEL");
    expect(await kv.create("c", "again")).toBeGreaterThan(rev);
    expect(text(await ro.get("c"))).toBe("again");
  });

  it("update with the revision; a wrong revision is 10071", async () => {
    const rev = await kv.put("u", "v1");
    expect(await errorOf(kv.update("u", "bad", rev + 100))).toBe(10071);
    const next = await kv.update("u", "v2", rev);
    expect(next).toBeGreaterThan(rev);
    expect(await errorOf(kv.update("u", "stale", rev))).toBe(10071);
    expect(text(await ro.get("u"))).toBe("v2");
  });

  it("delete keeps history, purge leaves only the marker", async () => {
    await kv.put("d", "1");
    await kv.put("d", "2");
    await kv.delete("d");
    expect((await drain(await ro.history({ key: "d" }))).map((e) => e.operation)).toEqual([
      "PUT",
      "PUT",
      "DEL",
    ]);
    await kv.purge("d");
    expect((await drain(await ro.history({ key: "d" }))).map((e) => e.operation)).toEqual([
      "PURGE",
    ]);
  });

  it("keys, with filters, without deleted keys", async () => {
    for (const k of ["k.1", "k.2", "k.3", "j.1"]) await kv.put(k, k);
    await kv.delete("k.3");
    expect((await drain(await ro.keys("k.*"))).sort()).toEqual(["k.1", "k.2"]);
    expect((await drain(await ro.keys("j.>"))).sort()).toEqual(["j.1"]);
    expect(await drain(await ro.keys("none.*"))).toEqual([]);
    const all = await drain(await ro.keys());
    expect(all).toContain("a");
    expect(all).not.toContain("k.3");
  });

  it("keys and watch over several filters at once", async () => {
    for (const k of ["f.a", "f.b", "g.a", "h.a"]) await kv.put(k, k);
    // filter_subjects came with nats-server 2.10 (Debian's is 2.9): the client refuses
    // before it sends anything.
    const [major = 0, minor = 0] = (conns().r.info?.version ?? "0.0").split(".").map(Number);
    if (major === 2 && minor < 10) {
      expect(String(await errorOf(ro.keys(["f.*", "h.a"])))).toMatch(/requires server 2\.10/);
      return;
    }
    expect((await drain(await ro.keys(["f.*", "h.a"]))).sort()).toEqual(["f.a", "f.b", "h.a"]);
    const w = await ro.watch({ key: ["f.b", "g.*"] });
    const live = await kv.put("g.b", "new");
    await kv.put("h.b", "not watched");
    const last = await kv.put("f.b", "again");
    const got = await take(w, 4);
    w.stop();
    expect(got.map((e) => e.key)).toEqual(["f.b", "g.a", "g.b", "f.b"]);
    expect(got.slice(2).map((e) => e.revision)).toEqual([live, last]);
  });

  it("history of a key, oldest first, at most `history` entries", async () => {
    const revs: number[] = [];
    for (let i = 0; i < 7; i++) revs.push(await kv.put("h", `v${i}`));
    const h = await drain(await ro.history({ key: "h" }));
    expect(h.map((e) => e.revision)).toEqual(revs.slice(2));
    expect(text(h[4]!)).toBe("v6");
  });

  it("watch: latest per key, then live updates", async () => {
    await kv.put("w.1", "a");
    const last = await kv.put("w.2", "b");
    const w = await ro.watch({ key: "w.*" });
    await kv.put("w.1", "c");
    const got = await take(w, 3);
    w.stop();
    expect(got.map(short)).toEqual([
      `w.1@${last - 1}:PUT`,
      `w.2@${last}:PUT`,
      `w.1@${last + 1}:PUT`,
    ]);
    expect(got.map((e) => e.isUpdate)).toEqual([false, true, true]);
    expect(text(got[2]!)).toBe("c");
  });

  it("watch options: history, updates only, ignoreDeletes, headers only, resume", async () => {
    const r1 = await kv.put("o.x", "1");
    const r2 = await kv.put("o.x", "22");
    await kv.delete("o.x");

    const hist = await ro.watch({ key: "o.x", include: "history" as never });
    expect((await take(hist, 3)).map((e) => e.operation)).toEqual(["PUT", "PUT", "DEL"]);
    hist.stop();

    const upd = await ro.watch({ key: "o.x", include: "updates" as never });
    const live = await kv.put("o.x", "333");
    expect((await take(upd, 1)).map((e) => e.revision)).toEqual([live]);
    upd.stop();

    await kv.delete("o.y");
    const nodel = await ro.watch({ key: "o.*", ignoreDeletes: true });
    expect((await take(nodel, 1)).map(short)).toEqual([`o.x@${live}:PUT`]);
    nodel.stop();

    const meta = await ro.watch({ key: "o.x", headers_only: true, include: "history" as never });
    const m = await take(meta, 4);
    expect(m.map((e) => e.value.length)).toEqual([0, 0, 0, 0]);
    expect(m.map((e) => e.length)).toEqual([1, 2, 0, 3]);
    meta.stop();

    const resumed = await ro.watch({ key: "o.x", resumeFromRevision: r2 });
    expect((await take(resumed, 3)).map((e) => e.revision)[0]).toBe(r2);
    resumed.stop();
    expect(r1).toBeLessThan(r2);
  });

  it("applies one connection's pipelined publishes in the order sent", async () => {
    for (const nc of [conns().w, conns().r]) {
      const acks = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          nc.request(`$KV.${bucket}.pipe`, String(i), { timeout: 10_000 }),
        ),
      );
      const seqs = acks.map((m) => m.json<{ seq: number }>().seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      const h = await drain(await ro.history({ key: "pipe" }));
      expect(text(h[h.length - 1]!)).toBe("99");
    }
  });

  it("purgeDeletes: young markers stay alone, old ones go with their keys", async () => {
    for (const v of ["1", "2"]) await kv.put("pd.young", v);
    await kv.delete("pd.young");
    await kv.put("pd.old", "x");
    await kv.purge("pd.old");
    await kv.put("pd.live", "kept");
    // On Bucket, the class Kvm returns, not on the KV interface.
    await (kv as Bucket).purgeDeletes();
    expect((await drain(await ro.history({ key: "pd.young" }))).map(short)).toEqual([
      expect.stringMatching(/^pd\.young@\d+:DEL$/),
    ]);
    await (kv as Bucket).purgeDeletes(-1);
    expect(await drain(await ro.history({ key: "pd.young" }))).toEqual([]);
    expect(await drain(await ro.history({ key: "pd.old" }))).toEqual([]);
    expect(text(await ro.get("pd.live"))).toBe("kept");
  });

  it("lists the bucket, destroys it", async () => {
    const kvm = new Kvm(conns().r);
    const names = (await drain(kvm.list())).map((s) => s.bucket);
    expect(names).toContain(bucket);
    await kv.destroy();
    expect(String(await errorOf(ro.status()))).toMatch(/10059|stream not found/);
  });
}

describe("@nats-io/kv against one streamkv node", () => {
  let server: ServerProcess;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startServer({ natsPort: await freePort() });
    nc = await connect({ servers: `127.0.0.1:${server.natsPort}` });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    if (server) removeDir(server.dataDir);
  });
  conformance(() => ({ w: nc, r: nc }), "one");
});

describe("@nats-io/kv against a three-node cluster, writes and reads on different nodes", () => {
  let nodes: ServerProcess[] = [];
  let w: NatsConnection;
  let r: NatsConnection;
  beforeAll(async () => {
    nodes = (await startCluster(["n1", "n2", "n3"], { nats: true })).nodes;
    w = await connect({ servers: `127.0.0.1:${nodes[0]!.natsPort}` });
    r = await connect({ servers: `127.0.0.1:${nodes[2]!.natsPort}` });
  }, 60_000);
  afterAll(async () => {
    await w?.close();
    await r?.close();
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) removeDir(n.dataDir);
  });
  conformance(() => ({ w, r }), "three");
});

const natsServer = findBinary("nats-server", "NATS_SERVER_BIN");
const ciValue = process.env.CI ?? "";
const inCi = ciValue !== "" && ciValue !== "0" && ciValue.toLowerCase() !== "false";
if (natsServer === undefined && !inCi) {
  console.warn(`nats/kv_client.test.ts: the nats-server checks skipped: ${NATS_INSTALL_HINT}`);
}

describe.skipIf(natsServer === undefined && !inCi)(
  "the same checks with @nats-io/kv against nats-server",
  () => {
    let ref: NatsReference;
    let nc: NatsConnection;
    beforeAll(async () => {
      ref = await startNats();
      nc = await connect({ servers: ref.nodes[0]!.url });
    });
    afterAll(async () => {
      await nc?.close();
      await ref?.stop();
    });
    conformance(() => ({ w: nc, r: nc }), "ref");
  },
);
