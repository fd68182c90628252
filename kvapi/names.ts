/**
 * Validation of bucket names, keys, filters and bucket configs (SEMANTICS.md
 * "Names", DESIGN.md section 1). Runs on the proposer (to fail fast) and again
 * at apply, so a bad command that reaches the log is rejected the same way on
 * every replica.
 */
import { isValidStreamName } from "../log/index.js";
import {
  BUCKET_CONFIG_FIELDS,
  bucketConfigProblem,
  KvError,
  SERVER_MAX_VALUE_BYTES,
} from "../proto/index.js";
import type { BucketConfig, BucketConfigInput } from "./types.js";

// The config's ranges are the protocol's (proto/bucket_config.ts): the SDK checks them too.
export { MAX_DESCRIPTION_BYTES, MAX_HISTORY, SERVER_MAX_VALUE_BYTES } from "../proto/index.js";
export const MAX_BUCKET_NAME_CHARS = 256;
export const MAX_KEY_BYTES = 1024;
/** Bucket B is stored in stream `KV_B`; keys are the stream's subjects as they are. */
export const STREAM_PREFIX = "KV_";

const BUCKET_RE = /^[a-zA-Z0-9_-]+$/;
const KEY_RE = /^[-/_=.a-zA-Z0-9]+$/;
const FILTER_TOKEN_RE = /^[-/_=a-zA-Z0-9]+$/;
const encoder = new TextEncoder();

export function streamOf(bucket: string): string {
  return STREAM_PREFIX + bucket;
}

/** The bucket a stream name stands for, or undefined if it is not a KV stream. */
export function bucketOfStream(stream: string): string | undefined {
  return stream.startsWith(STREAM_PREFIX) ? stream.slice(STREAM_PREFIX.length) : undefined;
}

export function isValidBucketName(name: unknown): name is string {
  return (
    typeof name === "string" &&
    name.length >= 1 &&
    name.length <= MAX_BUCKET_NAME_CHARS &&
    BUCKET_RE.test(name) &&
    isValidStreamName(streamOf(name))
  );
}

export function validateBucketName(name: unknown): asserts name is string {
  if (!isValidBucketName(name)) {
    throw new KvError(
      "INVALID_BUCKET",
      `invalid bucket name ${JSON.stringify(name)}: use 1..${MAX_BUCKET_NAME_CHARS} characters from a-z A-Z 0-9 _ -`,
    );
  }
}

function keyProblem(key: unknown, allowWildcards: boolean): string | undefined {
  if (typeof key !== "string") return "it is not a string";
  if (key.length === 0) return "it is empty";
  if (key.length > MAX_KEY_BYTES || encoder.encode(key).length > MAX_KEY_BYTES) {
    return `it is longer than ${MAX_KEY_BYTES} bytes`;
  }
  if (!allowWildcards) {
    if (!KEY_RE.test(key)) return "use only a-z A-Z 0-9 and - / _ = .";
  }
  if (key.startsWith(".") || key.endsWith(".")) return "it starts or ends with '.'";
  const tokens = key.split(".");
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.length === 0) return "it has an empty token ('..')";
    if (!allowWildcards) continue;
    if (token === "*") continue;
    if (token === ">") {
      if (i !== tokens.length - 1) return "'>' must be the last token";
      continue;
    }
    if (!FILTER_TOKEN_RE.test(token)) {
      return `token ${JSON.stringify(token)}: use a-z A-Z 0-9 - / _ =, or a whole '*' / last '>'`;
    }
  }
  return undefined;
}

export function isValidKey(key: unknown): key is string {
  return keyProblem(key, false) === undefined;
}

export function validateKey(key: unknown): asserts key is string {
  const why = keyProblem(key, false);
  if (why !== undefined)
    throw new KvError("INVALID_KEY", `invalid key ${JSON.stringify(key)}: ${why}`);
}

/** A watch/keys/history filter: a key whose tokens may be `*`, and whose last may be `>`. */
export function validateFilter(filter: unknown): asserts filter is string {
  const why = keyProblem(filter, true);
  if (why !== undefined) {
    throw new KvError("INVALID_KEY", `invalid key filter ${JSON.stringify(filter)}: ${why}`);
  }
}

export function isLiteralFilter(filter: string): boolean {
  return !filter.split(".").some((t) => t === "*" || t === ">");
}

function invalidConfig(bucket: string, what: string): KvError {
  return new KvError("INVALID_CONFIG", `bucket ${JSON.stringify(bucket)}: ${what}`);
}

/**
 * Fills defaults and checks ranges. `replicas` defaults to 0, "the cluster's voter
 * count": every bucket lives in the one Raft group, so that is the only count there is
 * (a `replicas` naming another count is refused where the count is known: at apply,
 * against the voter count the leader stamped on the command).
 */
export function normalizeBucketConfig(input: BucketConfigInput): BucketConfig {
  if (input === null || typeof input !== "object") {
    throw new KvError("INVALID_CONFIG", "bucket config must be an object");
  }
  const config: BucketConfig = {
    bucket: input.bucket,
    history: input.history ?? 1,
    ttlMs: input.ttlMs ?? 0,
    maxValueSize: input.maxValueSize ?? -1,
    maxBytes: input.maxBytes ?? -1,
    replicas: input.replicas ?? 0,
    description: input.description ?? "",
  };
  validateBucketConfig(config);
  return config;
}

/** Checks a complete config (as carried by a command). */
export function validateBucketConfig(config: BucketConfig): void {
  validateBucketName(config.bucket);
  for (const field of BUCKET_CONFIG_FIELDS) {
    const why = bucketConfigProblem(field, config[field]);
    if (why !== undefined) throw invalidConfig(config.bucket, why);
  }
}

/**
 * Whether creating `b` over the existing `a` is a no-op. `replicas` is left out: it is
 * not the bucket's to choose (every bucket has every voter, and the count changes with
 * membership), so a stored 3 and a requested 0 or 4 describe the same bucket.
 */
export function sameBucketConfig(a: BucketConfig, b: BucketConfig): boolean {
  return (
    a.bucket === b.bucket &&
    a.history === b.history &&
    a.ttlMs === b.ttlMs &&
    a.maxValueSize === b.maxValueSize &&
    a.maxBytes === b.maxBytes &&
    a.description === b.description
  );
}

/** The value size limit in force for a bucket. */
export function valueLimitBytes(config: BucketConfig): number {
  return config.maxValueSize === -1 ? SERVER_MAX_VALUE_BYTES : config.maxValueSize;
}
