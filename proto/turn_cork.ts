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

/** Held sockets, each with what runs just before it is uncorked. */
const held = new WeakMap<Corkable, Array<() => void>>();

/** Corks `socket` until the end of this turn, once per turn. */
export function holdWritesForTurn(socket: Corkable | undefined): void {
  if (socket === undefined || held.has(socket) || socket.destroyed) return;
  if (typeof setImmediate !== "function") return;
  const beforeUncork: Array<() => void> = [];
  held.set(socket, beforeUncork);
  socket.cork();
  setImmediate(() => {
    // Still held: what these write joins this turn's writes.
    for (const run of beforeUncork) run();
    held.delete(socket);
    // After a destroy uncork is a no-op; a socket still open flushes what this turn wrote.
    socket.uncork();
  });
}

/**
 * Runs `run` at the end of this turn, just before `socket` is uncorked, so what it writes
 * leaves in this turn's write (a batch of frames gathered during the turn). Without a
 * socket to cork (a browser, a socket not yet upgraded) it runs on the next macrotask.
 */
export function atEndOfTurn(socket: Corkable | undefined, run: () => void): void {
  holdWritesForTurn(socket);
  const list = socket === undefined ? undefined : held.get(socket);
  if (list !== undefined) list.push(run);
  else setTimeout(run, 0);
}

/**
 * The TCP (or TLS) socket under a `ws` WebSocket. ws keeps it in `_socket` (set on
 * both the server and the client side once the upgrade is done) and has no public
 * accessor; undefined before the upgrade, and for a browser's WebSocket.
 */
export function socketOf(ws: object): Corkable | undefined {
  return (ws as { _socket?: Corkable })._socket;
}
