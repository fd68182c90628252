import { describe, expect, it } from "vitest";
import { isKvError } from "../proto/index.js";
import {
  decodeAppliedState,
  decodeBucketConfig,
  decodeCommand,
  decodeDedupeRecord,
  encodeCommand,
  requestKey,
} from "./commands.js";
import { normalizeBucketConfig } from "./names.js";
import { bytes } from "./test_support.js";
import type { Command } from "./types.js";

function code(fn: () => unknown): string {
  try {
    fn();
    return "none";
  } catch (err) {
    if (isKvError(err)) return err.code;
    throw err;
  }
}

describe("commands", () => {
  it("round-trips every command", () => {
    const config = normalizeBucketConfig({
      bucket: "b",
      history: 5,
      ttlMs: 1_000,
      maxValueSize: 10,
      maxBytes: 100,
      replicas: 3,
      description: "d",
    });
    const commands: Command[] = [
      { type: "createBucket", config, timestampMs: 1 },
      { type: "updateBucket", config, timestampMs: 2 },
      { type: "deleteBucket", bucket: "b", timestampMs: 3 },
      { type: "put", bucket: "b", key: "k", value: bytes("v"), timestampMs: 4 },
      { type: "create", bucket: "b", key: "k", value: new Uint8Array(0), timestampMs: 5 },
      { type: "update", bucket: "b", key: "k", value: bytes("v"), last: 0, timestampMs: 6 },
      {
        type: "update",
        bucket: "b",
        key: "k",
        value: bytes("v"),
        last: 2 ** 53 - 1,
        timestampMs: 6,
      },
      { type: "delete", bucket: "b", key: "k", timestampMs: 7 },
      { type: "delete", bucket: "b", key: "k", last: 0, timestampMs: 7 },
      { type: "purge", bucket: "b", key: "k", last: 9, timestampMs: 8 },
      { type: "purgeDeletes", bucket: "b", olderThanMs: -1, timestampMs: 9 },
      { type: "timeAdvance", timestampMs: 10, request: { id: "r" } },
      { type: "timeAdvance", timestampMs: 11, request: { clientId: "c", sequence: 0 } },
    ];
    for (const c of commands) expect(decodeCommand(encodeCommand(c))).toEqual(c);
  });

  // Malformed commands and records on any bytes: commands.fuzz.test.ts.
  it("an empty command is INVALID_ARGUMENT; stored records that do not decode are CORRUPT_RECORD", () => {
    expect(code(() => decodeCommand(new Uint8Array(0)))).toBe("INVALID_ARGUMENT");
    // Found by commands.fuzz.test.ts: these threw protobufjs' RangeError, untyped, out of
    // StateMachine.open (a meta record whose checksum held: a crafted snapshot).
    const u = (...b: number[]) => new Uint8Array(b);
    const config = u(10, 0, 98, 16, 5, 24, 232, 7, 32, 1, 40, 200, 1, 48, 1, 58, 0);
    const applied = u(9, 9, 16, 0, 208, 149, 255, 188, 49, 24, 3, 32, 16);
    const dedupe = u(18, 4, 18, 3, 105, 58, 114, 26, 6, 8, 1, 16, 2, 24, 1);
    expect(code(() => decodeBucketConfig(config))).toBe("CORRUPT_RECORD");
    expect(code(() => decodeAppliedState(applied))).toBe("CORRUPT_RECORD");
    expect(code(() => decodeDedupeRecord(dedupe))).toBe("CORRUPT_RECORD");
  });

  it("rejects numbers protobuf would wrap or round", () => {
    const put = { type: "put", bucket: "b", key: "k", value: bytes("v") } as const;
    expect(code(() => encodeCommand({ ...put, timestampMs: -1 }))).toBe("INVALID_ARGUMENT");
    expect(code(() => encodeCommand({ ...put, timestampMs: 1.5 }))).toBe("INVALID_ARGUMENT");
    const update = {
      type: "update",
      bucket: "b",
      key: "k",
      value: bytes("v"),
      timestampMs: 1,
    } as const;
    expect(code(() => encodeCommand({ ...update, last: -1 }))).toBe("INVALID_ARGUMENT");
    expect(code(() => encodeCommand({ ...update, last: 2 ** 60 }))).toBe("INVALID_ARGUMENT");
  });

  it("request keys of the two id shapes never collide", () => {
    expect(requestKey({ id: "c:1:x" })).not.toBe(requestKey({ clientId: "x", sequence: 1 }));
    expect(requestKey({ clientId: "a:1", sequence: 2 })).not.toBe(
      requestKey({ clientId: "a", sequence: 12 }),
    );
  });
});
