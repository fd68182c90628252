/**
 * Reads served from the local applied state (SEMANTICS.md "Reads"). Whether a
 * read must first wait for a ReadIndex is the node layer's decision; these
 * only look at what this replica has applied.
 */
import type { StoredMessage } from "../log/index.js";
import type { KvLog } from "./log_port.js";
import { isLiteralFilter, streamOf } from "./names.js";
import type { BucketConfig, BucketStatus, Entry } from "./types.js";

export function entryOf(bucket: string, message: StoredMessage, delta = 0): Entry {
  return {
    bucket,
    key: message.subject,
    value: message.payload,
    size: message.payload.length,
    revision: message.seq,
    created: new Date(message.timestampMs),
    delta,
    operation: message.operation,
  };
}

export async function getLatest(log: KvLog, bucket: string, key: string): Promise<Entry | null> {
  const stream = streamOf(bucket);
  const info = log.subjectInfo(stream, key);
  if (info === undefined || info.operation !== "PUT") return null;
  const message = await log.lastBySubject(stream, key);
  if (message === null || message.operation !== "PUT") return null;
  return entryOf(bucket, message);
}

export async function getRevision(
  log: KvLog,
  bucket: string,
  key: string,
  revision: number,
): Promise<Entry | null> {
  const message = await log.getBySeq(streamOf(bucket), revision);
  if (message === null || message.subject !== key || message.operation !== "PUT") return null;
  return entryOf(bucket, message);
}

/**
 * Keys whose latest entry is a PUT, sorted (the log's subject order), strictly
 * after `startAfter` ("" = from the first). A pager resumes from its last key
 * with a binary search instead of skipping every earlier key again.
 */
export async function* listKeys(
  log: KvLog,
  bucket: string,
  filter: string,
  startAfter = "",
): AsyncGenerator<string> {
  const stream = streamOf(bucket);
  // Resumes after `startAfter` with a binary search in the log's ordered subjects.
  for (const info of log.subjectsAfter(stream, filter, startAfter)) {
    if (info.operation === "PUT") yield info.subject;
  }
}

/** Retained entries of the matching keys, oldest first, markers included. */
export async function history(log: KvLog, bucket: string, filter: string): Promise<Entry[]> {
  const stream = streamOf(bucket);
  const out: Entry[] = [];
  if (isLiteralFilter(filter)) {
    for (const seq of log.seqsOfSubject(stream, filter)) {
      const message = await log.getBySeq(stream, seq);
      // A concurrent apply may have trimmed it since the seqs were listed.
      if (message !== null) out.push(entryOf(bucket, message));
    }
    return out;
  }
  const toSeq = log.state(stream).lastSeq;
  for await (const message of log.iterate(stream, { filter, toSeq })) {
    out.push(entryOf(bucket, message));
  }
  return out;
}

/** One page of a key's history: what `historyPage` returns. */
export interface HistoryPage {
  entries: Entry[];
  /** No retained entry of the key after the last one of this page. */
  done: boolean;
}

/**
 * Retained entries of `key` with a revision above `afterRevision`, oldest first, reading
 * from the log only as many as fit in `maxBytes` (value + key + `overheadBytes` each; at
 * least one), plus at most one more to learn that the page is full. A pager holds one page,
 * never the whole history.
 */
export async function historyPage(
  log: KvLog,
  bucket: string,
  key: string,
  afterRevision: number,
  maxBytes: number,
  overheadBytes = 64,
): Promise<HistoryPage> {
  const stream = streamOf(bucket);
  const entries: Entry[] = [];
  let bytes = 0;
  for (const seq of log.seqsOfSubject(stream, key)) {
    if (seq <= afterRevision) continue;
    const message = await log.getBySeq(stream, seq);
    // A concurrent apply may have trimmed it since the seqs were listed.
    if (message === null) continue;
    const size = message.payload.length + message.subject.length + overheadBytes;
    if (entries.length > 0 && bytes + size > maxBytes) return { entries, done: false };
    bytes += size;
    entries.push(entryOf(bucket, message));
  }
  return { entries, done: true };
}

export function status(log: KvLog, config: BucketConfig): BucketStatus {
  const state = log.state(streamOf(config.bucket));
  return { ...config, values: state.messages, bytes: state.bytes };
}
