/**
 * The NATS port (`--nats-port`): a TCP listener speaking the NATS client protocol, and
 * the node-local router behind it. `$JS.API.>` and `$KV.>` publishes go to the
 * JetStream mapping (nats/jetstream.ts); any other subject is core NATS between the
 * clients of this node (request/reply through inboxes, queue groups), with a 503
 * no-responders status to a requester nobody listens to.
 */
import { createServer, type Server, type Socket } from "node:net";
import { matchSubject } from "../log/index.js";
import {
  type ConnectionLimits,
  NatsConnection,
  type NatsRouter,
  type RoutedMessage,
  type Subscription,
} from "./connection.js";
import { encodeHeaders } from "./headers.js";
import { JetStreamApi, type JetStreamLimits } from "./jetstream.js";
import { DEFAULT_MAX_CONTROL_LINE_BYTES } from "./parser.js";
import type { NatsAuth, NatsKvBackend, NatsLogger } from "./types.js";

/** The nats-server version announced in INFO: clients enable KV, direct get, new consumer API. */
export const ANNOUNCED_NATS_VERSION = "2.10.0";

export interface NatsServerOptions extends Partial<ConnectionLimits>, Partial<JetStreamLimits> {
  backend: NatsKvBackend;
  auth: NatsAuth;
  log: NatsLogger;
  serverId: string;
  /** streamkv's own version, in INFO's server_name. */
  streamkvVersion: string;
  host: string;
  port: number;
  maxPayloadBytes: number;
  maxOutboundBytes: number;
  maxConnections: number;
}

export const NATS_DEFAULTS = {
  maxControlLineBytes: DEFAULT_MAX_CONTROL_LINE_BYTES,
  maxSubscriptions: 4096,
  maxInFlight: 64,
  connectTimeoutMs: 5000,
  maxConsumersPerConnection: 64,
  maxInitialEntries: 100_000,
  consumerNoInterestTimeoutMs: 30_000,
  /** Entries one batched DIRECT.GET answer carries at most (the client asks again). */
  directBatchMaxMessages: 1024,
  /** Keys one multi_last may match, as nats-server (413 beyond). */
  directMultiLastMaxSubjects: 1024,
} as const;

export class NatsServer implements NatsRouter {
  private readonly server: Server;
  private readonly clients = new Set<NatsConnection>();
  private readonly js: JetStreamApi;
  private readonly limits: ConnectionLimits;
  private nextClientId = 1;
  private queueTurn = 0;
  private lowWater = new Map<NatsConnection, (() => void)[]>();
  /**
   * Per connection, its last KV write: the next waits for it, so one connection's
   * publishes are applied in the order sent (as nats-server stores them), also when a
   * follower forwards them and a leader change makes one retry.
   */
  private readonly lastWrite = new Map<NatsConnection, Promise<void>>();

  constructor(private readonly opts: NatsServerOptions) {
    this.limits = {
      maxPayloadBytes: opts.maxPayloadBytes,
      maxOutboundBytes: opts.maxOutboundBytes,
      maxControlLineBytes: opts.maxControlLineBytes ?? NATS_DEFAULTS.maxControlLineBytes,
      maxSubscriptions: opts.maxSubscriptions ?? NATS_DEFAULTS.maxSubscriptions,
      maxInFlight: opts.maxInFlight ?? NATS_DEFAULTS.maxInFlight,
      connectTimeoutMs: opts.connectTimeoutMs ?? NATS_DEFAULTS.connectTimeoutMs,
    };
    this.js = new JetStreamApi({
      backend: opts.backend,
      auth: opts.auth,
      log: opts.log,
      maxConsumersPerConnection:
        opts.maxConsumersPerConnection ?? NATS_DEFAULTS.maxConsumersPerConnection,
      maxInitialEntries: opts.maxInitialEntries ?? NATS_DEFAULTS.maxInitialEntries,
      maxInitialBytes: opts.maxInitialBytes ?? opts.maxOutboundBytes,
      consumerNoInterestTimeoutMs:
        opts.consumerNoInterestTimeoutMs ?? NATS_DEFAULTS.consumerNoInterestTimeoutMs,
      watchMaxPending: opts.watchMaxPending,
      directBatch: {
        maxMessages: NATS_DEFAULTS.directBatchMaxMessages,
        // One answer's values fit in the connection's unsent-bytes budget.
        maxBytes: opts.maxOutboundBytes,
        maxScanned: opts.maxInitialEntries ?? NATS_DEFAULTS.maxInitialEntries,
        maxSubjects: NATS_DEFAULTS.directMultiLastMaxSubjects,
      },
      out: {
        send: (target, subject, reply, headers, status, payload) =>
          this.send(target, {
            subject,
            reply,
            headerBlock:
              headers === undefined && status === undefined
                ? undefined
                : encodeHeaders(headers ?? [], status),
            headers: undefined,
            payload,
          }),
        hasInterest: (subject) => this.hasInterest(subject),
        writable: (owner) => this.writable(owner),
        noResponders: (from, reply) => this.noResponders(from, reply),
      },
    });
    this.server = createServer((socket) => this.accept(socket));
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  get connectionCount(): number {
    return this.clients.size;
  }

  /** Stops accepting and closes every connection and consumer. */
  async close(): Promise<void> {
    this.js.stopAll();
    for (const c of [...this.clients]) c.fail("Server Shutdown");
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- NatsRouter ---

  async publish(from: NatsConnection, msg: RoutedMessage): Promise<void> {
    if (msg.subject.startsWith("$JS.API.")) return await this.js.api(from, msg);
    if (msg.subject.startsWith("$KV.")) {
      const previous = this.lastWrite.get(from) ?? Promise.resolve();
      const write = previous.then(() => this.js.kvPublish(from, msg));
      const settled = write.catch(() => {});
      this.lastWrite.set(from, settled);
      await write;
      if (this.lastWrite.get(from) === settled) this.lastWrite.delete(from);
      return;
    }
    const reached = this.send(msg.subject, msg, from.echo ? undefined : from);
    if (reached === 0 && msg.reply !== undefined) this.noResponders(from, msg.reply);
  }

  subscribed(sub: Subscription): void {
    this.js.interestChanged(sub.subject);
  }

  unsubscribed(sub: Subscription): void {
    this.js.interestChanged(sub.subject);
  }

  closed(client: NatsConnection): void {
    this.clients.delete(client);
    this.lastWrite.delete(client);
    this.js.closed(client);
    for (const wake of this.lowWater.get(client) ?? []) wake();
    this.lowWater.delete(client);
  }

  // --- delivery ---

  private accept(socket: Socket): void {
    if (this.clients.size >= this.opts.maxConnections) {
      // As nats-server: the client learns why instead of seeing a bare close.
      socket.on("error", () => {});
      socket.end("-ERR 'maximum connections exceeded'\r\n");
      socket.setTimeout(1000, () => socket.destroy());
      return;
    }
    const id = this.nextClientId++;
    const client = new NatsConnection(socket, {
      ...this.limits,
      info: {
        server_id: this.opts.serverId,
        server_name: `streamkv ${this.opts.streamkvVersion}`,
        version: ANNOUNCED_NATS_VERSION,
        proto: 1,
        go: "streamkv",
        host: this.opts.host,
        port: this.opts.port,
        headers: true,
        max_payload: this.opts.maxPayloadBytes,
        jetstream: true,
        ...(this.opts.auth.required ? { auth_required: true } : {}),
      },
      auth: this.opts.auth,
      router: this,
      log: this.opts.log,
      clientId: id,
    });
    this.clients.add(client);
    socket.on("drain", () => {
      const waiting = this.lowWater.get(client);
      if (!waiting) return;
      this.lowWater.delete(client);
      for (const wake of waiting) wake();
    });
  }

  /**
   * Delivers `msg` to every subscription `target` reaches (one per queue group), except
   * those of `skip`; returns how many it reached.
   */
  private send(target: string, msg: RoutedMessage, skip?: NatsConnection): number {
    let reached = 0;
    const groups = new Map<string, Subscription[]>();
    for (const c of this.clients) {
      if (c === skip || c.closed) continue;
      for (const sub of c.matching(target, matchSubject)) {
        if (sub.queue === undefined) {
          c.deliver(sub, msg);
          reached++;
        } else {
          let g = groups.get(sub.queue);
          if (!g) groups.set(sub.queue, (g = []));
          g.push(sub);
        }
      }
    }
    for (const members of groups.values()) {
      const sub = members[this.queueTurn++ % members.length]!;
      sub.client.deliver(sub, msg);
      reached++;
    }
    return reached;
  }

  private hasInterest(subject: string): boolean {
    for (const c of this.clients) {
      if (!c.closed && c.matching(subject, matchSubject).length > 0) return true;
    }
    return false;
  }

  private noResponders(from: NatsConnection, reply: string): void {
    if (!from.noResponders || from.closed) return;
    const msg: RoutedMessage = {
      subject: reply,
      reply: undefined,
      headerBlock: encodeHeaders([], { code: 503, description: "" }),
      headers: undefined,
      payload: new Uint8Array(0),
    };
    for (const sub of from.matching(reply, matchSubject)) from.deliver(sub, msg);
  }

  /** Resolves once `owner` has less than half its outbound budget unsent. */
  private writable(owner: NatsConnection): Promise<void> {
    if (owner.closed || owner.unsentBytes < this.limits.maxOutboundBytes / 2) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let waiting = this.lowWater.get(owner);
      if (!waiting) this.lowWater.set(owner, (waiting = []));
      waiting.push(resolve);
    });
  }
}
