/**
 * The client half of the NATS client protocol (docs.nats.io "Client Protocol"), parsed
 * incrementally: `push(chunk)` takes whatever one TCP read gave, split at any byte or
 * holding many operations, and returns the operations it completed. Everything it keeps
 * between reads is bounded: a control line by `maxControlLineBytes`, a payload by
 * `maxPayloadBytes` (checked on the control line, before any payload byte is held).
 *
 * A violation throws `NatsProtocolError`, whose message is the text of the `-ERR` line
 * the connection sends before it closes (the wording nats-server uses where it has one).
 */

export type ClientOp =
  | { op: "CONNECT"; json: string }
  | { op: "PUB"; subject: string; reply: string | undefined; payload: Uint8Array }
  | {
      op: "HPUB";
      subject: string;
      reply: string | undefined;
      headers: Uint8Array;
      payload: Uint8Array;
    }
  | { op: "SUB"; subject: string; queue: string | undefined; sid: string }
  | { op: "UNSUB"; sid: string; max: number | undefined }
  | { op: "PING" }
  | { op: "PONG" };

export class NatsProtocolError extends Error {
  override readonly name = "NatsProtocolError";
}

export interface ParserLimits {
  /** Longest control line (the verb and its arguments), without the CRLF. */
  maxControlLineBytes: number;
  /** Largest message: header and payload bytes together (INFO's max_payload). */
  maxPayloadBytes: number;
}

/** nats-server's default `max_control_line`. */
export const DEFAULT_MAX_CONTROL_LINE_BYTES = 4096;

/** Longest subscription id (nats.js sends decimal counters). */
const MAX_SID_LENGTH = 128;

const CR = 0x0d;
const LF = 0x0a;
const decoder = new TextDecoder("utf-8", { fatal: false });

type Pending = {
  subject: string;
  reply: string | undefined;
  /** -1 for PUB (no header block). */
  headerBytes: number;
  totalBytes: number;
};

export class NatsParser {
  /** Bytes of an unfinished control line. */
  private line: Buffer[] = [];
  private lineBytes = 0;
  /** The message whose payload is being read, and the pieces read so far. */
  private pending: Pending | undefined;
  private body: Buffer[] = [];
  private bodyBytes = 0;

  constructor(private readonly limits: ParserLimits) {}

  /** Operations completed by `chunk`, in order. Throws NatsProtocolError. */
  push(chunk: Buffer): ClientOp[] {
    const out: ClientOp[] = [];
    let at = 0;
    // Each pass consumes at least one byte or returns: bounded by the chunk's length.
    while (at < chunk.length) {
      if (this.pending) {
        const need = this.pending.totalBytes + 2 - this.bodyBytes;
        const take = Math.min(need, chunk.length - at);
        this.body.push(chunk.subarray(at, at + take));
        this.bodyBytes += take;
        at += take;
        if (this.bodyBytes === this.pending.totalBytes + 2) out.push(this.finishMessage());
        continue;
      }
      const lf = chunk.indexOf(LF, at);
      const end = lf < 0 ? chunk.length : lf;
      // The CRLF itself is not counted against the limit.
      if (this.lineBytes + (end - at) > this.limits.maxControlLineBytes + 1) {
        throw new NatsProtocolError("Maximum Control Line Exceeded");
      }
      this.line.push(chunk.subarray(at, end));
      this.lineBytes += end - at;
      if (lf < 0) break;
      at = lf + 1;
      let text = Buffer.concat(this.line, this.lineBytes);
      this.line = [];
      this.lineBytes = 0;
      if (text.length > 0 && text[text.length - 1] === CR) text = text.subarray(0, -1);
      if (text.length > this.limits.maxControlLineBytes) {
        throw new NatsProtocolError("Maximum Control Line Exceeded");
      }
      const op = this.parseLine(decoder.decode(text));
      if (op) out.push(op);
    }
    return out;
  }

  /** Bytes held between reads (for tests of the bounds). */
  get heldBytes(): number {
    return this.lineBytes + this.bodyBytes;
  }

  private finishMessage(): ClientOp {
    const p = this.pending!;
    const all = Buffer.concat(this.body, this.bodyBytes);
    this.pending = undefined;
    this.body = [];
    this.bodyBytes = 0;
    if (all[p.totalBytes] !== CR || all[p.totalBytes + 1] !== LF) {
      throw new NatsProtocolError("Protocol Error: a message payload must end with CRLF");
    }
    // Copies: a view would pin the whole socket read it came from.
    if (p.headerBytes < 0) {
      return {
        op: "PUB",
        subject: p.subject,
        reply: p.reply,
        payload: new Uint8Array(all.subarray(0, p.totalBytes)),
      };
    }
    return {
      op: "HPUB",
      subject: p.subject,
      reply: p.reply,
      headers: new Uint8Array(all.subarray(0, p.headerBytes)),
      payload: new Uint8Array(all.subarray(p.headerBytes, p.totalBytes)),
    };
  }

  private parseLine(text: string): ClientOp | undefined {
    const trimmed = text.trim();
    if (trimmed === "") return undefined;
    const space = trimmed.search(/[ \t]/);
    const verb = (space < 0 ? trimmed : trimmed.slice(0, space)).toUpperCase();
    const rest = space < 0 ? "" : trimmed.slice(space + 1).trim();
    const args = rest === "" ? [] : rest.split(/[ \t]+/);
    switch (verb) {
      case "PING":
        return { op: "PING" };
      case "PONG":
        return { op: "PONG" };
      case "CONNECT":
        if (rest === "") throw new NatsProtocolError("Protocol Error: CONNECT needs its JSON");
        return { op: "CONNECT", json: rest };
      case "PUB": {
        if (args.length !== 2 && args.length !== 3) {
          throw new NatsProtocolError("Protocol Error: PUB <subject> [reply] <size>");
        }
        const total = this.count(args[args.length - 1]!);
        this.expect(args[0]!, args.length === 3 ? args[1] : undefined, -1, total);
        return undefined;
      }
      case "HPUB": {
        if (args.length !== 3 && args.length !== 4) {
          throw new NatsProtocolError(
            "Protocol Error: HPUB <subject> [reply] <header size> <total size>",
          );
        }
        const total = this.count(args[args.length - 1]!);
        const header = this.count(args[args.length - 2]!);
        if (header > total) {
          throw new NatsProtocolError("Protocol Error: header size larger than total size");
        }
        this.expect(args[0]!, args.length === 4 ? args[1] : undefined, header, total);
        return undefined;
      }
      case "SUB": {
        if (args.length !== 2 && args.length !== 3) {
          throw new NatsProtocolError("Protocol Error: SUB <subject> [queue group] <sid>");
        }
        const sid = args[args.length - 1]!;
        checkSid(sid);
        return {
          op: "SUB",
          subject: args[0]!,
          queue: args.length === 3 ? args[1] : undefined,
          sid,
        };
      }
      case "UNSUB": {
        if (args.length !== 1 && args.length !== 2) {
          throw new NatsProtocolError("Protocol Error: UNSUB <sid> [max messages]");
        }
        checkSid(args[0]!);
        return {
          op: "UNSUB",
          sid: args[0]!,
          max: args.length === 2 ? this.count(args[1]!) : undefined,
        };
      }
      default:
        throw new NatsProtocolError("Unknown Protocol Operation");
    }
  }

  private expect(subject: string, reply: string | undefined, header: number, total: number) {
    if (total > this.limits.maxPayloadBytes) {
      throw new NatsProtocolError("Maximum Payload Violation");
    }
    this.pending = { subject, reply, headerBytes: header, totalBytes: total };
  }

  private count(text: string): number {
    if (!/^\d{1,15}$/.test(text)) {
      throw new NatsProtocolError(`Protocol Error: ${JSON.stringify(text)} is not a size`);
    }
    return Number(text);
  }
}

function checkSid(sid: string): void {
  if (sid.length > MAX_SID_LENGTH) {
    throw new NatsProtocolError(`Protocol Error: a sid is at most ${MAX_SID_LENGTH} characters`);
  }
}
