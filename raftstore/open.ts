/**
 * A node's Raft storage: `LevelRaftStorage` in the node's LevelDB with the core's own
 * ConfChange fold, taken from raft/ here so the node need not carry it.
 */
import { applyConfChange, type ConfState } from "../raft/index.js";
import { type AnyClassicLevel, LevelRaftStorage } from "./level_raft_storage.js";

export function openNodeRaftStorage(
  db: AnyClassicLevel,
  initialConf: ConfState,
): Promise<LevelRaftStorage> {
  return LevelRaftStorage.open(db, { initialConf, applyConfChange });
}
