/**
 * The ranges of a bucket's config (DESIGN.md section 1, SEMANTICS.md), one definition
 * for the three places that check one: the SDK before it sends a config, the server's
 * proposer, and kvapi at apply. Nothing is coerced: a value that is not an integer in
 * range ("30s", "10MB", 1.7, NaN, a number beyond 2^53) is INVALID_CONFIG naming the
 * field and the value as given, so what one end refuses the other refuses alike.
 */
import type { BucketConfig } from "./types.js";

export const MAX_HISTORY = 64;
/** The largest value any bucket accepts; the wire frame limit sits above it. */
export const SERVER_MAX_VALUE_BYTES = 1024 * 1024;
export const MAX_DESCRIPTION_BYTES = 4096;

/** The fields of a config besides its name, as BucketConfig spells them. */
export type BucketConfigField = Exclude<keyof BucketConfig, "bucket">;

export const BUCKET_CONFIG_FIELDS: readonly BucketConfigField[] = [
  "history",
  "ttlMs",
  "maxValueSize",
  "maxBytes",
  "replicas",
  "description",
];

const encoder = new TextEncoder();

/** A value as an error message shows it: strings quoted, so `"5"` and `5` differ. */
export function shownValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (value !== null && typeof value === "object") {
    try {
      return JSON.stringify(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

function isInt(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n);
}

/**
 * Why `value` is not a valid `field` (undefined = it is). `ttlMs` is named `ttl`, the
 * name users know it by (the SDK's option and the README).
 */
export function bucketConfigProblem(field: BucketConfigField, value: unknown): string | undefined {
  const got = `got ${shownValue(value)}`;
  switch (field) {
    case "history":
      return isInt(value) && value >= 1 && value <= MAX_HISTORY
        ? undefined
        : `history must be an integer 1..${MAX_HISTORY} (revisions kept per key), ${got}`;
    case "ttlMs":
      return isInt(value) && value >= 0
        ? undefined
        : `ttl must be an integer number of milliseconds >= 0 (0 = forever), ${got}`;
    case "maxValueSize":
      return isInt(value) && (value === -1 || (value >= 1 && value <= SERVER_MAX_VALUE_BYTES))
        ? undefined
        : `maxValueSize must be -1 (the server's limit, ${SERVER_MAX_VALUE_BYTES} bytes) or an integer number of bytes 1..${SERVER_MAX_VALUE_BYTES}, ${got}`;
    case "maxBytes":
      return isInt(value) && (value === -1 || value >= 1)
        ? undefined
        : `maxBytes must be -1 (unlimited) or an integer number of bytes >= 1, ${got}`;
    case "replicas":
      return isInt(value) && value >= 0
        ? undefined
        : `replicas must be an integer, the cluster's voter count (0 = that count), ${got}`;
    case "description":
      if (typeof value !== "string") return `description must be a string, ${got}`;
      return encoder.encode(value).length <= MAX_DESCRIPTION_BYTES
        ? undefined
        : `description must be at most ${MAX_DESCRIPTION_BYTES} bytes, got ${encoder.encode(value).length}`;
  }
}
