/**
 * One client WebSocket connection: decodes ClientFrames (once, at the edge:
 * proto/client_requests.ts), calls the KvService, answers with ServerFrames carrying the
 * request's id (many requests in flight at once), and pumps watches under the client's
 * credit. Bad input (a text frame, an oversized or undecodable frame, an unknown message,
 * a request before hello) gets an error frame and the connection is closed; nothing a
 * client sends can crash the process.
 *
 * Crash-only: a KvError is an answer; anything else thrown while serving a request or
 * pumping a watch is a bug here or below, so it is logged and handed to `onFatal` (the
 * node stops and restarts from disk), never dressed up as an INTERNAL answer.
 */
import type { WebSocket } from "ws";
import {
  assert,
  type ClientRequest,
  type ClientRequestType,
  type DecodedClientFrame,
  decodeClientRequest,
  type Entry,
  type ErrorCode,
  encodeServerAnswer,
  KvError,
  PROTOCOL_VERSION,
  type ServerReply,
  type WriteOpName,
} from "../proto/index.js";
import {
  type Authenticator,
  authorize,
  mayRead,
  type Principal,
  redactStatus,
  scopedRequestId,
} from "./auth.js";
import type { AuthBackoff } from "./auth_backoff.js";
import { NO_BUCKET } from "./bucket_labels.js";
import type { ByteBudget } from "./byte_budget.js";
import { type Cancel, type Clock, systemClock } from "./clock.js";
import type { CallOptions, KvService, ServiceWatch, WatchOptions } from "./kv_service.js";
import type { Logger } from "./log.js";
import type { NodeMetrics } from "./metrics.js";
import { beforeTurnWrite, sendInTurn } from "./turn_cork.js";

export interface ClientHandlerOptions {
  service: KvService;
  serverId: string;
  maxFrameBytes: number;
  /** Who a hello's token names and what it may do (node/auth.ts). */
  auth: Authenticator;
  metrics: NodeMetrics;
  log: Logger;
  /**
   * A programmer error (anything but a KvError) while serving a request or pumping a
   * watch; the node stops. Called after the handler logged it.
   */
  onFatal: (err: unknown) => void;
  /** Request deadlines and timers (default: the wall clock). */
  clock?: Clock;
  /** Requests in flight per connection; beyond it the socket stops being read. */
  maxInFlight?: number;
  /** Open watches per connection. */
  maxWatches?: number;
  /**
   * The connection's outbound byte budget: frames encoded and not yet flushed to the
   * kernel, plus what requests in flight may still answer. At the budget the socket stops
   * being read and watches end with SLOW_CONSUMER.
   */
  maxBufferedBytes?: number;
  /** The node-wide budget every connection's bytes count against; beyond it, OVERLOADED. */
  nodeBudget?: ByteBudget;
  /** Delays the refusal of a failed hello by the remote address's recent failures. */
  authBackoff?: AuthBackoff;
  /** A connection held at its budget this long without its client reading is closed. */
  writeDeadlineMs?: number;
  /** A connection that sent no hello this long after it opened is closed. */
  helloTimeoutMs?: number;
  /** WebSocket ping interval; a connection that misses two pongs in a row is closed. */
  pingIntervalMs?: number;
  /** Keys per keys page. */
  keysPageSize?: number;
  /** Entries a watch may have queued in the service before SLOW_CONSUMER. */
  watchMaxPending?: number;
}

/** Tracks in-flight requests of every session so shutdown can wait for them. */
export class InFlight {
  private readonly set = new Set<Promise<unknown>>();
  accepting = true;

  constructor(private readonly clock: Clock = systemClock) {}

  track<T>(p: Promise<T>): Promise<T> {
    this.set.add(p);
    const drop = () => this.set.delete(p);
    p.then(drop, drop);
    return p;
  }

  get size(): number {
    return this.set.size;
  }

  /** Resolves when every tracked request settled, or after `timeoutMs`. Returns how many were left. */
  async drain(timeoutMs: number): Promise<number> {
    const deadline = this.clock.now() + timeoutMs;
    while (this.set.size > 0 && this.clock.now() < deadline) {
      const left = deadline - this.clock.now();
      let cancel = () => {};
      await Promise.race([
        Promise.allSettled([...this.set]),
        new Promise((resolve) => {
          cancel = this.clock.after(Math.max(1, left), () => resolve(undefined));
        }),
      ]);
      cancel();
    }
    return this.set.size;
  }
}

const CLOSE_CODES: Partial<Record<ErrorCode, number>> = {
  FRAME_TOO_LARGE: 1009,
  MALFORMED_FRAME: 1007,
  UNKNOWN_MESSAGE: 1003,
  UNAUTHORIZED: 1008,
  INVALID_ARGUMENT: 1008,
  SHUTTING_DOWN: 1001,
  DISK_FULL: 1001,
};

/** Codes a session ends with because of the node's own state, not the client's frames. */
const NODE_ENDED: ReadonlySet<ErrorCode> = new Set(["SHUTTING_DOWN", "DISK_FULL"]);

/** Largest credit a client may hold for one watch. */
const MAX_WATCH_CREDIT = 1_000_000;

interface WatchPump {
  id: number;
  watch: ServiceWatch;
  /** Events the server may still send: never below 0, never above `allowed - sent`. */
  credit: number;
  /** Events the client allowed in total (the effective initial credit plus every grant). */
  allowed: number;
  /** Events sent. */
  sent: number;
  running: boolean;
  stopped: boolean;
  lastRevision: number;
  /** Progress events after this much silence (0 = none). */
  progressMs: number;
  /** When the last frame of this watch was sent (clock ms). */
  lastSentAt: number;
  cancelProgress: Cancel | undefined;
  /** A progress frame not yet flushed: a client that does not read gets no second one. */
  progressUnflushed: boolean;
  /** The client takes several entries per frame (WatchRequest.batch_entries). */
  batchEntries: boolean;
}

/**
 * Entries of one watch pulled in this event-loop turn, waiting to leave as one frame: an
 * initial scan or a burst costs one frame (encode, ws send, metrics) per batch, not per
 * entry. Their bytes are reserved against the budgets until the frame is sent.
 */
interface EntryBatch {
  watchId: number;
  entries: Entry[];
  reservedBytes: number;
}

/** A batch leaves at the end of the turn, or once it holds this many entries or bytes. */
const MAX_BATCH_ENTRIES = 1024;
const MAX_BATCH_BYTES = 256 * 1024;

/** Bounds of a watch's progress interval (WatchRequest.progress_interval_ms). */
const MIN_PROGRESS_MS = 50;
const MAX_PROGRESS_MS = 60_000;

/** A frame that gets an answer: a sound request, or one whose fields did not check out. */
type Answerable = Exclude<DecodedClientFrame, { kind: "refused" }>;

/** A request waiting for a slot, with the bytes its frame holds. */
interface Queued {
  frame: Answerable;
  frameBytes: number;
}

/** Requests whose answer may be as large as a frame (an entry, a page, a list). */
const LARGE_ANSWERS: ReadonlySet<ClientRequestType> = new Set<ClientRequestType>([
  "get",
  "history",
  "keys",
  "bucket_list",
  "cluster_status",
  "cluster_transfer",
  "cluster_add",
  "cluster_remove",
  "snapshot_read",
]);

/** Image bytes per backup chunk when the client leaves it to the server. */
const DEFAULT_SNAPSHOT_CHUNK_BYTES = 256 * 1024;

/** What a small answer (ack, revision, status, error) is counted as. */
const SMALL_ANSWER_BYTES = 1024;

/** Frame overhead counted on top of an entry's key and value. */
const ENTRY_OVERHEAD_BYTES = 256;

export class ClientSession {
  private helloDone = false;
  /** A failed hello's refusal is waiting out the auth backoff. */
  private refusing = false;
  /** Who the hello's token named; set with `helloDone`. */
  private principal: Principal | undefined;
  /** Kept to re-check the session when the tokens file is reloaded. */
  private helloToken: string | undefined;
  private closed = false;
  private inFlight = 0;
  private paused = false;
  /** Frames ws still delivered after the socket was paused; served as answers go out. */
  private readonly backlog: Queued[] = [];
  /** Bytes handed to ws and not yet flushed (their send callback has not run). */
  private outBytes = 0;
  /** Bytes reserved by requests in flight: their frame plus the largest answer they may get. */
  private reservedBytes = 0;
  /** Set when a frame was held back or a watch ended for lack of budget; cleared once it drains. */
  private blocked = false;
  private cancelWriteDeadline: Cancel | undefined;
  private cancelHelloTimer: Cancel | undefined;
  private cancelPing: Cancel | undefined;
  private missedPongs = 0;
  private readonly watches = new Map<number, WatchPump>();
  /** Entries waiting to leave as one frame (see EntryBatch); at most one watch's at a time. */
  private batch: EntryBatch | undefined;
  /** Backup images this connection opened: only it reads them, and they close with it. */
  private readonly snapshots = new Set<number>();
  /** Watch ids whose subscribe is under way (they count against `maxWatches`). */
  private readonly watchesStarting = new Set<number>();
  private readonly maxInFlight: number;
  private readonly maxWatches: number;
  private readonly maxBufferedBytes: number;
  private readonly keysPageSize: number;
  private readonly clock: Clock;
  private readonly writeDeadlineMs: number;

  constructor(
    private readonly ws: WebSocket,
    private readonly opts: ClientHandlerOptions,
    private readonly tracker: InFlight,
    private readonly remote: string,
    /** Called once, when the hello was accepted or the connection closed before it. */
    private readonly onHelloSettled: () => void = () => {},
  ) {
    this.maxInFlight = opts.maxInFlight ?? 1024;
    this.maxWatches = opts.maxWatches ?? 4096;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 32 * 1024 * 1024;
    // Pages are linearizable reads of their own: 1M keys in 100 reads, not 1000.
    this.keysPageSize = opts.keysPageSize ?? 10_000;
    this.clock = opts.clock ?? systemClock;
    this.writeDeadlineMs = opts.writeDeadlineMs ?? 10_000;
    assert(this.maxInFlight >= 1 && this.maxWatches >= 0, "client session limits");
    assert(this.maxBufferedBytes >= opts.maxFrameBytes, "a connection's budget holds a frame");
    opts.metrics.clientConnections.inc();
    ws.on("message", (data, isBinary) => this.onMessage(data, isBinary));
    ws.on("close", () => this.onClose());
    ws.on("error", (err) => {
      // ws reports protocol violations (e.g. a frame above maxPayload) here, then closes.
      opts.log.debug("client socket error", { remote, error: err.message });
    });
    ws.on("pong", () => {
      this.missedPongs = 0;
    });
    const helloTimeoutMs = opts.helloTimeoutMs ?? 5000;
    this.cancelHelloTimer = this.clock.after(helloTimeoutMs, () => {
      if (!this.helloDone) {
        this.refuse(0, new KvError("UNAUTHORIZED", `no hello within ${helloTimeoutMs} ms`));
      }
    });
    this.schedulePing(opts.pingIntervalMs ?? 20_000);
  }

  /** Pings every `intervalMs`; two pings in a row without a pong close the connection. */
  private schedulePing(intervalMs: number): void {
    this.cancelPing = this.clock.after(intervalMs, () => {
      if (this.closed) return;
      if (this.missedPongs >= 2) {
        this.opts.log.info("client connection closed: no pong", { remote: this.remote });
        this.terminate();
        return;
      }
      this.missedPongs++;
      try {
        this.ws.ping();
      } catch {
        // Not open any more: the close event follows.
      }
      this.schedulePing(intervalMs);
    });
  }

  /** Bytes this connection holds against its budget (tests, metrics). */
  get heldBytes(): number {
    return this.outBytes + this.reservedBytes;
  }

  /** Ends every watch with `code` and closes the socket (shutdown). */
  shutdown(code: ErrorCode, message: string): void {
    this.refuse(0, new KvError(code, message));
  }

  /**
   * After the tokens were reloaded (SIGHUP): the session takes its token's new
   * permissions, or ends with UNAUTHORIZED when the token is gone, so a revoked token
   * stops working at once, not at the client's next reconnect.
   */
  reauthenticate(): void {
    if (!this.helloDone || this.closed) return;
    const principal = this.opts.auth.authenticate(this.helloToken);
    if (principal === undefined) this.shutdown("UNAUTHORIZED", "the token was revoked");
    else this.principal = principal;
  }

  get watchCount(): number {
    return this.watches.size;
  }

  private onClose(): void {
    if (this.closed) {
      this.releaseAll();
      return;
    }
    this.closed = true;
    this.opts.metrics.clientConnections.dec();
    this.stopAllWatches();
    this.releaseAll();
  }

  /** The socket is gone: nothing it held counts against the node any more. */
  private releaseAll(): void {
    this.stopTimers();
    for (const id of this.snapshots) this.opts.service.closeSnapshot?.(id);
    this.snapshots.clear();
    this.opts.nodeBudget?.release(this.outBytes + this.reservedBytes);
    this.outBytes = 0;
    this.reservedBytes = 0;
    this.batch = undefined;
    this.backlog.length = 0;
  }

  private stopTimers(): void {
    this.cancelHelloTimer?.();
    this.cancelPing?.();
    this.cancelWriteDeadline?.();
    this.cancelHelloTimer = undefined;
    this.cancelPing = undefined;
    this.cancelWriteDeadline = undefined;
    if (!this.helloDone) {
      this.helloDone = true;
      this.onHelloSettled();
    }
  }

  /** Drops the socket at once (buffers freed); the close event does the rest. */
  private terminate(): void {
    if (!this.closed) {
      this.closed = true;
      this.opts.metrics.clientConnections.dec();
      this.stopAllWatches();
    }
    this.ws.terminate();
  }

  private reserve(bytes: number): void {
    this.reservedBytes += bytes;
    this.opts.nodeBudget?.add(bytes);
  }

  private unreserve(bytes: number): void {
    if (this.closed && this.reservedBytes === 0) return;
    this.reservedBytes -= bytes;
    this.opts.nodeBudget?.release(bytes);
    assert(this.reservedBytes >= 0, "client reserved bytes below zero");
  }

  /** Would `bytes` more fit in this connection's budget (always, when it holds nothing)? */
  private fits(bytes: number): boolean {
    const held = this.outBytes + this.reservedBytes;
    return held === 0 || held + bytes <= this.maxBufferedBytes;
  }

  /**
   * A frame was held back or a watch ended for lack of budget. If the client still reads
   * nothing by the write deadline, the connection is closed (its buffers freed).
   */
  private noteBlocked(): void {
    this.blocked = true;
    if (this.cancelWriteDeadline !== undefined || this.closed) return;
    this.cancelWriteDeadline = this.clock.after(this.writeDeadlineMs, () => {
      this.cancelWriteDeadline = undefined;
      if (!this.blocked || this.closed) return;
      this.opts.log.warn("client connection closed: not reading within the write deadline", {
        remote: this.remote,
        heldBytes: this.heldBytes,
        writeDeadlineMs: this.writeDeadlineMs,
      });
      this.opts.metrics.badFrames.inc({ port: "client", code: "SLOW_CONSUMER" });
      this.terminate();
    });
  }

  /** A frame was flushed: the budget may have room again. */
  private afterFlush(): void {
    if (this.closed) return;
    if (this.blocked && this.outBytes + this.reservedBytes <= this.maxBufferedBytes / 2) {
      this.blocked = false;
      this.cancelWriteDeadline?.();
      this.cancelWriteDeadline = undefined;
    }
    this.serveBacklog();
  }

  private stopAllWatches(): void {
    for (const w of this.watches.values()) this.stopWatch(w);
    this.watches.clear();
    this.backlog.length = 0;
  }

  /**
   * Encodes and sends a frame; its bytes count against the budgets until ws flushed it.
   * `onFlushed` runs then (or at once when nothing could be sent).
   */
  private send(id: number, reply: ServerReply, onFlushed?: () => void): void {
    // Every other frame leaves after the batched entries, so the wire keeps the order.
    if (this.batch !== undefined) this.flushBatch();
    if (this.closed || this.ws.readyState !== this.ws.OPEN) {
      onFlushed?.();
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeServerAnswer(id, reply);
    } catch (err) {
      // Every reply is typed, so a frame that does not encode is a bug in building it.
      this.fatal(err, { during: "encoding a server frame", type: reply.type });
      onFlushed?.();
      return;
    }
    const n = bytes.length;
    this.opts.metrics.clientFrames.inc({ direction: "out" });
    this.opts.metrics.clientBytes.inc({ direction: "out" }, n);
    this.outBytes += n;
    this.opts.nodeBudget?.add(n);
    sendInTurn(this.ws, bytes, () => {
      // After a close, releaseAll already gave back everything this connection held.
      if (!this.closed || this.outBytes > 0) {
        this.outBytes -= n;
        this.opts.nodeBudget?.release(n);
        assert(this.outBytes >= 0, "client unflushed bytes below zero");
      }
      onFlushed?.();
      this.afterFlush();
    });
  }

  /** Adds `entry` (counted as `bytes`) to this turn's batch of watch `w`'s entries. */
  private queueEntry(w: WatchPump, entry: Entry, bytes: number): void {
    let b = this.batch;
    if (b !== undefined && (b.watchId !== w.id || b.reservedBytes + bytes > MAX_BATCH_BYTES)) {
      this.flushBatch();
      b = undefined;
    }
    if (b === undefined) {
      b = { watchId: w.id, entries: [], reservedBytes: 0 };
      this.batch = b;
      const scheduled = b;
      // Sent with this turn's other frames on the socket, in the same write.
      beforeTurnWrite(this.ws, () => {
        if (this.batch === scheduled) this.flushBatch();
      });
    }
    b.entries.push(entry);
    b.reservedBytes += bytes;
    this.reserve(bytes);
    if (b.entries.length >= MAX_BATCH_ENTRIES) this.flushBatch();
  }

  /** Sends the batched entries as one frame (one entry as a plain watch_entry). */
  private flushBatch(): void {
    const b = this.batch;
    if (b === undefined) return;
    this.batch = undefined;
    this.unreserve(b.reservedBytes);
    this.send(
      b.watchId,
      b.entries.length === 1
        ? { type: "watch_entry", entry: b.entries[0]! }
        : { type: "watch_entries", entries: b.entries },
    );
  }

  /** Logs a programmer error and stops the node through `onFatal`; nothing is answered. */
  private fatal(err: unknown, context: Record<string, unknown>): void {
    this.opts.log.error("programmer error on the client port, stopping the node", {
      remote: this.remote,
      ...context,
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
    this.opts.onFatal(err);
  }

  /** Sends an error for frame `id` and closes the connection. */
  private refuse(id: number, err: KvError): void {
    if (this.closed) return;
    // A node stopping or halted ends its sessions itself: no bad frame, nothing to warn of.
    if (!NODE_ENDED.has(err.code)) {
      this.opts.metrics.badFrames.inc({ port: "client", code: err.code });
      this.opts.log.warn("client connection refused", {
        remote: this.remote,
        code: err.code,
        message: err.message,
      });
    }
    this.send(id, { type: "error", error: err });
    this.closed = true;
    this.opts.metrics.clientConnections.dec();
    this.stopAllWatches();
    this.stopTimers();
    this.ws.close(CLOSE_CODES[err.code] ?? 1008, err.code);
    // A peer that never answers the close handshake must not hold the socket.
    this.clock.after(2000, () => this.ws.terminate());
  }

  private onMessage(data: unknown, isBinary: boolean): void {
    if (this.closed || this.refusing) return;
    const bytes = toBytes(data);
    this.opts.metrics.clientFrames.inc({ direction: "in" });
    this.opts.metrics.clientBytes.inc({ direction: "in" }, bytes.length);
    if (!isBinary) {
      this.refuse(0, new KvError("MALFORMED_FRAME", "text frames are not part of the protocol"));
      return;
    }
    if (bytes.length > this.opts.maxFrameBytes) {
      this.refuse(
        0,
        new KvError(
          "FRAME_TOO_LARGE",
          `frame of ${bytes.length} bytes exceeds the limit of ${this.opts.maxFrameBytes} bytes`,
        ),
      );
      return;
    }
    const frame = decodeClientRequest(bytes);
    if (frame.kind === "refused") {
      this.refuse(frame.id, frame.error);
      return;
    }
    const type = typeOf(frame);
    if (type === "hello") {
      if (frame.kind === "invalid") this.refuse(frame.id, frame.error);
      else if (frame.request.type === "hello") this.onHello(frame.id, frame.request);
      return;
    }
    if (!this.helloDone) {
      this.refuse(frame.id, new KvError("UNAUTHORIZED", "the first frame must be a hello"));
      return;
    }
    if (frame.kind === "request" && frame.request.type === "watch_credit") {
      this.onWatchCredit(frame.request.watchId, frame.request.credit);
      return;
    }
    this.backlog.push({ frame, frameBytes: bytes.length });
    this.serveBacklog();
  }

  /**
   * Whether a get's entry may be sent: it fits what its request reserved, or the
   * connection's budget has room for it anyway (checked after the reservation is given back).
   */
  private answerFits(entry: { key: string; value: Uint8Array }, reservation: number): boolean {
    const bytes = entry.value.length + entry.key.length + ENTRY_OVERHEAD_BYTES;
    return bytes <= reservation || this.fits(bytes);
  }

  /** What a request holds while in flight: its frame and the largest answer it may get. */
  private reservationOf(q: Queued): number {
    const type = typeOf(q.frame);
    if (!LARGE_ANSWERS.has(type)) return q.frameBytes + SMALL_ANSWER_BYTES;
    if (q.frame.kind === "request" && q.frame.request.type === "get") {
      // An entry holds its key (within the request's own bytes), a value no larger than
      // the bucket's largest, and a small frame: reserving a whole frame for every get
      // would let only budget / max-frame (about 30) gets run at once on a connection.
      const largest = this.opts.service.largestValueBytes?.(q.frame.request.bucket);
      if (largest !== undefined) {
        const answer = Math.min(
          this.opts.maxFrameBytes,
          largest + q.frameBytes + ENTRY_OVERHEAD_BYTES + SMALL_ANSWER_BYTES,
        );
        return q.frameBytes + answer;
      }
    }
    return q.frameBytes + this.opts.maxFrameBytes;
  }

  /**
   * Starts queued requests while fewer than `maxInFlight` run and their bytes fit the
   * connection's budget; otherwise the socket stops being read until answers are flushed.
   */
  private serveBacklog(): void {
    while (this.backlog.length > 0 && !this.closed && this.inFlight < this.maxInFlight) {
      const q = this.backlog[0]!;
      const reservation = this.reservationOf(q);
      if (!this.fits(reservation)) {
        this.noteBlocked();
        break;
      }
      this.backlog.shift();
      this.serve(q.frame, reservation);
    }
    if (this.closed) return;
    const full = this.backlog.length > 0 || this.inFlight >= this.maxInFlight;
    if (full && !this.paused) {
      // Stop reading until answers go out: a client cannot make us queue without limit.
      this.paused = true;
      this.ws.pause();
    } else if (
      this.paused &&
      this.backlog.length === 0 &&
      this.inFlight < this.maxInFlight / 2 &&
      this.outBytes + this.reservedBytes <= this.maxBufferedBytes / 2
    ) {
      this.paused = false;
      this.ws.resume();
    }
  }

  private serve(frame: Answerable, reservation: number): void {
    const id = frame.id;
    const op = opLabelOf(frame);
    const bucket = bucketLabelOf(frame);
    if (!this.tracker.accepting) {
      this.send(id, {
        type: "error",
        error: new KvError("SHUTTING_DOWN", "the node is shutting down"),
      });
      return;
    }
    if (this.opts.nodeBudget?.exhausted) {
      this.opts.metrics.countOp(op, bucket, "OVERLOADED");
      this.send(id, {
        type: "error",
        error: new KvError(
          "OVERLOADED",
          "the node holds too many unsent bytes for its clients; retry with backoff",
        ),
      });
      return;
    }
    this.inFlight++;
    this.reserve(reservation);
    assert(this.inFlight <= this.maxInFlight, "client requests in flight above the limit");
    const started = performance.now();
    const call = this.callOptionsOf(frame.timeoutMs);
    const work: Promise<ServerReply | undefined> =
      frame.kind === "invalid"
        ? Promise.reject(frame.error)
        : this.dispatch(id, frame.request, call);
    // In flight until its answer is flushed, so pipelining cannot queue answers unread.
    const done = () => {
      this.inFlight--;
      assert(this.inFlight >= 0, "client requests in flight below zero");
      this.serveBacklog();
    };
    const settle = () => {
      this.opts.metrics.kvOpSeconds.observe({ op }, (performance.now() - started) / 1000);
      this.unreserve(reservation);
    };
    this.tracker.track(work).then(
      (answer) => {
        settle();
        if (
          answer?.type === "get_result" &&
          answer.entry &&
          !this.answerFits(answer.entry, reservation)
        ) {
          // The value grew past what was reserved while the get was in flight (a larger
          // put landed) and the connection cannot hold it: a get is idempotent, so it is
          // refused retryably (the SDK backs off and asks again) rather than buffered.
          this.opts.metrics.countOp(op, bucket, "OVERLOADED");
          this.send(
            id,
            {
              type: "error",
              error: new KvError(
                "OVERLOADED",
                "the answer is larger than this connection's unsent-byte budget has room for; retry once it has read its answers",
              ),
            },
            done,
          );
          return;
        }
        this.opts.metrics.countOp(op, bucket, "ok");
        if (answer) this.send(id, answer, done);
        else done();
      },
      (err: unknown) => {
        settle();
        if (!(err instanceof KvError)) {
          this.fatal(err, { during: "serving a request", op });
          done();
          return;
        }
        this.opts.metrics.countOp(op, bucket, err.code);
        this.send(id, { type: "error", error: err }, done);
      },
    );
  }

  private onHello(id: number, hello: Extract<ClientRequest, { type: "hello" }>): void {
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      this.refuse(
        id,
        new KvError(
          "INVALID_ARGUMENT",
          `protocol version ${hello.protocolVersion} is not supported (this server speaks ${PROTOCOL_VERSION})`,
        ),
      );
      return;
    }
    const principal = this.opts.auth.authenticate(hello.token);
    const address = addressOf(this.remote);
    if (principal === undefined) {
      this.opts.metrics.authFailures.inc({ port: "client" });
      const refusal = new KvError("UNAUTHORIZED", "a valid token is required");
      const waitMs = this.opts.authBackoff?.failed(address) ?? 0;
      if (waitMs === 0) {
        this.refuse(id, refusal);
        return;
      }
      // Guessing costs time: the socket (and its pre-hello slot) waits for the refusal,
      // and nothing else it sends is read meanwhile.
      this.refusing = true;
      this.clock.after(waitMs, () => this.refuse(id, refusal));
      return;
    }
    this.opts.authBackoff?.succeeded(address);
    this.principal = principal;
    this.helloToken = hello.token;
    this.helloDone = true;
    this.cancelHelloTimer?.();
    this.cancelHelloTimer = undefined;
    this.onHelloSettled();
    this.send(id, {
      type: "hello_ok",
      protocolVersion: PROTOCOL_VERSION,
      serverId: this.opts.serverId,
      maxFrameBytes: this.opts.maxFrameBytes,
    });
  }

  /** The answer to `req`, or undefined when the answer is sent elsewhere (a watch). */
  private async dispatch(
    id: number,
    req: ClientRequest,
    call: CallOptions,
  ): Promise<ServerReply | undefined> {
    const s = this.opts.service;
    const who = this.principal;
    assert(who !== undefined, "a request served before its session's hello");
    const denied = authorize(who, req);
    if (denied) {
      this.opts.log.warn("request forbidden", { principal: who.name, op: req.type });
      throw denied;
    }
    const audit = auditFieldsOf(req);
    if (audit) this.opts.log.info("audit", { principal: who.name, remote: this.remote, ...audit });
    switch (req.type) {
      case "ping":
        return { type: "pong" };
      case "bucket_create":
        return {
          type: "bucket_status",
          status: await s.createBucket(req.config, scopedRequestId(who, req.requestId), call),
        };
      case "bucket_info":
        return {
          type: "bucket_status",
          status: await s.bucketInfo(req.bucket, { stale: req.stale }),
        };
      case "bucket_delete":
        await s.deleteBucket(req.bucket, scopedRequestId(who, req.requestId), call);
        return { type: "ack" };
      case "bucket_list":
        return {
          type: "bucket_list",
          buckets: (await s.listBuckets({ stale: req.stale })).filter((b) =>
            mayRead(who, b.bucket),
          ),
        };
      case "write": {
        const revision = await s.write({
          bucket: req.bucket,
          key: req.key,
          op: req.op,
          value: req.value,
          ...(req.last === undefined ? {} : { last: req.last }),
          requestId: scopedRequestId(who, req.requestId),
          ...call,
        });
        return { type: "write_result", revision };
      }
      case "get": {
        const entry = await s.get(req.bucket, req.key, req.revision, { stale: req.stale });
        return { type: "get_result", entry };
      }
      case "keys": {
        const limit = Math.min(req.limit || this.keysPageSize, this.keysPageSize);
        const page = await s.keysPage(req.bucket, req.filter, req.after, limit, {
          stale: req.stale,
        });
        return { type: "keys_chunk", keys: page.keys, done: page.done };
      }
      case "history":
        return await this.historyPage(req);
      case "purge_deletes": {
        const purged = await s.purgeDeletes(
          req.bucket,
          req.olderThanMs,
          scopedRequestId(who, req.requestId),
          call,
        );
        return { type: "purge_deletes_result", purged };
      }
      case "cluster_status":
        return { type: "cluster_status", status: redactStatus(who, s.status()) };
      case "cluster_transfer":
        return { type: "cluster_status", status: await s.transferLeadership(req.to, call) };
      case "cluster_add":
        return { type: "cluster_status", status: await s.addServer(req.id, req.address, call) };
      case "cluster_remove":
        return { type: "cluster_status", status: await s.removeServer(req.id, call) };
      case "snapshot_open":
      case "snapshot_read":
      case "snapshot_close":
        return await this.serveSnapshot(req);
      case "watch":
        await this.startWatch(id, req);
        return undefined;
      case "watch_stop": {
        const w = this.watches.get(req.watchId);
        if (w) {
          this.stopWatch(w);
          this.watches.delete(w.id);
          this.send(w.id, { type: "watch_end" });
        }
        return { type: "ack" };
      }
      case "hello":
      case "watch_credit":
        // onMessage handles both before anything is dispatched.
        throw new Error(`client_handler: ${req.type} reached dispatch`);
      default:
        return unreachable(req);
    }
  }

  /**
   * Backups: the image is this connection's (another one cannot read it), its chunks at
   * most half a frame (one record larger than that travels alone, and a record fits a
   * frame), and it is released when the connection closes.
   */
  private async serveSnapshot(
    req: Extract<ClientRequest, { type: "snapshot_open" | "snapshot_read" | "snapshot_close" }>,
  ): Promise<ServerReply> {
    const s = this.opts.service;
    if (!s.openSnapshot || !s.readSnapshot || !s.closeSnapshot) {
      throw new KvError("INVALID_ARGUMENT", "this node takes no backups");
    }
    if (req.type === "snapshot_open") {
      const { id, header } = await s.openSnapshot();
      if (this.closed) s.closeSnapshot(id);
      else this.snapshots.add(id);
      return { type: "snapshot_opened", snapshotId: id, header };
    }
    if (!this.snapshots.has(req.snapshotId)) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `backup image ${req.snapshotId} was not opened on this connection (a save whose connection moved to another server starts again)`,
      );
    }
    if (req.type === "snapshot_close") {
      this.snapshots.delete(req.snapshotId);
      s.closeSnapshot(req.snapshotId);
      return { type: "ack" };
    }
    const maxBytes = Math.min(
      req.maxBytes || DEFAULT_SNAPSHOT_CHUNK_BYTES,
      Math.floor(this.opts.maxFrameBytes / 2),
    );
    const chunk = await s.readSnapshot(req.snapshotId, req.offset, maxBytes);
    return { type: "snapshot_chunk", ...chunk };
  }

  /** One frame's worth of history: entries after `afterRevision`, within half a frame. */
  private async historyPage(
    req: Extract<ClientRequest, { type: "history" }>,
  ): Promise<ServerReply> {
    const page = await this.opts.service.historyPage(req.bucket, req.key, req.afterRevision, {
      stale: req.stale,
      maxBytes: Math.floor(this.opts.maxFrameBytes / 2),
    });
    return { type: "entries_chunk", entries: page.entries, done: page.done };
  }

  private async startWatch(
    id: number,
    req: Extract<ClientRequest, { type: "watch" }>,
  ): Promise<void> {
    // The slot is taken here, before any await, so pipelined watches cannot overshoot.
    if (this.watches.has(id) || this.watchesStarting.has(id)) {
      throw new KvError("INVALID_ARGUMENT", `watch id ${id} is in use`);
    }
    if (this.watches.size + this.watchesStarting.size >= this.maxWatches) {
      throw new KvError("INVALID_ARGUMENT", `at most ${this.maxWatches} watches per connection`);
    }
    this.watchesStarting.add(id);
    const opts: WatchOptions = {
      includeHistory: req.includeHistory,
      ignoreDeletes: req.ignoreDeletes,
      metaOnly: req.metaOnly,
      updatesOnly: req.updatesOnly,
    };
    if (this.opts.watchMaxPending !== undefined) opts.maxPending = this.opts.watchMaxPending;
    if (req.resumeFromRevision !== undefined) opts.resumeFromRevision = req.resumeFromRevision;
    if (req.catchUp) opts.catchUp = true;
    if (req.allowReset) opts.allowReset = true;
    let watch: ServiceWatch;
    try {
      watch = await this.opts.service.watch(req.bucket, req.filter, opts);
    } finally {
      this.watchesStarting.delete(id);
    }
    if (this.closed) {
      watch.stop();
      return;
    }
    const credit = Math.min(Math.max(1, req.credit), MAX_WATCH_CREDIT);
    const pump: WatchPump = {
      id,
      watch,
      credit,
      allowed: credit,
      sent: 0,
      running: false,
      stopped: false,
      lastRevision: 0,
      progressMs:
        req.progressIntervalMs === 0
          ? 0
          : Math.min(MAX_PROGRESS_MS, Math.max(MIN_PROGRESS_MS, req.progressIntervalMs)),
      lastSentAt: this.clock.now(),
      cancelProgress: undefined,
      progressUnflushed: false,
      batchEntries: req.batchEntries,
    };
    this.watches.set(id, pump);
    assert(
      this.watches.size + this.watchesStarting.size <= this.maxWatches,
      "client watches above the limit",
    );
    this.opts.metrics.watchers.inc();
    this.send(id, { type: "ack" });
    const c = watch.catchUp;
    if (c !== undefined) {
      // Before any entry: the client learns which revisions the next entries stand for.
      this.send(id, {
        type: "watch_catch_up",
        fromRevision: c.fromRevision,
        toRevision: c.toRevision,
        reset: c.reset,
      });
    }
    if (pump.progressMs > 0) this.scheduleProgress(pump, pump.progressMs);
    void this.pump(pump);
  }

  private onWatchCredit(watchId: number, credit: number): void {
    const w = this.watches.get(watchId);
    if (!w) return;
    const granted = Math.max(0, credit);
    w.allowed += granted;
    w.credit = Math.min(w.credit + granted, MAX_WATCH_CREDIT);
    checkCredit(w);
    if (!w.running) void this.pump(w);
  }

  /** Sends events while the client has credit; the service ends a watcher we stop pulling. */
  private async pump(w: WatchPump): Promise<void> {
    if (w.running) return;
    w.running = true;
    try {
      while (!w.stopped && w.credit > 0) {
        this.checkWatchBudget(w, 0);
        // What is buffered is sent without a wait (one frame per turn for a batch).
        const r = w.watch.takeReady?.() ?? (await w.watch.next());
        if (w.stopped || this.closed) return;
        if (r.done) {
          this.endWatch(w, undefined);
          return;
        }
        // Checked again after the await: other frames may have taken the budget meanwhile,
        // and before encoding, so an entry that does not fit is never copied.
        const bytes =
          r.value === null
            ? 0
            : r.value.value.length +
              r.value.key.length +
              r.value.bucket.length +
              ENTRY_OVERHEAD_BYTES;
        if (r.value !== null) this.checkWatchBudget(w, bytes);
        w.credit--;
        w.sent++;
        checkCredit(w);
        if (r.value === null) {
          this.send(w.id, { type: "watch_init_done", revision: w.watch.initRevision });
        } else {
          w.lastRevision = r.value.revision;
          if (w.batchEntries) this.queueEntry(w, r.value, bytes);
          else this.send(w.id, { type: "watch_entry", entry: r.value });
        }
        w.lastSentAt = this.clock.now();
      }
    } catch (err) {
      if (err instanceof KvError) {
        if (!w.stopped) this.endWatch(w, err);
      } else {
        // Not the client's doing: no error frame, the node stops.
        this.stopWatch(w);
        this.watches.delete(w.id);
        this.fatal(err, { during: "pumping a watch", watchId: w.id });
      }
    } finally {
      w.running = false;
    }
  }

  /**
   * SLOW_CONSUMER when `bytes` more would not fit the connection's budget (or the node's):
   * the watch ends, the client resumes from its last revision once it reads again.
   */
  private checkWatchBudget(w: WatchPump, bytes: number): void {
    const held = this.outBytes + this.reservedBytes;
    const node = this.opts.nodeBudget;
    // A connection that holds nothing may always send one entry, so every watch progresses.
    const nodeFull = held > 0 && node !== undefined && node.used + bytes >= node.limitBytes;
    const room = bytes === 0 ? held < this.maxBufferedBytes : this.fits(bytes);
    if (room && !nodeFull) return;
    this.noteBlocked();
    throw new KvError(
      "SLOW_CONSUMER",
      "the connection does not keep up with this watch; resume from the last revision",
      { lastRevision: w.lastRevision },
    );
  }

  /**
   * A progress event when the watch sent nothing for its interval: the client knows the
   * stream is alive (it fails over when these stop) and how far nothing else matched.
   * At most one unflushed per watch, and none while the connection's buffer is full: a
   * client that does not read holds the server to one small frame per watch (the per-
   * connection watch limit bounds those); it hears from the watch once it reads.
   */
  private scheduleProgress(w: WatchPump, delayMs: number): void {
    w.cancelProgress = this.clock.after(delayMs, () => {
      w.cancelProgress = undefined;
      if (w.stopped || this.closed) return;
      const idleMs = this.clock.now() - w.lastSentAt;
      if (idleMs < w.progressMs) {
        this.scheduleProgress(w, w.progressMs - idleMs);
        return;
      }
      if (!w.progressUnflushed && this.outBytes + this.reservedBytes < this.maxBufferedBytes) {
        w.progressUnflushed = true;
        this.send(w.id, { type: "watch_progress", revision: w.watch.progressRevision() }, () => {
          w.progressUnflushed = false;
        });
        w.lastSentAt = this.clock.now();
      }
      this.scheduleProgress(w, w.progressMs);
    });
  }

  private endWatch(w: WatchPump, err: KvError | undefined): void {
    this.stopWatch(w);
    this.watches.delete(w.id);
    this.send(w.id, err === undefined ? { type: "watch_end" } : { type: "error", error: err });
  }

  private stopWatch(w: WatchPump): void {
    if (w.stopped) return;
    w.stopped = true;
    w.cancelProgress?.();
    w.cancelProgress = undefined;
    this.opts.metrics.watchers.dec();
    try {
      w.watch.stop();
    } catch (err) {
      if (!(err instanceof KvError)) {
        this.fatal(err, { during: "stopping a watch", watchId: w.id });
        return;
      }
      this.opts.log.warn("watch stop failed", { error: String(err) });
    }
  }

  /**
   * The client's deadline from the frame's `timeout_ms` (the time it still waits), a
   * little early, so a TIMEOUT/NO_LEADER answer reaches the client before it gives up.
   */
  private callOptionsOf(timeoutMs: number): CallOptions {
    if (timeoutMs <= 0) return {};
    const marginMs = Math.min(100, Math.floor(timeoutMs / 10));
    return { deadlineMs: this.clock.now() + timeoutMs - marginMs };
  }
}

function checkCredit(w: WatchPump): void {
  assert(w.credit >= 0, `watch ${w.id}: credit below zero`);
  assert(w.credit <= MAX_WATCH_CREDIT, `watch ${w.id}: credit above the largest a client may hold`);
  assert(w.credit <= w.allowed - w.sent, `watch ${w.id}: credit above what the client granted`);
}

/** What an audit line says of a request that changes the cluster or drops data; else undefined. */
function auditFieldsOf(req: ClientRequest): Record<string, unknown> | undefined {
  switch (req.type) {
    case "bucket_create":
      return { op: req.type, bucket: req.config.bucket };
    case "bucket_delete":
    case "purge_deletes":
      return { op: req.type, bucket: req.bucket };
    case "cluster_transfer":
      return { op: req.type, to: req.to };
    case "cluster_add":
      return { op: req.type, id: req.id, address: req.address };
    case "cluster_remove":
      return { op: req.type, id: req.id };
    case "snapshot_open":
      return { op: req.type };
    default:
      return undefined;
  }
}

/** The address part of `host:port` (IPv6 hosts keep their colons). */
function addressOf(remote: string): string {
  const i = remote.lastIndexOf(":");
  return i < 0 ? remote : remote.slice(0, i);
}

function typeOf(frame: Answerable): ClientRequestType {
  return frame.kind === "request" ? frame.request.type : frame.type;
}

/**
 * The `op` label of a request's metrics: its type, and for a write its operation
 * (put, create, update, delete, purge), so dashboards tell them apart. A write refused
 * before its operation was decoded stays `write`. Bounded by the protocol.
 */
function opLabelOf(frame: Answerable): ClientRequestType | WriteOpName {
  if (frame.kind === "request" && frame.request.type === "write") return frame.request.op;
  return typeOf(frame);
}

/** The bucket a request names, for the metrics' bounded `bucket` label ("" for none). */
function bucketLabelOf(frame: Answerable): string {
  if (frame.kind !== "request") return NO_BUCKET;
  const r = frame.request;
  if (r.type === "bucket_create") return r.config.bucket ?? NO_BUCKET;
  return "bucket" in r ? r.bucket : NO_BUCKET;
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) return Buffer.concat(data.filter((d) => d instanceof Uint8Array));
  if (typeof data === "string") return new TextEncoder().encode(data);
  return new Uint8Array(0);
}

function unreachable(x: never): never {
  throw new Error(`unhandled client request ${JSON.stringify(x)}`);
}
