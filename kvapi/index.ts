/**
 * The KV layer's public surface (see README.md): `KvStateMachine` applies the commands
 * Raft commits and serves reads and watches from the applied state; the command codec,
 * names and limits, the snapshot's applied-index record, and the public types.
 * Re-exports only.
 */
export {
  decodeCommand,
  decodeUnstampedCommand,
  encodeCommand,
  encodeUnstampedCommand,
  requestKey,
  stampCommand,
} from "./commands.js";
export { DEFAULT_DEDUPE_WINDOW } from "./dedupe.js";
export { type KvOptions, KvStateMachine } from "./kv_state_machine.js";
export type { KvLog } from "./log_port.js";
export {
  bucketOfStream,
  isValidBucketName,
  isValidKey,
  MAX_HISTORY,
  normalizeBucketConfig,
  SERVER_MAX_VALUE_BYTES,
  streamOf,
  validateBucketConfig,
  validateBucketName,
  validateFilter,
  validateKey,
  valueLimitBytes,
} from "./names.js";
export type { HistoryPage } from "./reads.js";
export { APPLIED_META_KEY, appliedIndexOf, checkSnapshotMeta } from "./snapshot.js";
export type * from "./types.js";
export { SubjectTree } from "./watch/subject_tree.js";
