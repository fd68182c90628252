/**
 * The server's public surface (see README.md) for cli/ and bench/: the process entry
 * point, its configuration, and starting a node in-process; for the KV simulator
 * (kvsim/), the replicated service on stores and a clock it supplies.
 */

export { newToken, parseTokensFile, sha256Hex } from "./auth.js";
export { BackupFileReader, BackupFileWriter } from "./backup_file.js";
export { type RestoreOptions, type RestoreResult, restoreBackup } from "./backup_restore.js";
export {
  type BackupBucketSummary,
  type BackupDescription,
  describeBackup,
} from "./backup_status.js";
export type { Cancel, Clock } from "./clock.js";
export {
  ConfigError,
  DEFAULT_MAX_FRAME_BYTES,
  deriveClusterId,
  type PeerAddress,
  parseServerConfig,
  type ServerConfig,
  serverUsage,
} from "./config.js";
export { type ForwardFrame, forwardFromWire, forwardToWire } from "./forward_wire.js";
export type { Io } from "./io.js";
export { jsonLogger, type Logger, type LogLevel, silentLogger } from "./log.js";
export { runServer } from "./main.js";
export { isValidNodeId, type ParsedPeerAddress, parsePeerAddress } from "./peer_address.js";
export { newNonce } from "./peer_auth.js";
export {
  type NodeStores,
  RaftKvService,
  type RaftServiceStoreOptions,
} from "./raft_service.js";
export { type RunningNode, startNode } from "./server.js";
export { type DataDirVerifyReport, verifyDataDir } from "./verify_data.js";
