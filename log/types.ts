/**
 * Public types of the stream log (log/). The KV layer (kvapi/) and the node
 * driver use only what is declared here; the on-disk key layout stays private
 * to log/.
 */

/** What happens when a stream would exceed maxMsgs or maxBytes. */
export type DiscardPolicy = "old" | "new";

/** The operation a message records (the KV layer's PUT / DEL / PURGE). */
export type Operation = "PUT" | "DEL" | "PURGE";

export interface StreamConfig {
  /** Stream name, `^[a-zA-Z0-9_-]+$`, 1..256 chars. */
  name: string;
  /** Newest messages kept per subject (the KV history): 1..64, or -1 = unlimited. */
  maxMsgsPerSubject: number;
  /** Messages older than this are removed by `expire`; 0 = forever. */
  maxAgeMs: number;
  /** Total payload bytes: >= 1, or -1 = unlimited. */
  maxBytes: number;
  /** Total messages: >= 1, or -1 = unlimited. */
  maxMsgs: number;
  /** Largest payload accepted: >= 0, or -1 = unlimited (the log's hard limit still applies). */
  maxMsgSize: number;
  /**
   * "new": reject appends that exceed maxMsgs/maxBytes (STREAM_FULL); "old": drop oldest.
   * The limits are judged after the append's own per-subject trim (so an overwrite that
   * replaces a subject's message can fit a full stream); a payload larger than maxBytes is
   * STREAM_FULL under either policy. `updateStream` applies tighter limits at once,
   * dropping the oldest messages whatever the policy (as NATS does).
   */
  discard: DiscardPolicy;
}

export interface AppendInput {
  /** A literal subject: dot-separated non-empty tokens, no wildcards. */
  subject: string;
  payload: Uint8Array;
  /** Defaults to "PUT". */
  operation?: Operation;
  /** Time assigned by the caller (later: by the Raft leader), ms since epoch. */
  timestampMs: number;
}

export interface StoredMessage {
  stream: string;
  seq: number;
  subject: string;
  payload: Uint8Array;
  operation: Operation;
  timestampMs: number;
}

export interface StreamState {
  /** Sequence of the oldest stored message; lastSeq + 1 when empty. */
  firstSeq: number;
  /** Highest sequence ever assigned (0 if none); never goes back, even after purge. */
  lastSeq: number;
  messages: number;
  /** Sum of payload bytes of stored messages. */
  bytes: number;
  /** Number of distinct subjects with at least one stored message. */
  subjects: number;
}

/** Removals as a resuming watch needs to know them (StreamLog.watchHorizon). */
export interface WatchHorizon {
  /** Highest seq ever removed, 0 if none: every stored seq above it is still stored. */
  removedHighSeq: number;
  /** Highest last seq of a subject whose every message was removed, 0 if none. */
  vanishedHighSeq: number;
}

export interface SubjectInfo {
  subject: string;
  /** Sequence of the subject's newest stored message. */
  lastSeq: number;
  operation: Operation;
  /** Stored messages of the subject. */
  messages: number;
}

export interface PurgeOptions {
  /** Only this subject (literal) or filter (wildcards). Omitted: every subject. */
  subject?: string;
  /** Keep this many newest messages of each matched subject (default 0). */
  keep?: number;
}

/**
 * Options of every mutation. A mutation is one atomic LevelDB write batch; `meta`
 * entries ride in the same batch (the node stores the Raft applied index there),
 * so a crash never leaves half an operation or an applied index without its data.
 */
export interface WriteOptions {
  /** Resolve only after the batch is synced to disk (LevelDB `sync: true`). */
  sync?: boolean;
  /** Caller records written atomically with the mutation. `null` deletes. */
  meta?: Record<string, Uint8Array | null>;
}

export interface IterateOptions {
  /** First sequence to visit (default: the stream's firstSeq). Without `toSeq`, messages appended while iterating may or may not be visited. */
  fromSeq?: number;
  /** Last sequence to visit, inclusive (default: no bound). */
  toSeq?: number;
  /** Subject filter with NATS wildcards (`*` one token, `>` one or more trailing). */
  filter?: string;
  /**
   * Only each subject's newest message at or below `toSeq` (NATS's last-per-subject
   * delivery), judged from the index before anything is read, so older messages of a
   * subject cost no read.
   */
  lastPerSubject?: boolean;
  /** Of those, only PUT messages (no DEL or PURGE markers). */
  putsOnly?: boolean;
}

/**
 * A group of mutations committed as one atomic LevelDB write batch.
 *
 * Mutations are validated and applied to the log's in-memory indexes
 * synchronously, so later calls in the same batch (and reads through the log)
 * see them at once; a call that throws has changed nothing. `commit` writes the
 * whole batch; the KV layer applies one Raft entry (append + history trim +
 * applied index + request-id record) as one batch. Only one batch may be open at
 * a time (the apply loop is the single writer); opening a second one before
 * `commit()` of the first was called is a programmer error. A batch cannot be
 * abandoned: its changes are already visible, so it must be committed. Commits
 * reach LevelDB in order; batches committed while a write is in flight share
 * the next LevelDB write (group commit), which is atomic as a whole.
 */
export interface LogBatch {
  createStream(config: StreamConfig): void;
  updateStream(config: StreamConfig): void;
  deleteStream(name: string): void;
  /** Returns the new message's sequence. Throws KvError on bad input or limits. */
  append(stream: string, input: AppendInput): number;
  /** Returns how many messages were removed. */
  purge(stream: string, options?: PurgeOptions): number;
  /** Removes messages with timestampMs <= nowMs - maxAgeMs; returns them (without payload reads). */
  expire(stream: string, nowMs: number): ExpiredMessage[];
  /** Removes one message by sequence; false if it was not stored. */
  removeMessage(stream: string, seq: number): boolean;
  putMeta(key: string, value: Uint8Array | null): void;
  /**
   * Ends one command of a batch that carries several: what only a whole command shows
   * (a subject that vanished: all its messages removed, none appended after) is judged
   * here, as `commit` does for the last one, so a log holds the same bytes however its
   * commands were grouped into batches.
   */
  endOfCommand(): void;
  commit(options?: { sync?: boolean }): Promise<void>;
}

export interface ExpiredMessage {
  seq: number;
  subject: string;
  operation: Operation;
  timestampMs: number;
}
