/**
 * The core's public types: messages, the Ready handed to the driver, status.
 * Message names follow etcd-io/raft (MsgApp = AppendEntries, MsgVote =
 * RequestVote, MsgSnap = InstallSnapshot, ...) so logs read like the paper.
 */
import type { ConfState, Entry, HardState, NodeId, SnapshotMeta } from "./storage.js";

export type { ConfState, Entry, HardState, NodeId, SnapshotMeta } from "./storage.js";

export const MESSAGE_TYPES = [
  "MsgApp",
  "MsgAppResp",
  "MsgVote",
  "MsgVoteResp",
  "MsgPreVote",
  "MsgPreVoteResp",
  "MsgHeartbeat",
  "MsgHeartbeatResp",
  "MsgSnap",
  "MsgSnapResp",
  "MsgReadIndex",
  "MsgReadIndexResp",
  "MsgTimeoutNow",
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** One chunk of an InstallSnapshot transfer. */
export interface SnapshotChunk {
  meta: SnapshotMeta;
  /** Byte offset of `data` within the whole snapshot. */
  offset: number;
  data: Uint8Array;
  /** This chunk ends the snapshot. */
  done: boolean;
}

/**
 * One message between peers. Unused fields are 0/empty, as in etcd's raftpb:
 * - MsgApp: `index`/`logTerm` locate the entry before `entries`; `commit` is the leader's.
 * - MsgAppResp: `index` is the last index now matching (or, with `reject`, the rejected
 *   `index`); a rejection carries `rejectHint` and `logTerm` (the follower's term there)
 *   for fast backtracking.
 * - MsgVote/MsgPreVote: `index`/`logTerm` are the candidate's last entry; `transfer` is
 *   set when a leadership transfer asked for the election (lease checks are skipped).
 * - MsgHeartbeat(Resp), MsgReadIndex(Resp): `context` is a ReadIndex round or request id.
 * - MsgSnap: `snapshot` is one chunk. The core emits MsgSnap with empty `data`; the
 *   driver fills `data` and `done` from the state machine's image before sending.
 * - MsgSnapResp: acknowledges `snapshotOffset` = bytes stored so far of the snapshot
 *   whose last index is `snapshotIndex` (offset 0 restarts the transfer). Its own
 *   fields, so that `index` and `commit` mean one thing each; raft/codec.ts still reads
 *   and writes them in `index`/`commit` for nodes from before the fields existed.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  context: number;
  transfer: boolean;
  snapshot: SnapshotChunk | null;
  /** MsgSnapResp: the last index of the snapshot acknowledged (>= 1). */
  snapshotIndex: number;
  /** MsgSnapResp: bytes of that snapshot stored so far. */
  snapshotOffset: number;
}

export type Role = "follower" | "precandidate" | "candidate" | "leader";

/** A ReadIndex request that is safe to answer once `appliedIndex >= index`. */
export interface ReadState {
  index: number;
  /** The id the driver passed to `readIndex()`. */
  context: number;
}

/** A snapshot to install into the state machine: its chunks came in `snapshotChunks`. */
export interface SnapshotToInstall {
  meta: SnapshotMeta;
}

/**
 * What the driver must do, in this order (the ordering contract, enforced by
 * raft/driver.ts and by nothing else):
 *  0. Write `snapshotChunks` (received from the leader, in order; offset 0 starts
 *     a new snapshot) to the state machine's snapshot sink.
 *  1. If `snapshot` is set, install the received snapshot durably, then
 *  2. persist `snapshot.meta`, `entries` and `hardState` in one durable write
 *     (fsync). Readies are persisted in the order they were handed out.
 *     `earlyMessages` may be sent at once, before or while this write runs
 *     (Raft thesis §10.2.1): they are the leader's AppendEntries, heartbeats
 *     and snapshot chunks, and the core puts a message there only when its
 *     term and vote are already durable (an earlier Ready's write finished).
 *     They promise nothing about this node's disk; the leader counts itself
 *     toward a commit only after `persisted(ready)`.
 *  3. When the write is durable, call `persisted(ready)` (readies in the order
 *     handed out; the leader's own matchIndex moves here), and only then send
 *     `messages`: votes, append acknowledgements and everything else must not
 *     leave before what they promise is on disk.
 *  4. Apply `committed` in order, each exactly once. They are always persisted
 *     by step 2 of this or an earlier Ready; apply may start as soon as the
 *     writes that hold them are durable, without waiting for this Ready's
 *     hardState (a committed entry is already durable on a majority).
 *  5. Answer `readStates` once the state machine has applied their index.
 *  6. Call `advance(ready)`; readies are advanced in the order handed out
 *     (`advance` calls `persisted` first if the driver did not).
 * The driver may call `ready()` again before advancing the previous one (so
 * several writes can share one fsync); each Ready holds only new work.
 */
export interface Ready {
  /** Sequence number, starting at 1 per core instance. */
  seq: number;
  hardState: HardState | null;
  entries: Entry[];
  snapshotChunks: SnapshotChunk[];
  snapshot: SnapshotToInstall | null;
  /** Leader messages that may leave before this Ready's write is durable (step 2). */
  earlyMessages: Message[];
  /** Messages that leave only after this Ready's write is durable (step 3). */
  messages: Message[];
  committed: Entry[];
  readStates: ReadState[];
  /** Changed role or leader since the previous Ready (informational). */
  softState: { role: Role; leaderId: NodeId | null; term: number } | null;
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: "probe" | "replicate" | "snapshot";
  inflight: number;
  recentActive: boolean;
  isLearner: boolean;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  votedFor: NodeId | null;
  leaderId: NodeId | null;
  commitIndex: number;
  appliedIndex: number;
  firstIndex: number;
  lastIndex: number;
  conf: ConfState;
  leadTransferee: NodeId | null;
  /** Only on the leader. */
  progress: Record<NodeId, ProgressStatus>;
  /**
   * Messages dropped because their sender broke Raft itself (a second leader in this
   * node's term as leader, entries that conflict with what this node committed), and
   * the last one described. Never counts in a correct cluster: the simulators require 0.
   */
  violations: { count: number; last: string };
}

/**
 * The largest term, index or commit a peer may send (2^52): the codec refuses anything
 * above it as malformed, so a hostile or buggy peer cannot push a node near 2^53, where
 * its own `term + 1` would stop being a safe integer. From the bound, a node needs 2^52
 * more elections of its own before that could happen.
 */
export const RAFT_WIRE_MAX = 2 ** 52;

export const ConfChangeType = {
  AddLearner: 0,
  PromoteLearner: 1,
  RemoveServer: 2,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** The payload of an EntryType.ConfChange entry: the change and the membership it yields. */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** Membership after the change; a node uses it as soon as the entry is in its log. */
  conf: ConfState;
  /**
   * Opaque to Raft, carried in the committed entry (etcd's ConfChange.Context): node/
   * puts an added member's peer address here, so every member learns it from the log.
   */
  context?: Uint8Array;
}

export function emptyMessage(type: MessageType, from: NodeId, to: NodeId, term: number): Message {
  return {
    type,
    from,
    to,
    term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: 0,
    transfer: false,
    snapshot: null,
    snapshotIndex: 0,
    snapshotOffset: 0,
  };
}
