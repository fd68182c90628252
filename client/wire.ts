/**
 * The SDK's side of the client protocol: the shared codec (proto/client_codec.ts and the
 * typed answers of proto/client_responses.ts, which the server uses too) plus the mapping
 * to the SDK's public types where they differ (`ttl` instead of the wire's `ttlMs`).
 * Browser-safe like the codec.
 */

import {
  type BucketConfigField,
  type BucketInfo,
  bucketConfigProblem,
  configToWire as codecConfigToWire,
  KvError,
  type ServerAnswer,
  type ServerAnswerType,
  type WireObject,
} from "../proto/index.js";
import type { KeyValueConfig, KeyValueStatus } from "./types.js";

export {
  decodeServerAnswer,
  decodeServerFrame,
  encodeClientFrame,
  errorFromWire,
  PROTOCOL_VERSION,
  type ServerAnswer,
  type ServerMessage,
  type WireObject,
  WriteOp,
} from "../proto/index.js";

/** The SDK's config fields, by the name BucketConfig gives each ("ttl" is "ttlMs"). */
const CONFIG_FIELDS = new Map<string, BucketConfigField | "bucket">([
  ["bucket", "bucket"],
  ["history", "history"],
  ["ttl", "ttlMs"],
  ["maxValueSize", "maxValueSize"],
  ["maxBytes", "maxBytes"],
  ["replicas", "replicas"],
  ["description", "description"],
]);

/**
 * The config on the wire, after the checks the server makes too (proto/bucket_config.ts):
 * protobufjs would otherwise turn `ttl: "30s"` into 30, `1.7` into 1, `"5x"` into 0.
 * An unknown field (a typo like `maxAge`) is refused rather than ignored.
 */
export function configToWire(c: KeyValueConfig): WireObject {
  for (const [name, value] of Object.entries(c)) {
    const field = CONFIG_FIELDS.get(name);
    if (field === undefined) {
      throw new KvError(
        "INVALID_CONFIG",
        `createKeyValue: unknown config field ${JSON.stringify(name)} (known: ${[...CONFIG_FIELDS.keys()].join(", ")})`,
      );
    }
    const why =
      field === "bucket" || value === undefined ? undefined : bucketConfigProblem(field, value);
    if (why !== undefined) throw new KvError("INVALID_CONFIG", `createKeyValue: ${why}`);
  }
  const { ttl, ...rest } = c;
  return codecConfigToWire(ttl === undefined ? rest : { ...rest, ttlMs: ttl });
}

export function statusOf(s: BucketInfo): KeyValueStatus {
  const { ttlMs, ...rest } = s;
  return { ...rest, ttl: ttlMs };
}

/** The answer of `type` to `what`; MALFORMED_FRAME when the server answered something else. */
export function expectAnswer<T extends ServerAnswerType>(
  answer: ServerAnswer,
  type: T,
  what: string,
): Extract<ServerAnswer, { type: T }> {
  if (!isAnswer(answer, type)) {
    throw new KvError(
      "MALFORMED_FRAME",
      `${what}: expected ${type}, the server answered ${answer.type}`,
    );
  }
  return answer;
}

function isAnswer<T extends ServerAnswerType>(
  answer: ServerAnswer,
  type: T,
): answer is Extract<ServerAnswer, { type: T }> {
  return answer.type === type;
}
