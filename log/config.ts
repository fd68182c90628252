/**
 * Validation of stream configs. A config is checked in full before anything is
 * staged, so an invalid one changes nothing and raises `INVALID_CONFIG`.
 */
import { KvError } from "../proto/index.js";
import type { StreamConfig } from "./types.js";

/**
 * Stream names allow 512 characters so that a layer on top can add a prefix
 * (the KV layer's "KV_") and still offer its users 256-character names.
 */
export const MAX_STREAM_NAME_CHARS = 512;
const NAME = new RegExp(`^[a-zA-Z0-9_-]{1,${MAX_STREAM_NAME_CHARS}}$`);

/** Largest allowed maxMsgsPerSubject (the KV history limit). */
export const MAX_MSGS_PER_SUBJECT = 64;

function invalid(name: unknown, why: string): KvError {
  return new KvError("INVALID_CONFIG", `invalid config for stream ${JSON.stringify(name)}: ${why}`);
}

export function isValidStreamName(name: unknown): name is string {
  return typeof name === "string" && NAME.test(name);
}

export function validateStreamName(name: unknown): asserts name is string {
  if (!isValidStreamName(name)) {
    throw new KvError(
      "INVALID_CONFIG",
      `invalid stream name ${JSON.stringify(name)}: use 1..${MAX_STREAM_NAME_CHARS} of [a-zA-Z0-9_-]`,
    );
  }
}

/** -1 (unlimited) or a safe integer >= min. */
function limit(config: StreamConfig, field: keyof StreamConfig, min: number, max?: number): void {
  const value = config[field];
  const ok =
    value === -1 ||
    (Number.isSafeInteger(value) &&
      (value as number) >= min &&
      (max === undefined || (value as number) <= max));
  if (!ok) {
    const range = max === undefined ? `>= ${min}` : `${min}..${max}`;
    throw invalid(config.name, `${field} must be -1 (unlimited) or ${range}, got ${String(value)}`);
  }
}

/** Returns a normalized copy (only the known fields) or throws INVALID_CONFIG. */
export function validateConfig(config: StreamConfig): StreamConfig {
  if (typeof config !== "object" || config === null) throw invalid(undefined, "not an object");
  validateStreamName(config.name);
  limit(config, "maxMsgsPerSubject", 1, MAX_MSGS_PER_SUBJECT);
  if (!Number.isSafeInteger(config.maxAgeMs) || config.maxAgeMs < 0) {
    throw invalid(
      config.name,
      `maxAgeMs must be 0 (forever) or more, got ${String(config.maxAgeMs)}`,
    );
  }
  limit(config, "maxBytes", 1);
  limit(config, "maxMsgs", 1);
  limit(config, "maxMsgSize", 0);
  if (config.discard !== "old" && config.discard !== "new") {
    throw invalid(config.name, `discard must be "old" or "new", got ${String(config.discard)}`);
  }
  return {
    name: config.name,
    maxMsgsPerSubject: config.maxMsgsPerSubject,
    maxAgeMs: config.maxAgeMs,
    maxBytes: config.maxBytes,
    maxMsgs: config.maxMsgs,
    maxMsgSize: config.maxMsgSize,
    discard: config.discard,
  };
}

export function sameConfig(a: StreamConfig, b: StreamConfig): boolean {
  return (
    a.name === b.name &&
    a.maxMsgsPerSubject === b.maxMsgsPerSubject &&
    a.maxAgeMs === b.maxAgeMs &&
    a.maxBytes === b.maxBytes &&
    a.maxMsgs === b.maxMsgs &&
    a.maxMsgSize === b.maxMsgSize &&
    a.discard === b.discard
  );
}
