/**
 * The part of the stream log (log/index.ts `StreamLog`) that the KV layer uses.
 * Declared here structurally so kvapi depends on the log's contract, not its
 * class, and so the watch engine and tests can run against other sources.
 */
import type {
  IterateOptions,
  LogBatch,
  StoredMessage,
  StreamConfig,
  StreamState,
  SubjectInfo,
  WatchHorizon,
} from "../log/index.js";

export interface KvLog {
  batch(): LogBatch;
  streamConfig(name: string): StreamConfig | undefined;
  streamNames(): string[];
  state(name: string): StreamState;
  subjectInfo(stream: string, subject: string): SubjectInfo | undefined;
  subjects(stream: string, filter?: string): SubjectInfo[] | AsyncIterable<SubjectInfo>;
  /** Matching subjects > `after`, sorted, lazily (StreamLog.subjectsAfter). */
  subjectsAfter(stream: string, filter: string, after: string): Iterable<SubjectInfo>;
  seqsOfSubject(stream: string, subject: string): number[];
  /** Payload bytes of a stored message without reading it (undefined: not stored). */
  payloadSize(stream: string, seq: number): number | undefined;
  /** At least the largest payload stored in `stream` (never less than any of them). */
  largestPayload(stream: string): number;
  /** Removals a resuming watch must know of (see StreamLog.watchHorizon). */
  watchHorizon(stream: string): WatchHorizon;
  /** Payload bytes stored in every stream together. */
  storedBytes(): number;
  getBySeq(stream: string, seq: number): Promise<StoredMessage | null>;
  lastBySubject(stream: string, subject: string): Promise<StoredMessage | null>;
  iterate(stream: string, options?: IterateOptions): AsyncIterable<StoredMessage>;
  /** The same messages, one read at a time (StreamLog.iterateChunks). */
  iterateChunks(stream: string, options?: IterateOptions): AsyncIterable<StoredMessage[]>;
  /** How many messages `iterate` would yield with these options now (StreamLog.count). */
  count(stream: string, options?: IterateOptions): number;
  getMeta(key: string): Promise<Uint8Array | null>;
}
