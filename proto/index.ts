/**
 * proto's public surface (see README.md): the schemas, their loader, the error codes
 * and the shapes and codecs shared by the server and the client. Re-exports only;
 * every module behind it is browser-safe (client/browser_safe.test.ts), and a bundler
 * drops the schemas the SDK does not use.
 */
export { AssertionError, assert, assertIn, isAssertionError } from "./assert.js";
export { backoffDelayMs } from "./backoff.js";
export {
  BUCKET_CONFIG_FIELDS,
  type BucketConfigField,
  bucketConfigProblem,
  MAX_DESCRIPTION_BYTES,
  MAX_HISTORY,
  SERVER_MAX_VALUE_BYTES,
  shownValue,
} from "./bucket_config.js";
export {
  boolField,
  bytesField,
  bytesOf,
  clusterStatusFromWire,
  clusterStatusToWire,
  configFromWire,
  configToWire,
  decodeClientFrame,
  decodeServerFrame,
  encodeClientFrame,
  encodeServerFrame,
  entryFromWire,
  entryToWire,
  intField,
  listField,
  messageField,
  messageListField,
  optionalIntField,
  optionalStringField,
  PROTOCOL_VERSION,
  safeInt,
  safeIntOr,
  statusFromWire,
  statusToWire,
  stringField,
  stringListField,
  type WireObject,
  WriteOp,
} from "./client_codec.js";
export {
  type ClientRequest,
  type ClientRequestType,
  type DecodedClientFrame,
  decodeClientRequest,
  type WriteRequest,
} from "./client_requests.js";
export {
  decodeServerAnswer,
  encodeServerAnswer,
  type ServerAnswer,
  type ServerAnswerType,
  type ServerMessage,
  type ServerReply,
} from "./client_responses.js";
export {
  ERROR_CODES,
  type ErrorCode,
  isErrorCode,
  isKvError,
  KvError,
  type KvErrorDetails,
  PEER_PORT_CLOSE_REASON,
} from "./errors.js";
export { descriptor as clientSchema } from "./generated/client.js";
export { descriptor as kvSchema } from "./generated/kv.js";
export { descriptor as logSchema } from "./generated/log.js";
export { descriptor as peerSchema } from "./generated/peer.js";
export { descriptor as raftSchema } from "./generated/raft.js";
export { descriptor as raftlogSchema } from "./generated/raftlog.js";
export { isLoopbackHost } from "./hosts.js";
export { messageType, rootOf } from "./schema.js";
export {
  decodeSnapshotHeader,
  encodeSnapshotHeader,
  type SnapshotHeader,
} from "./snapshot_header.js";
export { atEndOfTurn, type Corkable, holdWritesForTurn, socketOf } from "./turn_cork.js";
export type * from "./types.js";
export {
  errorFromWire,
  errorToWire,
  type WireError,
  type WireErrorDetails,
} from "./wire_errors.js";
