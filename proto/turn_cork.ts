/**
 * Coalesces a socket's writes per event-loop turn, for the server's ports and the SDK
 * under Node alike. Frames are sent one at a time, each a `socket.write` and so,
 * uncorked, one syscall; with many requests in flight a turn produces dozens per socket.
 * Corking the socket at its first frame of a turn and uncorking it once the turn's
 * callbacks and microtasks have run (setImmediate) sends them in one `writev`: the
 * profile of a leader under load showed the write syscalls as its largest cost (issue
 * 11), and a watch's initial values went out one writev per entry (2.7 s of a node's 9 s
 * of CPU for 300k).
 *
 * Latency: the frames wait only for the rest of the current turn, never for a timer,
 * and ws's own cork/uncork pairs nest inside ours (Node counts corks). In a browser
 * there is no socket to cork (a WebSocket batches by itself) and nothing happens.
 */

/** The part of a Node socket (net.Socket, tls.TLSSocket) this needs. */
export interface Corkable {
  cork(): void;
  uncork(): void;
  readonly destroyed?: boolean;
}

const held = new WeakSet<Corkable>();

/** Corks `socket` until the end of this turn, once per turn. */
export function holdWritesForTurn(socket: Corkable | undefined): void {
  if (socket === undefined || held.has(socket) || socket.destroyed) return;
  if (typeof setImmediate !== "function") return;
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
 * accessor; undefined before the upgrade, and for a browser's WebSocket.
 */
export function socketOf(ws: object): Corkable | undefined {
  return (ws as { _socket?: Corkable })._socket;
}
