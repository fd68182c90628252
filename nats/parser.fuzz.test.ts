/**
 * The NATS protocol parser: operations split across reads at any byte and many per
 * read give the same operations as one read; every bound holds (a control line, a
 * payload, what is held between reads); garbage only ever raises NatsProtocolError.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fuzz } from "../test_support/index.js";
import { type ClientOp, NatsParser, NatsProtocolError } from "./parser.js";

const limits = { maxControlLineBytes: 256, maxPayloadBytes: 1024 };

function parseAll(chunks: Buffer[]): ClientOp[] {
  const p = new NatsParser(limits);
  return chunks.flatMap((c) => p.push(c));
}

const token = fc.stringMatching(/^[a-zA-Z0-9_$-]{1,8}$/);
const subject = fc.array(token, { minLength: 1, maxLength: 4 }).map((t) => t.join("."));
const payload = fc.uint8Array({ maxLength: 64 });

/** One operation as a client sends it. */
const wireOp = fc.oneof(
  fc.constant("PING\r\n"),
  fc.constant("PONG\r\n"),
  fc.constant('CONNECT {"verbose":false,"headers":true}\r\n'),
  fc
    .tuple(subject, fc.option(subject, { nil: undefined }), payload)
    .map(([s, r, p]) =>
      Buffer.concat([
        Buffer.from(`PUB ${s}${r ? ` ${r}` : ""} ${p.length}\r\n`),
        Buffer.from(p),
        Buffer.from("\r\n"),
      ]),
    ),
  fc.tuple(subject, payload).map(([s, p]) => {
    const h = Buffer.from("NATS/1.0\r\nKV-Operation: DEL\r\n\r\n");
    return Buffer.concat([
      Buffer.from(`HPUB ${s} _INBOX.x.1 ${h.length} ${h.length + p.length}\r\n`),
      h,
      Buffer.from(p),
      Buffer.from("\r\n"),
    ]);
  }),
  fc.tuple(subject, fc.nat(99)).map(([s, sid]) => `SUB ${s} ${sid}\r\n`),
  fc.tuple(subject, fc.nat(99)).map(([s, sid]) => `SUB ${s} q ${sid}\r\n`),
  fc
    .tuple(fc.nat(99), fc.option(fc.nat(9), { nil: undefined }))
    .map(([sid, max]) => `UNSUB ${sid}${max === undefined ? "" : ` ${max}`}\r\n`),
);

const stream = fc
  .array(wireOp, { minLength: 1, maxLength: 20 })
  .map((ops) => Buffer.concat(ops.map((o) => (typeof o === "string" ? Buffer.from(o) : o))));

/** `bytes` cut at the given offsets (sorted, deduplicated, inside the buffer). */
function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((a) => a % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

describe("NatsParser", () => {
  it("parses many operations in one read", () => {
    const ops = parseAll([
      Buffer.from(
        'CONNECT {"verbose":true}\r\nPING\r\nSUB a.* 1\r\nPUB a.b _INBOX.1 5\r\nhello\r\nHPUB a.c 12 14\r\nNATS/1.0\r\n\r\nhi\r\nUNSUB 1 3\r\n',
      ),
    ]);
    expect(ops.map((o) => o.op)).toEqual(["CONNECT", "PING", "SUB", "PUB", "HPUB", "UNSUB"]);
    expect(ops[3]).toEqual({
      op: "PUB",
      subject: "a.b",
      reply: "_INBOX.1",
      payload: new Uint8Array(Buffer.from("hello")),
    });
    expect(ops[5]).toEqual({ op: "UNSUB", sid: "1", max: 3 });
  });

  it("accepts lower-case verbs, tabs and bare LF line ends (telnet users)", () => {
    const ops = parseAll([Buffer.from("ping\npub\ta 2\r\nok\r\n")]);
    expect(ops.map((o) => o.op)).toEqual(["PING", "PUB"]);
  });

  it("gives the same operations however the bytes are split across reads", () => {
    fuzz(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 30 }), (bytes, at) => {
        expect(parseAll(cut(bytes, at))).toEqual(parseAll([bytes]));
      }),
    );
  });

  it("splits at every single byte of one stream alike", () => {
    const bytes = Buffer.from(
      "SUB x 1\r\nPUB x.y r.1 3\r\nabc\r\nHPUB x 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nok\r\nPING\r\n",
    );
    const whole = parseAll([bytes]);
    for (let i = 0; i <= bytes.length; i++) {
      expect(parseAll([bytes.subarray(0, i), bytes.subarray(i)])).toEqual(whole);
    }
    expect(parseAll([...bytes].map((b) => Buffer.from([b])))).toEqual(whole);
  });

  it("refuses a control line over the limit without holding more than the limit", () => {
    const p = new NatsParser(limits);
    // A line that never ends: refused once it passes the limit, not at the first CRLF.
    expect(() => {
      for (let i = 0; i < 100; i++) p.push(Buffer.from("PUB aaaaaaaa"));
    }).toThrow(new NatsProtocolError("Maximum Control Line Exceeded"));
    expect(() => parseAll([Buffer.from(`SUB ${"a".repeat(300)} 1\r\n`)])).toThrow(
      "Maximum Control Line Exceeded",
    );
  });

  it("refuses a payload over max_payload on its control line, before reading it", () => {
    const p = new NatsParser(limits);
    expect(() => p.push(Buffer.from("PUB a 1025\r\n"))).toThrow("Maximum Payload Violation");
    expect(() => parseAll([Buffer.from("HPUB a 10 2000\r\n")])).toThrow(
      "Maximum Payload Violation",
    );
    expect(parseAll([Buffer.from(`PUB a 1024\r\n${"x".repeat(1024)}\r\n`)])).toHaveLength(1);
  });

  it("refuses malformed operations with the reason", () => {
    const bad = [
      "FOO bar\r\n",
      "PUB a\r\n",
      "PUB a b c d\r\n",
      "PUB a -1\r\n",
      "PUB a 1x\r\n",
      "HPUB a 5 3\r\n",
      "SUB a\r\n",
      "UNSUB\r\n",
      "UNSUB 1 x\r\n",
      "CONNECT\r\n",
      "PUB a 3\r\nabcd\r\n",
      `SUB a ${"9".repeat(129)}\r\n`,
    ];
    for (const b of bad) {
      expect(() => parseAll([Buffer.from(b)]), b).toThrow(NatsProtocolError);
    }
  });

  it("holds at most a control line and one payload between reads", () => {
    fuzz(
      fc.property(
        fc.uint8Array({ maxLength: 4000 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (raw, at) => {
          const p = new NatsParser(limits);
          try {
            for (const c of cut(Buffer.from(raw), at)) {
              p.push(c);
              expect(p.heldBytes).toBeLessThanOrEqual(
                Math.max(limits.maxControlLineBytes + 1, limits.maxPayloadBytes + 2),
              );
            }
          } catch (err) {
            expect(err).toBeInstanceOf(NatsProtocolError);
          }
        },
      ),
    );
  });
});
