/**
 * Frames sent in one turn leave in one write (node/turn_cork.ts), in order, over a real
 * loopback WebSocket; a socket closed while its writes are held loses nothing it had
 * accepted before the close frame, and one destroyed while held does not throw.
 */
import { createServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { waitFor } from "../test_support/index.js";
import { beforeTurnWrite, holdWritesForTurn, sendInTurn, socketOf } from "./turn_cork.js";

let wss: WebSocketServer | undefined;
afterEach(async () => {
  for (const c of wss?.clients ?? []) c.terminate();
  await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
  wss = undefined;
});

async function pair(): Promise<{ server: WebSocket; client: WebSocket; got: Buffer[] }> {
  wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((r) => wss!.once("listening", () => r()));
  const port = (wss.address() as { port: number }).port;
  const accepted = new Promise<WebSocket>((r) => wss!.once("connection", (ws) => r(ws)));
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  const got: Buffer[] = [];
  client.on("message", (d) => got.push(d as Buffer));
  await new Promise<void>((r, j) => {
    client.once("open", () => r());
    client.once("error", j);
  });
  return { server: await accepted, client, got };
}

/** Counts the socket's write calls: single chunks (_write) and gathered ones (_writev). */
function countWrites(socket: Socket): { single: number; gathered: number } {
  const n = { single: 0, gathered: 0 };
  const s = socket as unknown as Record<string, (...a: unknown[]) => unknown>;
  const write = s._write!.bind(socket);
  const writev = s._writev!.bind(socket);
  s._write = (...a) => {
    n.single++;
    return write(...a);
  };
  s._writev = (...a) => {
    n.gathered++;
    return writev(...a);
  };
  return n;
}

describe("turn cork", () => {
  it("sends a turn's 200 frames in one gathered write, in order", async () => {
    const { server, got } = await pair();
    const writes = countWrites(socketOf(server)!);
    let flushed = 0;
    for (let i = 0; i < 200; i++) sendInTurn(server, Buffer.from(`f${i}`), () => flushed++);
    expect(writes).toEqual({ single: 0, gathered: 0 }); // held until the turn ends
    await waitFor(() => got.length === 200, 5000, "200 frames");
    expect(got.map(String)).toEqual(Array.from({ length: 200 }, (_, i) => `f${i}`));
    expect(writes).toEqual({ single: 0, gathered: 1 });
    await waitFor(() => flushed === 200, 5000, "every send's callback");
    // The next turn holds again: one more frame is one more write.
    sendInTurn(server, Buffer.from("next"));
    await waitFor(() => got.length === 201, 5000, "the next turn's frame");
    expect(writes.single + writes.gathered).toBe(2);
  });

  it("what beforeTurnWrite sends at the turn's end leaves in the turn's one write", async () => {
    const { server, got } = await pair();
    const writes = countWrites(socketOf(server)!);
    // A batch gathered during the turn, sent at its end (as the client port's watch
    // entries): before and after other frames of the same turn, one write for all.
    const batch: string[] = [];
    beforeTurnWrite(server, () => sendInTurn(server, Buffer.from(batch.join("+"))));
    sendInTurn(server, Buffer.from("ack"));
    batch.push("e1", "e2");
    await Promise.resolve();
    batch.push("e3");
    await waitFor(() => got.length === 2, 5000, "two frames");
    expect(got.map(String)).toEqual(["ack", "e1+e2+e3"]);
    expect(writes).toEqual({ single: 0, gathered: 1 });
  });

  it("a close in the same turn comes after the held frames; a destroy does not throw", async () => {
    const { server, client, got } = await pair();
    const closed = new Promise<number>((r) => client.once("close", (code) => r(code)));
    for (let i = 0; i < 10; i++) sendInTurn(server, Buffer.from(`f${i}`));
    server.close(1000, "bye");
    expect(await closed).toBe(1000);
    expect(got.map(String)).toEqual(Array.from({ length: 10 }, (_, i) => `f${i}`));

    const second = await pair();
    const socket = socketOf(second.server)!;
    sendInTurn(second.server, Buffer.from("lost"));
    socket.destroy();
    holdWritesForTurn(socket); // destroyed: not held again
    await new Promise((r) => setImmediate(r));
    expect(socket.destroyed).toBe(true);
  });
});

// A plain net server, to show holdWritesForTurn needs no ws: the raw socket API only.
describe("turn cork on a raw socket", () => {
  it("gathers raw writes too", async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as { port: number }).port;
    let received = "";
    const done = new Promise<void>((r) =>
      srv.once("connection", (s) => {
        s.on("data", (d) => {
          received += String(d);
          if (received.length === 30) r();
        });
      }),
    );
    const { connect } = await import("node:net");
    const sock = connect(port, "127.0.0.1");
    await new Promise<void>((r) => sock.once("connect", () => r()));
    const writes = countWrites(sock);
    for (let i = 0; i < 10; i++) {
      holdWritesForTurn(sock);
      sock.write(`${i}`.padStart(3, "0"));
    }
    await done;
    expect(received).toBe(Array.from({ length: 10 }, (_, i) => `${i}`.padStart(3, "0")).join(""));
    expect(writes).toEqual({ single: 0, gathered: 1 });
    sock.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  });
});
