/**
 * The SDK's side of the client protocol: the shared codec (proto/client_codec.ts and the
 * typed answers of proto/client_responses.ts, which the server uses too) plus the mapping
 * to the SDK's public types where they differ (`ttl` instead of the wire's `ttlMs`).
 * Browser-safe like the codec.
 */

import {
  type BucketInfo,
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
