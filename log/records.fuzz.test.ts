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
import { isKvError } from "../proto/index.js";
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
