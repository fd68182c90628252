/**
 * kvapi's decoders, fuzzed on mutated valid encodings and random bytes:
 * - commands (Raft entry data, and a follower's forwarded command): a command whose
 *   numbers are safe integers, or INVALID_ARGUMENT, never another exception (the apply
 *   loop answers it as the entry's result);
 * - the records kvapi keeps in the stream log's meta records (bucket config, applied
 *   state, dedupe record): a record, or CORRUPT_RECORD. These sit inside checksummed
 *   meta records, so what reaches them is either intact or crafted under a valid
 *   checksum (a leader's snapshot).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isKvError, KvError } from "../proto/index.js";
import { fuzz, fuzzBytes } from "../test_support/index.js";
import {
  decodeAppliedState,
  decodeBucketConfig,
  decodeCommand,
  decodeDedupeRecord,
  decodeUnstampedCommand,
  encodeAppliedState,
  encodeBucketConfig,
  encodeCommand,
  encodeDedupeRecord,
} from "./commands.js";
import { normalizeBucketConfig } from "./names.js";
import type { Command } from "./types.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const config = normalizeBucketConfig({ bucket: "b", history: 5, ttlMs: 1000, maxBytes: 100 });
const commands: Command[] = [
  { type: "createBucket", config, timestampMs: 1, limits: { maxBuckets: 3, maxStoredBytes: 9 } },
  { type: "updateBucket", config, timestampMs: 2 },
  { type: "deleteBucket", bucket: "b", timestampMs: 3 },
  { type: "put", bucket: "b", key: "k", value: bytes("v"), timestampMs: 4, request: { id: "r" } },
  { type: "create", bucket: "b", key: "k", value: new Uint8Array(0), timestampMs: 5 },
  { type: "update", bucket: "b", key: "k", value: bytes("v"), last: 7, timestampMs: 6 },
  { type: "delete", bucket: "b", key: "k", last: 0, timestampMs: 7 },
  { type: "purge", bucket: "b", key: "k", timestampMs: 8, request: { clientId: "c", sequence: 4 } },
  { type: "purgeDeletes", bucket: "b", olderThanMs: -1, timestampMs: 9 },
  { type: "timeAdvance", timestampMs: 10 },
  { type: "put", bucket: "b", key: "k", value: bytes("u"), timestampMs: 0, request: { id: "f" } },
];
const commandSeeds = commands.map(encodeCommand);

function safeNumbers(value: unknown): boolean {
  if (typeof value === "number") return Number.isSafeInteger(value);
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return true;
  return Object.values(value).every(safeNumbers);
}

/** `decode(b)` is a value of safe integers, or throws a KvError with `code`. */
function typedOr(code: "INVALID_ARGUMENT" | "CORRUPT_RECORD", decode: () => unknown): void {
  let value: unknown;
  try {
    value = decode();
  } catch (err) {
    expect(isKvError(err, code), String(err)).toBe(true);
    return;
  }
  expect(safeNumbers(value)).toBe(true);
}

describe("kvapi commands (fuzzed)", () => {
  it("decodeCommand: a command of safe integers, or INVALID_ARGUMENT", () => {
    fuzz(
      fc.property(fuzzBytes(commandSeeds), (b) => {
        typedOr("INVALID_ARGUMENT", () => decodeCommand(b));
      }),
    );
  });

  it("decodeUnstampedCommand (forwarded): no time, no quotas, or INVALID_ARGUMENT", () => {
    fuzz(
      fc.property(fuzzBytes(commandSeeds), (b) => {
        typedOr("INVALID_ARGUMENT", () => {
          const c = decodeUnstampedCommand(b);
          expect(c).not.toHaveProperty("timestampMs");
          expect(c).not.toHaveProperty("limits");
          expect(c.type).not.toBe("timeAdvance");
          return c;
        });
      }),
    );
  });
});

const stored = [
  {
    name: "bucket config",
    seeds: [encodeBucketConfig(config), encodeBucketConfig({ ...config, description: "d" })],
    decode: decodeBucketConfig,
  },
  {
    name: "applied state",
    seeds: [encodeAppliedState({ index: 9, clockMs: 1_700_000_000_000, records: 3, window: 16 })],
    decode: decodeAppliedState,
  },
  {
    name: "dedupe record",
    seeds: [
      encodeDedupeRecord({
        index: 4,
        requestKey: "i:r",
        result: { ok: true, revision: 2, count: 1 },
      }),
      encodeDedupeRecord({
        index: 5,
        requestKey: "",
        result: {
          ok: false,
          error: new KvError("WRONG_LAST_REVISION", "stale", { currentRevision: 3 }),
        },
      }),
    ],
    decode: decodeDedupeRecord,
  },
];

describe.each(stored)("kvapi $name records (fuzzed)", ({ seeds, decode }) => {
  it("a record of safe integers, or CORRUPT_RECORD", () => {
    fuzz(
      fc.property(fuzzBytes(seeds), (b) => {
        typedOr("CORRUPT_RECORD", () => decode(b));
      }),
    );
  });
});
