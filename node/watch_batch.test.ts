/**
 * Watch entries several per frame (WatchRequest.batch_entries), on a real server process
 * over real sockets: a client that asks gets the same entries in the same order as one
 * that does not, in far fewer frames, none above the batch bounds, with the init-done
 * marker after every initial entry; a client that does not ask gets one entry per frame
 * (an older SDK); a client that closes while a batch is held gives its bytes back and the
 * node keeps serving.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, type KvConnection } from "../client/index.js";
import type { WireObject } from "../proto/index.js";
import {
  RawClient,
  removeDir,
  type ServerProcess,
  startServer,
  waitFor,
} from "../test_support/index.js";

const KEYS = 3000;

/** The entries a raw client's watch frames carried, in order, and how many frames did. */
function entriesOf(frames: WireObject[], watchId: number) {
  const entries: Array<{ key: string; revision: number }> = [];
  let entryFrames = 0;
  let batchedFrames = 0;
  let largest = 0;
  let initDoneAfter = -1;
  for (const f of frames) {
    if (f.id !== watchId || f.watch_event === undefined) continue;
    const event = f.watch_event as WireObject;
    const list = event.entries
      ? (((event.entries as WireObject).entries as WireObject[] | undefined) ?? [])
      : event.entry
        ? [event.entry as WireObject]
        : [];
    if (event.init_done) initDoneAfter = entries.length;
    if (list.length === 0) continue;
    entryFrames++;
    if (event.entries) batchedFrames++;
    largest = Math.max(largest, list.length);
    for (const e of list) entries.push({ key: e.key as string, revision: e.revision as number });
  }
  return { entries, entryFrames, batchedFrames, largest, initDoneAfter };
}

describe("watch entries batched per frame", { timeout: 60_000 }, () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function loaded(): Promise<{ server: ServerProcess; nc: KvConnection }> {
    const server = await startServer();
    cleanup.push(async () => {
      await server.stop("SIGKILL");
      removeDir(server.dataDir);
    });
    const nc = await connect({ servers: [server.url], timeoutMs: 10_000 });
    cleanup.push(() => nc.close());
    const kv = await nc.createKeyValue({ bucket: "b" });
    const value = new Uint8Array(100).fill(7);
    for (let i = 0; i < KEYS; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => kv.put(`k.${i + j}`, value)));
    }
    return { server, nc };
  }

  function raw(server: ServerProcess): RawClient {
    const c = new RawClient(server.url);
    cleanup.push(() => c.kill());
    return c;
  }

  it("asking for batches: the same entries in the same order, in few frames, init-done last", async () => {
    const { server } = await loaded();
    const batched = raw(server);
    const single = raw(server);
    await batched.hello();
    await single.hello();
    batched.send({ id: 7, watch: { bucket: "b", credit: 10_000, batch_entries: true } });
    single.send({ id: 7, watch: { bucket: "b", credit: 10_000 } });
    const done = (c: RawClient) =>
      c.frames.some((f) => f.id === 7 && (f.watch_event as WireObject | undefined)?.init_done);
    await waitFor(() => done(batched) && done(single), 30_000, "both watches past init-done");

    const b = entriesOf(batched.frames, 7);
    const s = entriesOf(single.frames, 7);
    expect(s.entries).toHaveLength(KEYS);
    expect(b.entries).toEqual(s.entries);
    // One per frame for the client that did not ask (what an older SDK understands).
    expect(s.batchedFrames).toBe(0);
    expect(s.entryFrames).toBe(KEYS);
    // Several per frame for the one that did, never above the bound.
    expect(b.entryFrames).toBeLessThan(KEYS / 10);
    expect(b.largest).toBeLessThanOrEqual(1024);
    expect(b.initDoneAfter).toBe(KEYS);
    expect(s.initDoneAfter).toBe(KEYS);
    // Revisions ascend: the batches keep the watch's order.
    for (let i = 1; i < b.entries.length; i++) {
      expect(b.entries[i]!.revision).toBeGreaterThan(b.entries[i - 1]!.revision);
    }
  });

  it("a live burst: the credit still bounds what is sent, in order", async () => {
    const { server, nc } = await loaded();
    const c = raw(server);
    await c.hello();
    c.send({ id: 9, watch: { bucket: "b", credit: 100, batch_entries: true, updates_only: true } });
    await waitFor(
      () =>
        c.frames.some((f) => f.id === 9 && (f.watch_event as WireObject | undefined)?.init_done),
      10_000,
      "init-done",
    );
    const kv = await nc.keyValue("b");
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => kv.put(`live.${i}`, new Uint8Array(10))),
    );
    // 99 credits are left after the marker: exactly 99 entries arrive, then nothing more.
    await waitFor(() => entriesOf(c.frames, 9).entries.length >= 99, 10_000, "99 live entries");
    // Nothing beyond the credit may follow: give a wrongly sent 100th entry time to arrive.
    await new Promise((r) => setTimeout(r, 300));
    const live = entriesOf(c.frames, 9);
    expect(live.entries).toHaveLength(99);
    expect(live.entries.map((e) => e.key)).toEqual(
      Array.from({ length: 99 }, (_, i) => `live.${i}`),
    );
  });

  it("a client that closes mid-batch: its bytes are given back and the node keeps serving", async () => {
    const { server, nc } = await loaded();
    const buffered = async () => {
      const m = await (await fetch(`http://127.0.0.1:${server.clientPort}/metrics`)).text();
      return Number(/^streamkv_client_buffered_bytes (\d+)/m.exec(m)?.[1] ?? -1);
    };
    for (let round = 0; round < 5; round++) {
      const c = raw(server);
      await c.hello();
      c.send({ id: 3, watch: { bucket: "b", credit: 10_000, batch_entries: true } });
      await waitFor(() => entriesOf(c.frames, 3).entries.length > 0, 10_000, "a first batch");
      c.kill();
    }
    const kv = await nc.keyValue("b");
    expect((await kv.get("k.1"))?.revision).toBeGreaterThan(0);
    await waitFor(async () => (await buffered()) === 0, 10_000, "buffered bytes back to 0");
  });
});
