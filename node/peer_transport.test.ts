/**
 * The peer transport between real WebSockets on loopback: delivery by node id,
 * reconnect after a peer restarts, bounded queues, and bad input refused without
 * disturbing other peers.
 */
import { createServer, Socket as NetSocket, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { peerSchema as descriptor, messageType } from "../proto/index.js";
import { freePort, waitFor } from "../test_support/index.js";
import type { PeerAddress } from "./config.js";
import { silentLogger } from "./log.js";
import { NodeMetrics } from "./metrics.js";
import { PeerTransport } from "./peer_transport.js";

const PeerFrame = messageType(descriptor, "streamkv.peer.PeerFrame");

const open: PeerTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

function metrics(): NodeMetrics {
  return new NodeMetrics(() => ({
    id: "x",
    role: "unknown",
    term: 0,
    leader: "",
    commitIndex: 0,
    appliedIndex: 0,
    peers: [],
    buckets: [],
    replicated: false,
  }));
}

interface Node {
  transport: PeerTransport;
  received: { from: string; data: number[] }[];
}

async function node(
  id: string,
  peers: PeerAddress[],
  options: { maxQueued?: number; secret?: Buffer; liveness?: boolean } = {},
): Promise<Node> {
  const self = peers.find((p) => p.id === id)!;
  const received: Node["received"] = [];
  const transport = new PeerTransport({
    id,
    clusterId: "",
    host: "127.0.0.1",
    port: self.port,
    peers,
    maxFrameBytes: 64 * 1024,
    onMessage: (from, data) => received.push({ from, data: [...data] }),
    metrics: metrics(),
    log: silentLogger,
    reconnectDelayMs: 20,
    reconnectDelayMaxMs: 100,
    ...(options.maxQueued === undefined ? {} : { maxQueuedMessages: options.maxQueued }),
    ...(options.secret === undefined ? {} : { secret: options.secret }),
    ...(options.liveness ? { pingIntervalMs: 50, linkTimeoutMs: 300, dialTimeoutMs: 300 } : {}),
  });
  await transport.listen();
  open.push(transport);
  return { transport, received };
}

async function cluster(ids: string[]): Promise<PeerAddress[]> {
  const peers: PeerAddress[] = [];
  for (const id of ids) peers.push({ id, host: "127.0.0.1", port: await freePort() });
  return peers;
}

/**
 * A TCP relay to `port` that can turn into a black hole: a cut network that drops every
 * packet and closes nothing. Sockets relayed before the cut stay dead after it heals
 * (their bytes are gone, as TCP's would be until its retransmissions got through);
 * connections made while cut are accepted and never relayed.
 */
async function blackHoleRelay(port: number) {
  let cut = false;
  const pairs: { down: Socket; up: Socket; dead: boolean }[] = [];
  const server: Server = createServer((down) => {
    const up = new NetSocket();
    const pair = { down, up, dead: cut };
    pairs.push(pair);
    up.connect(port, "127.0.0.1");
    down.on("data", (b) => {
      if (!pair.dead) up.write(b);
    });
    up.on("data", (b) => {
      if (!pair.dead) down.write(b);
    });
    const end = () => {
      down.destroy();
      up.destroy();
    };
    down.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    cut() {
      cut = true;
      for (const p of pairs) p.dead = true;
    },
    heal() {
      cut = false;
    },
    /** Relayed sockets whose far side (the acceptor) closed them. */
    closedByAcceptor: () => pairs.filter((p) => p.dead && p.up.destroyed).length,
    async close() {
      for (const p of pairs) {
        p.down.destroy();
        p.up.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("peer transport", () => {
  it("delivers messages between node ids in order", async () => {
    const peers = await cluster(["a", "b", "c"]);
    const [a, b, c] = await Promise.all(peers.map((p) => node(p.id, peers)));
    for (let i = 0; i < 20; i++) {
      a!.transport.send("b", new Uint8Array([i]));
      c!.transport.send("b", new Uint8Array([100 + i]));
    }
    b!.transport.send("a", new Uint8Array([7]));
    await waitFor(() => b!.received.length === 40 && a!.received.length === 1, 5000, "delivery");
    expect(b!.received.filter((m) => m.from === "a").map((m) => m.data[0])).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
    expect(b!.received.filter((m) => m.from === "c").map((m) => m.data[0])).toEqual(
      Array.from({ length: 20 }, (_, i) => 100 + i),
    );
    expect(a!.received).toEqual([{ from: "b", data: [7] }]);
    expect(a!.transport.send("nobody", new Uint8Array([1]))).toBe(false);
  });

  it("a link into a silent cut is dropped and dialed again: it carries again soon after the cut heals", async () => {
    const peers = await cluster(["a", "b"]);
    const b = await node("b", peers, { liveness: true });
    const relay = await blackHoleRelay(peers[1]!.port);
    try {
      // a reaches b only through the relay.
      const viaRelay = peers.map((p) => (p.id === "b" ? { ...p, port: relay.port } : p));
      const a = await node("a", viaRelay, { liveness: true });
      let n = 0;
      const delivered = async (what: string) => {
        const mark = 1 + (n++ % 200);
        await waitFor(
          () => {
            a.transport.send("b", new Uint8Array([mark]));
            return b.received.some((m) => m.data[0] === mark);
          },
          5000,
          what,
          20,
        );
      };
      await delivered("the first delivery");
      relay.cut();
      // Frames into the cut: TCP would retransmit them at doubling intervals, forever dead here.
      for (let i = 0; i < 20; i++) a.transport.send("b", new Uint8Array([0]));
      await waitFor(
        () => a.transport.status()[0]?.connected === false,
        3000,
        "a to drop the silent link",
      );
      // b drops its end of the dead socket too (a pinging dialer gone silent).
      await waitFor(() => relay.closedByAcceptor() >= 1, 3000, "b to drop the dead inbound socket");
      relay.heal();
      const healedAt = Date.now();
      await delivered("a delivery after the cut healed");
      const afterMs = Date.now() - healedAt;
      console.log(`peer link carried again ${afterMs} ms after the cut healed`);
      // One dial timeout plus one backoff, with room for a loaded machine.
      expect(afterMs).toBeLessThan(2000);
    } finally {
      await relay.close();
    }
  });

  it("queues while a peer is down, bounded, and reconnects when it is back", async () => {
    const peers = await cluster(["a", "b"]);
    const a = await node("a", peers, { maxQueued: 5 });
    const accepted = Array.from({ length: 8 }, (_, i) =>
      a.transport.send("b", new Uint8Array([i])),
    );
    expect(accepted).toEqual([true, true, true, true, true, false, false, false]);
    const b = await node("b", peers);
    await waitFor(() => b.received.length === 5, 5000, "queued messages");
    expect(b.received.map((m) => m.data[0])).toEqual([0, 1, 2, 3, 4]);
    // b restarts: a reconnects by itself.
    await b.transport.close();
    open.splice(open.indexOf(b.transport), 1);
    const b2 = await node("b", peers);
    await waitFor(
      () => {
        a.transport.send("b", new Uint8Array([42]));
        return b2.received.some((m) => m.data[0] === 42);
      },
      5000,
      "reconnect",
    );
  });

  it.each([
    ["a text frame", (ws: WebSocket) => ws.send("hi"), "MALFORMED_FRAME"],
    [
      "an undecodable frame",
      (ws: WebSocket) => ws.send(new Uint8Array([0x12, 0x09, 0x01])),
      "MALFORMED_FRAME",
    ],
    [
      "an oversized frame",
      (ws: WebSocket) => ws.send(new Uint8Array(64 * 1024 + 1)),
      "FRAME_TOO_LARGE",
    ],
    [
      "an unknown message",
      (ws: WebSocket) => ws.send(new Uint8Array([0xfa, 0x06, 0x00])),
      // Before the handshake, anything but the handshake is refused as unauthorized.
      "UNAUTHORIZED",
    ],
    [
      "a raft message before the hello",
      (ws: WebSocket) => ws.send(PeerFrame.encode({ raft: new Uint8Array([1]) }).finish()),
      "UNAUTHORIZED",
    ],
    [
      "a hello from a stranger",
      (ws: WebSocket) =>
        ws.send(
          PeerFrame.encode({ hello: { protocol_version: 1, from: "evil", to: "b" } }).finish(),
        ),
      "UNAUTHORIZED",
    ],
    [
      "a hello for another node",
      (ws: WebSocket) =>
        ws.send(PeerFrame.encode({ hello: { protocol_version: 2, from: "a", to: "zz" } }).finish()),
      "UNAUTHORIZED",
    ],
  ])("refuses %s and keeps serving other peers", async (_name, sendBad, code) => {
    const peers = await cluster(["a", "b"]);
    const [a, b] = await Promise.all(peers.map((p) => node(p.id, peers)));
    const ws = new WebSocket(`ws://127.0.0.1:${peers[1]!.port}/`);
    const frames: { error?: { code: string } }[] = [];
    ws.on("message", (d) => frames.push(PeerFrame.toObject(PeerFrame.decode(d as Buffer))));
    await new Promise((r) => ws.once("open", r));
    sendBad(ws);
    const closeCode = await new Promise<number>((resolve) => ws.once("close", resolve));
    expect(closeCode).toBe(1008);
    expect(frames[0]?.error?.code).toBe(code);
    if (code === "UNAUTHORIZED") {
      // A refused peer hears the code only: no node id, no cluster id.
      expect(JSON.stringify(frames[0])).not.toMatch(/"b"|\bb\b|c-/);
    }
    a!.transport.send("b", new Uint8Array([9]));
    await waitFor(() => b!.received.some((m) => m.data[0] === 9), 5000, "other peer served");
  });

  it("delivers between nodes that share the secret; a wrong secret is refused both ways", async () => {
    const peers = await cluster(["a", "b", "c"]);
    const good = Buffer.from("0123456789abcdef0123456789abcdef");
    const a = await node("a", peers, { secret: good });
    const b = await node("b", peers, { secret: good });
    const c = await node("c", peers, { secret: Buffer.from("another secret, wrong one!") });
    a.transport.send("b", new Uint8Array([1]));
    await waitFor(() => b.received.some((m) => m.data[0] === 1), 5000, "a -> b with the secret");
    c.transport.send("b", new Uint8Array([2]));
    a.transport.send("c", new Uint8Array([3]));
    a.transport.send("b", new Uint8Array([4]));
    await waitFor(() => b.received.some((m) => m.data[0] === 4), 5000, "a -> b again");
    expect(b.received.some((m) => m.data[0] === 2)).toBe(false);
    expect(c.received.some((m) => m.data[0] === 3)).toBe(false);
  });

  it("closes a socket that sends no hello within the hello timeout", async () => {
    const port = await freePort();
    const t = new PeerTransport({
      id: "b",
      clusterId: "",
      host: "127.0.0.1",
      port,
      peers: [{ id: "b", host: "127.0.0.1", port }],
      maxFrameBytes: 64 * 1024,
      onMessage: () => {},
      metrics: metrics(),
      log: silentLogger,
      helloTimeoutMs: 200,
      maxPendingSockets: 2,
    });
    await t.listen();
    open.push(t);
    const started = Date.now();
    const silent = new WebSocket(`ws://127.0.0.1:${port}/`);
    silent.on("error", () => {});
    await new Promise((r) => silent.once("close", r));
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
