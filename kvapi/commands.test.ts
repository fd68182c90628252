import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isKvError } from "../proto/index.js";
import { decodeCommand, encodeCommand, requestKey } from "./commands.js";
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

  it("turns any malformed input into INVALID_ARGUMENT, never another exception", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (data) => {
        expect(["none", "INVALID_ARGUMENT"]).toContain(code(() => decodeCommand(data)));
      }),
      { numRuns: 2_000 },
    );
    expect(code(() => decodeCommand(new Uint8Array(0)))).toBe("INVALID_ARGUMENT");
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
