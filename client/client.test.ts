/**
 * The client SDK against a real single node (a `streamkv server` child process):
 * the API of DESIGN.md section 6, error codes, and timeouts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { decodeClientFrame, encodeServerFrame } from "../proto/index.js";
import { freePort, removeDir, type ServerProcess, startServer } from "../test_support/index.js";
import { connect, type Entry, type KvConnection, type KvError } from "./index.js";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as KvError).code ?? `not a KvError: ${String(err)}`;
  }
  return "no error";
}

async function take<T>(it: AsyncIterator<T>, n: number, timeoutMs = 5000): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} items`);
    const r = await Promise.race([
      it.next(),
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), left)),
    ]);
    if (r === "timeout") throw new Error(`got ${out.length} of ${n} items before the timeout`);
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe("client SDK against a single node", () => {
  let server: ServerProcess;
  let nc: KvConnection;

  beforeAll(async () => {
    server = await startServer();
    nc = await connect({ servers: [server.url], timeoutMs: 5000 });
  });

  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    removeDir(server.dataDir);
  });

  it("creates, binds, lists and deletes buckets", async () => {
    const kv = await nc.createKeyValue({ bucket: "b1", history: 5, description: "test" });
    expect(kv.bucket).toBe("b1");
    // identical config again is a no-op
    await nc.createKeyValue({ bucket: "b1", history: 5, description: "test" });
    expect(await codeOf(nc.createKeyValue({ bucket: "b1", history: 2 }))).toBe("BUCKET_EXISTS");
    const bound = await nc.keyValue("b1");
    const st = await bound.status();
    expect(st).toMatchObject({ bucket: "b1", history: 5, values: 0, description: "test", ttl: 0 });
    expect(await codeOf(nc.keyValue("nope"))).toBe("BUCKET_NOT_FOUND");
    expect(await codeOf(nc.createKeyValue({ bucket: "bad name" }))).toBe("INVALID_BUCKET");
    expect(await codeOf(nc.createKeyValue({ bucket: "h", history: 65 }))).toBe("INVALID_CONFIG");
    await nc.createKeyValue({ bucket: "a0" });
    const names = (await nc.listBuckets()).map((b) => b.bucket);
    expect(names).toEqual([...names].sort());
    expect(names).toContain("b1");
    await nc.deleteKeyValue("a0");
    expect(await codeOf(nc.keyValue("a0"))).toBe("BUCKET_NOT_FOUND");
    expect(await codeOf(nc.deleteKeyValue("a0"))).toBe("BUCKET_NOT_FOUND");
  });

  it("puts, gets, creates, updates, deletes and purges with revisions", async () => {
    const kv = await nc.createKeyValue({ bucket: "ops", history: 10 });
    const r1 = await kv.put("a.b", text("1"));
    const r2 = await kv.putString("a.b", "2");
    expect(r2).toBe(r1 + 1);
    const e = (await kv.get("a.b"))!;
    expect(str(e.value)).toBe("2");
    expect(e).toMatchObject({
      bucket: "ops",
      key: "a.b",
      revision: r2,
      operation: "PUT",
      delta: 0,
    });
    expect(e.created).toBeInstanceOf(Date);
    expect(e.size).toBe(1);
    expect(await kv.get("missing")).toBeNull();

    const c = await kv.create("c", text("x"));
    const dup = await codeOf(kv.create("c", text("y")));
    expect(dup).toBe("KEY_EXISTS");
    try {
      await kv.create("c", text("y"));
    } catch (err) {
      expect((err as KvError).details.currentRevision).toBe(c);
    }
    const u = await kv.update("c", text("z"), c);
    expect(await codeOf(kv.update("c", text("w"), c))).toBe("WRONG_LAST_REVISION");
    try {
      await kv.update("c", text("w"), c);
    } catch (err) {
      expect((err as KvError).details.currentRevision).toBe(u);
    }
    expect(await kv.update("new", text("n"), 0)).toBeGreaterThan(u);

    const d = await kv.delete("c");
    expect(await kv.get("c")).toBeNull();
    expect(await codeOf(kv.delete("c", { last: 1 }))).toBe("WRONG_LAST_REVISION");
    expect(await kv.create("c", text("again"))).toBeGreaterThan(d);

    expect(str((await kv.getRevision("a.b", r1))!.value)).toBe("1");
    expect(await kv.getRevision("c", r1)).toBeNull();

    const hist = await kv.history("a.b");
    expect(hist.map((h) => h.revision)).toEqual([r1, r2]);
    await kv.purge("a.b");
    const after = await kv.history("a.b");
    expect(after.map((h) => h.operation)).toEqual(["PURGE"]);
    expect(await kv.history("never")).toEqual([]);

    expect(await codeOf(kv.put("a..b", text("1")))).toBe("INVALID_KEY");
    expect(await codeOf(kv.put("a.*", text("1")))).toBe("INVALID_KEY");
    expect(await kv.get("a.b", { stale: true })).toBeNull();
  });

  it("lists keys with filters, page by page", async () => {
    const kv = await nc.createKeyValue({ bucket: "keys" });
    expect(await kv.keys()).toEqual([]);
    const writes: Promise<number>[] = [];
    for (let i = 0; i < 2500; i++)
      writes.push(kv.put(`k.${String(i).padStart(4, "0")}`, text("v")));
    await kv.put("other.x", text("v"));
    await Promise.all(writes);
    await kv.delete("k.0001");
    const all = await kv.keys();
    expect(all.length).toBe(2500);
    expect(all).toEqual([...all].sort());
    expect(all).not.toContain("k.0001");
    expect(await kv.keys("other.>")).toEqual(["other.x"]);
    let n = 0;
    for await (const _k of kv.listKeys("k.*")) n++;
    expect(n).toBe(2499);
  });

  it("watches: initial values, null, live, options, stop", async () => {
    const kv = await nc.createKeyValue({ bucket: "w", history: 5 });
    await kv.put("a.1", text("1"));
    await kv.put("a.2", text("2"));
    await kv.put("b.1", text("3"));
    await kv.put("a.1", text("4"));
    const w = await kv.watch("a.*");
    const it = w[Symbol.asyncIterator]();
    const first = await take(it, 3);
    expect(first.map((e) => e && [e.key, str(e.value)])).toEqual([
      ["a.2", "2"],
      ["a.1", "4"],
      null,
    ]);
    const r = await kv.put("a.3", text("5"));
    await kv.put("b.2", text("x"));
    await kv.delete("a.2");
    const live = (await take(it, 2)) as Entry[];
    expect(live.map((e) => [e.key, e.operation])).toEqual([
      ["a.3", "PUT"],
      ["a.2", "DEL"],
    ]);
    expect(live[0]!.revision).toBe(r);
    w.stop();
    expect((await it.next()).done).toBe(true);

    const h = await kv.watchAll({ includeHistory: true, ignoreDeletes: true, metaOnly: true });
    const hit = h[Symbol.asyncIterator]();
    const hist = await take(hit, 7);
    expect(hist.at(-1)).toBeNull();
    const entries = hist.slice(0, -1) as Entry[];
    expect(entries.every((e) => e.operation === "PUT" && e.value.length === 0)).toBe(true);
    expect(entries.map((e) => e.revision)).toEqual(
      [...entries.map((e) => e.revision)].sort((a, b) => a - b),
    );
    h.stop();

    const u = await kv.watch(">", { updatesOnly: true });
    const uit = u[Symbol.asyncIterator]();
    expect(await take(uit, 1)).toEqual([null]);
    await kv.put("z", text("live"));
    const [z] = (await take(uit, 1)) as Entry[];
    expect(z!.key).toBe("z");
    u.stop();

    expect(await codeOf(kv.watch(">", { includeHistory: true, updatesOnly: true }))).toBe(
      "INVALID_OPTION",
    );
    expect(await codeOf(kv.watch("a..b"))).toBe("INVALID_KEY");
    const bound = await kv.watch(">", { resumeFromRevision: r });
    const bit = bound[Symbol.asyncIterator]();
    const resumed = await take(bit, 2);
    expect((resumed[0] as Entry).revision).toBe(r);
    bound.stop();
  });

  it("ends a watch with BUCKET_NOT_FOUND when its bucket is deleted", async () => {
    const kv = await nc.createKeyValue({ bucket: "gone" });
    const w = await kv.watch();
    const it = w[Symbol.asyncIterator]();
    expect(await take(it, 1)).toEqual([null]);
    await nc.deleteKeyValue("gone");
    expect(await codeOf(it.next())).toBe("BUCKET_NOT_FOUND");
  });

  it("delivers a long watch under flow control without loss", async () => {
    const kv = await nc.createKeyValue({ bucket: "flow" });
    const w = await kv.watch(">", { updatesOnly: true, bufferSize: 8 });
    const it = w[Symbol.asyncIterator]();
    expect(await take(it, 1)).toEqual([null]);
    const writes: Promise<number>[] = [];
    for (let i = 0; i < 300; i++) writes.push(kv.put(`k${i}`, text(String(i))));
    const revs = await Promise.all(writes);
    const got = (await take(it, 300, 15_000)) as Entry[];
    expect(got.map((e) => e.revision)).toEqual([...revs].sort((a, b) => a - b));
    w.stop();
  });

  it("purgeDeletes removes old markers and status counts values", async () => {
    const kv = await nc.createKeyValue({ bucket: "pd", history: 3 });
    await kv.put("a", text("1"));
    await kv.delete("a");
    await kv.put("b", text("2"));
    expect((await kv.status()).values).toBe(3);
    expect(await kv.purgeDeletes({ olderThanMs: 0 })).toBeGreaterThanOrEqual(1);
    expect(await kv.keys()).toEqual(["b"]);
  });

  it("refuses a value above the 1 MiB value limit before sending it, as VALUE_TOO_LARGE (not the frame limit)", async () => {
    const kv = await nc.createKeyValue({ bucket: "big" });
    expect(await codeOf(kv.put("k", new Uint8Array(2 * 1024 * 1024)))).toBe("VALUE_TOO_LARGE");
    expect(await codeOf(kv.put("k", new Uint8Array(1024 * 1024 + 1)))).toBe("VALUE_TOO_LARGE");
    expect(await kv.put("k", new Uint8Array(1024 * 1024))).toBeGreaterThan(0);
  });

  it("reports the cluster status", async () => {
    const s = await nc.clusterStatus();
    expect(s).toMatchObject({ id: "n1", role: "leader", leader: "n1", replicated: true });
    expect(s.appliedIndex).toBeGreaterThan(0);
    expect(s.peers.map((p) => p.id)).toEqual(["n1"]);
  });

  it("fails calls after close with CONNECTION_CLOSED", async () => {
    const other = await connect({ servers: server.url });
    const kv = await other.keyValue("ops");
    await other.close();
    expect(await codeOf(kv.get("a.b"))).toBe("CONNECTION_CLOSED");
  });

  it("requires the server's token when one is set", async () => {
    const secured = await startServer({ args: ["--token", "s3cret"] });
    try {
      expect(await codeOf(connect({ servers: secured.url, timeoutMs: 2000 }))).toBe("UNAUTHORIZED");
      const ok = await connect({ servers: secured.url, token: "s3cret" });
      await ok.createKeyValue({ bucket: "t" });
      await ok.close();
    } finally {
      await secured.stop();
      removeDir(secured.dataDir);
    }
  });
});

describe("client timeouts", () => {
  it("fails connect with CONNECTION_CLOSED when nothing listens", async () => {
    const port = await freePort();
    const started = Date.now();
    expect(await codeOf(connect({ servers: `ws://127.0.0.1:${port}`, timeoutMs: 500 }))).toBe(
      "CONNECTION_CLOSED",
    );
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("fails connect when the server never answers the hello", async () => {
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise((r) => wss.once("listening", r));
    const port = (wss.address() as { port: number }).port;
    try {
      const started = Date.now();
      const code = await codeOf(connect({ servers: `ws://127.0.0.1:${port}`, timeoutMs: 500 }));
      expect(code).toBe("CONNECTION_CLOSED");
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it("sends each request's remaining timeout so the server stops when the caller does", async () => {
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise((r) => wss.once("listening", r));
    const port = (wss.address() as { port: number }).port;
    const timeouts: Record<string, number> = {};
    wss.on("connection", (ws) => {
      ws.on("message", (data) => {
        const f = decodeClientFrame(new Uint8Array(data as Buffer));
        if (f.body === "hello") {
          ws.send(encodeServerFrame({ id: f.id, hello_ok: { protocol_version: 1 } }));
          return;
        }
        timeouts[f.body] = f.timeout_ms ?? 0;
        if (f.body === "bucket_info") {
          ws.send(encodeServerFrame({ id: f.id, bucket_status: { config: { bucket: "t" } } }));
        } else if (f.body === "write") {
          ws.send(encodeServerFrame({ id: f.id, write_result: { revision: 1 } }));
        }
      });
    });
    const nc = await connect({ servers: `ws://127.0.0.1:${port}`, timeoutMs: 4000 });
    try {
      const kv = await nc.keyValue("t");
      expect(await kv.put("k", text("v"), { timeoutMs: 700 })).toBe(1);
      expect(timeouts.write).toBeGreaterThan(500);
      expect(timeouts.write).toBeLessThanOrEqual(700);
      expect(timeouts.bucket_info).toBeGreaterThan(3000);
      expect(timeouts.bucket_info).toBeLessThanOrEqual(4000);
    } finally {
      await nc.close();
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it("fails a call with TIMEOUT when the server stops answering", async () => {
    const server = await startServer();
    const nc = await connect({ servers: server.url, timeoutMs: 3000 });
    try {
      const kv = await nc.createKeyValue({ bucket: "t" });
      server.proc.kill("SIGSTOP");
      const started = Date.now();
      expect(await codeOf(kv.get("k", { timeoutMs: 300 }))).toBe("TIMEOUT");
      expect(Date.now() - started).toBeLessThan(2000);
      expect(await codeOf(kv.put("k", text("v"), { timeoutMs: 300 }))).toBe("TIMEOUT");
    } finally {
      server.proc.kill("SIGCONT");
      await nc.close();
      await server.stop();
      removeDir(server.dataDir);
    }
  });
});
