/**
 * The SDK's side of the client protocol: the shared codec (proto/client_codec.ts and the
 * typed answers of proto/client_responses.ts, which the server uses too) plus the mapping
 * to the SDK's public types where they differ (`ttl` instead of the wire's `ttlMs`).
 * Browser-safe like the codec.
 */

import { configToWire as codecConfigToWire, type WireObject } from "../proto/client_codec.js";
import type { ServerAnswer, ServerAnswerType } from "../proto/client_responses.js";
import { KvError } from "../proto/errors.js";
import type { BucketInfo } from "../proto/types.js";
import type { KeyValueConfig, KeyValueStatus } from "./types.js";

export {
  decodeServerFrame,
  encodeClientFrame,
  PROTOCOL_VERSION,
  type WireObject,
  WriteOp,
} from "../proto/client_codec.js";
export {
  decodeServerAnswer,
  type ServerAnswer,
  type ServerMessage,
} from "../proto/client_responses.js";
export { errorFromWire } from "../proto/wire_errors.js";

export function configToWire(c: KeyValueConfig): WireObject {
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
