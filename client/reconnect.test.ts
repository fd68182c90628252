/**
 * Reconnection against real server processes: writes in flight when the node dies are
 * retried with their request id and applied exactly once; a watch resumes from its last
 * revision with no gap and no duplicate; a client finds a live server in its list.
 */
import { describe, expect, it } from "vitest";
import { removeDir, type ServerProcess, startServer, tempDir } from "../test_support/index.js";
import { type ConnectionEvent, connect, type Entry, isNotice } from "./index.js";

const text = (s: string) => new TextEncoder().encode(s);

/** Kills the node hard and starts it again on the same ports and data. */
async function restart(server: ServerProcess, signal: NodeJS.Signals): Promise<ServerProcess> {
  await server.stop(signal);
  return startServer({
    dataDir: server.dataDir,
    clientPort: server.clientPort,
    peerPort: server.peerPort,
  });
}

describe("client reconnects", () => {
  it("applies writes in flight across a kill -9 exactly once", async () => {
    let server = await startServer({ dataDir: tempDir() });
    const events: ConnectionEvent[] = [];
    const nc = await connect({
      servers: server.url,
      timeoutMs: 20_000,
      onEvent: (e) => events.push(e),
    });
    try {
      const kv = await nc.createKeyValue({ bucket: "once", history: 64 });
      const n = 400;
      const writes: Promise<number>[] = [];
      for (let i = 0; i < n; i++) writes.push(kv.put(`k${i}`, text(String(i))));
      // Let some be acknowledged and others be in flight, then kill the node.
      await writes[20];
      server = await restart(server, "SIGKILL");
      const revisions = await Promise.all(writes);
      expect(new Set(revisions).size).toBe(n);
      for (let i = 0; i < n; i += 7) {
        const h = await kv.history(`k${i}`);
        expect(h.length, `k${i} applied ${h.length} times`).toBe(1);
        expect(h[0]!.revision).toBe(revisions[i]);
      }
      const st = await kv.status();
      expect(st.values).toBe(n);
      expect(events.some((e) => e.type === "disconnected")).toBe(true);
    } finally {
      await nc.close();
      await server.stop();
      removeDir(server.dataDir);
    }
  });

  it("resumes a watch across restarts without gap or duplicate", async () => {
    let server = await startServer({ dataDir: tempDir() });
    const events: ConnectionEvent[] = [];
    const watcherConn = await connect({
      servers: server.url,
      timeoutMs: 20_000,
      onEvent: (e) => events.push(e),
    });
    const writerConn = await connect({ servers: server.url, timeoutMs: 20_000 });
    try {
      const kv = await writerConn.createKeyValue({ bucket: "wr", history: 10 });
      for (let i = 0; i < 10; i++) await kv.put(`pre.${i % 3}`, text(String(i)));
      const watched = await watcherConn.keyValue("wr");
      const w = await watched.watch(">", { bufferSize: 16 });
      const seen: (Entry | null)[] = [];
      const reading = (async () => {
        for await (const e of w) {
          seen.push(e);
          if (e && e.key === "done") return;
        }
      })();
      const written: number[] = [];
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 60; i++)
          written.push(await kv.put(`k.${i % 7}`, text(`${round}.${i}`)));
        server = await restart(server, round === 0 ? "SIGKILL" : "SIGTERM");
        for (let i = 0; i < 20; i++) written.push(await kv.put(`k.${i % 5}`, text(`after.${i}`)));
      }
      written.push(await kv.put("done", text("x")));
      await Promise.race([
        reading,
        new Promise((_, reject) => setTimeout(() => reject(new Error("watch stalled")), 15_000)),
      ]);
      const nulls = seen.filter((e) => e === null).length;
      expect(nulls).toBe(1);
      const live = seen.slice(seen.indexOf(null) + 1) as Entry[];
      expect(live.map((e) => e.revision)).toEqual(written);
      expect(events.some((e) => e.type === "watch_resumed")).toBe(true);
      w.stop();
    } finally {
      await watcherConn.close();
      await writerConn.close();
      await server.stop();
      removeDir(server.dataDir);
    }
  });

  it("connects to the next server when the first is down", async () => {
    const server = await startServer();
    try {
      const nc = await connect({
        servers: ["ws://127.0.0.1:1", server.url],
        timeoutMs: 5000,
      });
      expect(nc.serverId).toBe("n1");
      await nc.close();
    } finally {
      await server.stop();
      removeDir(server.dataDir);
    }
  });
});

describe("slow watchers", () => {
  it("resume after SLOW_CONSUMER without gap or duplicate", async () => {
    const server = await startServer({ args: ["--watch-max-pending", "16"] });
    const events: ConnectionEvent[] = [];
    const nc = await connect({
      servers: server.url,
      timeoutMs: 10_000,
      onEvent: (e) => events.push(e),
    });
    try {
      const kv = await nc.createKeyValue({ bucket: "slow", history: 64 });
      const w = await kv.watch(">", { updatesOnly: true, bufferSize: 4 });
      const it = w[Symbol.asyncIterator]();
      expect((await it.next()).value).toBeNull();
      const written: number[] = [];
      // Nobody reads the watch meanwhile: the node must end it rather than buffer.
      for (let i = 0; i < 200; i++) written.push(await kv.put(`k.${i % 9}`, text(String(i))));
      const got: number[] = [];
      const deadline = Date.now() + 15_000;
      while (got.length < written.length && Date.now() < deadline) {
        const r = await it.next();
        if (r.done) break;
        got.push((r.value as Entry).revision);
      }
      expect(got).toEqual(written);
      expect(
        events.some((e) => e.type === "watch_resumed" && e.reason.startsWith("SLOW_CONSUMER")),
      ).toBe(true);
      w.stop();
    } finally {
      await nc.close();
      await server.stop();
      removeDir(server.dataDir);
    }
  });
  it("catch up after SLOW_CONSUMER when the revisions they missed were trimmed", async () => {
    const server = await startServer({ args: ["--watch-max-pending", "16"] });
    const nc = await connect({ servers: server.url, timeoutMs: 10_000 });
    try {
      const kv = await nc.createKeyValue({ bucket: "slowtrim", history: 1 });
      const w = await kv.watch(">", {
        updatesOnly: true,
        bufferSize: 4,
        notices: true,
        progressIntervalMs: 0,
      });
      const it = w[Symbol.asyncIterator]();
      expect((await it.next()).value).toBeNull();
      const expected = new Map<string, string>();
      let last = 0;
      // Nobody reads meanwhile; history 1 drops what the watcher has not seen.
      for (let i = 0; i < 200; i++) {
        last = await kv.put(`k.${i % 9}`, text(String(i)));
        expected.set(`k.${i % 9}`, String(i));
      }
      const view = new Map<string, string>();
      const revisions: number[] = [];
      let catchUps = 0;
      const deadline = Date.now() + 15_000;
      while ((revisions.at(-1) ?? 0) < last && Date.now() < deadline) {
        const r = await it.next();
        if (r.done) break;
        const item = r.value;
        if (item === null) continue;
        if (isNotice(item)) {
          if (item.kind === "catch_up") {
            expect(item.reset).toBe(false);
            catchUps++;
          }
          continue;
        }
        revisions.push(item.revision);
        view.set(item.key, new TextDecoder().decode(item.value));
      }
      expect(catchUps).toBeGreaterThan(0);
      expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
      expect(new Set(revisions).size).toBe(revisions.length);
      expect(view).toEqual(expected);
      w.stop();
    } finally {
      await nc.close();
      await server.stop();
      removeDir(server.dataDir);
    }
  });
});
