/**
 * One NATS client connection: INFO on accept, CONNECT (options, the token), PING/PONG,
 * SUB/UNSUB, PUB/HPUB handed to the router, MSG/HMSG out. Bounded everywhere:
 *
 * - input: the parser's control-line and payload limits;
 * - requests served at once (`maxInFlight`): beyond it the socket is not read, and the
 *   operations of the read that overshot wait in a backlog of at most one read;
 * - subscriptions (`maxSubscriptions`): one more is `-ERR` and a close;
 * - output (`maxOutboundBytes` unsent): a client that does not read what it is sent is
 *   a slow consumer, told with `-ERR` and closed;
 * - time: no CONNECT within `connectTimeoutMs` is `-ERR 'Authentication Timeout'`.
 */
import type { Socket } from "node:net";
import { isValidFilter, isValidSubject } from "../log/index.js";
import { type NatsHeaders, parseHeaders } from "./headers.js";
import { type ClientOp, NatsParser, NatsProtocolError } from "./parser.js";
import type { NatsAuth, NatsLogger, NatsPrincipal } from "./types.js";

export interface Subscription {
  readonly sid: string;
  readonly subject: string;
  readonly queue: string | undefined;
  /** Auto-unsubscribe after this many messages (UNSUB with max). */
  max: number | undefined;
  delivered: number;
  readonly client: NatsConnection;
}

/** A message as the router hands it on. */
export interface RoutedMessage {
  subject: string;
  reply: string | undefined;
  /** The header block as sent (or built), undefined for a message without headers. */
  headerBlock: Uint8Array | undefined;
  headers: NatsHeaders | undefined;
  payload: Uint8Array;
}

/** What a connection asks of the server it belongs to. */
export interface NatsRouter {
  /** A client published; resolves once the publish is served (for the in-flight bound). */
  publish(from: NatsConnection, msg: RoutedMessage): Promise<void>;
  subscribed(sub: Subscription): void;
  unsubscribed(sub: Subscription): void;
  closed(client: NatsConnection): void;
}

export interface ConnectionLimits {
  maxPayloadBytes: number;
  maxControlLineBytes: number;
  maxSubscriptions: number;
  maxOutboundBytes: number;
  maxInFlight: number;
  connectTimeoutMs: number;
}

export interface ConnectionOptions extends ConnectionLimits {
  info: Record<string, unknown>;
  auth: NatsAuth;
  router: NatsRouter;
  log: NatsLogger;
  clientId: number;
}

const CRLF = Buffer.from("\r\n");

export class NatsConnection {
  readonly subs = new Map<string, Subscription>();
  readonly remote: string;
  principal: NatsPrincipal | undefined;
  verbose = false;
  echo = true;
  headersEnabled = false;
  noResponders = false;
  private connected = false;
  private closedFlag = false;
  private readonly parser: NatsParser;
  private inFlight = 0;
  private backlog: ClientOp[] = [];
  private connectTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.parser = new NatsParser({
      maxControlLineBytes: opts.maxControlLineBytes,
      maxPayloadBytes: opts.maxPayloadBytes,
    });
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => this.close());
    socket.on("close", () => this.close());
    this.connectTimer = setTimeout(() => {
      if (!this.connected) this.fail("Authentication Timeout");
    }, opts.connectTimeoutMs);
    this.write(
      Buffer.from(`INFO ${JSON.stringify({ ...opts.info, client_id: opts.clientId })}\r\n`),
    );
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Bytes written to the socket that it has not sent yet. */
  get unsentBytes(): number {
    return this.socket.writableLength;
  }

  /** Sends `-ERR '<text>'` and closes the connection. */
  fail(text: string): void {
    if (this.closedFlag) return;
    this.socket.write(`-ERR '${text}'\r\n`);
    this.socket.end();
    // A client that does not read would keep the socket half-closed forever.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.close();
  }

  /** Sends `-ERR '<text>'`; the connection stays (nats-server does so for permissions). */
  error(text: string): void {
    this.write(Buffer.from(`-ERR '${text}'\r\n`));
  }

  /** MSG or HMSG of `msg` on `sub`. */
  deliver(sub: Subscription, msg: RoutedMessage): void {
    if (this.closedFlag) return;
    const reply = msg.reply === undefined ? "" : ` ${msg.reply}`;
    const hdr = msg.headerBlock;
    if (hdr && this.headersEnabled) {
      const total = hdr.length + msg.payload.length;
      this.write(
        Buffer.concat([
          Buffer.from(`HMSG ${msg.subject} ${sub.sid}${reply} ${hdr.length} ${total}\r\n`),
          hdr,
          msg.payload,
          CRLF,
        ]),
      );
    } else {
      this.write(
        Buffer.concat([
          Buffer.from(`MSG ${msg.subject} ${sub.sid}${reply} ${msg.payload.length}\r\n`),
          msg.payload,
          CRLF,
        ]),
      );
    }
    sub.delivered++;
    if (sub.max !== undefined && sub.delivered >= sub.max) this.removeSub(sub);
  }

  /** The subscriptions of this connection that `subject` reaches. */
  matching(subject: string, match: (filter: string, subject: string) => boolean): Subscription[] {
    const out: Subscription[] = [];
    for (const s of this.subs.values()) if (match(s.subject, subject)) out.push(s);
    return out;
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    clearTimeout(this.connectTimer);
    this.backlog = [];
    if (!this.socket.destroyed) this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.opts.router.closed(this);
  }

  private write(data: Buffer): void {
    if (this.closedFlag) return;
    this.socket.write(data);
    if (this.socket.writableLength > this.opts.maxOutboundBytes) {
      this.opts.log.warn("nats client is a slow consumer, closing", {
        remote: this.remote,
        unsentBytes: this.socket.writableLength,
      });
      this.socket.write("-ERR 'Slow Consumer'\r\n");
      this.close();
      this.socket.destroy();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closedFlag) return;
    let ops: ClientOp[];
    try {
      ops = this.parser.push(chunk);
    } catch (err) {
      if (err instanceof NatsProtocolError) {
        this.fail(err.message);
        return;
      }
      throw err;
    }
    this.backlog.push(...ops);
    this.drain();
  }

  /** Serves backlog operations while the in-flight bound allows; reads again after. */
  private drain(): void {
    while (this.backlog.length > 0 && !this.closedFlag) {
      if (this.inFlight >= this.opts.maxInFlight) {
        this.socket.pause();
        return;
      }
      const op = this.backlog.shift()!;
      try {
        this.handle(op);
      } catch (err) {
        if (err instanceof NatsProtocolError) {
          this.fail(err.message);
          return;
        }
        throw err;
      }
    }
    if (!this.closedFlag && this.socket.isPaused()) this.socket.resume();
  }

  private handle(op: ClientOp): void {
    if (!this.connected && op.op !== "CONNECT" && this.opts.auth.required) {
      throw new NatsProtocolError("Authorization Violation");
    }
    switch (op.op) {
      case "CONNECT":
        this.onConnect(op.json);
        break;
      case "PING":
        this.write(Buffer.from("PONG\r\n"));
        break;
      case "PONG":
        break;
      case "SUB":
        this.onSub(op.subject, op.queue, op.sid);
        break;
      case "UNSUB":
        this.onUnsub(op.sid, op.max);
        break;
      case "PUB":
      case "HPUB":
        this.onPub(op);
        break;
    }
  }

  private ok(): void {
    if (this.verbose) this.write(Buffer.from("+OK\r\n"));
  }

  private onConnect(json: string): void {
    let o: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(json);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error();
      o = parsed as Record<string, unknown>;
    } catch {
      throw new NatsProtocolError("Protocol Error: CONNECT needs a JSON object");
    }
    if (this.connected) throw new NatsProtocolError("Protocol Error: CONNECT sent twice");
    const token = typeof o.auth_token === "string" ? o.auth_token : undefined;
    const principal = this.opts.auth.authenticate(token);
    if (principal === undefined) {
      this.opts.log.warn("nats client refused: no valid auth_token", { remote: this.remote });
      throw new NatsProtocolError("Authorization Violation");
    }
    this.principal = principal;
    this.verbose = o.verbose === true;
    this.echo = o.echo !== false;
    this.headersEnabled = o.headers === true;
    this.noResponders = o.no_responders === true && this.headersEnabled;
    this.connected = true;
    clearTimeout(this.connectTimer);
    this.ok();
  }

  private onSub(subject: string, queue: string | undefined, sid: string): void {
    if (!isValidFilter(subject)) {
      this.error("Invalid Subject");
      return;
    }
    if (queue !== undefined && !isValidSubject(queue)) {
      this.error("Invalid Queue Name");
      return;
    }
    if (!this.subs.has(sid) && this.subs.size >= this.opts.maxSubscriptions) {
      throw new NatsProtocolError("Maximum Subscriptions Exceeded");
    }
    const old = this.subs.get(sid);
    if (old) this.removeSub(old);
    const sub: Subscription = {
      sid,
      subject,
      queue,
      max: undefined,
      delivered: 0,
      client: this,
    };
    this.subs.set(sid, sub);
    this.ok();
    this.opts.router.subscribed(sub);
  }

  private onUnsub(sid: string, max: number | undefined): void {
    const sub = this.subs.get(sid);
    this.ok();
    if (!sub) return;
    if (max !== undefined && max > sub.delivered) {
      sub.max = max;
      return;
    }
    this.removeSub(sub);
  }

  private removeSub(sub: Subscription): void {
    if (this.subs.get(sub.sid) !== sub) return;
    this.subs.delete(sub.sid);
    this.opts.router.unsubscribed(sub);
  }

  private onPub(op: Extract<ClientOp, { op: "PUB" | "HPUB" }>): void {
    // Wildcard tokens are allowed in a published subject (nats-server, not pedantic):
    // the JetStream API carries a consumer's filter subject in its subject.
    if (!isValidFilter(op.subject)) {
      this.error("Invalid Publish Subject");
      return;
    }
    if (op.reply !== undefined && !isValidSubject(op.reply)) {
      this.error("Invalid Reply Subject");
      return;
    }
    // nats.js sends HPUB with a 0-byte header block for a message without headers.
    const block = op.op === "HPUB" && op.headers.length > 0 ? op.headers : undefined;
    const headers = block === undefined ? undefined : parseHeaders(block);
    this.ok();
    this.inFlight++;
    const done = () => {
      this.inFlight--;
      this.drain();
    };
    this.opts.router
      .publish(this, {
        subject: op.subject,
        reply: op.reply,
        headerBlock: block,
        headers,
        payload: op.payload,
      })
      .then(done, (err: unknown) => {
        this.opts.log.error("nats publish failed", { subject: op.subject, error: String(err) });
        done();
      });
  }
}
