/**
 * Coalesces a socket's writes per event-loop turn. Answers and Raft messages are sent
 * one frame at a time, each a `socket.write` and so, uncorked, one syscall; with 64
 * writes in flight a turn produces dozens of frames per socket. Corking the socket at
 * its first frame of a turn and uncorking it once the turn's callbacks and microtasks
 * have run (setImmediate) sends them in one `writev`: the profile of a leader under
 * load showed the write syscalls as its largest cost (issue 11), and a watch's initial
 * values went out one writev per entry (2.7 s of a node's 9 s of CPU for 300k).
 *
 * Latency: the frames wait only for the rest of the current turn, never for a timer,
 * and ws's own cork/uncork pairs nest inside ours (Node counts corks).
 */
import type { Socket } from "node:net";
import type WebSocket from "ws";

const held = new WeakSet<Socket>();

/** Corks `socket` until the end of this turn, once per turn. */
export function holdWritesForTurn(socket: Socket | undefined): void {
  if (socket === undefined || held.has(socket) || socket.destroyed) return;
  held.add(socket);
  socket.cork();
  setImmediate(() => {
    held.delete(socket);
    // After a destroy uncork is a no-op; a socket still open flushes what this turn wrote.
    socket.uncork();
  });
}

/**
 * The TCP (or TLS) socket under a `ws` WebSocket. ws keeps it in `_socket` (set on
 * both the server and the client side once the upgrade is done) and has no public
 * accessor; undefined before the upgrade, when nothing can be sent anyway.
 */
export function socketOf(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _socket?: Socket })._socket;
}

/** `ws.send`, with this turn's other frames on the same socket in one write. */
export function sendInTurn(ws: WebSocket, data: Uint8Array, cb?: (err?: Error) => void): void {
  holdWritesForTurn(socketOf(ws));
  ws.send(data, { binary: true }, cb);
}
