/**
 * The peer port's trust boundary, fuzzed (STREAMKV_FUZZ_RUNS cases each):
 * - the peer frame decoder: on any bytes a typed frame or a KvError MALFORMED_FRAME;
 * - the acceptor's side of a connection (`PeerTransport`, fed through a socket
 *   stand-in, no network): hello, challenge and auth (node/peer_auth.ts), then Raft and
 *   forwarded frames. Nothing throws out of it; before the handshake completes a peer
 *   hears only UNAUTHORIZED (or MALFORMED_FRAME for bytes that are no frame), naming
 *   neither node nor cluster;
 *   nothing reaches the node before the proof checks out, and afterwards only from the
 *   authenticated id, a forward always as a typed frame.
 */
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { WebSocket } from "ws";
import { ERROR_CODES, isKvError, messageType, peerSchema } from "../proto/index.js";
import { fuzz, fuzzBytes } from "../test_support/index.js";
import type { ForwardFrame } from "./forward_wire.js";
import { silentLogger } from "./log.js";
import { NodeMetrics } from "./metrics.js";
import { type HandshakeInput, newNonce, peerProof } from "./peer_auth.js";
import { decodePeerFrame, PeerTransport } from "./peer_transport.js";
import { loneLeaderStatus } from "./test_doubles.js";

const PeerFrame = messageType(peerSchema, "streamkv.peer.PeerFrame");
const SECRET = Buffer.from("0123456789abcdef0123456789abcdef");
const CLUSTER = "c-fuzz";

const hello = (nonce: Uint8Array) =>
  PeerFrame.encode({
    hello: { protocol_version: 2, from: "n2", to: "n1", cluster_id: CLUSTER, nonce },
  }).finish();

const seeds = [
  hello(new Uint8Array(32).fill(7)),
  PeerFrame.encode({ auth: { proof: new Uint8Array(32) } }).finish(),
  PeerFrame.encode({ raft: new Uint8Array([8, 6, 18, 2, 110, 50, 26, 2, 110, 49]) }).finish(),
  PeerFrame.encode({
    forward_request: { id: 1, session: "s", command: new Uint8Array([26, 5, 10, 1, 98, 18, 0]) },
  }).finish(),
  PeerFrame.encode({
    forward_response: { id: 1, session: "s", revision: 3, count: 1, index: 9 },
  }).finish(),
  PeerFrame.encode({
    forward_response: { id: 2, session: "s", error: { code: "NOT_LEADER", message: "m" } },
  }).finish(),
  PeerFrame.encode({
    challenge: { nonce: new Uint8Array(32), proof: new Uint8Array(32) },
  }).finish(),
  PeerFrame.encode({ error: { code: "UNAUTHORIZED", message: "no" } }).finish(),
];

function check(bytes: Uint8Array): void {
  try {
    const f = decodePeerFrame(bytes);
    expect(typeof f.body).toBe("string");
  } catch (err) {
    expect(isKvError(err, "MALFORMED_FRAME")).toBe(true);
  }
}

describe("peer frame decoder (fuzzed)", () => {
  it("random bytes and mutated valid frames: a typed frame or MALFORMED_FRAME", () => {
    fuzz(fc.property(fuzzBytes(seeds), (b) => check(b)));
  });
});

/** What the acceptor needs of a ws socket: frames sent and the close kept. */
class FakePeerSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  readonly sent: Record<string, unknown>[] = [];
  closed = false;
  send(data: Uint8Array): void {
    this.sent.push(PeerFrame.toObject(PeerFrame.decode(data), { oneofs: true }));
  }
  close(): void {
    this.closed = true;
    this.readyState = 2;
  }
  terminate(): void {
    this.readyState = 3;
  }
}

describe("peer port acceptor (fuzzed)", () => {
  const received: { from: string; kind: "raft" | ForwardFrame["kind"] }[] = [];
  const transport = new PeerTransport({
    id: "n1",
    clusterId: CLUSTER,
    host: "127.0.0.1",
    port: 0,
    peers: [{ id: "n1", host: "127.0.0.1", port: 1 }],
    maxFrameBytes: 4096,
    secret: SECRET,
    onMessage: (from) => received.push({ from, kind: "raft" }),
    onForward: (from, f) => {
      expect(["request", "refused", "response"]).toContain(f.kind);
      received.push({ from, kind: f.kind });
    },
    isMember: (id) => id === "n2",
    metrics: new NodeMetrics(() => loneLeaderStatus),
    log: silentLogger,
  });
  const accept = (ws: FakePeerSocket) =>
    (transport as unknown as { accept(ws: WebSocket, s: Socket): void }).accept(
      ws as unknown as WebSocket,
      new EventEmitter() as unknown as Socket,
    );

  /** Hello, then the auth proof for the acceptor's challenge (when it sent one). */
  function handshake(ws: FakePeerSocket, proofOk: boolean): boolean {
    const nonce = newNonce();
    ws.emit("message", Buffer.from(hello(nonce)), true);
    const c = ws.sent.find((f) => f.body === "challenge")?.challenge as
      | { nonce: Uint8Array }
      | undefined;
    if (!c) return false;
    const h: HandshakeInput = {
      clusterId: CLUSTER,
      dialer: "n2",
      acceptor: "n1",
      dialerNonce: nonce,
      acceptorNonce: c.nonce,
    };
    const proof = proofOk ? peerProof(SECRET, "dialer", h) : newNonce();
    ws.emit("message", Buffer.from(PeerFrame.encode({ auth: { proof } }).finish()), true);
    return proofOk;
  }

  it("never throws; strangers learn nothing; only the authenticated id is heard", () => {
    fuzz(
      fc.property(
        fc.constantFrom("none", "failed", "done"),
        fc.array(fuzzBytes(seeds), { minLength: 1, maxLength: 4 }),
        (handshakeKind, frames) => {
          received.length = 0;
          const ws = new FakePeerSocket();
          accept(ws);
          const authenticated = handshakeKind !== "none" && handshake(ws, handshakeKind === "done");
          for (const f of frames) ws.emit("message", Buffer.from(f), true);
          for (const f of ws.sent) {
            if (f.body !== "error") continue;
            const e = f.error as { code: string; message: string };
            expect(ERROR_CODES as readonly string[]).toContain(e.code);
            if (!authenticated) {
              // Frame-level refusals keep their code (peer_transport.test.ts); nothing
              // a stranger hears names this node or its cluster.
              expect(["UNAUTHORIZED", "MALFORMED_FRAME"]).toContain(e.code);
              expect(e.message).not.toMatch(/n1|n2|c-fuzz/);
            }
          }
          if (ws.sent.some((f) => f.body === "error")) expect(ws.closed).toBe(true);
          if (!authenticated) expect(received).toEqual([]);
          for (const r of received) expect(r.from).toBe("n2");
        },
      ),
    );
  });

  it("the fuzzed handshake is the real one: after it, a Raft frame reaches the node", () => {
    received.length = 0;
    const ws = new FakePeerSocket();
    accept(ws);
    expect(handshake(ws, true)).toBe(true);
    ws.emit("message", Buffer.from(seeds[2]!), true);
    expect(received).toEqual([{ from: "n2", kind: "raft" }]);
    expect(ws.closed).toBe(false);
  });
});
