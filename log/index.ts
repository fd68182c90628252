/** The stream log's public surface (see README.md). */

export { isValidStreamName, MAX_MSGS_PER_SUBJECT } from "./config.js";
/** The checksum of every stored record (backup files use it for their header too). */
export { crc32c } from "./crc32c.js";
/** Drops the index checkpoint as a crash leaves none (benches and tests of the scan path). */
export { deleteIndexCheckpoint } from "./index_checkpoint.js";
/** Every key the log owns lies in this range (`log/` prefix); other record kinds sharing the db must stay out of it. */
export { ALL_RANGE as LOG_KEY_RANGE } from "./keys.js";
export {
  CORRUPT_MARKER,
  damageError,
  type LevelDbDamage,
  type LevelDbFilesReport,
  type LevelDbVerifyReport,
  type LiveSet,
  type LiveTable,
  liveSetOf,
  TableReadBuffer,
  verifyLevelDb,
  verifyLevelDbFiles,
  verifyTable,
} from "./leveldb_files.js";
export { DEFAULT_MAX_MESSAGE_SIZE_BYTES } from "./log_state.js";
export {
  DEFAULT_LOCAL_META_PREFIXES,
  LOG_SNAPSHOT_FORMAT,
  type LogSnapshotOptions,
  LogSnapshotReader,
  LogSnapshotWriter,
} from "./snapshot.js";
export {
  LogSnapshotSummarizer,
  type LogSnapshotSummary,
  type StreamSummary,
} from "./snapshot_summary.js";
export { StreamLog, type StreamLogOptions } from "./stream_log.js";
export {
  compileFilter,
  isLiteralSubject,
  isValidFilter,
  isValidSubject,
  MAX_SUBJECT_BYTES,
  matchSubject,
  validateFilter,
  validateSubject,
} from "./subjects.js";
export * from "./types.js";
export type { LevelDb } from "./write_queue.js";
