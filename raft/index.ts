/**
 * Raft's public surface (see README.md): the driver and the seams it is built from
 * (storage, transport, ticker, state machine, snapshots), the message codec, the
 * in-memory storage, the seeded PRNG and the canonical text form. Other folders import
 * raft from here; test support (test_cluster.ts, storage_contract.ts) is imported by
 * tests directly so that product code never loads vitest.
 */
export { decodeConfChange, decodeMessage, encodeConfChange, encodeMessage } from "./codec.js";
export { applyConfChange, type RaftConfig, RaftCore, type StateMachineSnapshot } from "./core.js";
export { describeEntries, describeEntry, describeMessage, describeReady } from "./describe.js";
export {
  type DriverEvent,
  type DriverListener,
  RaftDriver,
  type RaftDriverOptions,
  type RaftStateMachine,
  type RaftTicker,
  type RaftTransport,
} from "./driver.js";
export { FAIL_POINTS, type FailPointName, FailPoints, InjectedCrash } from "./fail_points.js";
export {
  type ApplyConfChange,
  assertConf,
  assertEntry,
  assertHardState,
  assertSnapshotMeta,
  copyConf,
  copyHardState,
  copySnapshotMeta,
  emptyHardState,
  MemoryRaftLog,
  type MemoryRaftLogOptions,
  MemoryRaftStorage,
  type MemoryRaftStorageOptions,
} from "./memory_storage.js";
export { chance, fork, intBetween, type Prng, pick, Sfc32 } from "./prng.js";
export {
  type BytesSnapshotMachine,
  bytesSnapshotStore,
  type SnapshotSink,
  type SnapshotSource,
  type SnapshotStore,
} from "./snapshot.js";
export type { SnapshotStats } from "./snapshot_transfer.js";
export {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type InitialState,
  type NodeId,
  type PersistRequest,
  type RaftLogReader,
  type RaftStorage,
  type SnapshotMeta,
} from "./storage.js";
export {
  type ConfChange,
  ConfChangeType,
  emptyMessage,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
  type ProgressStatus,
  RAFT_WIRE_MAX,
  type RaftStatus,
  type ReadState,
  type Ready,
  type Role,
  type SnapshotChunk,
  type SnapshotToInstall,
} from "./types.js";
