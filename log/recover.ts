/**
 * Rebuilds the in-memory state from LevelDB at open, verifying every record's
 * checksum on the way: a corrupted record stops the open with
 * `KvError("CORRUPT_RECORD")` naming the stream and seq, never a silent skip,
 * because a log that quietly lost a record would serve a wrong history.
 *
 * Message ranges whose stream id no live stream owns (deleted or purged
 * streams whose background clear did not finish) are skipped unread and
 * returned for clearing.
 */
import { KvError } from "../proto/index.js";
import { validateConfig } from "./config.js";
import { CheckpointRejected, readIndexCheckpoint } from "./index_checkpoint.js";
import {
  HEADER_KEY,
  type KeyRange,
  MESSAGES_RANGE,
  META_RANGE,
  messageKey,
  parseMessageKey,
  STREAMS_RANGE,
  streamNameOfKey,
} from "./keys.js";
import { LogState } from "./log_state.js";
import {
  decodeHeader,
  decodeMessage,
  decodeMeta,
  decodeStream,
  FORMAT_VERSION,
} from "./records.js";
import { StreamIndex } from "./stream_index.js";
import { isValidSubject } from "./subjects.js";
import type { LevelDb } from "./write_queue.js";

const VIEW = { keyEncoding: "view", valueEncoding: "view" } as const;
const SCAN_CHUNK = 1024;

function corrupt(what: string, why: string, cause?: unknown): KvError {
  return new KvError("CORRUPT_RECORD", `corrupt record: ${what}: ${why}`, {}, cause);
}

/** Calls `visit` for each entry of the range; `visit` may return a key to seek to. */
export async function scanRange(
  db: LevelDb,
  range: KeyRange,
  visit: (key: Uint8Array, value: Uint8Array) => Uint8Array | undefined,
): Promise<void> {
  const it = db.iterator<Uint8Array, Uint8Array>({ ...range, ...VIEW });
  try {
    for (;;) {
      const entries = await it.nextv(SCAN_CHUNK);
      if (entries.length === 0) return;
      for (const [key, value] of entries) {
        const seekTo = visit(key, value);
        if (seekTo !== undefined) {
          it.seek(seekTo);
          break;
        }
      }
    }
  } finally {
    await it.close();
  }
}

export interface Recovered {
  state: LogState;
  /** Stream ids whose message ranges are orphaned and can be cleared. */
  orphanIds: number[];
  /** Where the message indexes came from (see index_checkpoint.ts). */
  index: IndexSource;
}

export type IndexSource = { from: "checkpoint" } | { from: "scan"; rejectedCheckpoint?: string };

export async function recover(db: LevelDb, maxMessageSizeBytes: number): Promise<Recovered> {
  const headerBytes = await db.get<Uint8Array, Uint8Array>(HEADER_KEY, VIEW);
  const header =
    headerBytes === undefined
      ? { formatVersion: FORMAT_VERSION, nextStreamId: 1 }
      : decodeHeader(headerBytes);
  if (header.formatVersion !== FORMAT_VERSION) {
    throw corrupt("log header", `unsupported format version ${header.formatVersion}`);
  }
  const state = new LogState(header.nextStreamId, maxMessageSizeBytes);
  const byId = new Map<number, StreamIndex>();

  await scanRange(db, STREAMS_RANGE, (key, value) => {
    const name = streamNameOfKey(key);
    const record = decodeStream(value, name);
    const what = `stream "${name}"`;
    try {
      validateConfig(record.config);
    } catch (err) {
      throw corrupt(what, "stored config is invalid", err);
    }
    if (headerBytes === undefined) throw corrupt("log header", "missing while streams exist");
    if (record.id < 1 || record.id >= header.nextStreamId || byId.has(record.id)) {
      throw corrupt(what, `stream id ${record.id} is not unique or not below the id counter`);
    }
    if ((record.vanishedHighSeq ?? 0) > record.lastSeq) {
      throw corrupt(what, "vanished_high_seq beyond the stream's last seq");
    }
    const stream = new StreamIndex(
      record.id,
      record.config,
      record.lastSeq,
      record.vanishedHighSeq ?? 0,
    );
    state.streams.set(name, stream);
    byId.set(record.id, stream);
    return undefined;
  });

  let loaded: Map<string, StreamIndex> | undefined;
  let rejectedCheckpoint: string | undefined;
  try {
    loaded = await readIndexCheckpoint(db, state.streams);
  } catch (err) {
    if (!(err instanceof CheckpointRejected)) throw err;
    rejectedCheckpoint = err.message;
  }
  if (loaded !== undefined) {
    for (const [name, index] of loaded) state.streams.set(name, index);
    const orphanIds = await orphanRanges(db, new Set(byId.keys()));
    await verifyMeta(db);
    return { state, orphanIds, index: { from: "checkpoint" } };
  }

  const orphanIds: number[] = [];
  await scanRange(db, MESSAGES_RANGE, (key, value) => {
    const parsed = parseMessageKey(key);
    if (parsed === undefined) throw corrupt("message", "malformed key");
    const stream = byId.get(parsed.streamId);
    if (stream === undefined) {
      orphanIds.push(parsed.streamId);
      return messageKey(parsed.streamId + 1, 0);
    }
    const name = stream.config.name;
    const record = decodeMessage(value, name, parsed.streamId, parsed.seq);
    const what = `stream "${name}" seq ${parsed.seq}`;
    if (parsed.seq < 1 || parsed.seq > stream.lastSeq) {
      throw corrupt(what, `seq beyond the stream's last seq ${stream.lastSeq}`);
    }
    if (!isValidSubject(record.subject)) throw corrupt(what, "invalid subject");
    stream.add(parsed.seq, {
      subject: record.subject,
      operation: record.operation,
      size: record.payload.length,
      timestampMs: record.timestampMs,
    });
    return undefined;
  });

  await verifyMeta(db);
  return {
    state,
    orphanIds,
    index:
      rejectedCheckpoint === undefined ? { from: "scan" } : { from: "scan", rejectedCheckpoint },
  };
}

/** Decodes (so verifies) every meta record: few, and read again on demand anyway. */
async function verifyMeta(db: LevelDb): Promise<void> {
  const decoder = new TextDecoder();
  await scanRange(db, META_RANGE, (key, value) => {
    decodeMeta(value, decoder.decode(key.subarray(META_RANGE.gte.length)));
    return undefined;
  });
}

/** The stream ids holding messages that no live stream owns: one seek per id, not per message. */
async function orphanRanges(db: LevelDb, liveIds: ReadonlySet<number>): Promise<number[]> {
  const orphanIds: number[] = [];
  const it = db.keys<Uint8Array>({ ...MESSAGES_RANGE, keyEncoding: "view" });
  try {
    for (let key = await it.next(); key !== undefined; key = await it.next()) {
      const parsed = parseMessageKey(key);
      if (parsed === undefined) throw corrupt("message", "malformed key");
      if (!liveIds.has(parsed.streamId)) orphanIds.push(parsed.streamId);
      it.seek(messageKey(parsed.streamId + 1, 0));
    }
  } finally {
    await it.close();
  }
  return orphanIds;
}
