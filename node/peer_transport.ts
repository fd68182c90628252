/**
 * The peer port: carries opaque Raft messages and forwarded writes between node ids
 * over WebSocket, one protobuf PeerFrame (proto/peer.proto) per binary frame. Each node
 * dials every other peer and sends on that outbound connection; it receives on the
 * connections peers dial to it, so an answer travels back on the answerer's own
 * outbound connection. A dialed connection starts with PeerHello (from, to, cluster
 * id), which the receiver checks: a node of another cluster is refused.
 *
 * Delivery is best effort, as Raft expects of its network: a message for a peer that
 * is down waits in a bounded queue and is dropped when the queue is full or the socket
 * is backed up. Bad input gets an error frame and the connection is closed; the node
 * keeps serving every other peer.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { backoffDelayMs, peerSchema as descriptor, KvError, messageType } from "../proto/index.js";
import type { PeerAddress } from "./config.js";
import {
  type ForwardFrame,
  forwardFromWire,
  forwardToWire,
  type WireForwardBody,
} from "./forward_wire.js";
import type { Logger } from "./log.js";
import type { NodeMetrics } from "./metrics.js";
import { isValidNodeId, parsePeerAddress } from "./peer_address.js";

const PeerFrame = messageType(descriptor, "streamkv.peer.PeerFrame");

export const PEER_PROTOCOL_VERSION = 1;

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
   * A node not in `peers` said hello with its own address (it joined at runtime, see
   * `streamkv cluster add`). Called once per new id; the transport dials it from then on.
   */
  onPeerLearned?: (peer: PeerAddress) => void;
  metrics: NodeMetrics;
  log: Logger;
  /** Messages queued per peer while it is unreachable (default 1024). */
  maxQueuedMessages?: number;
  /** Socket bytes buffered per peer beyond which messages are dropped (default 16 MiB). */
  maxBufferedBytes?: number;
  reconnectDelayMs?: number;
  reconnectDelayMaxMs?: number;
}

interface Outbound {
  peer: PeerAddress;
  ws: WebSocket | undefined;
  open: boolean;
  queue: Uint8Array[];
  attempt: number;
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

  constructor(private readonly opts: PeerTransportOptions) {
    this.maxQueued = opts.maxQueuedMessages ?? 1024;
    this.maxBuffered = opts.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.http = createServer((_req, res) => {
      res.writeHead(426, { "content-type": "text/plain" });
      res.end("the peer port speaks WebSocket only\n");
    });
    this.wss = new WebSocketServer({
      server: this.http,
      maxPayload: opts.maxFrameBytes * 2,
      perMessageDeflate: false,
    });
    this.wss.on("connection", (ws, req) => this.accept(ws, `${req.socket.remoteAddress}`));
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
    };
    this.outbound.set(peer.id, fresh);
    if (this.listening) this.dial(fresh);
  }

  /** This node's own peer address as the others reach it ("" when unknown, port 0). */
  private ownAddress(): string {
    const me = this.known.get(this.opts.id);
    return me && me.port !== 0 ? `${me.host}:${me.port}` : "";
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
      o.ws?.terminate();
      o.queue = [];
    }
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private dropped(): void {
    this.opts.metrics.peerMessages.inc({ direction: "out", result: "dropped" });
  }

  private transmit(ws: WebSocket, frame: Uint8Array): void {
    this.opts.metrics.peerMessages.inc({ direction: "out", result: "sent" });
    this.opts.metrics.peerBytes.inc({ direction: "out" }, frame.length);
    ws.send(frame);
  }

  private dial(o: Outbound): void {
    if (this.closed) return;
    const host =
      o.peer.host.includes(":") && !o.peer.host.startsWith("[") ? `[${o.peer.host}]` : o.peer.host;
    const ws = new WebSocket(`ws://${host}:${o.peer.port}/`, {
      maxPayload: this.opts.maxFrameBytes * 2,
      perMessageDeflate: false,
      handshakeTimeout: 5000,
    });
    o.ws = ws;
    ws.on("open", () => {
      ws.send(
        PeerFrame.encode({
          hello: {
            protocol_version: PEER_PROTOCOL_VERSION,
            from: this.opts.id,
            to: o.peer.id,
            cluster_id: this.opts.clusterId,
            address: this.ownAddress(),
          },
        }).finish(),
      );
      o.open = true;
      o.attempt = 0;
      this.opts.metrics.peerConnections.inc();
      const queued = o.queue;
      o.queue = [];
      for (const frame of queued) this.transmit(ws, frame);
    });
    ws.on("message", (data, isBinary) => {
      // The receiver only talks back to refuse us.
      if (!isBinary) return;
      try {
        const frame = PeerFrame.toObject(PeerFrame.decode(data as Buffer), { oneofs: true });
        if (frame.error) {
          this.opts.log.warn("peer refused the connection", {
            peer: o.peer.id,
            code: frame.error.code,
            message: frame.error.message,
          });
        }
      } catch {}
    });
    ws.on("error", (err) => {
      this.opts.log.debug("peer connection error", { peer: o.peer.id, error: err.message });
    });
    ws.on("close", () => {
      if (o.open) this.opts.metrics.peerConnections.dec();
      o.open = false;
      o.ws = undefined;
      if (this.closed) return;
      o.attempt++;
      this.opts.metrics.peerReconnects.inc();
      const base = this.opts.reconnectDelayMs ?? 100;
      const max = this.opts.reconnectDelayMaxMs ?? 2000;
      o.timer = setTimeout(() => this.dial(o), backoffDelayMs(o.attempt, base, max));
    });
  }

  private accept(ws: WebSocket, remote: string): void {
    let from: string | undefined;
    this.opts.metrics.peerConnections.inc();
    ws.on("close", () => this.opts.metrics.peerConnections.dec());
    ws.on("error", (err) =>
      this.opts.log.debug("peer socket error", { remote, error: err.message }),
    );
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
      ws.close(1008, err.code);
      setTimeout(() => ws.terminate(), 2000).unref();
    };
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
      let frame: {
        hello?: Record<string, unknown>;
        raft?: Uint8Array;
        forward_request?: Extract<WireForwardBody, { forward_request: unknown }>["forward_request"];
        forward_response?: Extract<
          WireForwardBody,
          { forward_response: unknown }
        >["forward_response"];
        body?: string;
      };
      try {
        frame = PeerFrame.toObject(PeerFrame.decode(bytes), { oneofs: true, longs: Number });
      } catch (err) {
        refuse(
          new KvError("MALFORMED_FRAME", `cannot decode the peer frame: ${(err as Error).message}`),
        );
        return;
      }
      if (frame.body === "hello" && frame.hello) {
        const h = frame.hello;
        if (from !== undefined) {
          refuse(new KvError("INVALID_ARGUMENT", "a second hello on one connection"));
        } else if (h.protocol_version !== PEER_PROTOCOL_VERSION) {
          refuse(
            new KvError(
              "INVALID_ARGUMENT",
              `peer protocol ${String(h.protocol_version)} not supported`,
            ),
          );
        } else if (h.to !== this.opts.id) {
          refuse(
            new KvError("INVALID_ARGUMENT", `this is node ${this.opts.id}, not ${String(h.to)}`),
          );
        } else if (this.opts.clusterId !== "" && h.cluster_id !== this.opts.clusterId) {
          refuse(
            new KvError(
              "UNAUTHORIZED",
              `node ${String(h.from)} belongs to cluster ${JSON.stringify(h.cluster_id ?? "")}, this is cluster ${this.opts.clusterId}`,
            ),
          );
        } else if (h.from === this.opts.id || typeof h.from !== "string" || h.from === "") {
          refuse(new KvError("INVALID_ARGUMENT", `a hello from ${JSON.stringify(h.from)}`));
        } else if (!this.known.has(h.from)) {
          // A node that joined at runtime announces where it listens; without that it is
          // a stranger (same cluster id, but no member we know of).
          const learned = parseAddress(h.from, h.address);
          if (!learned) {
            refuse(
              new KvError("UNAUTHORIZED", `node ${String(h.from)} is not a peer of this cluster`),
            );
          } else {
            this.opts.log.info("peer address learned from its hello", {
              peer: learned.id,
              address: `${learned.host}:${learned.port}`,
            });
            this.addPeer(learned);
            this.opts.onPeerLearned?.(learned);
            from = learned.id;
          }
        } else {
          from = String(h.from);
        }
        return;
      }
      if (frame.body === "raft" && frame.raft) {
        if (from === undefined) {
          refuse(new KvError("UNAUTHORIZED", "a raft message before the hello"));
          return;
        }
        this.opts.metrics.peerMessages.inc({ direction: "in", result: "received" });
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
      if (
        (frame.body === "forward_request" && frame.forward_request) ||
        (frame.body === "forward_response" && frame.forward_response)
      ) {
        if (from === undefined) {
          refuse(new KvError("UNAUTHORIZED", "a forwarded write before the hello"));
          return;
        }
        this.opts.metrics.peerMessages.inc({ direction: "in", result: "received" });
        // Decoded and checked here, at the edge; a malformed one is dropped like a lost message.
        let forward: ForwardFrame;
        try {
          forward = forwardFromWire(
            frame.forward_request
              ? { forward_request: frame.forward_request }
              : { forward_response: frame.forward_response! },
          );
        } catch (err) {
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
      refuse(new KvError("UNKNOWN_MESSAGE", "the peer frame carries no message this node knows"));
    });
  }
}

/** `host:port` from a hello as a peer address, or undefined when it is not one. */
function parseAddress(id: string, address: unknown): PeerAddress | undefined {
  if (typeof address !== "string" || !isValidNodeId(id)) return undefined;
  const parsed = parsePeerAddress(address);
  return "error" in parsed ? undefined : { id, host: parsed.host, port: parsed.port };
}
