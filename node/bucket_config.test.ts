/**
 * Issue 16 against a real single node: a bucket config out of range is INVALID_CONFIG
 * naming the field and the value, from the SDK and, for a client speaking the raw
 * protocol, from the server itself; `replicas` other than the voter count is refused and
 * status tells the true count; an empty watch filter is INVALID_KEY; a value above 1 MiB
 * is VALUE_TOO_LARGE naming that limit, which status reports as valueLimitBytes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type KeyValueConfig, type KvConnection } from "../client/index.js";
import type { WireObject } from "../proto/index.js";
import {
  RawClient,
  removeDir,
  type ServerProcess,
  startServer,
  waitFor,
} from "../test_support/index.js";

let server: ServerProcess;
let nc: KvConnection;
let raw: RawClient;
let nextId = 10;

beforeAll(async () => {
  server = await startServer();
  nc = await connect({ servers: [server.url], timeoutMs: 5000 });
  raw = new RawClient(server.url);
  await raw.hello();
});

afterAll(async () => {
  raw?.kill();
  await nc?.close();
  await server?.stop();
  if (server) removeDir(server.dataDir);
});

/** Sends one request body over the raw protocol and waits for the frame answering it. */
async function rawAnswer(body: WireObject): Promise<WireObject> {
  const id = nextId++;
  raw.send({ id, timeout_ms: 5000, ...body });
  await waitFor(() => raw.frames.some((f) => f.id === id), 5000, `answer to frame ${id}`);
  return raw.frames.find((f) => f.id === id)!;
}

function rawCreate(config: WireObject): Promise<WireObject> {
  return rawAnswer({ bucket_create: { config, request_id: `raw-${nextId}` } });
}

async function sdkError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return `${e.code}: ${e.message}`;
  }
  return "none";
}

async function bucketNames(): Promise<string[]> {
  return (await nc.listBuckets()).map((b) => b.bucket);
}

describe("bucket config over the raw protocol (the server's own check)", () => {
  it.each([
    [{ history: 0 }, "history must be an integer 1..64 (revisions kept per key), got 0"],
    [{ history: 65 }, "history must be an integer 1..64 (revisions kept per key), got 65"],
    [
      { ttl_ms: 2 ** 60 },
      `ttl must be an integer number of milliseconds >= 0 (0 = forever), got ${2 ** 60}`,
    ],
    [
      { max_value_size: 0 },
      "maxValueSize must be -1 (the server's limit, 1048576 bytes) or an integer number of bytes 1..1048576, got 0",
    ],
    [
      { max_value_size: 2 * 1024 * 1024 },
      "maxValueSize must be -1 (the server's limit, 1048576 bytes) or an integer number of bytes 1..1048576, got 2097152",
    ],
    [
      { max_bytes: -5 },
      "maxBytes must be -1 (unlimited) or an integer number of bytes >= 1, got -5",
    ],
    [{ max_bytes: 0 }, "maxBytes must be -1 (unlimited) or an integer number of bytes >= 1, got 0"],
    [{ description: "x".repeat(5000) }, "description must be at most 4096 bytes, got 5000"],
    [
      { replicas: 5 },
      "replicas must be the cluster's voter count, 1: every bucket is replicated on every voter (omit replicas or give 0 for that count), got 5",
    ],
  ])(
    "%j is INVALID_CONFIG naming the field and the value; the connection stays",
    async (extra, why) => {
      const answer = await rawCreate({ bucket: "raw", ...extra });
      expect(answer.error).toMatchObject({
        code: "INVALID_CONFIG",
        message: `bucket "raw": ${why}`,
      });
      expect(raw.closed).toBe(false);
      expect(await bucketNames()).not.toContain("raw");
    },
  );

  it("a sound config is created, and status reports the voter count and the value limit", async () => {
    const answer = await rawCreate({ bucket: "raw_ok", replicas: 1, max_value_size: 8 });
    expect(answer.bucket_status).toMatchObject({ value_limit_bytes: 8 });
    expect(answer.bucket_status.config).toMatchObject({ replicas: 1 });
    const info = await rawAnswer({ bucket_info: { bucket: "raw_ok" } });
    expect(info.bucket_status.replica_nodes).toEqual(["n1"]);
    await nc.deleteKeyValue("raw_ok");
  });

  it("an empty watch filter is INVALID_KEY; an absent one watches everything", async () => {
    await nc.createKeyValue({ bucket: "rw" });
    const empty = await rawAnswer({ watch: { bucket: "rw", filter: "", credit: 10 } });
    expect(empty.error).toMatchObject({ code: "INVALID_KEY" });
    expect(empty.error.message).toContain("it is empty");
    const absent = await rawAnswer({ watch: { bucket: "rw", credit: 10 } });
    expect(absent.error).toBeUndefined();
    await rawAnswer({ watch_stop: { watch_id: nextId - 1 } });
    await nc.deleteKeyValue("rw");
  });

  it("a value above the bucket's limit is VALUE_TOO_LARGE naming that limit", async () => {
    await nc.createKeyValue({ bucket: "rv" });
    const answer = await rawAnswer({
      write: {
        bucket: "rv",
        key: "k",
        op: 1,
        value: new Uint8Array(1024 * 1024 + 1),
        request_id: "raw-big",
      },
    });
    expect(answer.error).toMatchObject({ code: "VALUE_TOO_LARGE" });
    expect(answer.error.message).toContain("exceeds the limit of 1048576 bytes");
    await nc.deleteKeyValue("rv");
  });
});

describe("bucket config through the SDK", () => {
  it.each([
    [{ ttl: "30s" }, 'ttl must be an integer number of milliseconds >= 0 (0 = forever), got "30s"'],
    [{ ttl: 1.7 }, "ttl must be an integer number of milliseconds >= 0 (0 = forever), got 1.7"],
    [
      { maxBytes: "10MB" },
      'maxBytes must be -1 (unlimited) or an integer number of bytes >= 1, got "10MB"',
    ],
    [
      { maxValueSize: "1k" },
      `maxValueSize must be -1 (the server's limit, 1048576 bytes) or an integer number of bytes 1..1048576, got "1k"`,
    ],
    [{ history: "5x" }, 'history must be an integer 1..64 (revisions kept per key), got "5x"'],
  ])("%j is INVALID_CONFIG and creates nothing", async (extra, why) => {
    const cfg = { bucket: "sdk", ...extra } as unknown as KeyValueConfig;
    expect(await sdkError(nc.createKeyValue(cfg))).toBe(`INVALID_CONFIG: createKeyValue: ${why}`);
    expect(await bucketNames()).not.toContain("sdk");
  });

  it("replicas: omitted, 0 or the voter count (1 here); anything else names the count", async () => {
    expect(await sdkError(nc.createKeyValue({ bucket: "rep", replicas: 5 }))).toBe(
      `INVALID_CONFIG: bucket "rep": replicas must be the cluster's voter count, 1: every bucket is replicated on every voter (omit replicas or give 0 for that count), got 5`,
    );
    expect(await bucketNames()).not.toContain("rep");
    const kv = await nc.createKeyValue({ bucket: "rep" });
    // The same bucket however replicas is given, as long as it is the truth.
    await nc.createKeyValue({ bucket: "rep", replicas: 1 });
    await nc.createKeyValue({ bucket: "rep", replicas: 0 });
    const s = await kv.status();
    expect(s.replicas).toBe(1);
    expect(s.replicaNodes).toEqual(["n1"]);
    await nc.deleteKeyValue("rep");
  });

  it("status reports the value limit in force; a 5 MB value is VALUE_TOO_LARGE naming 1 MiB, not the frame limit", async () => {
    const kv = await nc.createKeyValue({ bucket: "big" });
    expect((await kv.status()).valueLimitBytes).toBe(1024 * 1024);
    expect(await sdkError(kv.put("k", new Uint8Array(5 * 1024 * 1024)))).toMatch(
      /^VALUE_TOO_LARGE: value of 5242880 bytes exceeds the largest value a server accepts, 1048576 bytes/,
    );
    expect(await kv.put("k", new Uint8Array(1024 * 1024))).toBe(1);
    const small = await nc.createKeyValue({ bucket: "small", maxValueSize: 4 });
    expect((await small.status()).valueLimitBytes).toBe(4);
    expect(await sdkError(small.put("k", new Uint8Array(5)))).toMatch(
      /^VALUE_TOO_LARGE: value of 5 bytes exceeds the limit of 4 bytes of bucket "small"/,
    );
    await nc.deleteKeyValue("big");
    await nc.deleteKeyValue("small");
  });

  it("watch('') is INVALID_KEY; bad option types are refused, not coerced", async () => {
    const kv = await nc.createKeyValue({ bucket: "opts" });
    expect(await sdkError(kv.watch(""))).toMatch(
      /^INVALID_KEY: watch: invalid key filter "": it is empty/,
    );
    const bad = <T>(v: unknown) => v as T;
    expect(await sdkError(kv.watch(">", { includeHistory: bad("yes") }))).toMatch(
      /^INVALID_OPTION: /,
    );
    expect(await sdkError(kv.watch(">", { bufferSize: bad("10") }))).toMatch(/^INVALID_OPTION: /);
    expect(await sdkError(kv.watch(">", { timeoutMs: bad("10") }))).toMatch(/^INVALID_ARGUMENT: /);
    expect(await sdkError(kv.get("k", { stale: bad("false") }))).toBe(
      'INVALID_ARGUMENT: stale must be true or false, got "false"',
    );
    expect(await sdkError(kv.get("k", { timeoutMs: bad("5000") }))).toMatch(
      /^INVALID_ARGUMENT: get: timeoutMs must be an integer number of milliseconds/,
    );
    expect(await sdkError(kv.putString("k", "v", { timeoutMs: 0.5 }))).toMatch(
      /^INVALID_ARGUMENT: /,
    );
    // update checks `last` before it returns a promise.
    expect(() => kv.update("k", new Uint8Array(1), bad("1"))).toThrow(
      'update: last must be an integer >= 0, got "1"',
    );
    expect(await kv.keys()).toEqual([]);
    await nc.deleteKeyValue("opts");
  });
});
