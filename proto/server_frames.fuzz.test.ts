/**
 * Server frames as the SDK reads them (`decodeServerAnswer`), fuzzed: a client must not
 * be crashed by a broken or hostile server either. On any bytes the decoder gives a
 * typed answer for a safe frame id (a body that does not check out becomes an `error`
 * answer with MALFORMED_FRAME or another stable code) or throws MALFORMED_FRAME.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fuzz, fuzzBytes } from "../test_support/index.js";
import { decodeServerAnswer, encodeServerAnswer, type ServerReply } from "./client_responses.js";
import { ERROR_CODES, isKvError, KvError } from "./errors.js";
import type { BucketInfo, Entry } from "./types.js";

const entry: Entry = {
  bucket: "b",
  key: "k",
  value: new Uint8Array([1, 2]),
  revision: 3,
  created: new Date(1_700_000_000_000),
  delta: 0,
  operation: "PUT",
  size: 2,
};
const info: BucketInfo = {
  bucket: "b",
  history: 3,
  ttlMs: 0,
  maxValueSize: -1,
  maxBytes: -1,
  replicas: 1,
  description: "",
  values: 1,
  bytes: 2,
  firstRevision: 1,
  lastRevision: 3,
  leader: "n1",
  replicaNodes: ["n1"],
  valueLimitBytes: 1024 * 1024,
};
const replies: ServerReply[] = [
  { type: "hello_ok", protocolVersion: 1, serverId: "n1", maxFrameBytes: 1024 },
  { type: "bucket_status", status: info },
  { type: "bucket_list", buckets: [info] },
  { type: "write_result", revision: 9 },
  { type: "get_result", entry },
  { type: "get_result", entry: null },
  { type: "keys_chunk", keys: ["a", "b"], done: true },
  { type: "entries_chunk", entries: [entry], done: false },
  { type: "watch_entry", entry },
  { type: "watch_entries", entries: [entry, { ...entry, key: "k2", revision: 4 }] },
  { type: "watch_init_done", revision: 4 },
  { type: "watch_end" },
  { type: "purge_deletes_result", purged: 2 },
  { type: "ack" },
  { type: "pong" },
  { type: "error", error: new KvError("WRONG_LAST_REVISION", "stale", { currentRevision: 4 }) },
];
const seeds = replies.map((r, i) => encodeServerAnswer(i + 1, r));
const CODES: ReadonlySet<string> = new Set(ERROR_CODES);

describe("server frames through the SDK's decoder (fuzzed)", () => {
  it("a typed answer for a safe id, or MALFORMED_FRAME", () => {
    fuzz(
      fc.property(fuzzBytes(seeds), (b) => {
        let m: ReturnType<typeof decodeServerAnswer>;
        try {
          m = decodeServerAnswer(b);
        } catch (err) {
          expect(isKvError(err, "MALFORMED_FRAME"), String(err)).toBe(true);
          return;
        }
        expect(Number.isSafeInteger(m.id)).toBe(true);
        if (m.answer.type === "error") expect(CODES.has(m.answer.error.code)).toBe(true);
      }),
    );
  });
});
