/**
 * The client port: WebSocket client API at `/` and HTTP `GET /healthz`, `/readyz`,
 * `/v1/status`, `/metrics` on the same listener (DESIGN.md section 5). When clients need
 * a token, `/v1/status` and `/metrics` need an admin one (`Authorization: Bearer`);
 * `/healthz` and `/readyz` stay open (they say only ok / not ready). With `--tls-cert`
 * the one listener is HTTPS, so both are `wss://` and `https://`.
 */
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { WebSocketServer } from "ws";
import type { ErrorCode } from "../proto/index.js";
import { AuthBackoff } from "./auth_backoff.js";
import { ByteBudget } from "./byte_budget.js";
import { type ClientHandlerOptions, ClientSession, InFlight } from "./client_handler.js";
import { systemClock } from "./clock.js";
import type { Readiness } from "./kv_service.js";
import { type ClientTls, TLS_MIN_VERSION } from "./tls_files.js";

export interface ClientServerOptions extends ClientHandlerOptions {
  host: string;
  port: number;
  maxConnections: number;
  /** false when `--metrics-listen` serves /v1/status and /metrics instead (default true). */
  opsOnClientPort?: boolean;
  /** WebSocket connections from one remote address that have not said hello yet. */
  maxPreHelloPerAddress?: number;
  /** Bytes every connection together may hold unsent (see ByteBudget); beyond, OVERLOADED. */
  nodeMaxBufferedBytes?: number;
  /** HTTP: time to receive a request's headers. */
  httpHeadersTimeoutMs?: number;
  /** HTTP: time to receive a whole request. */
  httpRequestTimeoutMs?: number;
  /** wss:// and https:// (`--tls-cert`, `--tls-key`; mutual with `--tls-client-ca`). */
  tls?: ClientTls;
}

/** `/readyz` answers from a check at most this old, so probes cannot flood Raft. */
const READINESS_CACHE_MS = 1000;

/** HTTP sockets (probes, metrics, upgrades under way) served beyond the connection cap. */
const HTTP_HEADROOM_CONNECTIONS = 256;

export class ClientServer {
  readonly inFlight = new InFlight();
  readonly budget: ByteBudget;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<ClientSession>();
  /** Per remote address: connections that have not said hello yet. */
  private readonly preHello = new Map<string, number>();
  private readiness: { at: number; value: Promise<Readiness> } | undefined;
  /** Failed hellos per remote address: their refusals wait longer each time. */
  private readonly authBackoff: AuthBackoff;

  constructor(private readonly opts: ClientServerOptions) {
    this.budget = new ByteBudget(opts.nodeMaxBufferedBytes ?? 512 * 1024 * 1024);
    this.authBackoff = new AuthBackoff(opts.clock ?? systemClock);
    opts.metrics.clientBufferedBytes = () => this.budget.used;
    const headersTimeout = opts.httpHeadersTimeoutMs ?? 10_000;
    this.http = listener(
      {
        headersTimeout,
        requestTimeout: Math.max(headersTimeout, opts.httpRequestTimeoutMs ?? 30_000),
        keepAliveTimeout: 5000,
        // How often Node looks for sockets past those timeouts (its default is 30 s).
        connectionsCheckingInterval: Math.min(1000, headersTimeout),
      },
      opts.tls,
      // A TLS handshake that never ends is a pre-hello socket too (Node waits 120 s).
      opts.helloTimeoutMs ?? 5000,
      (req, res) => {
        this.onHttp(req, res).catch((err) => {
          opts.log.error("http handler failed", { url: req.url, error: String(err) });
          if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
          res.end("internal error\n");
        });
      },
    );
    if (opts.tls) {
      // A refused handshake (no or a wrong client certificate, an old TLS version) never
      // reaches HTTP; the client sees the TLS alert, the node logs and counts it.
      this.http.on("tlsClientError", (err: Error, socket: TLSSocket) => {
        opts.metrics.authFailures.inc({ port: "tls" });
        opts.log.warn("client TLS handshake refused", {
          remote: socket.remoteAddress,
          error: err.message,
        });
        // Node leaves the socket open after a handshake timeout.
        socket.destroy();
      });
    }
    // WebSocket sessions are capped below; plain HTTP (/healthz, /readyz) keeps headroom.
    this.http.maxConnections = opts.maxConnections + HTTP_HEADROOM_CONNECTIONS;
    const maxPreHello = opts.maxPreHelloPerAddress ?? 16;
    this.wss = new WebSocketServer({
      noServer: true,
      // Frames between maxFrameBytes and this get a FRAME_TOO_LARGE error frame from the
      // session; beyond it ws closes the connection (1009) without reading the rest.
      maxPayload: opts.maxFrameBytes * 2,
      perMessageDeflate: false,
    });
    this.http.on("upgrade", (req, socket, head) => {
      const path = (req.url ?? "/").split("?")[0];
      if (path !== "/") {
        socket.end("HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n");
        return;
      }
      if (!this.inFlight.accepting) {
        socket.end("HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n");
        return;
      }
      if (this.sessions.size >= opts.maxConnections) {
        socket.end("HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n");
        return;
      }
      const address = req.socket.remoteAddress ?? "";
      if ((this.preHello.get(address) ?? 0) >= maxPreHello) {
        socket.end("HTTP/1.1 429 Too Many Requests\r\nconnection: close\r\n\r\n");
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const remote = `${address}:${req.socket.remotePort}`;
        this.preHello.set(address, (this.preHello.get(address) ?? 0) + 1);
        const helloSettled = () => {
          const n = (this.preHello.get(address) ?? 1) - 1;
          if (n <= 0) this.preHello.delete(address);
          else this.preHello.set(address, n);
        };
        const session = new ClientSession(
          ws,
          { ...opts, nodeBudget: this.budget, authBackoff: this.authBackoff },
          this.inFlight,
          remote,
          helloSettled,
        );
        this.sessions.add(session);
        ws.on("close", () => this.sessions.delete(session));
      });
    });
    this.http.on("clientError", (_err, socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
      else socket.destroy();
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off("error", reject);
        resolve((this.http.address() as AddressInfo).port);
      });
    });
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  /** Stops accepting connections and requests; in-flight requests keep running. */
  stopAccepting(): void {
    this.inFlight.accepting = false;
    this.http.close();
  }

  /** Re-checks every session's token after a reload of the tokens (node/auth.ts). */
  reauthenticateSessions(): void {
    for (const s of this.sessions) s.reauthenticate();
  }

  /**
   * Ends every session (watches end with `code`, so clients resume elsewhere). HTTP
   * requests in flight finish: a node halted by a full disk or damaged data stays up to
   * answer /metrics and /readyz, and a scrape racing the halt must not lose its answer.
   */
  closeSessions(code: ErrorCode, message: string): void {
    // Each session sends the error and a close frame; sockets that do not finish the
    // close handshake are terminated by the session after a grace period.
    for (const s of this.sessions) s.shutdown(code, message);
    this.sessions.clear();
    this.http.closeIdleConnections();
  }

  /** At shutdown, after closeSessions: every HTTP connection left, busy or not. */
  closeAllConnections(): void {
    this.http.closeAllConnections();
  }

  /** The service's readiness, checked at most once per READINESS_CACHE_MS. */
  private cachedReadiness(): Promise<Readiness> {
    const now = Date.now();
    if (this.readiness === undefined || now - this.readiness.at >= READINESS_CACHE_MS) {
      const value = this.opts.service
        .readiness()
        .catch((err: unknown) => ({ ready: false, reason: String(err) }));
      this.readiness = { at: now, value };
    }
    return this.readiness.value;
  }

  private async onHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "content-type": "text/plain", allow: "GET" });
      res.end("method not allowed\n");
      return;
    }
    switch (path) {
      case "/healthz":
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("ok\n");
        return;
      case "/readyz": {
        const r = await this.cachedReadiness();
        json(res, r.ready ? 200 : 503, r);
        return;
      }
      case "/v1/status":
      case "/metrics":
        if (this.opts.opsOnClientPort === false) break;
        if (this.opts.auth.authenticateHeader(req.headers.authorization)?.admin !== true) {
          this.opts.metrics.authFailures.inc({ port: "http" });
          res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" });
          res.end("an admin token is needed (Authorization: Bearer <token>)\n");
          return;
        }
        await serveOps(path, res, this.opts, this.sessions.size);
        return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found (the client API is a WebSocket at /)\n");
  }
}

/**
 * The client port's HTTP server: plain, or TLS 1.2+ with the node's certificate; with a
 * client CA every client must present a certificate it signed (checked in the handshake,
 * before any HTTP or WebSocket byte).
 */
function listener(
  options: ServerOptions,
  tls: ClientTls | undefined,
  handshakeTimeoutMs: number,
  onRequest: RequestListener,
): Server {
  if (!tls) return createServer(options, onRequest);
  const mutual = tls.clientCa !== undefined;
  return createHttpsServer(
    {
      ...options,
      cert: tls.cert,
      key: tls.key,
      minVersion: TLS_MIN_VERSION,
      handshakeTimeout: handshakeTimeoutMs,
      ...(mutual ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    },
    onRequest,
  );
}

/**
 * `/v1/status` and `/metrics`, for the client port (behind an admin token) and for
 * `--metrics-listen` (node/metrics_server.ts, no token: bind it where only the scraper
 * reaches).
 */
export async function serveOps(
  path: "/v1/status" | "/metrics",
  res: ServerResponse,
  opts: Pick<ClientServerOptions, "service" | "metrics">,
  connections: number,
): Promise<void> {
  if (path === "/metrics") {
    const body = await opts.metrics.registry.metrics();
    res.writeHead(200, { "content-type": opts.metrics.registry.contentType });
    res.end(body);
    return;
  }
  const status = opts.service.status();
  const buckets = await opts.service.listBuckets({ stale: true });
  json(res, 200, {
    ...status,
    connections,
    buckets: buckets.map((b) => ({
      bucket: b.bucket,
      values: b.values,
      bytes: b.bytes,
      history: b.history,
      ttlMs: b.ttlMs,
      replicas: b.replicas,
      lastRevision: b.lastRevision,
    })),
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(`${JSON.stringify(body)}\n`);
}
