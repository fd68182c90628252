/**
 * Client frames, fuzzed: bytes through the client protocol's decoder
 * (proto/client_requests.ts) and through a live connection handler
 * (`ClientSession`) in front of a real lone node (RaftKvService: Raft, kvapi, the
 * stream log, on memory stores). Inputs are mutated encodings of every request, the
 * hello included, and random bytes.
 *
 * - The decoder never throws: a request, an `invalid` one (answered, connection kept)
 *   or a `refused` frame (answered, connection closed), each error a KvError with a
 *   code of the protocol.
 * - The handler never reaches `onFatal`; every frame it sends decodes, every error in it
 *   has a stable code; it closes only with a defined close code, after an error frame;
 *   while it stays open, a ping and a get after the garbage are answered.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decodeClientRequest,
  decodeServerAnswer,
  ERROR_CODES,
  encodeClientFrame,
  type ServerMessage,
  type WireObject,
} from "../proto/index.js";
import { fuzz, fuzzBytes } from "../test_support/index.js";
import { Authenticator, sha256Hex } from "./auth.js";
import { ClientSession, InFlight } from "./client_handler.js";
import { ManualClock } from "./clock.js";
import { silentLogger } from "./log.js";
import { NodeMetrics } from "./metrics.js";
import type { RaftKvService } from "./raft_service.js";
import { FakeClientSocket, memoryService } from "./test_doubles.js";

const bytes = (s: string) => new TextEncoder().encode(s);

/** A valid frame of every request the protocol has, as encoded by a client. */
const bodies: WireObject[] = [
  { hello: { protocol_version: 1, token: "tok-root", client_name: "fuzz" } },
  { hello: { protocol_version: 1, token: "tok-read" } },
  { ping: {} },
  { bucket_create: { config: { bucket: "c", history: 3, ttl_ms: 1000 }, request_id: "r1" } },
  { bucket_info: { bucket: "b", stale: true } },
  { bucket_delete: { bucket: "gone", request_id: "r2" } },
  { bucket_list: { stale: false } },
  { write: { bucket: "b", key: "k", op: 1, value: bytes("v"), request_id: "r3" } },
  {
    write: { bucket: "b", key: "k", op: 3, value: bytes("w"), last_revision: 1, request_id: "r4" },
  },
  { write: { bucket: "b", key: "k.x", op: 4, request_id: "r5" } },
  { get: { bucket: "b", key: "k", revision: 1 } },
  { keys: { bucket: "b", filter: "k.>", after: "a", limit: 5 } },
  { history: { bucket: "b", key: "k", after_revision: 0 } },
  {
    watch: { bucket: "b", filter: ">", include_history: true, resume_from_revision: 1, credit: 4 },
  },
  { watch_credit: { watch_id: 9, credit: 3 } },
  { watch_stop: { watch_id: 9 } },
  { purge_deletes: { bucket: "b", older_than_ms: -1, request_id: "r6" } },
  { cluster_status: {} },
  { cluster_transfer: { to: "n2" } },
  { cluster_add: { id: "n9", address: "127.0.0.1:1" } },
  { cluster_remove: { id: "n9" } },
];
const seeds = bodies.map((body, i) => encodeClientFrame({ id: i + 2, timeout_ms: 300, ...body }));
const frame = fuzzBytes(seeds);

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);
/** The close codes the handler defines (client_handler.ts CLOSE_CODES, 1008 otherwise). */
const CLOSE_CODES = new Set([1001, 1003, 1007, 1008, 1009]);

describe("client frames through the decoder (fuzzed)", () => {
  it("never throws: a request, or a typed error to answer", () => {
    fuzz(
      fc.property(frame, (b) => {
        const d = decodeClientRequest(b);
        if (d.kind === "request") {
          expect(typeof d.request.type).toBe("string");
          return;
        }
        expect(d.error.name).toBe("KvError");
        const codes =
          d.kind === "refused"
            ? ["MALFORMED_FRAME", "UNKNOWN_MESSAGE"]
            : ["MALFORMED_FRAME", "INVALID_ARGUMENT"];
        expect(codes).toContain(d.error.code);
        expect(Number.isSafeInteger(d.id)).toBe(true);
      }),
    );
  });
});

describe("client frames through a live connection handler (fuzzed)", () => {
  let service: RaftKvService;
  let fatals: unknown[];
  const tracker = new InFlight();
  const metrics = new NodeMetrics(() => service.status());
  const auth = Authenticator.fromEntries([
    { name: "root", sha256: sha256Hex("tok-root"), admin: true, read: ["*"], write: ["*"] },
    { name: "reader", sha256: sha256Hex("tok-read"), read: ["b"] },
  ]);

  beforeAll(async () => {
    ({ service, fatals } = await memoryService());
    await service.createBucket({ bucket: "b", history: 4 }, "setup-1");
    await service.write({ bucket: "b", key: "k", op: "put", value: bytes("v0"), requestId: "s2" });
  });

  afterAll(async () => {
    await tracker.drain(5000);
    await service.close();
  });

  /** A new connection to the handler (a socket stand-in, no network). */
  function connect(maxFrameBytes = 64 * 1024): FakeClientSocket {
    const ws = new FakeClientSocket();
    new ClientSession(
      ws.asWebSocket(),
      {
        service,
        serverId: "n1",
        maxFrameBytes,
        auth,
        metrics,
        log: silentLogger,
        onFatal: (err) => fatals.push(err),
        clock: new ManualClock(Date.now()),
      },
      tracker,
      "fuzz",
    );
    return ws;
  }

  /** One connection: `frames` in order, then (if still open) a ping and a get. */
  async function session(frames: Uint8Array[], helloFirst: boolean): Promise<void> {
    const ws = connect();
    if (helloFirst) ws.deliver(seeds[0]!);
    for (const f of frames) ws.deliver(f);
    const probes = [
      encodeClientFrame({ id: 1_000_001, ping: {} }),
      encodeClientFrame({ id: 1_000_002, get: { bucket: "b", key: "k", stale: true } }),
    ];
    const open = ws.readyState === ws.OPEN;
    for (const p of probes) ws.deliver(p);
    const answers = () => ws.sent.map((b) => decodeServerAnswer(b));
    if (open && helloDone(answers())) {
      await until(() => {
        const ids = new Set(answers().map((m) => m.id));
        return (ids.has(1_000_001) && ids.has(1_000_002)) || ws.readyState !== ws.OPEN;
      });
    }
    await new Promise((r) => setImmediate(r));
    const got = answers();
    for (const m of got) {
      if (m.answer.type === "error")
        expect(CODES.has(m.answer.error.code), m.answer.error.code).toBe(true);
    }
    if (ws.closeCode !== undefined) {
      expect(CLOSE_CODES.has(ws.closeCode), String(ws.closeCode)).toBe(true);
      expect(got.some((m) => m.answer.type === "error")).toBe(true);
    } else if (helloDone(got) && ws.readyState === ws.OPEN) {
      expect(got.find((m) => m.id === 1_000_001)?.answer.type).toBe("pong");
      const get = got.find((m) => m.id === 1_000_002)?.answer.type;
      expect(["get_result", "error"]).toContain(get);
    }
    ws.terminate();
    expect(fatals).toEqual([]);
  }

  it("answers or closes with a defined code, never fatal, and stays usable", async () => {
    await fuzz(
      fc.asyncProperty(
        fc.array(frame, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        (frames, hello) => session(frames, hello),
      ),
    );
  });

  it("a text frame and an oversized frame are refused with their close codes", async () => {
    const ws = connect(1024);
    ws.deliver(bytes("hello"), false);
    expect(ws.closeCode).toBe(1007);
    const ws2 = connect(1024);
    ws2.deliver(new Uint8Array(2048));
    expect(ws2.closeCode).toBe(1009);
    expect(decodeServerAnswer(ws2.sent[0]!).answer).toMatchObject({ type: "error" });
  });
});

function helloDone(got: ServerMessage[]): boolean {
  return got.some((m) => m.answer.type === "hello_ok");
}

async function until(done: () => boolean): Promise<void> {
  // Turns of the event loop first (answers are a few awaits away), then time.
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 2000 && !done(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(done(), "no answer to the probes").toBe(true);
}
