/**
 * The SDK refuses what it would otherwise coerce, before any socket or frame: a bucket
 * config field that is not an integer in range (protobufjs turned `ttl: "30s"` into 30 ms),
 * an unknown config field, a timeout or flag of the wrong type.
 */
import { describe, expect, it } from "vitest";
import { connect, type KeyValueConfig, KvError } from "./index.js";
import { checkFlag, checkTimeoutMs, MAX_TIMEOUT_MS } from "./options.js";
import { configToWire } from "./wire.js";

/** The KvError `fn` throws, as "CODE: message" ("none" if it does not throw). */
function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof KvError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return "none";
}

const config = (extra: Record<string, unknown>) => ({ bucket: "b", ...extra }) as KeyValueConfig;

describe("bucket config in the SDK", () => {
  it.each([
    [{ ttl: "30s" }, 'ttl must be an integer number of milliseconds >= 0 (0 = forever), got "30s"'],
    [{ ttl: 1.7 }, "ttl must be an integer number of milliseconds >= 0 (0 = forever), got 1.7"],
    [{ ttl: -1 }, "ttl must be an integer number of milliseconds >= 0 (0 = forever), got -1"],
    [
      { ttl: Number.NaN },
      "ttl must be an integer number of milliseconds >= 0 (0 = forever), got NaN",
    ],
    [
      { maxBytes: "10MB" },
      'maxBytes must be -1 (unlimited) or an integer number of bytes >= 1, got "10MB"',
    ],
    [{ maxBytes: 0 }, "maxBytes must be -1 (unlimited) or an integer number of bytes >= 1, got 0"],
    [
      { maxBytes: 2 ** 60 },
      `maxBytes must be -1 (unlimited) or an integer number of bytes >= 1, got ${2 ** 60}`,
    ],
    [
      { maxValueSize: "1k" },
      `maxValueSize must be -1 (the server's limit, 1048576 bytes) or an integer number of bytes 1..1048576, got "1k"`,
    ],
    [
      { maxValueSize: 5 * 1024 * 1024 },
      "maxValueSize must be -1 (the server's limit, 1048576 bytes) or an integer number of bytes 1..1048576, got 5242880",
    ],
    [{ history: "5x" }, 'history must be an integer 1..64 (revisions kept per key), got "5x"'],
    [{ history: "5" }, 'history must be an integer 1..64 (revisions kept per key), got "5"'],
    [{ history: 65 }, "history must be an integer 1..64 (revisions kept per key), got 65"],
    [{ history: 2.5 }, "history must be an integer 1..64 (revisions kept per key), got 2.5"],
    [
      { replicas: "3" },
      `replicas must be an integer, the cluster's voter count (0 = that count), got "3"`,
    ],
    [
      { replicas: -1 },
      "replicas must be an integer, the cluster's voter count (0 = that count), got -1",
    ],
    [{ description: 5 }, "description must be a string, got 5"],
    [{ description: "x".repeat(4097) }, "description must be at most 4096 bytes, got 4097"],
  ])("%j is INVALID_CONFIG naming the field and the value", (extra, why) => {
    expect(thrown(() => configToWire(config(extra)))).toBe(
      `INVALID_CONFIG: createKeyValue: ${why}`,
    );
  });

  it("an unknown field is refused, not ignored", () => {
    expect(thrown(() => configToWire(config({ maxAge: 1000 })))).toMatch(
      /^INVALID_CONFIG: createKeyValue: unknown config field "maxAge" \(known: bucket, history, ttl,/,
    );
  });

  it("a sound config goes on the wire as given; undefined fields take the server defaults", () => {
    expect(
      configToWire({
        bucket: "b",
        history: 64,
        ttl: 0,
        maxValueSize: -1,
        maxBytes: 1,
        replicas: 0,
        description: "",
      }),
    ).toEqual({
      bucket: "b",
      history: 64,
      ttl_ms: 0,
      max_value_size: -1,
      max_bytes: 1,
      replicas: 0,
      description: "",
    });
    expect(configToWire(config({ ttl: undefined, history: undefined }))).toEqual({ bucket: "b" });
  });
});

describe("numeric and boolean options", () => {
  it("timeouts are integers 1..2^31-1 ms, never strings or fractions", () => {
    expect(checkTimeoutMs(undefined, "t")).toBeUndefined();
    expect(checkTimeoutMs(1, "t")).toBe(1);
    expect(checkTimeoutMs(MAX_TIMEOUT_MS, "t")).toBe(MAX_TIMEOUT_MS);
    for (const bad of [
      "5000",
      0,
      -5,
      1.5,
      Number.NaN,
      MAX_TIMEOUT_MS + 1,
      Number.POSITIVE_INFINITY,
    ]) {
      expect(thrown(() => checkTimeoutMs(bad, "get: timeoutMs"))).toMatch(
        /^INVALID_ARGUMENT: get: timeoutMs must be an integer number of milliseconds 1\.\.2147483647, got /,
      );
    }
    expect(thrown(() => checkTimeoutMs("5000", "x"))).toContain('got "5000"');
  });

  it("flags are booleans: 'false' is not true", () => {
    expect(checkFlag(undefined, "stale")).toBe(false);
    expect(checkFlag(true, "stale")).toBe(true);
    expect(thrown(() => checkFlag("false", "stale"))).toBe(
      'INVALID_ARGUMENT: stale must be true or false, got "false"',
    );
    expect(thrown(() => checkFlag(1, "watch: metaOnly", "INVALID_OPTION"))).toBe(
      "INVALID_OPTION: watch: metaOnly must be true or false, got 1",
    );
  });

  it("connect refuses a bad timeout at once, before opening a socket", async () => {
    const t0 = Date.now();
    for (const opts of [
      { timeoutMs: "100" },
      { reconnectDelayMs: -1 },
      { reconnectDelayMaxMs: 0.5 },
    ]) {
      await expect(
        connect({ servers: ["ws://127.0.0.1:1"], ...(opts as object) }),
      ).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
