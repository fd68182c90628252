/**
 * One logical connection to a streamkv cluster over WebSocket: request ids, timeouts,
 * and reconnection. Requests are multiplexed by frame id; on a lost connection the
 * client reconnects (with backoff) to the next server and resends every unanswered
 * request as it was, writes with their original request id, so the server applies
 * each write at most once. Long-lived streams (watches) are told of the loss and
 * resubscribe themselves.
 */
import { backoffDelayMs, KvError, PEER_PORT_CLOSE_REASON } from "../proto/index.js";
import { checkTimeoutMs } from "./options.js";
import { isConnectionRefused, openSocket, type Socket } from "./socket.js";
import { checkTransport } from "./transport.js";
import type { ConnectionEvent, ConnectOptions } from "./types.js";
import {
  decodeServerAnswer,
  encodeClientFrame,
  PROTOCOL_VERSION,
  type ServerAnswer,
  type ServerMessage,
  type WireObject,
} from "./wire.js";

/** Until the server's hello says otherwise: 1 MiB of value plus headroom. */
const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024 + 64 * 1024;

interface PendingCall {
  kind: "call";
  id: number;
  bodyName: string;
  body: WireObject;
  sent: boolean;
  /**
   * A connection was lost while this call was on it: the server may have applied it, so
   * a refusal of the next hello cannot say it was not (see the reconnect loop).
   */
  inDoubt?: boolean;
  resolve(answer: ServerAnswer): void;
  reject(err: KvError): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** When the caller stops waiting (Date.now() ms); sent as the remaining `timeout_ms`. */
  deadlineMs: number;
  /** OVERLOADED answers so far (the backoff's attempt number). */
  overloads?: number;
  /** The resend after an OVERLOADED answer, while it waits. */
  retryTimer?: ReturnType<typeof setTimeout>;
}

/** Hello failures of a server that closed saying it is a node's peer port. */
const wrongPort = new WeakSet<KvError>();

/** Receives the frames of a long-lived request (a watch). */
export interface StreamHandler {
  onFrame(answer: ServerAnswer): void;
  /** The connection carrying the stream was lost or closed; the stream is gone. */
  onDisconnect(err: KvError): void;
}

interface PendingStream {
  kind: "stream";
  id: number;
  bodyName: string;
  body: WireObject;
  sent: boolean;
  handler: StreamHandler;
}

type Pending = PendingCall | PendingStream;

export class Connection {
  readonly servers: string[];
  readonly timeoutMs: number;
  /** Prefix of this client's write request ids; random so ids never collide across clients. */
  readonly clientId: string;
  serverId = "";
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;

  private readonly options: ConnectOptions;
  private readonly pending = new Map<number, Pending>();
  private nextFrameId = 1;
  private nextRequestSeq = 1;
  private socket: Socket | undefined;
  private ready = false;
  private closed = false;
  private serverIndex = 0;
  private lastError: KvError | undefined;
  private wakeSleep: (() => void) | undefined;
  private readyWaiters: Array<(err?: KvError) => void> = [];
  private loopDone: Promise<void> | undefined;
  /** Counts the sockets that became ready: names the one a stream was opened on. */
  private generation = 0;
  private currentUrl = "";

  constructor(options: ConnectOptions) {
    const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
    checkTransport(servers, options);
    this.servers = [...servers];
    this.options = options;
    this.timeoutMs = options.timeoutMs ?? 5000;
    if (!(this.timeoutMs > 0))
      throw new KvError("INVALID_ARGUMENT", "connect: timeoutMs must be > 0");
    this.clientId = randomId();
  }

  /** Starts the connection loop; resolves once a server accepted the hello. */
  async start(): Promise<void> {
    this.loopDone = this.loop();
    try {
      await this.waitReady(this.timeoutMs);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A fresh id for a write; retries reuse it. */
  newRequestId(): string {
    return `${this.clientId}-${this.nextRequestSeq++}`;
  }

  /**
   * Sends a request and resolves with its answer (decoded and checked), or rejects with
   * the server's KvError, TIMEOUT, CONNECTION_CLOSED or FRAME_TOO_LARGE. Survives reconnects.
   */
  call(bodyName: string, body: WireObject, timeoutMs = this.timeoutMs): Promise<ServerAnswer> {
    if (this.closed) return Promise.reject(closedError());
    try {
      checkTimeoutMs(timeoutMs, `${bodyName}: timeoutMs`);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<ServerAnswer>((resolve, reject) => {
      const id = this.nextFrameId++;
      const call: PendingCall = {
        kind: "call",
        id,
        bodyName,
        body,
        sent: false,
        resolve,
        reject,
        timer: undefined,
        deadlineMs: Date.now() + timeoutMs,
      };
      call.timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          this.ready
            ? new KvError("TIMEOUT", `${bodyName}: no answer within ${timeoutMs} ms`)
            : new KvError(
                "CONNECTION_CLOSED",
                `${bodyName}: not connected to any server within ${timeoutMs} ms` +
                  (this.lastError ? ` (${this.lastError.message})` : ""),
              ),
        );
      }, timeoutMs);
      this.pending.set(id, call);
      if (this.ready) this.send(call);
    });
  }

  /** Opens a long-lived request; returns its frame id (also the stream's id). */
  openStream(bodyName: string, body: WireObject, handler: StreamHandler): number {
    const id = this.nextFrameId++;
    if (this.closed) {
      queueMicrotask(() => handler.onDisconnect(closedError()));
      return id;
    }
    const stream: PendingStream = { kind: "stream", id, bodyName, body, sent: false, handler };
    this.pending.set(id, stream);
    if (this.ready) this.send(stream);
    return id;
  }

  /** Which connected socket is current (see `failover`). */
  get socketGeneration(): number {
    return this.generation;
  }

  /**
   * Leaves the current server for the next one, because a stream on it found it cannot
   * serve (no leader there, or silent past its progress interval). A no-op unless the
   * socket of `generation` is still the current one, so many watches failing over at once
   * move the connection once. Calls in flight are resent on the next server as after any
   * lost connection; streams resubscribe.
   */
  failover(generation: number, reason: string): void {
    if (this.closed || generation !== this.generation || this.socket === undefined) return;
    this.generation++;
    this.emitEvent({ type: "failover", server: this.currentUrl, reason });
    this.socket.abandon(`failover: ${reason}`);
  }

  /** Forgets a stream locally (its frames are ignored from now on). */
  forgetStream(id: number): void {
    this.pending.delete(id);
  }

  /** Sends a frame that needs no answer and is dropped if not connected (e.g. watch credit). */
  notify(bodyName: string, body: WireObject): void {
    if (!this.ready || !this.socket) return;
    const id = this.nextFrameId++;
    try {
      this.socket.send(encodeClientFrame({ id, [bodyName]: body }));
    } catch {}
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    const err = closedError();
    for (const p of [...this.pending.values()]) this.fail(p, err);
    this.pending.clear();
    for (const w of this.readyWaiters.splice(0)) w(err);
    this.wakeSleep?.();
    this.socket?.close(1000, "client closed");
    await this.loopDone;
  }

  private fail(p: Pending, err: KvError): void {
    this.pending.delete(p.id);
    if (p.kind === "call") {
      clearTimeout(p.timer);
      clearTimeout(p.retryTimer);
      p.reject(err);
    } else {
      p.handler.onDisconnect(err);
    }
  }

  private send(p: Pending): void {
    const socket = this.socket;
    if (!socket) return;
    let bytes: Uint8Array;
    try {
      const frame: WireObject = { id: p.id, [p.bodyName]: p.body };
      // The server (and a follower forwarding a write) stops working on it when we stop waiting.
      if (p.kind === "call") frame.timeout_ms = Math.max(1, Math.ceil(p.deadlineMs - Date.now()));
      bytes = encodeClientFrame(frame);
    } catch (err) {
      this.fail(p, new KvError("INVALID_ARGUMENT", `${p.bodyName}: cannot encode: ${String(err)}`));
      return;
    }
    if (bytes.length > this.maxFrameBytes) {
      this.fail(
        p,
        new KvError(
          "FRAME_TOO_LARGE",
          `${p.bodyName}: request of ${bytes.length} bytes exceeds the server's frame limit of ${this.maxFrameBytes} bytes`,
        ),
      );
      return;
    }
    p.sent = true;
    socket.send(bytes);
  }

  private waitReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.readyWaiters.indexOf(waiter);
        if (i >= 0) this.readyWaiters.splice(i, 1);
        reject(
          new KvError(
            "CONNECTION_CLOSED",
            `could not connect to ${this.servers.join(", ")} within ${timeoutMs} ms` +
              (this.lastError ? `: ${this.lastError.message}` : ""),
          ),
        );
      }, timeoutMs);
      const waiter = (err?: KvError) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      this.readyWaiters.push(waiter);
    });
  }

  /** Reports an event to the application's `onEvent`, if any. */
  emitEvent(event: ConnectionEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {}
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    const baseDelayMs = this.options.reconnectDelayMs ?? 50;
    const maxDelayMs = this.options.reconnectDelayMaxMs ?? 2000;
    // The first round of connect(): while every server tried so far refused the
    // connection (or is a peer port), the failures; undefined once any server accepted
    // or failed otherwise (then connect waits out its timeout, as later reconnects do).
    let firstRound: string[] | undefined = [];
    while (!this.closed) {
      const url = this.servers[this.serverIndex % this.servers.length]!;
      this.serverIndex++;
      try {
        const socket = await openSocket(url, this.timeoutMs, this.options.tls);
        if (this.closed) {
          socket.close(1000, "client closed");
          break;
        }
        const lost = new Promise<string>((resolve) => {
          socket.onClose = (code, reason) =>
            resolve(`closed (${code}${reason ? ` ${reason}` : ""})`);
        });
        socket.onMessage = (data) => this.onMessage(socket, data);
        this.socket = socket;
        await this.handshake(socket, lost);
        firstRound = undefined;
        attempt = 0;
        this.ready = true;
        this.generation++;
        this.currentUrl = url;
        this.emitEvent({ type: "connected", server: url, serverId: this.serverId });
        for (const w of this.readyWaiters.splice(0)) w();
        for (const p of [...this.pending.values()]) this.send(p);
        const reason = await lost;
        this.ready = false;
        this.socket = undefined;
        this.serverId = "";
        if (this.closed) break;
        this.lastError = new KvError("CONNECTION_CLOSED", `${url}: ${reason}`);
        this.emitEvent({ type: "disconnected", server: url, reason });
        this.onLost(this.lastError);
      } catch (err) {
        this.socket?.close();
        this.socket = undefined;
        this.ready = false;
        const kv = err instanceof KvError ? err : new KvError("CONNECTION_CLOSED", String(err));
        this.lastError = kv;
        firstRound = isConnectionRefused(kv) || wrongPort.has(kv) ? firstRound : undefined;
        firstRound?.push(kv.message);
        if (firstRound?.length === this.servers.length) {
          // Every listed server was tried once and none can take a client: waiting out
          // the timeout would not change that. Only connect() waits here.
          const none = new KvError(
            "CONNECTION_CLOSED",
            `connect: no server takes the connection: ${firstRound.join("; ")}`,
          );
          firstRound = undefined;
          for (const w of this.readyWaiters.splice(0)) w(none);
        }
        if (kv.code === "UNAUTHORIZED" || kv.code === "INVALID_ARGUMENT") {
          // Another server of the same cluster would refuse the same hello, so calls
          // waiting to be sent fail now with the reason (a revoked token, say) rather
          // than with CONNECTION_CLOSED at their timeout.
          for (const w of this.readyWaiters.splice(0)) w(kv);
          for (const p of [...this.pending.values()]) {
            if (p.kind !== "call" || p.sent) continue;
            clearTimeout(p.timer);
            this.pending.delete(p.id);
            // A call that was in flight when its connection ended (a session ended by a
            // revoked token, say) may have been applied: its outcome is unknown, not refused.
            p.reject(
              p.inDoubt
                ? new KvError(
                    "CONNECTION_CLOSED",
                    `the connection ended with this ${p.bodyName} in flight and the server now refuses the hello (${kv.code}: ${kv.message}); it may or may not have been applied`,
                  )
                : kv,
            );
          }
        }
      }
      if (this.closed) break;
      attempt++;
      const jitteredMs = backoffDelayMs(attempt, baseDelayMs, maxDelayMs);
      const next = this.servers[this.serverIndex % this.servers.length]!;
      this.emitEvent({ type: "reconnecting", server: next, attempt, delayMs: jitteredMs });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, jitteredMs);
        this.wakeSleep = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeSleep = undefined;
    }
  }

  /** Calls keep waiting to be resent; streams are told so they can resubscribe. */
  private onLost(err: KvError): void {
    for (const p of [...this.pending.values()]) {
      if (p.kind === "stream") this.fail(p, err);
      else if (p.sent) {
        p.sent = false;
        p.inDoubt = true;
      }
    }
  }

  private handshake(socket: Socket, lost: Promise<string>): Promise<void> {
    const id = this.nextFrameId++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new KvError("TIMEOUT", `${socket.url}: no hello answer within ${this.timeoutMs} ms`),
        );
      }, this.timeoutMs);
      const done = (err?: KvError) => {
        clearTimeout(timer);
        this.pending.delete(id);
        if (err) reject(err);
        else resolve();
      };
      lost.then((reason) => {
        if (!reason.includes(PEER_PORT_CLOSE_REASON)) {
          done(new KvError("CONNECTION_CLOSED", `${socket.url}: ${reason}`));
          return;
        }
        const err = new KvError(
          "CONNECTION_CLOSED",
          `${socket.url}: ${PEER_PORT_CLOSE_REASON} (connect to that node's client port)`,
        );
        wrongPort.add(err);
        done(err);
      });
      this.pending.set(id, {
        kind: "call",
        id,
        bodyName: "hello",
        body: {},
        sent: true,
        timer: undefined,
        deadlineMs: Date.now() + this.timeoutMs,
        resolve: (answer) => {
          if (answer.type !== "hello_ok") {
            done(
              new KvError("MALFORMED_FRAME", `${socket.url}: answered hello with ${answer.type}`),
            );
            return;
          }
          this.serverId = answer.serverId;
          this.maxFrameBytes =
            answer.maxFrameBytes > 0 ? answer.maxFrameBytes : DEFAULT_MAX_FRAME_BYTES;
          done();
        },
        reject: (err) => done(err),
      });
      const hello: WireObject = { protocol_version: PROTOCOL_VERSION };
      if (this.options.token !== undefined) hello.token = this.options.token;
      if (this.options.name !== undefined) hello.client_name = this.options.name;
      socket.send(encodeClientFrame({ id, hello }));
    });
  }

  private onMessage(socket: Socket, data: Uint8Array): void {
    let message: ServerMessage;
    try {
      message = decodeServerAnswer(data);
    } catch {
      socket.close(1002, "MALFORMED_FRAME");
      return;
    }
    const { id, answer } = message;
    if (id === 0) {
      if (answer.type === "error") {
        const err = answer.error;
        this.lastError = err;
        this.emitEvent({ type: "server_error", code: err.code, message: err.message });
      }
      return;
    }
    const p = this.pending.get(id);
    if (!p) return;
    if (p.kind === "stream") {
      p.handler.onFrame(answer);
      return;
    }
    if (answer.type === "error") {
      const err = answer.error;
      if (isRetryable(err) && p.bodyName !== "hello" && !this.closed) {
        // The node could not serve it now (shutting down, no leader): try again on the
        // next connection, still within the caller's timeout.
        p.sent = false;
        return;
      }
      if (err.code === "DISK_FULL" && p.bodyName !== "hello" && this.servers.length > 1) {
        // This node halted on a full disk and applied nothing: the same request (same
        // request id) on the next server, still within the caller's timeout.
        p.sent = false;
        this.failover(this.generation, `${err.code}: ${err.message}`);
        return;
      }
      if (
        (err.code === "OVERLOADED" || err.code === "NO_LEADER") &&
        p.bodyName !== "hello" &&
        !this.closed
      ) {
        // The node holds too much unsent data, or an election is under way (nothing was
        // applied either way): the same request (same request id) again after a
        // backoff, on this connection, if that is still before the caller's deadline.
        p.overloads = (p.overloads ?? 0) + 1;
        const delayMs = backoffDelayMs(p.overloads, 50, 2000);
        if (Date.now() + delayMs < p.deadlineMs) {
          p.sent = false;
          clearTimeout(p.retryTimer);
          p.retryTimer = setTimeout(() => {
            p.retryTimer = undefined;
            if (this.pending.get(id) === p && this.ready && !p.sent) this.send(p);
          }, delayMs);
          return;
        }
      }
      this.pending.delete(id);
      clearTimeout(p.timer);
      clearTimeout(p.retryTimer);
      p.reject(err);
    } else {
      this.pending.delete(id);
      clearTimeout(p.timer);
      clearTimeout(p.retryTimer);
      p.resolve(answer);
    }
  }
}

function isRetryable(err: KvError): boolean {
  return err.code === "SHUTTING_DOWN";
}

function closedError(): KvError {
  return new KvError("CONNECTION_CLOSED", "the connection was closed by the client");
}

function randomId(): string {
  const bytes = new Uint8Array(9);
  globalThis.crypto.getRandomValues(bytes);
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
