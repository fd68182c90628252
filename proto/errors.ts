/**
 * The one error type of streamkv. Every operating error (bad input, a failed
 * compare-and-set, a missing bucket, a lost connection) is a `KvError` with a
 * stable `code`; the code crosses the wire unchanged, so a client sees the same
 * code the server raised. Programmer errors are assertions, not `KvError`s.
 *
 * This file lives in proto/ because the code list is part of the protocol:
 * server modules and the browser-safe client both import it, and it imports
 * nothing.
 */

export const ERROR_CODES = [
  // names and configuration
  "INVALID_BUCKET",
  "INVALID_KEY",
  "INVALID_CONFIG",
  "INVALID_OPTION",
  "INVALID_ARGUMENT",
  // buckets
  "BUCKET_NOT_FOUND",
  "BUCKET_EXISTS",
  "BUCKET_FULL",
  // node-wide quotas (--max-buckets, --max-stored-bytes)
  "QUOTA_EXCEEDED",
  // compare-and-set
  "KEY_EXISTS",
  "WRONG_LAST_REVISION",
  // limits
  "VALUE_TOO_LARGE",
  "FRAME_TOO_LARGE",
  // watches
  "REVISION_COMPACTED",
  "SLOW_CONSUMER",
  // cluster and transport
  "NO_LEADER",
  "NOT_LEADER",
  "OVERLOADED",
  "TIMEOUT",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "CONNECTION_CLOSED",
  "MALFORMED_FRAME",
  "UNKNOWN_MESSAGE",
  "SHUTTING_DOWN",
  // the node's data directory is full: it stopped serving until space is freed
  "DISK_FULL",
  // the client refused to send a credential in clear text (never sent by a server)
  "INSECURE_TRANSPORT",
  // stream log
  "STREAM_NOT_FOUND",
  "STREAM_EXISTS",
  "INVALID_SUBJECT",
  "MESSAGE_TOO_LARGE",
  "STREAM_FULL",
  "CORRUPT_RECORD",
  // anything else the server could not classify
  "INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Extra facts some errors carry, e.g. the current revision of a failed CAS. */
export interface KvErrorDetails {
  /** The key's latest revision (0 if none) for KEY_EXISTS / WRONG_LAST_REVISION. */
  currentRevision?: number;
  /** The oldest retained revision for REVISION_COMPACTED. */
  firstRevision?: number;
  /** The last revision delivered to a watcher ended with SLOW_CONSUMER. */
  lastRevision?: number;
  /** The node the client should talk to instead, when known. */
  leaderId?: string;
}

export class KvError extends Error {
  override readonly name = "KvError";
  readonly code: ErrorCode;
  readonly details: KvErrorDetails;

  constructor(code: ErrorCode, message: string, details: KvErrorDetails = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
  }
}

const codeSet: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: string): value is ErrorCode {
  return codeSet.has(value);
}

export function isKvError(err: unknown, code?: ErrorCode): err is KvError {
  return err instanceof KvError && (code === undefined || err.code === code);
}

/**
 * What the peer port tells a client that dialed it by mistake: the close reason of its
 * WebSocket (and the body of a plain HTTP answer). Shared because the node sends it and
 * the SDK recognises it; it names no node. At most 123 bytes (a close reason's limit).
 */
export const PEER_PORT_CLOSE_REASON =
  "this is the peer port of a streamkv node; clients use the client port, default 7420";
