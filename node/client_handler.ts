/**
 * One client WebSocket connection: decodes ClientFrames, calls the KvService, answers
 * with ServerFrames carrying the request's id (many requests in flight at once), and
 * pumps watches under the client's credit. Bad input (a text frame, an oversized or
 * undecodable frame, an unknown message, a request before hello) gets an error frame
 * and the connection is closed; nothing a client sends can crash the process.
 */
import type { WebSocket } from "ws";
import {
  clusterStatusToWire,
  entryToWire as codecEntryToWire,
  configFromWire,
  decodeClientFrame,
  encodeServerFrame,
  errorToWire,
  PROTOCOL_VERSION,
  safeInt,
  safeIntOr,
  statusToWire,
  str,
  type WireObject,
} from "../proto/client_codec.js";
import { type ErrorCode, KvError } from "../proto/errors.js";
import type {
  BucketInfo,
  CallOptions,
  Entry,
  KvService,
  ServiceWatch,
  WriteOpName,
} from "./kv_service.js";
import type { Logger } from "./log.js";
import type { NodeMetrics } from "./metrics.js";

export interface ClientHandlerOptions {
  service: KvService;
  serverId: string;
  maxFrameBytes: number;
  token: string | undefined;
  metrics: NodeMetrics;
  log: Logger;
  /** Requests in flight per connection before the socket stops being read. */
  maxInFlight?: number;
  /** Open watches per connection. */
  maxWatches?: number;
  /** Bytes queued on the socket beyond which a watch is ended with SLOW_CONSUMER. */
  maxBufferedBytes?: number;
  /** Keys per keys page. */
  keysPageSize?: number;
  /** Entries a watch may have queued in the service before SLOW_CONSUMER. */
  watchMaxPending?: number;
}

/** Tracks in-flight requests of every session so shutdown can wait for them. */
export class InFlight {
  private readonly set = new Set<Promise<unknown>>();
  accepting = true;

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
    const deadline = Date.now() + timeoutMs;
    while (this.set.size > 0 && Date.now() < deadline) {
      const left = deadline - Date.now();
      await Promise.race([
        Promise.allSettled([...this.set]),
        new Promise((resolve) => setTimeout(resolve, Math.max(1, left))),
      ]);
    }
    return this.set.size;
  }
}

const WRITE_OPS: Record<number, WriteOpName> = {
  1: "put",
  2: "create",
  3: "update",
  4: "delete",
  5: "purge",
};

const CLOSE_CODES: Partial<Record<ErrorCode, number>> = {
  FRAME_TOO_LARGE: 1009,
  MALFORMED_FRAME: 1007,
  UNKNOWN_MESSAGE: 1003,
  UNAUTHORIZED: 1008,
  INVALID_ARGUMENT: 1008,
  SHUTTING_DOWN: 1001,
};

/** Largest credit a client may hold for one watch. */
const MAX_WATCH_CREDIT = 1_000_000;

interface WatchPump {
  id: number;
  watch: ServiceWatch;
  credit: number;
  running: boolean;
  stopped: boolean;
  lastRevision: number;
}

export class ClientSession {
  private helloDone = false;
  private closed = false;
  private inFlight = 0;
  private paused = false;
  private readonly watches = new Map<number, WatchPump>();
  private readonly maxInFlight: number;
  private readonly maxWatches: number;
  private readonly maxBufferedBytes: number;
  private readonly keysPageSize: number;

  constructor(
    private readonly ws: WebSocket,
    private readonly opts: ClientHandlerOptions,
    private readonly tracker: InFlight,
    private readonly remote: string,
  ) {
    this.maxInFlight = opts.maxInFlight ?? 1024;
    this.maxWatches = opts.maxWatches ?? 4096;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 32 * 1024 * 1024;
    this.keysPageSize = opts.keysPageSize ?? 1000;
    opts.metrics.clientConnections.inc();
    ws.on("message", (data, isBinary) => this.onMessage(data, isBinary));
    ws.on("close", () => this.onClose());
    ws.on("error", (err) => {
      // ws reports protocol violations (e.g. a frame above maxPayload) here, then closes.
      opts.log.debug("client socket error", { remote, error: err.message });
    });
  }

  /** Ends every watch with `code` and closes the socket (shutdown). */
  shutdown(code: ErrorCode, message: string): void {
    this.refuse(0, new KvError(code, message));
  }

  get watchCount(): number {
    return this.watches.size;
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.metrics.clientConnections.dec();
    for (const w of this.watches.values()) this.stopWatch(w);
    this.watches.clear();
  }

  private send(frame: WireObject): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    let bytes: Uint8Array;
    try {
      bytes = encodeServerFrame(frame);
    } catch (err) {
      // A bug in building the answer; report it to the client rather than dropping it.
      this.opts.log.error("cannot encode a server frame", { error: String(err) });
      bytes = encodeServerFrame({ id: frame.id, error: errorToWire(err) });
    }
    this.opts.metrics.clientFrames.inc({ direction: "out" });
    this.opts.metrics.clientBytes.inc({ direction: "out" }, bytes.length);
    this.ws.send(bytes);
  }

  /** Sends an error for frame `id` and closes the connection. */
  private refuse(id: number, err: KvError): void {
    if (this.closed) return;
    this.opts.metrics.badFrames.inc({ port: "client", code: err.code });
    if (err.code !== "SHUTTING_DOWN") {
      this.opts.log.warn("client connection refused", {
        remote: this.remote,
        code: err.code,
        message: err.message,
      });
    }
    this.send({ id, error: errorToWire(err) });
    this.closed = true;
    this.opts.metrics.clientConnections.dec();
    for (const w of this.watches.values()) this.stopWatch(w);
    this.watches.clear();
    this.ws.close(CLOSE_CODES[err.code] ?? 1008, err.code);
    // A peer that never answers the close handshake must not hold the socket.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  private onMessage(data: unknown, isBinary: boolean): void {
    if (this.closed) return;
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
    let frame: WireObject;
    try {
      frame = decodeClientFrame(bytes);
    } catch (err) {
      this.refuse(
        0,
        new KvError("MALFORMED_FRAME", `cannot decode the frame: ${(err as Error).message}`),
      );
      return;
    }
    let id: number;
    try {
      id = safeInt(frame.id, "id");
    } catch (err) {
      this.refuse(0, err as KvError);
      return;
    }
    const body: string | undefined = frame.body;
    if (body === undefined) {
      this.refuse(
        id,
        new KvError("UNKNOWN_MESSAGE", "the frame carries no message this server knows"),
      );
      return;
    }
    if (body === "hello") {
      this.onHello(id, frame.hello ?? {});
      return;
    }
    if (!this.helloDone) {
      this.refuse(id, new KvError("UNAUTHORIZED", "the first frame must be a hello"));
      return;
    }
    if (body === "watch_credit") {
      this.onWatchCredit(frame.watch_credit ?? {});
      return;
    }
    if (!this.tracker.accepting) {
      this.send({
        id,
        error: errorToWire(new KvError("SHUTTING_DOWN", "the node is shutting down")),
      });
      return;
    }
    this.inFlight++;
    if (this.inFlight >= this.maxInFlight && !this.paused) {
      // Stop reading until answers go out: a client cannot make us queue without limit.
      this.paused = true;
      this.ws.pause();
    }
    const started = performance.now();
    let call: CallOptions;
    try {
      call = callOptionsOf(frame);
    } catch (err) {
      this.inFlight--;
      this.refuse(id, err as KvError);
      return;
    }
    const done = this.tracker.track(this.dispatch(id, body, frame[body] ?? {}, call));
    done
      .then(
        (answer) => {
          this.opts.metrics.kvOps.inc({ op: body, result: "ok" });
          if (answer) this.send({ id, ...answer });
        },
        (err) => {
          const code = err instanceof KvError ? err.code : "INTERNAL";
          if (code === "INTERNAL") {
            this.opts.log.error("request failed", { op: body, error: String(err?.stack ?? err) });
          }
          this.opts.metrics.kvOps.inc({ op: body, result: code });
          this.send({ id, error: errorToWire(err) });
        },
      )
      .finally(() => {
        this.opts.metrics.kvOpSeconds.observe({ op: body }, (performance.now() - started) / 1000);
        this.inFlight--;
        if (this.paused && this.inFlight < this.maxInFlight / 2) {
          this.paused = false;
          this.ws.resume();
        }
      });
  }

  private onHello(id: number, hello: WireObject): void {
    const version = safeIntOr(hello.protocol_version, 0);
    if (version !== PROTOCOL_VERSION) {
      this.refuse(
        id,
        new KvError(
          "INVALID_ARGUMENT",
          `protocol version ${version} is not supported (this server speaks ${PROTOCOL_VERSION})`,
        ),
      );
      return;
    }
    if (this.opts.token !== undefined && hello.token !== this.opts.token) {
      this.refuse(id, new KvError("UNAUTHORIZED", "a valid token is required"));
      return;
    }
    this.helloDone = true;
    this.send({
      id,
      hello_ok: {
        protocol_version: PROTOCOL_VERSION,
        server_id: this.opts.serverId,
        max_frame_bytes: this.opts.maxFrameBytes,
      },
    });
  }

  /** Returns the answer's body (without id), or undefined when the answer is sent elsewhere. */
  private async dispatch(
    id: number,
    body: string,
    req: WireObject,
    call: CallOptions,
  ): Promise<WireObject | undefined> {
    const s = this.opts.service;
    switch (body) {
      case "ping":
        return { pong: {} };
      case "bucket_create": {
        const info = await s.createBucket(configFromWire(req.config ?? {}), requestIdOf(req), call);
        return { bucket_status: bucketToWire(info) };
      }
      case "bucket_info": {
        const info = await s.bucketInfo(str(req.bucket), { stale: Boolean(req.stale) });
        return { bucket_status: bucketToWire(info) };
      }
      case "bucket_delete":
        await s.deleteBucket(str(req.bucket), requestIdOf(req), call);
        return { ack: {} };
      case "bucket_list": {
        const list = await s.listBuckets({ stale: Boolean(req.stale) });
        return { bucket_list: { buckets: list.map(bucketToWire) } };
      }
      case "write": {
        const op = WRITE_OPS[safeIntOr(req.op, 0)];
        if (!op) throw new KvError("INVALID_ARGUMENT", `unknown write op ${String(req.op)}`);
        const value = req.value instanceof Uint8Array ? req.value : new Uint8Array(0);
        const request = {
          bucket: str(req.bucket),
          key: str(req.key),
          op,
          value,
          requestId: requestIdOf(req),
          ...call,
        } as Parameters<KvService["write"]>[0];
        if (req.last_revision !== undefined)
          request.last = safeInt(req.last_revision, "last_revision");
        if (op === "update" && request.last === undefined) {
          throw new KvError("INVALID_ARGUMENT", "update needs last_revision");
        }
        const revision = await s.write(request);
        return { write_result: { revision } };
      }
      case "get": {
        const revision = req.revision === undefined ? undefined : safeInt(req.revision, "revision");
        const entry = await s.get(str(req.bucket), str(req.key), revision, {
          stale: Boolean(req.stale),
        });
        return { get_result: entry ? { entry: entryToWire(entry) } : {} };
      }
      case "keys": {
        const page = await s.keysPage(
          str(req.bucket),
          str(req.filter) || ">",
          str(req.after),
          Math.min(safeIntOr(req.limit, 0) || this.keysPageSize, this.keysPageSize),
          { stale: Boolean(req.stale) },
        );
        return { keys_chunk: { keys: page.keys, done: page.done } };
      }
      case "history":
        return { entries_chunk: await this.historyPage(req) };
      case "purge_deletes": {
        const older =
          req.older_than_ms === undefined ? undefined : safeInt(req.older_than_ms, "older_than_ms");
        const purged = await s.purgeDeletes(str(req.bucket), older, requestIdOf(req), call);
        return { purge_deletes_result: { purged } };
      }
      case "cluster_status":
        return { cluster_status: nodeStatusToWire(s.status()) };
      case "cluster_transfer": {
        const to = str(req.to);
        if (to === "") throw new KvError("INVALID_ARGUMENT", "cluster_transfer needs `to`");
        return { cluster_status: nodeStatusToWire(await s.transferLeadership(to, call)) };
      }
      case "cluster_add": {
        const member = str(req.id);
        if (member === "") throw new KvError("INVALID_ARGUMENT", "cluster_add needs `id`");
        return {
          cluster_status: nodeStatusToWire(await s.addServer(member, str(req.address), call)),
        };
      }
      case "cluster_remove": {
        const member = str(req.id);
        if (member === "") throw new KvError("INVALID_ARGUMENT", "cluster_remove needs `id`");
        return { cluster_status: nodeStatusToWire(await s.removeServer(member, call)) };
      }
      case "watch":
        await this.startWatch(id, req);
        return undefined;
      case "watch_stop": {
        const w = this.watches.get(safeInt(req.watch_id, "watch_id"));
        if (w) {
          this.stopWatch(w);
          this.watches.delete(w.id);
          this.send({ id: w.id, watch_end: {} });
        }
        return { ack: {} };
      }
      default:
        throw new KvError("UNKNOWN_MESSAGE", `message ${body} is not served on this port`);
    }
  }

  /** One frame's worth of history: entries after `after_revision`, within half a frame. */
  private async historyPage(req: WireObject): Promise<WireObject> {
    const after = safeIntOr(req.after_revision, 0);
    const all = await this.opts.service.history(str(req.bucket), str(req.key), {
      stale: Boolean(req.stale),
    });
    const budget = Math.floor(this.opts.maxFrameBytes / 2);
    const entries: WireObject[] = [];
    let bytes = 0;
    let done = true;
    for (const e of all) {
      if (e.revision <= after) continue;
      const size = e.value.length + e.key.length + 64;
      if (entries.length > 0 && bytes + size > budget) {
        done = false;
        break;
      }
      bytes += size;
      entries.push(entryToWire(e));
    }
    return { entries, done };
  }

  private async startWatch(id: number, req: WireObject): Promise<void> {
    if (this.watches.size >= this.maxWatches) {
      throw new KvError("INVALID_ARGUMENT", `at most ${this.maxWatches} watches per connection`);
    }
    if (this.watches.has(id)) throw new KvError("INVALID_ARGUMENT", `watch id ${id} is in use`);
    const opts: Parameters<KvService["watch"]>[2] = {
      includeHistory: Boolean(req.include_history),
      ignoreDeletes: Boolean(req.ignore_deletes),
      metaOnly: Boolean(req.meta_only),
      updatesOnly: Boolean(req.updates_only),
    };
    if (this.opts.watchMaxPending !== undefined) opts.maxPending = this.opts.watchMaxPending;
    if (req.resume_from_revision !== undefined) {
      opts.resumeFromRevision = safeInt(req.resume_from_revision, "resume_from_revision");
    }
    const watch = await this.opts.service.watch(str(req.bucket), str(req.filter) || ">", opts);
    if (this.closed) {
      watch.stop();
      return;
    }
    const pump: WatchPump = {
      id,
      watch,
      credit: Math.min(Math.max(1, safeIntOr(req.credit, 0)), MAX_WATCH_CREDIT),
      running: false,
      stopped: false,
      lastRevision: 0,
    };
    this.watches.set(id, pump);
    this.opts.metrics.watchers.inc();
    this.send({ id, ack: {} });
    void this.pump(pump);
  }

  private onWatchCredit(req: WireObject): void {
    const w = this.watches.get(safeIntOr(req.watch_id, 0));
    if (!w) return;
    w.credit = Math.min(w.credit + Math.max(0, safeIntOr(req.credit, 0)), MAX_WATCH_CREDIT);
    if (!w.running) void this.pump(w);
  }

  /** Sends events while the client has credit; the service ends a watcher we stop pulling. */
  private async pump(w: WatchPump): Promise<void> {
    if (w.running) return;
    w.running = true;
    try {
      while (!w.stopped && w.credit > 0) {
        if (this.ws.bufferedAmount > this.maxBufferedBytes) {
          throw new KvError(
            "SLOW_CONSUMER",
            "the connection does not keep up with this watch; resume from the last revision",
            { lastRevision: w.lastRevision },
          );
        }
        const r = await w.watch.next();
        if (w.stopped) return;
        if (r.done) {
          this.endWatch(w, undefined);
          return;
        }
        w.credit--;
        if (r.value === null) {
          this.send({ id: w.id, watch_event: { init_done: { revision: w.watch.initRevision } } });
        } else {
          w.lastRevision = r.value.revision;
          this.send({ id: w.id, watch_event: { entry: entryToWire(r.value) } });
        }
      }
    } catch (err) {
      if (!w.stopped) this.endWatch(w, err);
    } finally {
      w.running = false;
    }
  }

  private endWatch(w: WatchPump, err: unknown): void {
    this.stopWatch(w);
    this.watches.delete(w.id);
    if (err === undefined) this.send({ id: w.id, watch_end: {} });
    else this.send({ id: w.id, error: errorToWire(err) });
  }

  private stopWatch(w: WatchPump): void {
    if (w.stopped) return;
    w.stopped = true;
    this.opts.metrics.watchers.dec();
    try {
      w.watch.stop();
    } catch (err) {
      this.opts.log.warn("watch stop failed", { error: String(err) });
    }
  }
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) return Buffer.concat(data as Buffer[]);
  if (typeof data === "string") return new TextEncoder().encode(data);
  return new Uint8Array(0);
}

/**
 * The client's deadline from the frame's `timeout_ms` (the time it still waits), a
 * little early, so a TIMEOUT/NO_LEADER answer reaches the client before it gives up.
 */
function callOptionsOf(frame: WireObject): CallOptions {
  const timeoutMs = safeIntOr(frame.timeout_ms, 0, "timeout_ms");
  if (timeoutMs <= 0) return {};
  const marginMs = Math.min(100, Math.floor(timeoutMs / 10));
  return { deadlineMs: Date.now() + timeoutMs - marginMs };
}

function requestIdOf(req: WireObject): string {
  const id = str(req.request_id);
  if (id === "" || id.length > 256) {
    throw new KvError("INVALID_ARGUMENT", "request_id must be 1..256 characters");
  }
  return id;
}

export function bucketToWire(b: BucketInfo): WireObject {
  return statusToWire(b);
}

export function entryToWire(e: Entry): WireObject {
  return codecEntryToWire({ ...e, size: e.length });
}

export function nodeStatusToWire(s: ReturnType<KvService["status"]>): WireObject {
  return clusterStatusToWire(s);
}
