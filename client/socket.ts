/**
 * The one place the client touches a WebSocket implementation. In a browser (and in
 * any runtime with a global `WebSocket`) the global is used; on Node without one, or
 * when `tls` options (a CA, a client certificate) must reach `tls.connect`, the `ws`
 * package is loaded by a dynamic import, so a browser bundle never pulls it.
 */
import { holdWritesForTurn, KvError, socketOf } from "../proto/index.js";
import type { TlsOptions } from "./types.js";

/** The part of the standard WebSocket API the client uses; `ws` implements it too. */
interface StandardSocket {
  binaryType: string;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** `ws` also takes options, which it hands to Node's `tls.connect` for wss://. */
type SocketConstructor = new (url: string, options?: TlsOptions) => StandardSocket;

let wsPromise: Promise<SocketConstructor> | undefined;

/** The `ws` package: the only WebSocket that takes certificates (loaded once). */
function wsConstructor(): Promise<SocketConstructor> {
  wsPromise ??= import(/* @vite-ignore */ "ws").then(
    (mod) => (mod.default ?? mod.WebSocket) as unknown as SocketConstructor,
  );
  return wsPromise;
}

/** The runtime's WebSocket, unless `tls` is given (then `ws`, Node only). */
function socketConstructor(tls: TlsOptions | undefined): Promise<SocketConstructor> {
  const global = (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
  return global && tls === undefined ? Promise.resolve(global) : wsConstructor();
}

/** Failures of openSocket where nothing listened at the address (TCP refused). */
const refusals = new WeakSet<KvError>();

/** Whether `err` is openSocket's failure for a refused TCP connection. */
export function isConnectionRefused(err: unknown): boolean {
  return err instanceof KvError && refusals.has(err);
}

/** An open binary WebSocket. */
export interface Socket {
  readonly url: string;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /**
   * Gives the socket up now: `onClose` runs at once with `reason`, nothing more is
   * delivered, and the closing handshake (which a paused server never answers) is not
   * waited for.
   */
  abandon(reason: string): void;
  /** Set by the owner; receives every binary message. */
  onMessage: (data: Uint8Array) => void;
  /** Set by the owner; called once when the socket is closed, for any reason. */
  onClose: (code: number, reason: string) => void;
}

/**
 * Opens a socket or fails with CONNECTION_CLOSED within `timeoutMs` (a refused
 * certificate is such a failure, its reason in the message).
 */
export async function openSocket(
  url: string,
  timeoutMs: number,
  tls?: TlsOptions,
): Promise<Socket> {
  const Ctor = await socketConstructor(tls);
  return new Promise<Socket>((resolve, reject) => {
    let raw: StandardSocket;
    try {
      raw = tls === undefined ? new Ctor(url) : new Ctor(url, tlsOptionsOf(tls));
    } catch (err) {
      reject(new KvError("CONNECTION_CLOSED", `cannot connect to ${url}: ${String(err)}`));
      return;
    }
    raw.binaryType = "arraybuffer";
    let opened = false;
    let closed = false;
    const socket: Socket = {
      url,
      get bufferedAmount() {
        return raw.bufferedAmount;
      },
      send: (data) => {
        // Under `ws`, a turn's frames leave in one write (a pipelining caller sends dozens).
        holdWritesForTurn(socketOf(raw));
        raw.send(data);
      },
      close: (code, reason) => {
        try {
          raw.close(code, reason);
        } catch {
          raw.close();
        }
      },
      abandon: (reason) => {
        if (closed) return;
        closed = true;
        raw.onmessage = null;
        raw.onclose = null;
        try {
          // ws drops the TCP connection; a browser's WebSocket can only start closing.
          const terminate = (raw as { terminate?: () => void }).terminate;
          if (terminate) terminate.call(raw);
          else raw.close(4000, reason);
        } catch {}
        socket.onClose(4000, reason);
      },
      onMessage: () => {},
      onClose: () => {},
    };
    const timer = setTimeout(() => {
      if (opened) return;
      fail(`timed out after ${timeoutMs} ms`);
      try {
        raw.close();
      } catch {}
    }, timeoutMs);
    let lastError = "";
    let refused = false;
    const fail = (why: string) => {
      if (opened || closed) return;
      closed = true;
      clearTimeout(timer);
      const err = new KvError(
        "CONNECTION_CLOSED",
        `cannot connect to ${url}: ${refused ? `connection refused (${why})` : why}`,
      );
      if (refused) refusals.add(err);
      reject(err);
    };
    raw.onopen = () => {
      if (closed) return;
      opened = true;
      clearTimeout(timer);
      resolve(socket);
    };
    raw.onerror = (ev) => {
      const message = (ev as { message?: string; error?: Error }).message;
      const error = (ev as { error?: Error & { code?: unknown } }).error;
      lastError = message ?? error?.message ?? "socket error";
      // ws reports Node's ECONNREFUSED; a browser says nothing that tells it apart.
      refused = error?.code === "ECONNREFUSED" || lastError.includes("ECONNREFUSED");
    };
    raw.onclose = (ev) => {
      if (!opened) {
        fail(lastError || `closed (${ev.code})`);
        return;
      }
      if (closed) return;
      closed = true;
      socket.onClose(ev.code, ev.reason || lastError);
    };
    raw.onmessage = (ev) => {
      const data = ev.data;
      if (data instanceof ArrayBuffer) socket.onMessage(new Uint8Array(data));
      else if (ArrayBuffer.isView(data)) {
        socket.onMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } else socket.onMessage(new Uint8Array(0));
    };
  });
}

/** Only what was given: an absent `ca` keeps Node's built-in roots. */
function tlsOptionsOf(tls: TlsOptions): TlsOptions {
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
  };
}
