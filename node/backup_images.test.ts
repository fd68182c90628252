/**
 * Backup images over the client port of a real node (a process with its LevelDB): the
 * image is streamed in bounded chunks, never whole (an image many times the chunk budget
 * arrives in chunks each within it, and a client asking for more than the node allows gets
 * at most half a frame), a resend gets the same bytes, the SHA-256 comes with the last
 * chunk, an image is its connection's alone and closes with it, and a node holds at most
 * two open at once.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type KvConnection } from "../client/index.js";
import type { WireObject } from "../proto/index.js";
import {
  RawClient,
  removeDir,
  type ServerProcess,
  startServer,
  waitFor,
} from "../test_support/index.js";

const VALUE_BYTES = 16 * 1024;
const VALUES = 256; // 4 MiB of values
const MAX_FRAME_BYTES = 256 * 1024;

let server: ServerProcess;
const conns: KvConnection[] = [];

async function open(): Promise<KvConnection> {
  const nc = await connect({ servers: server.url, timeoutMs: 10_000 });
  conns.push(nc);
  return nc;
}

beforeAll(async () => {
  server = await startServer({ args: ["--max-frame-bytes", String(MAX_FRAME_BYTES)] });
  const nc = await open();
  const kv = await nc.createKeyValue({ bucket: "big", history: 2 });
  const value = new Uint8Array(VALUE_BYTES);
  for (let i = 0; i < VALUES; i++) {
    value.fill(i % 251);
    await kv.put(`k.${i}`, value);
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(conns.map((c) => c.close()));
  await server?.stop("SIGKILL");
  if (server) removeDir(server.dataDir);
});

async function readAll(nc: KvConnection, chunkBytes?: number) {
  const image = await nc.openSnapshot(chunkBytes === undefined ? {} : { chunkBytes });
  const sizes: number[] = [];
  const hash = createHash("sha256");
  let digest: Uint8Array | undefined;
  for await (const c of image) {
    sizes.push(c.data.byteLength);
    hash.update(c.data);
    if (c.done) digest = c.imageSha256;
  }
  await image.close();
  return { header: image.header, sizes, digest, mine: hash.digest() };
}

describe("backup images", () => {
  it("an image many times the chunk budget arrives in chunks within the budget", async () => {
    const budget = 64 * 1024;
    const { header, sizes, digest, mine } = await readAll(await open(), budget);
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(VALUES * VALUE_BYTES);
    expect(total).toBeGreaterThan(50 * budget);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(budget);
    expect(sizes.length).toBeGreaterThanOrEqual(Math.ceil(total / budget));
    expect(Buffer.from(digest!)).toEqual(mine);
    expect(header.buckets).toEqual(["big"]);
    expect(header.voters).toEqual(["n1"]);
  });

  it("a client asking for more than the node allows gets at most half a frame per chunk", async () => {
    const { sizes } = await readAll(await open(), 64 * 1024 * 1024);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_FRAME_BYTES / 2);
    expect(sizes.length).toBeGreaterThan(8);
  });

  it("a resend gets the same bytes; another offset, another connection's image or a closed one is refused", async () => {
    const raw = await rawSession();
    const other = await rawSession();
    try {
      const id = (await call(raw, { snapshot_open: {} })).snapshot_opened.snapshot_id;
      const read = (offset: number) => ({
        snapshot_read: { snapshot_id: id, offset, max_bytes: 4096 },
      });
      const first = await call(raw, read(0));
      const again = await call(raw, read(0));
      expect(first.snapshot_chunk.data.byteLength).toBeGreaterThan(0);
      expect(Buffer.from(again.snapshot_chunk.data)).toEqual(
        Buffer.from(first.snapshot_chunk.data),
      );
      expect((await call(raw, read(3))).error.code).toBe("INVALID_ARGUMENT");
      const theirs = await call(other, read(0));
      expect(theirs.error).toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(/not opened on this connection/),
      });
      expect((await call(raw, { snapshot_close: { snapshot_id: id } })).ack).toBeDefined();
      expect((await call(raw, read(0))).error.code).toBe("INVALID_ARGUMENT");
    } finally {
      raw.kill();
      other.kill();
    }
  });

  it("at most two images at once; a closed connection gives its images back", async () => {
    const holder = await rawSession();
    const third = await rawSession();
    try {
      for (let i = 0; i < 2; i++)
        expect((await call(holder, { snapshot_open: {} })).snapshot_opened).toBeDefined();
      expect((await call(third, { snapshot_open: {} })).error.code).toBe("OVERLOADED");
      holder.kill();
      // Released when the node sees the close: waited for, bounded, never a sleep.
      await waitFor(
        async () => (await call(third, { snapshot_open: {} })).snapshot_opened !== undefined,
        10_000,
        "an image slot after the holder's connection closed",
      );
    } finally {
      third.kill();
    }
  });
});

/** A connection speaking the protocol by hand (no SDK retries): each answer as sent. */
async function rawSession(): Promise<RawClient> {
  const raw = new RawClient(server.url);
  await raw.hello();
  return raw;
}

let nextFrameId = 100;

async function call(raw: RawClient, body: WireObject): Promise<WireObject> {
  const id = nextFrameId++;
  raw.send({ id, ...body });
  await waitFor(
    () => raw.frames.some((f) => f.id === id),
    10_000,
    `an answer to ${Object.keys(body)[0]}`,
  );
  return raw.frames.find((f) => f.id === id)!;
}
