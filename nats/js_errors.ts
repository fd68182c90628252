/**
 * JetStream API errors as nats-server answers them (`{"code","err_code","description"}`,
 * codes of nats-server's server/errors.json), and the one mapping from streamkv's
 * KvError codes onto them. Clients match on `err_code` (10059 stream not found, 10071
 * wrong last sequence, ...), so each streamkv code lands on the code a NATS client
 * already handles.
 */
import type { KvError } from "../proto/index.js";

export interface JsApiError {
  code: number;
  err_code: number;
  description: string;
}

const e = (code: number, err_code: number, description: string): JsApiError => ({
  code,
  err_code,
  description,
});

export const JS_ERRORS = {
  streamNotFound: () => e(404, 10059, "stream not found"),
  streamNameExists: () =>
    e(400, 10058, "stream name already in use with a different configuration"),
  streamMismatch: () => e(400, 10056, "stream name in subject does not match request"),
  wrongLastSequence: (seq: number) => e(400, 10071, `wrong last sequence: ${seq}`),
  noMessageFound: () => e(404, 10037, "no message found"),
  consumerNotFound: () => e(404, 10014, "consumer not found"),
  messageTooLarge: () => e(400, 10054, "message size exceeds maximum allowed"),
  storeFailed: (why: string) => e(503, 10077, why),
  invalidConfig: (why: string) => e(500, 10052, why),
  streamUpdate: (why: string) => e(500, 10069, why),
  consumerCreate: (why: string) => e(500, 10012, why),
  badRequest: (why?: string) =>
    e(400, 10003, why === undefined ? "bad request" : `bad request: ${why}`),
  invalidJson: (why: string) => e(400, 10025, `invalid JSON: ${why}`),
  expectedStreamMismatch: () => e(400, 10060, "expected stream does not match"),
  messageTtlDisabled: () => e(400, 10166, "per-message TTL is disabled"),
  messageDeleteDenied: () => e(500, 10057, "message delete not permitted (deny_delete)"),
  unavailable: (why?: string) =>
    e(
      503,
      10008,
      why === undefined
        ? "JetStream system temporarily unavailable"
        : `JetStream system temporarily unavailable: ${why}`,
    ),
} as const;

/** The JetStream error a client of nats-server would see for this streamkv error. */
export function jsErrorOf(err: KvError): JsApiError {
  switch (err.code) {
    case "BUCKET_NOT_FOUND":
    case "STREAM_NOT_FOUND":
      return JS_ERRORS.streamNotFound();
    case "BUCKET_EXISTS":
    case "STREAM_EXISTS":
      return JS_ERRORS.streamNameExists();
    case "KEY_EXISTS":
    case "WRONG_LAST_REVISION":
      return JS_ERRORS.wrongLastSequence(err.details.currentRevision ?? 0);
    case "VALUE_TOO_LARGE":
    case "MESSAGE_TOO_LARGE":
    case "FRAME_TOO_LARGE":
      return JS_ERRORS.messageTooLarge();
    case "BUCKET_FULL":
    case "STREAM_FULL":
      return JS_ERRORS.storeFailed("maximum bytes exceeded");
    case "QUOTA_EXCEEDED":
      return JS_ERRORS.storeFailed(err.message);
    case "INVALID_CONFIG":
    case "INVALID_BUCKET":
    case "INVALID_OPTION":
      return JS_ERRORS.invalidConfig(err.message);
    case "INVALID_KEY":
    case "INVALID_ARGUMENT":
    case "INVALID_SUBJECT":
    case "MALFORMED_FRAME":
    case "UNKNOWN_MESSAGE":
      return JS_ERRORS.badRequest(err.message);
    case "REVISION_COMPACTED":
    case "SLOW_CONSUMER":
      return JS_ERRORS.consumerCreate(err.message);
    default:
      // NO_LEADER, NOT_LEADER, TIMEOUT, OVERLOADED, SHUTTING_DOWN, ...: worth a retry.
      return JS_ERRORS.unavailable(err.message);
  }
}
