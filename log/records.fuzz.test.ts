/**
 * The stream log's stored records, fuzzed (header, stream, message and meta records,
 * each with its CRC32C trailer):
 * - a record with any change to its bytes is refused as CORRUPT_RECORD, never returned
 *   as data: one flipped bit always (a checksum must catch it), any edit of up to four
 *   bytes, insertions, deletions and truncations included;
 * - a body that is garbage under a valid checksum (a writer bug, a crafted snapshot)
 *   decodes to a record whose numbers are safe integers, or is refused as
 *   CORRUPT_RECORD: no other exception.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isKvError, logSchema, messageType } from "../proto/index.js";
import { bitFlipped, fuzz, mutatedBytes } from "../test_support/index.js";
import { crc32c } from "./crc32c.js";
import {
  decodeHeader,
  decodeMessage,
  decodeMeta,
  decodeStream,
  encodeHeader,
  encodeMessage,
  encodeMeta,
  encodeStream,
} from "./records.js";

interface Kind {
  name: string;
  seeds: Uint8Array[];
  decode: (b: Uint8Array) => unknown;
}

const config = {
  name: "KV_b",
  maxMsgsPerSubject: 5,
  maxAgeMs: 0,
  maxBytes: -1,
  maxMsgs: -1,
  maxMsgSize: 1024,
  discard: "old" as const,
};
const message = (seq: number, payload: string) => ({
  streamId: 3,
  seq,
  subject: "$KV.b.k",
  payload: new TextEncoder().encode(payload),
  operation: "PUT" as const,
  timestampMs: 1_700_000_000_000,
});

const kinds: Kind[] = [
  {
    name: "header",
    seeds: [encodeHeader({ formatVersion: 1, nextStreamId: 7 })],
    decode: decodeHeader,
  },
  {
    name: "stream",
    seeds: [
      encodeStream({ id: 3, config, lastSeq: 42 }),
      encodeStream({ id: 2 ** 40, config: { ...config, discard: "new" }, lastSeq: 0 }),
    ],
    decode: (b) => decodeStream(b, "KV_b"),
  },
  {
    name: "message",
    seeds: [encodeMessage(message(9, "value")), encodeMessage(message(9, ""))],
    decode: (b) => decodeMessage(b, "KV_b", 3, 9),
  },
  {
    name: "meta",
    seeds: [
      encodeMeta("kv/applied", new Uint8Array([8, 1, 16, 2])),
      encodeMeta("kv/applied", new Uint8Array(0)),
    ],
    decode: (b) => decodeMeta(b, "kv/applied"),
  },
];

function refusedAsCorrupt(decode: () => unknown): boolean {
  try {
    decode();
    return false;
  } catch (err) {
    expect(isKvError(err, "CORRUPT_RECORD"), String(err)).toBe(true);
    return true;
  }
}

/** `body` with a valid trailer: field 15, fixed32, the CRC32C of the body. */
function sealed(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 5);
  out.set(body);
  out[body.length] = (15 << 3) | 5;
  new DataView(out.buffer).setUint32(body.length + 1, crc32c(body), true);
  return out;
}

function safeNumbers(value: unknown): boolean {
  if (typeof value === "number") return Number.isSafeInteger(value);
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return true;
  return Object.values(value).every(safeNumbers);
}

describe.each(kinds)("log $name records (fuzzed)", ({ seeds, decode }) => {
  it("a flipped bit is always refused as CORRUPT_RECORD", () => {
    fuzz(
      fc.property(bitFlipped(seeds), (b) => {
        expect(refusedAsCorrupt(() => decode(b))).toBe(true);
      }),
    );
  });

  it("any other change is refused; unchanged bytes decode as before", () => {
    fuzz(
      fc.property(mutatedBytes(seeds), (b) => {
        const same = seeds.find((s) => Buffer.compare(s, b) === 0);
        if (same) expect(decode(b)).toEqual(decode(same));
        else expect(refusedAsCorrupt(() => decode(b))).toBe(true);
      }),
    );
  });

  it("garbage under a valid checksum: a record of safe integers, or CORRUPT_RECORD", () => {
    const bodies = seeds.map((s) => s.subarray(0, s.length - 5));
    fuzz(
      fc.property(mutatedBytes(bodies), (body) => {
        let value: unknown;
        try {
          value = decode(sealed(body));
        } catch (err) {
          expect(isKvError(err, "CORRUPT_RECORD"), String(err)).toBe(true);
          return;
        }
        expect(safeNumbers(value)).toBe(true);
      }),
    );
  });
});

describe("message records: the hand-written decoder against protobufjs", () => {
  const MessageType = messageType(logSchema, "streamkv.log.MessageRecord");
  const record = fc.record({
    streamId: fc.maxSafeNat(),
    seq: fc.maxSafeNat(),
    subject: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 8 })),
    payload: fc.uint8Array({ maxLength: 200 }),
    operation: fc.constantFrom("PUT" as const, "DEL" as const, "PURGE" as const),
    timestampMs: fc.maxSafeNat(),
  });

  it("decodes what encodeMessage wrote, from a Buffer (as LevelDB gives) or a Uint8Array", () => {
    fuzz(
      fc.property(record, (r) => {
        const bytes = encodeMessage(r);
        for (const b of [bytes, Buffer.from(bytes)]) {
          const got = decodeMessage(b, "s", r.streamId, r.seq);
          expect({ ...got, payload: new Uint8Array(got.payload) }).toEqual(r);
          expect(Buffer.isBuffer(got.payload)).toBe(false);
        }
      }),
    );
  });

  it("takes fields in any order, repeated (the last wins) and unknown ones, as protobuf does", () => {
    fuzz(
      fc.property(record, fc.uint8Array({ maxLength: 20 }), fc.maxSafeNat(), (r, junk, n) => {
        const one = MessageType.encode({
          stream_id: r.streamId,
          seq: r.seq,
          subject: r.subject,
          payload: r.payload,
          operation: ["PUT", "DEL", "PURGE"].indexOf(r.operation),
          timestamp_ms: r.timestampMs,
        }).finish();
        // A stale subject and seq first (overridden by `one`), unknown fields 9 and 10 after.
        const early = MessageType.encode({ subject: "stale", seq: n }).finish();
        const unknown = new Uint8Array([
          (9 << 3) | 2,
          junk.length,
          ...junk,
          (10 << 3) | 0,
          0x96,
          0x01,
        ]);
        const body = new Uint8Array([...early, ...one, ...unknown]);
        const ours = decodeMessage(sealed(body), "s", r.streamId, r.seq);
        const theirs = MessageType.toObject(MessageType.decode(body), { longs: Number }) as Record<
          string,
          unknown
        >;
        expect(ours.subject).toBe(theirs.subject ?? "");
        expect(ours.timestampMs).toBe(theirs.timestamp_ms ?? 0);
        expect(
          Buffer.compare(ours.payload, (theirs.payload as Uint8Array) ?? new Uint8Array(0)),
        ).toBe(0);
      }),
    );
  });
});
