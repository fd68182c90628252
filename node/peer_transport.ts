/**
 * The peer port: carries opaque Raft messages and forwarded writes between node ids
 * over WebSocket, one protobuf PeerFrame (proto/peer.proto) per binary frame. Each node
 * dials every other peer and sends on that outbound connection; it receives on the
 * connections peers dial to it, so an answer travels back on the answerer's own
 * outbound connection. A dialed connection starts with the handshake of
 * proto/peer.proto (hello, challenge, auth; node/peer_auth.ts): the cluster secret is
 * proven both ways, or mutual TLS vouches for both sides, or (neither configured) only
 * the cluster id is checked. A refused peer hears only UNAUTHORIZED. Addresses are never
 * learned from a hello; messages from an id that is not a member (`isMember`) are
 * dropped and counted. Inbound sockets are bounded in number (total and before the
 * handshake) and in time (the hello timeout).
 *
 * Delivery is best effort, as Raft expects of its network: a message for a peer that
 * is down waits in a bounded queue and is dropped when the queue is full or the socket
 * is backed up. Bad input gets an error frame and the connection is closed; the node
 * keeps serving every other peer.
 */
import { createServer, type Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from "node:tls";
import { WebSocket, WebSocketServer } from "ws";
import {
  backoffDelayMs,
  decodeClientRequest,
  peerSchema as descriptor,
  KvError,
  messageType,
  PEER_PORT_CLOSE_REASON,
} from "../proto/index.js";
import type { PeerAddress } from "./config.js";
import {
  type ForwardFrame,
  forwardFromWire,
  forwardToWire,
  type WireForwardBody,
} from "./forward_wire.js";
import type { Logger } from "./log.js";
import type { NodeMetrics } from "./metrics.js";
import { bracketedHost, isClientUrl, isValidNodeId } from "./peer_address.js";
import {
  certificateNames,
  type HandshakeInput,
  newNonce,
  PEER_NONCE_BYTES,
  type PeerTls,
  peerProof,
  proofMatches,
} from "./peer_auth.js";
import { TLS_MIN_VERSION } from "./tls_files.js";
import { sendInTurn } from "./turn_cork.js";

const PeerFrame = messageType(descriptor, "streamkv.peer.PeerFrame");

/** 2: the challenge-response handshake; a version 1 hello is refused. */
export const PEER_PROTOCOL_VERSION = 2;

/** What a refused peer hears: the code, nothing about this node or its cluster. */
const REFUSED_MESSAGE = "refused by the peer (its log says why)";

export interface PeerTransportOptions {
  id: string;
  /** Nodes of different clusters refuse each other ("" = not checked, tests only). */
  clusterId: string;
  host: string;
  port: number;
  /** Every member, this node included (its entry is skipped when dialing). */
  peers: PeerAddress[];
  maxFrameBytes: number;
  /** Called for every Raft message received. */
  onMessage: (from: string, data: Uint8Array) => void;
  /** Called for every forwarded write (request or response) received. */
  onForward?: (from: string, frame: ForwardFrame) => void;
  /**
   * Whether Raft messages and forwarded writes from `id` are taken: a voter, a learner
   * or a pending addition. Others are dropped and counted (default: everyone).
   */
  isMember?: (id: string) => boolean;
  /** This node's client URL, announced in every hello it sends (`cluster status --all`). */
  clientUrl?: () => string;
  /** A member's hello announced its client URL (after the handshake completed). */
  onPeerClientUrl?: (id: string, url: string) => void;
  /** The cluster secret both sides prove in the handshake (peer_auth.ts). */
  secret?: Buffer;
  /** Mutual TLS on the peer port, both directions. */
  tls?: PeerTls;
  /** How long a socket may take from connect to a completed handshake (default 5 s). */
  helloTimeoutMs?: number;
  /** Inbound peer sockets at once (default 64). */
  maxInboundSockets?: number;
  /** Inbound sockets at once that have not completed the handshake (default 16). */
  maxPendingSockets?: number;
  metrics: NodeMetrics;
  log: Logger;
  /** Messages queued per peer while it is unreachable (default 1024). */
  maxQueuedMessages?: number;
  /** Socket bytes buffered per peer beyond which messages are dropped (default 16 MiB). */
  maxBufferedBytes?: number;
  reconnectDelayMs?: number;
  /** Longest wait between dials of an unreachable peer (default 1 s). */
  reconnectDelayMaxMs?: number;
  /**
   * A dialed link whose TCP connect and WebSocket upgrade take longer is dropped and
   * dialed again (default 2 s): a connect into a cut network would otherwise wait for
   * the kernel's SYN retransmissions, seconds apart, long after the cut healed.
   */
  dialTimeoutMs?: number;
  /** How often the dialer pings an open link (default 500 ms). */
  pingIntervalMs?: number;
  /**
   * An open link that brought nothing back (no pong, no frame) for this long is dead:
   * dropped and dialed again (default 3 s). Without it, a link through a network that
   * silently dropped packets waits for TCP's retransmission backoff, which doubles for
   * as long as the cut lasts, before it carries anything again. The acceptor drops an
   * inbound link of a pinging peer that is silent for twice as long.
   */
  linkTimeoutMs?: number;
}

interface Outbound {
  peer: PeerAddress;
  ws: WebSocket | undefined;
  /** The handshake completed: frames go out directly. */
  open: boolean;
  queue: Uint8Array[];
  attempt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Pings an open link and drops it when silent (see `linkTimeoutMs`). */
  liveness: ReturnType<typeof setInterval> | undefined;
  /** When an open link closed and has not come back yet (logged once each way). */
  lostAtMs: number | undefined;
}

/** One inbound socket, from TCP connect on. */
interface InboundSocket {
  authenticated: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export interface PeerLinkStatus {
  id: string;
  address: string;
  connected: boolean;
  queued: number;
}

export class PeerTransport {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly outbound = new Map<string, Outbound>();
  private readonly maxQueued: number;
  private readonly maxBuffered: number;
  private closed = false;
  private listening = false;
  /** Every member this node knows an address for, itself included. */
  private readonly known = new Map<string, PeerAddress>();
  /** Keyed by the raw TCP socket and, with TLS, by its TLS socket too. */
  private readonly inbound = new Map<Socket, InboundSocket>();
  private inboundCount = 0;
  private pendingCount = 0;
  private readonly helloTimeoutMs: number;
  private readonly maxInbound: number;
  private readonly maxPending: number;
  private readonly dialTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private readonly linkTimeoutMs: number;

  constructor(private readonly opts: PeerTransportOptions) {
    this.dialTimeoutMs = opts.dialTimeoutMs ?? 2000;
    this.pingIntervalMs = opts.pingIntervalMs ?? 500;
    this.linkTimeoutMs = opts.linkTimeoutMs ?? 3000;
    this.maxQueued = opts.maxQueuedMessages ?? 1024;
    this.maxBuffered = opts.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.helloTimeoutMs = opts.helloTimeoutMs ?? 5000;
    this.maxInbound = opts.maxInboundSockets ?? 64;
    this.maxPending = opts.maxPendingSockets ?? 16;
    const onRequest = (_req: unknown, res: import("node:http").ServerResponse) => {
      res.writeHead(426, { "content-type": "text/plain" });
      res.end(`${PEER_PORT_CLOSE_REASON}\n`);
    };
    this.http = opts.tls
      ? createTlsServer(
          {
            cert: opts.tls.cert,
            key: opts.tls.key,
            ca: opts.tls.ca,
            requestCert: true,
            rejectUnauthorized: true,
            minVersion: TLS_MIN_VERSION,
          },
          onRequest,
        )
      : createServer(onRequest);
    this.http.on("connection", (socket: Socket) => this.admit(socket));
    if (opts.tls) {
      this.http.on("secureConnection", (tlsSocket: TLSSocket) => {
        const raw = (tlsSocket as unknown as { _parent?: Socket })._parent;
        const rec = raw ? this.inbound.get(raw) : undefined;
        if (rec) this.inbound.set(tlsSocket, rec);
      });
      this.http.on("tlsClientError", (err: Error) => {
        this.opts.metrics.peerSocketsRefused.inc({ reason: "unauthorized" });
        this.opts.log.warn("peer TLS handshake refused", { error: err.message });
      });
    }
    this.wss = new WebSocketServer({
      server: this.http,
      maxPayload: opts.maxFrameBytes * 2,
      perMessageDeflate: false,
    });
    this.wss.on("connection", (ws, req) => this.accept(ws, req.socket));
    // ws re-emits the HTTP server's errors (e.g. EADDRINUSE); listen() reports those.
    this.wss.on("error", (err) => opts.log.debug("peer server error", { error: err.message }));
    for (const peer of opts.peers) this.addPeer(peer);
  }

  /**
   * Learns (or changes) a peer's address at runtime; it is dialed from then on. A new
   * address for a known id replaces the old one (the link reconnects).
   */
  addPeer(peer: PeerAddress): void {
    const prev = this.known.get(peer.id);
    this.known.set(peer.id, peer);
    if (peer.id === this.opts.id || this.closed) return;
    const o = this.outbound.get(peer.id);
    if (o) {
      if (prev && prev.host === peer.host && prev.port === peer.port) return;
      o.peer = peer;
      // The close handler redials, now to the new address.
      o.ws?.terminate();
      return;
    }
    const fresh: Outbound = {
      peer,
      ws: undefined,
      open: false,
      queue: [],
      attempt: 0,
      timer: undefined,
      liveness: undefined,
      lostAtMs: undefined,
    };
    this.outbound.set(peer.id, fresh);
    if (this.listening) this.dial(fresh);
  }

  /** Starts listening and dialing; returns the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off("error", reject);
        this.listening = true;
        for (const o of this.outbound.values()) this.dial(o);
        resolve((this.http.address() as AddressInfo).port);
      });
    });
  }

  /** Queues a Raft message for `to`; false if it was dropped. */
  send(to: string, data: Uint8Array): boolean {
    const o = this.outbound.get(to);
    if (!o || this.closed) return false;
    const frame = PeerFrame.encode({ raft: data }).finish();
    if (frame.length > this.opts.maxFrameBytes) {
      this.opts.log.warn("peer message above the frame limit dropped", { to, bytes: frame.length });
      this.dropped();
      return false;
    }
    return this.enqueue(o, frame);
  }

  /**
   * Queues a forwarded write or its answer for `to`; false if it was dropped (the
   * forwarder retries). Throws FRAME_TOO_LARGE for a frame no peer would accept.
   */
  sendForward(to: string, body: ForwardFrame): boolean {
    const o = this.outbound.get(to);
    if (!o || this.closed) return false;
    const frame = PeerFrame.encode(forwardToWire(body)).finish();
    if (frame.length > this.opts.maxFrameBytes) {
      this.dropped();
      throw new KvError(
        "FRAME_TOO_LARGE",
        `a forwarded write of ${frame.length} bytes exceeds the peer frame limit of ${this.opts.maxFrameBytes} bytes`,
      );
    }
    return this.enqueue(o, frame);
  }

  private enqueue(o: Outbound, frame: Uint8Array): boolean {
    if (o.open && o.ws) {
      if (o.ws.bufferedAmount > this.maxBuffered) {
        this.dropped();
        return false;
      }
      this.transmit(o.ws, frame);
      return true;
    }
    if (o.queue.length >= this.maxQueued) {
      this.dropped();
      return false;
    }
    o.queue.push(frame);
    return true;
  }

  status(): PeerLinkStatus[] {
    return [...this.outbound.values()].map((o) => ({
      id: o.peer.id,
      address: `${o.peer.host}:${o.peer.port}`,
      connected: o.open,
      queued: o.queue.length,
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const o of this.outbound.values()) {
      clearTimeout(o.timer);
      clearInterval(o.liveness);
      o.ws?.terminate();
      o.queue = [];
    }
    for (const ws of this.wss.clients) ws.terminate();
    for (const [socket, rec] of this.inbound) {
      clearTimeout(rec.timer);
      socket.destroy();
    }
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private dropped(): void {
    this.opts.metrics.peerMessages.inc({ direction: "out", result: "dropped" });
  }

  private transmit(ws: WebSocket, frame: Uint8Array): void {
    this.opts.metrics.peerMessages.inc({ direction: "out", result: "sent" });
    this.opts.metrics.peerBytes.inc({ direction: "out" }, frame.length);
    sendInTurn(ws, frame);
  }

  /** A new inbound TCP socket: refused over the caps, closed at the hello timeout. */
  private admit(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const reason =
      this.inboundCount >= this.maxInbound
        ? "socket_cap"
        : this.pendingCount >= this.maxPending
          ? "pending_cap"
          : undefined;
    if (reason) {
      this.opts.metrics.peerSocketsRefused.inc({ reason });
      this.opts.log.warn("inbound peer socket refused", {
        remote: socket.remoteAddress,
        reason,
        inbound: this.inboundCount,
        pending: this.pendingCount,
      });
      socket.destroy();
      return;
    }
    const rec: InboundSocket = { authenticated: false, timer: undefined };
    this.inbound.set(socket, rec);
    this.inboundCount++;
    this.pendingCount++;
    rec.timer = setTimeout(() => {
      if (rec.authenticated) return;
      this.opts.metrics.peerSocketsRefused.inc({ reason: "hello_timeout" });
      this.opts.log.warn("peer socket closed: no handshake within the hello timeout", {
        remote: socket.remoteAddress,
        timeoutMs: this.helloTimeoutMs,
      });
      socket.destroy();
    }, this.helloTimeoutMs);
    rec.timer.unref();
    socket.once("close", () => {
      clearTimeout(rec.timer);
      for (const [k, v] of this.inbound) if (v === rec) this.inbound.delete(k);
      this.inboundCount--;
      if (!rec.authenticated) this.pendingCount--;
    });
  }

  private markAuthenticated(socket: Socket): void {
    const rec = this.inbound.get(socket);
    if (!rec || rec.authenticated) return;
    rec.authenticated = true;
    clearTimeout(rec.timer);
    this.pendingCount--;
  }

  private dial(o: Outbound): void {
    if (this.closed) return;
    const host = bracketedHost(o.peer.host);
    const tls = this.opts.tls;
    const allowed = tls?.allowedNames;
    const ws = new WebSocket(`${tls ? "wss" : "ws"}://${host}:${o.peer.port}/`, {
      maxPayload: this.opts.maxFrameBytes * 2,
      perMessageDeflate: false,
      handshakeTimeout: this.helloTimeoutMs,
      ...(tls
        ? {
            cert: tls.cert,
            key: tls.key,
            ca: tls.ca,
            rejectUnauthorized: true,
            minVersion: TLS_MIN_VERSION,
            // ws types this as returning a boolean; tls.connect wants an Error or undefined.
            checkServerIdentity: ((name: string, cert: PeerCertificate) => {
              const err = checkServerIdentity(name, cert);
              if (err) return err;
              if (allowed && !certificateNames(cert).some((n) => allowed.includes(n))) {
                return new Error("the peer certificate names none of --peer-tls-allowed-names");
              }
              return undefined;
            }) as unknown as (servername: string, cert: unknown) => boolean,
          }
        : {}),
    });
    o.ws = ws;
    const nonce = newNonce();
    // The handshake must finish in time, or the link is dropped and dialed again.
    const helloTimer = setTimeout(() => {
      this.opts.log.warn("peer handshake timed out", { peer: o.peer.id });
      ws.terminate();
    }, this.helloTimeoutMs);
    let connected = false;
    const dialTimer = setTimeout(() => {
      this.opts.log.debug("peer dial timed out", { peer: o.peer.id });
      ws.terminate();
    }, this.dialTimeoutMs);
    let lastHeard = Date.now();
    ws.on("pong", () => {
      lastHeard = Date.now();
    });
    ws.on("open", () => {
      connected = true;
      clearTimeout(dialTimer);
      this.opts.metrics.peerConnections.inc();
      ws.send(
        PeerFrame.encode({
          hello: {
            protocol_version: PEER_PROTOCOL_VERSION,
            from: this.opts.id,
            to: o.peer.id,
            cluster_id: this.opts.clusterId,
            nonce,
            client_url: this.opts.clientUrl?.() ?? "",
          },
        }).finish(),
      );
    });
    ws.on("message", (data, isBinary) => {
      lastHeard = Date.now();
      if (!isBinary) return;
      let frame: {
        body?: string;
        error?: { code?: string; message?: string };
        challenge?: { nonce?: Uint8Array; proof?: Uint8Array };
      };
      try {
        frame = PeerFrame.toObject(PeerFrame.decode(data as Buffer), { oneofs: true });
      } catch {
        ws.terminate();
        return;
      }
      if (frame.body === "error") {
        this.opts.log.warn("peer refused the connection", {
          peer: o.peer.id,
          code: frame.error?.code,
          message: frame.error?.message,
        });
        return;
      }
      if (frame.body !== "challenge" || o.open) {
        // The acceptor says nothing else; anything else is not a streamkv peer.
        ws.terminate();
        return;
      }
      const c = frame.challenge ?? {};
      const theirNonce = c.nonce ?? new Uint8Array(0);
      const proof = c.proof ?? new Uint8Array(0);
      const h: HandshakeInput = {
        clusterId: this.opts.clusterId,
        dialer: this.opts.id,
        acceptor: o.peer.id,
        dialerNonce: nonce,
        acceptorNonce: theirNonce,
      };
      const secret = this.opts.secret;
      if (
        theirNonce.length !== PEER_NONCE_BYTES ||
        (secret !== undefined && !proofMatches(secret, "acceptor", h, proof))
      ) {
        // Whoever listens there does not know the cluster secret: tell it nothing.
        this.opts.log.warn("peer failed to prove the cluster secret; not sending to it", {
          peer: o.peer.id,
          address: `${o.peer.host}:${o.peer.port}`,
        });
        ws.terminate();
        return;
      }
      ws.send(
        PeerFrame.encode({
          auth: { proof: secret ? peerProof(secret, "dialer", h) : new Uint8Array(0) },
        }).finish(),
      );
      clearTimeout(helloTimer);
      o.open = true;
      o.attempt = 0;
      lastHeard = Date.now();
      let lastBuffered = ws.bufferedAmount;
      o.liveness = setInterval(() => {
        // A link busy sending (a snapshot over a slow network) is alive while its
        // buffer drains, even if a pong waits behind the data.
        const buffered = ws.bufferedAmount;
        if (buffered < lastBuffered) lastHeard = Date.now();
        lastBuffered = buffered;
        const silentMs = Date.now() - lastHeard;
        if (silentMs > this.linkTimeoutMs) {
          this.opts.log.info("peer link silent, dialing again", { peer: o.peer.id, silentMs });
          ws.terminate();
          return;
        }
        if (ws.readyState === ws.OPEN) ws.ping();
      }, this.pingIntervalMs);
      // Once per transition, not per retry: the failed dials in between stay at debug.
      const address = `${o.peer.host}:${o.peer.port}`;
      if (o.lostAtMs === undefined) {
        this.opts.log.info("peer link up", { peer: o.peer.id, address });
      } else {
        const downMs = Date.now() - o.lostAtMs;
        this.opts.log.info("peer link regained", { peer: o.peer.id, address, downMs });
        o.lostAtMs = undefined;
      }
      const queued = o.queue;
      o.queue = [];
      for (const frame of queued) this.transmit(ws, frame);
    });
    ws.on("error", (err) => {
      this.opts.log.debug("peer connection error", { peer: o.peer.id, error: err.message });
    });
    ws.on("close", () => {
      clearTimeout(helloTimer);
      clearTimeout(dialTimer);
      clearInterval(o.liveness);
      o.liveness = undefined;
      if (connected) this.opts.metrics.peerConnections.dec();
      if (o.open && !this.closed) {
        o.lostAtMs = Date.now();
        this.opts.log.info("peer link lost", {
          peer: o.peer.id,
          address: `${o.peer.host}:${o.peer.port}`,
        });
      }
      o.open = false;
      o.ws = undefined;
      if (this.closed) return;
      o.attempt++;
      this.opts.metrics.peerReconnects.inc();
      const base = this.opts.reconnectDelayMs ?? 100;
      const max = this.opts.reconnectDelayMaxMs ?? 1000;
      o.timer = setTimeout(() => this.dial(o), backoffDelayMs(o.attempt, base, max));
    });
  }

  private accept(ws: WebSocket, socket: Socket): void {
    const remote = `${socket.remoteAddress}`;
    /** Set once the handshake completed: the authenticated sender. */
    let from: string | undefined;
    /** Between the hello and the auth: what the proof must cover. */
    let pending: HandshakeInput | undefined;
    /** The client URL the hello announced, taken once the handshake completed. */
    let announcedUrl = "";
    this.opts.metrics.peerConnections.inc();
    // A dialer that pings (every streamkv since pings were added) and then falls silent
    // is gone: its socket is dropped instead of held until TCP gives up, which for a
    // socket this side never writes to is never. Dialers that never pinged are left be.
    let lastHeard = Date.now();
    let pinged = false;
    ws.on("ping", () => {
      pinged = true;
    });
    // Bytes, not whole frames: a large frame arriving slowly is not silence.
    socket.on("data", () => {
      lastHeard = Date.now();
    });
    const liveness = setInterval(() => {
      if (pinged && Date.now() - lastHeard > 2 * this.linkTimeoutMs) ws.terminate();
    }, this.pingIntervalMs);
    ws.on("close", () => {
      clearInterval(liveness);
      this.opts.metrics.peerConnections.dec();
    });
    ws.on("error", (err) =>
      this.opts.log.debug("peer socket error", { remote, error: err.message }),
    );
    const close = () => {
      ws.close(1008);
      setTimeout(() => ws.terminate(), 2000).unref();
    };
    const refuse = (err: KvError) => {
      this.opts.metrics.badFrames.inc({ port: "peer", code: err.code });
      this.opts.log.warn("peer frame refused", {
        remote,
        from,
        code: err.code,
        message: err.message,
      });
      try {
        ws.send(PeerFrame.encode({ error: { code: err.code, message: err.message } }).finish());
      } catch {}
      close();
    };
    /** Refused before the handshake completed: the reason stays in this node's log. */
    const unauthorized = (reason: string, fields: Record<string, unknown> = {}) => {
      this.opts.metrics.badFrames.inc({ port: "peer", code: "UNAUTHORIZED" });
      this.opts.metrics.peerSocketsRefused.inc({ reason: "unauthorized" });
      this.opts.log.warn("peer refused", { remote, reason, ...fields });
      try {
        ws.send(
          PeerFrame.encode({ error: { code: "UNAUTHORIZED", message: REFUSED_MESSAGE } }).finish(),
        );
      } catch {}
      close();
    };
    const allowed = this.opts.tls?.allowedNames;
    if (allowed) {
      const names = certificateNames((socket as TLSSocket).getPeerCertificate?.());
      if (!names.some((n) => allowed.includes(n))) {
        unauthorized("the peer certificate names none of --peer-tls-allowed-names", { names });
        return;
      }
    }
    ws.on("message", (data, isBinary) => {
      if (ws.readyState !== ws.OPEN) return;
      const bytes = data as Buffer;
      if (!isBinary) {
        refuse(new KvError("MALFORMED_FRAME", "text frames are not part of the peer protocol"));
        return;
      }
      this.opts.metrics.peerBytes.inc({ direction: "in" }, bytes.length);
      if (bytes.length > this.opts.maxFrameBytes) {
        refuse(
          new KvError(
            "FRAME_TOO_LARGE",
            `peer frame of ${bytes.length} bytes exceeds ${this.opts.maxFrameBytes} bytes`,
          ),
        );
        return;
      }
      let frame: DecodedPeerFrame;
      try {
        frame = decodePeerFrame(bytes);
      } catch (err) {
        if (from === undefined && pending === undefined && isClientHello(bytes)) {
          // An SDK or CLI pointed at the wrong port: say so where it will show it.
          this.opts.metrics.peerSocketsRefused.inc({ reason: "client_hello" });
          this.opts.log.warn("a client connected to the peer port", { remote });
          ws.close(1008, PEER_PORT_CLOSE_REASON);
          setTimeout(() => ws.terminate(), 2000).unref();
          return;
        }
        refuse(err as KvError);
        return;
      }
      if (from === undefined) {
        if (frame.body === "hello" && pending === undefined) {
          const h = frame.hello;
          if (h.protocol_version !== PEER_PROTOCOL_VERSION) {
            unauthorized("unsupported peer protocol version (upgrade every member)", {
              version: h.protocol_version,
              supported: PEER_PROTOCOL_VERSION,
            });
          } else if (h.to !== this.opts.id) {
            unauthorized("a hello for another node", { to: h.to });
          } else if (this.opts.clusterId !== "" && h.cluster_id !== this.opts.clusterId) {
            unauthorized(
              `node ${JSON.stringify(h.from)} belongs to cluster ${JSON.stringify(h.cluster_id)}, this is cluster ${this.opts.clusterId}`,
            );
          } else if (h.from === this.opts.id || !isValidNodeId(h.from)) {
            unauthorized("a hello from an invalid node id", { from: h.from });
          } else if (h.nonce.length !== PEER_NONCE_BYTES) {
            unauthorized("a hello without a nonce", { from: h.from });
          } else {
            announcedUrl = h.client_url;
            pending = {
              clusterId: this.opts.clusterId,
              dialer: h.from,
              acceptor: this.opts.id,
              dialerNonce: h.nonce,
              acceptorNonce: newNonce(),
            };
            const secret = this.opts.secret;
            ws.send(
              PeerFrame.encode({
                challenge: {
                  nonce: pending.acceptorNonce,
                  proof: secret ? peerProof(secret, "acceptor", pending) : new Uint8Array(0),
                },
              }).finish(),
            );
          }
          return;
        }
        if (frame.body === "auth" && pending !== undefined) {
          const secret = this.opts.secret;
          const ok = secret
            ? proofMatches(secret, "dialer", pending, frame.auth.proof)
            : frame.auth.proof.length === 0;
          if (!ok) {
            unauthorized(
              secret
                ? "the peer did not prove the cluster secret (--peer-secret-file differs or is missing)"
                : "the peer sent a secret proof but this node has no --peer-secret-file",
              { from: pending.dialer },
            );
            return;
          }
          from = pending.dialer;
          pending = undefined;
          this.markAuthenticated(socket);
          this.opts.log.debug("peer authenticated", { remote, from });
          if (isClientUrl(announcedUrl) && (!this.opts.isMember || this.opts.isMember(from))) {
            this.opts.onPeerClientUrl?.(from, announcedUrl);
          }
          return;
        }
        unauthorized(`a ${frame.body} frame before the handshake completed`);
        return;
      }
      if (
        frame.body === "raft" ||
        frame.body === "forward_request" ||
        frame.body === "forward_response"
      ) {
        if (this.opts.isMember && !this.opts.isMember(from)) {
          this.opts.metrics.peerMessagesDropped.inc({ reason: "not_member" });
          this.opts.log.debug("peer message from a non-member dropped", { from, body: frame.body });
          return;
        }
        this.opts.metrics.peerMessages.inc({ direction: "in", result: "received" });
      }
      if (frame.body === "raft") {
        try {
          this.opts.onMessage(
            from,
            new Uint8Array(frame.raft.buffer, frame.raft.byteOffset, frame.raft.byteLength),
          );
        } catch (err) {
          // The consumer decides what a bad Raft message is; it must not take the transport down.
          this.opts.log.error("peer message handler failed", { from, error: String(err) });
        }
        return;
      }
      if (frame.body === "forward_request" || frame.body === "forward_response") {
        // Decoded and checked here, at the edge; a malformed one is dropped like a lost message.
        let forward: ForwardFrame;
        try {
          forward = forwardFromWire(
            frame.body === "forward_request"
              ? { forward_request: frame.forward_request }
              : { forward_response: frame.forward_response },
          );
        } catch (err) {
          this.opts.metrics.peerMessagesDropped.inc({ reason: "malformed" });
          this.opts.log.warn("malformed forwarded write dropped", { from, error: String(err) });
          return;
        }
        try {
          this.opts.onForward?.(from, forward);
        } catch (err) {
          this.opts.log.error("forwarded write handler failed", { from, error: String(err) });
        }
        return;
      }
      if (frame.body === "hello" || frame.body === "auth") {
        refuse(new KvError("INVALID_ARGUMENT", "a second handshake on one connection"));
        return;
      }
      refuse(new KvError("UNKNOWN_MESSAGE", "the peer frame carries no message this node knows"));
    });
  }
}

type WireForwardRequest = Extract<WireForwardBody, { forward_request: unknown }>["forward_request"];
type WireForwardResponse = Extract<
  WireForwardBody,
  { forward_response: unknown }
>["forward_response"];

/** A peer frame decoded at the edge, every field typed. */
export type DecodedPeerFrame =
  | {
      body: "hello";
      hello: {
        protocol_version: number;
        from: string;
        to: string;
        cluster_id: string;
        nonce: Uint8Array;
        client_url: string;
      };
    }
  | { body: "auth"; auth: { proof: Uint8Array } }
  | { body: "raft"; raft: Uint8Array }
  | { body: "forward_request"; forward_request: WireForwardRequest }
  | { body: "forward_response"; forward_response: WireForwardResponse }
  | { body: "challenge" | "error" | "none" };

function bytesOf(v: unknown, field: string): Uint8Array {
  if (v === undefined || v === null) return new Uint8Array(0);
  if (Array.isArray(v) && v.length === 0) return new Uint8Array(0);
  if (!(v instanceof Uint8Array))
    throw new KvError("MALFORMED_FRAME", `peer frame: ${field} is not bytes`);
  return v;
}

function stringOf(v: unknown, field: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v !== "string")
    throw new KvError("MALFORMED_FRAME", `peer frame: ${field} is not a string`);
  return v;
}

/**
 * Decodes one peer frame; anything undecodable is a KvError MALFORMED_FRAME (the
 * only thing this throws: fuzzed in peer_frame.test.ts).
 */
export function decodePeerFrame(bytes: Uint8Array): DecodedPeerFrame {
  let f: Record<string, unknown>;
  try {
    f = PeerFrame.toObject(PeerFrame.decode(bytes), { oneofs: true, longs: Number }) as Record<
      string,
      unknown
    >;
  } catch (err) {
    throw new KvError(
      "MALFORMED_FRAME",
      `cannot decode the peer frame: ${(err as Error)?.message ?? String(err)}`,
    );
  }
  switch (f.body) {
    case "hello": {
      const h = (f.hello ?? {}) as Record<string, unknown>;
      const version = h.protocol_version ?? 0;
      if (typeof version !== "number")
        throw new KvError("MALFORMED_FRAME", "peer frame: protocol_version");
      return {
        body: "hello",
        hello: {
          protocol_version: version,
          from: stringOf(h.from, "from"),
          to: stringOf(h.to, "to"),
          cluster_id: stringOf(h.cluster_id, "cluster_id"),
          nonce: bytesOf(h.nonce, "nonce"),
          client_url: stringOf(h.client_url, "client_url"),
        },
      };
    }
    case "auth":
      return {
        body: "auth",
        auth: { proof: bytesOf((f.auth as Record<string, unknown> | undefined)?.proof, "proof") },
      };
    case "raft":
      return { body: "raft", raft: bytesOf(f.raft, "raft") };
    case "forward_request":
      return {
        body: "forward_request",
        forward_request: (f.forward_request ?? {}) as WireForwardRequest,
      };
    case "forward_response":
      return {
        body: "forward_response",
        forward_response: (f.forward_response ?? {}) as WireForwardResponse,
      };
    case "challenge":
    case "error":
      return { body: f.body };
    default:
      return { body: "none" };
  }
}

/** Whether `bytes` is the hello a streamkv client sends first on the client port. */
function isClientHello(bytes: Uint8Array): boolean {
  try {
    const f = decodeClientRequest(bytes);
    return f.kind === "request" && f.request.type === "hello";
  } catch {
    return false;
  }
}
