/** Raft's storage on LevelDB: the public surface of raftstore/ (see README.md). */
export {
  type AnyClassicLevel,
  LevelRaftStorage,
  type LevelRaftStorageOptions,
  type LevelRaftStorageStats,
} from "./level_raft_storage.js";
export { openNodeRaftStorage } from "./open.js";
