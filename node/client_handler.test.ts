/**
 * Crash-only on the client port: a KvError from the service is the client's answer; any
 * other error (an assertion inside a service call or a watch) reaches `onFatal`, is
 * logged, and is never answered as INTERNAL.
 *
 * The KvService here is a fake on purpose: the test is about the handler's error
 * routing, and a real node cannot be made to fail an assertion on demand. The socket,
 * the codec and the ws server are the real ones (in-process, loopback).
 */
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  assert,
  decodeServerAnswer,
  encodeClientFrame,
  KvError,
  type ServerMessage,
  type WireObject,
} from "../proto/index.js";
import { waitFor } from "../test_support/index.js";
import { Authenticator } from "./auth.js";
import { ClientServer } from "./client_server.js";
import type { KvService, ServiceWatch } from "./kv_service.js";
import type { Logger } from "./log.js";
import { NodeMetrics } from "./metrics.js";
import { loneLeaderStatus } from "./test_doubles.js";

const status = loneLeaderStatus;

const notInFake = () => Promise.reject(new KvError("UNKNOWN_MESSAGE", "not in this fake"));

/** A fake service: `get` fails as an operating error, `bucketInfo` and watches as a bug. */
function fakeService(): KvService {
  const brokenWatch: ServiceWatch = {
    initRevision: 0,
    catchUp: undefined,
    progressRevision: () => 0,
    next: () => Promise.reject(new Error("watch: queue head moved backwards")),
    stop: () => {},
  };
  return {
    createBucket: notInFake,
    bucketInfo: async () => {
      assert(false, "bucket index out of sync with the stream log");
    },
    deleteBucket: notInFake,
    listBuckets: notInFake,
    write: notInFake,
    get: () => Promise.reject(new KvError("BUCKET_NOT_FOUND", "no bucket b")),
    keysPage: notInFake,
    history: notInFake,
    historyPage: notInFake,
    watch: async () => brokenWatch,
    purgeDeletes: notInFake,
    status: () => status,
    transferLeadership: notInFake,
    removeServer: notInFake,
    addServer: notInFake,
    readiness: async () => ({ ready: true, reason: "" }),
    close: async () => {},
  };
}

/** A raw protocol connection: sends frames, keeps every decoded answer. */
async function rawClient(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  const messages: ServerMessage[] = [];
  ws.on("message", (data) => messages.push(decodeServerAnswer(new Uint8Array(data as Buffer))));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const send = (frame: WireObject) => ws.send(encodeClientFrame(frame));
  send({ id: 1, hello: { protocol_version: 1 } });
  await waitFor(() => messages.some((m) => m.id === 1));
  return { ws, messages, send };
}

let server: ClientServer | undefined;
let ws: WebSocket | undefined;

afterEach(() => {
  ws?.terminate();
  server?.stopAccepting();
  server?.closeSessions("SHUTTING_DOWN", "test over");
});

describe("client handler, crash-only", () => {
  async function start() {
    const fatals: unknown[] = [];
    const errors: { msg: string; fields: Record<string, unknown> | undefined }[] = [];
    const log: Logger = {
      debug() {},
      info() {},
      warn() {},
      error: (msg, fields) => errors.push({ msg, fields }),
    };
    server = new ClientServer({
      service: fakeService(),
      serverId: "n1",
      maxFrameBytes: 1024 * 1024,
      auth: Authenticator.openAccess(),
      metrics: new NodeMetrics(() => status),
      log,
      onFatal: (err) => fatals.push(err),
      host: "127.0.0.1",
      port: 0,
      maxConnections: 10,
    });
    const client = await rawClient(await server.listen());
    ws = client.ws;
    return { ...client, fatals, errors };
  }

  it("an assertion inside a service call reaches onFatal and is not answered", async () => {
    const { send, messages, fatals, errors } = await start();
    send({ id: 2, bucket_info: { bucket: "b" } });
    await waitFor(() => fatals.length > 0);
    expect(String(fatals[0])).toMatch(/assertion failed: bucket index out of sync/);
    expect(errors.map((e) => e.msg)).toEqual([
      "programmer error on the client port, stopping the node",
    ]);
    expect(errors[0]!.fields).toMatchObject({ during: "serving a request", op: "bucket_info" });
    // A ping sent after it is answered, so anything for frame 2 would have arrived by now.
    send({ id: 3, ping: {} });
    await waitFor(() => messages.some((m) => m.id === 3));
    expect(messages.filter((m) => m.id === 2)).toEqual([]);
  });

  it("a KvError from the service is the answer, and nothing is fatal", async () => {
    const { send, messages, fatals } = await start();
    send({ id: 2, get: { bucket: "b", key: "k" } });
    await waitFor(() => messages.some((m) => m.id === 2));
    const answer = messages.find((m) => m.id === 2)!.answer;
    expect(answer.type === "error" && answer.error.code).toBe("BUCKET_NOT_FOUND");
    expect(fatals).toEqual([]);
  });

  it("a non-KvError out of a watch reaches onFatal and sends no error frame", async () => {
    const { send, messages, fatals, errors } = await start();
    send({ id: 2, watch: { bucket: "b", credit: 4 } });
    await waitFor(() => fatals.length > 0);
    expect(String(fatals[0])).toMatch(/queue head moved backwards/);
    expect(errors[0]!.fields).toMatchObject({ during: "pumping a watch", watchId: 2 });
    send({ id: 3, ping: {} });
    await waitFor(() => messages.some((m) => m.id === 3));
    expect(messages.filter((m) => m.id === 2).map((m) => m.answer.type)).toEqual(["ack"]);
  });
});

/**
 * A get reserves what the bucket's largest value says, not a whole frame; if the value
 * grew past that while the get was in flight and the connection's budget has no room,
 * the answer is OVERLOADED (retryable) rather than buffered. The fake service claims
 * values of at most 100 bytes and answers 1 MiB: the race (a large put landing between
 * the reservation and the read) made deterministic, which a real node cannot do on
 * demand.
 */
describe("client handler, get reservations", () => {
  it("refuses an answer larger than reserved with OVERLOADED once the budget is full", async () => {
    const big = new Uint8Array(1024 * 1024).fill(1);
    const service: KvService = {
      ...fakeService(),
      largestValueBytes: () => 100,
      get: async (bucket, key) => ({
        bucket,
        key,
        value: big,
        revision: 1,
        created: new Date(0),
        operation: "PUT",
        delta: 0,
        size: big.length,
      }),
    };
    const metrics = new NodeMetrics(() => status);
    server = new ClientServer({
      service,
      serverId: "n1",
      maxFrameBytes: 1100 * 1024,
      auth: Authenticator.openAccess(),
      metrics,
      log: { debug() {}, info() {}, warn() {}, error() {} },
      onFatal: () => {},
      host: "127.0.0.1",
      port: 0,
      maxConnections: 10,
      maxBufferedBytes: 4 * 1024 * 1024,
    });
    const client = await rawClient(await server.listen());
    ws = client.ws;
    // The client stops reading; 64 gets of a (claimed) small value go out at once.
    ws.pause();
    for (let i = 0; i < 64; i++) client.send({ id: 10 + i, get: { bucket: "b", key: "k" } });
    const served = async () => {
      const text = await metrics.registry.metrics();
      let n = 0;
      for (const m of text.matchAll(
        /streamkv_kv_ops_total\{bucket="[^"]*",op="get",result="(ok|OVERLOADED)"\} (\d+)/g,
      ))
        n += Number(m[2]);
      return n;
    };
    await waitFor(async () => (await served()) === 64, 10_000, "every get answered");
    ws.resume();
    await waitFor(() => client.messages.filter((m) => m.id >= 10).length === 64, 10_000);
    const answers = client.messages.filter((m) => m.id >= 10).map((m) => m.answer);
    const ok = answers.filter((a) => a.type === "get_result").length;
    const overloaded = answers.filter((a) => a.type === "error" && a.error.code === "OVERLOADED");
    expect(ok + overloaded.length).toBe(64);
    // The budget (4 MiB) plus what the kernel's socket buffers took: far below 64 MiB.
    expect(overloaded.length).toBeGreaterThan(0);
    expect(ok).toBeLessThan(32);
  });
});

/**
 * A node halted by a full disk or damaged data ends its sessions but stays up for its
 * probes and metrics: an HTTP request in flight at that moment is answered, not cut. The
 * fake's readiness check is held open to make "in flight" deterministic.
 */
describe("client handler, halting", () => {
  it("closeSessions ends the sessions and lets an HTTP request in flight finish", async () => {
    let release: (() => void) | undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let asked = 0;
    server = new ClientServer({
      service: {
        ...fakeService(),
        readiness: async () => {
          asked++;
          await held;
          return { ready: false, reason: "halted" };
        },
      },
      serverId: "n1",
      maxFrameBytes: 1024 * 1024,
      auth: Authenticator.openAccess(),
      metrics: new NodeMetrics(() => status),
      log: { debug() {}, info() {}, warn() {}, error() {} },
      onFatal: () => {},
      host: "127.0.0.1",
      port: 0,
      maxConnections: 10,
    });
    const port = await server.listen();
    const client = await rawClient(port);
    ws = client.ws;
    const closed = new Promise<number>((r) => client.ws.once("close", (code) => r(code)));
    const probe = fetch(`http://127.0.0.1:${port}/readyz`);
    await waitFor(() => asked > 0, 5000, "the probe to reach the readiness check");
    server.closeSessions("CORRUPT_RECORD", "damaged");
    release!();
    const answer = await probe;
    expect(answer.status).toBe(503);
    expect(await answer.text()).toContain("halted");
    await closed;
    expect(client.messages.at(-1)?.answer).toMatchObject({ type: "error" });
    // The probe's connection is still served afterwards.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });
});
