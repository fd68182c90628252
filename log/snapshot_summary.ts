/**
 * What a snapshot image (log/snapshot.ts) holds, read chunk by chunk without a log to
 * write into: `streamkv snapshot status` of a backup file. Every chunk's CRC and every
 * record's own CRC are checked as in an import (CORRUPT_RECORD otherwise); the order
 * checks and the install are the import's (`LogSnapshotWriter`), which a restore runs.
 *
 * Memory: a chunk, one entry per stream, and the distinct subjects of the stream being
 * read (a stream's messages are contiguous, so the set is dropped when the next begins).
 */

import { parseMessageKey } from "./keys.js";
import { decodeMessage, decodeMeta, decodeStream } from "./records.js";
import {
  corrupt,
  decodeName,
  KIND_END,
  KIND_MESSAGE,
  KIND_META,
  KIND_STREAM,
  parseChunk,
} from "./snapshot.js";

export interface StreamSummary {
  name: string;
  /** Messages stored (history and markers included). */
  messages: number;
  /** Distinct subjects among them. */
  subjects: number;
  /** Payload bytes of the messages. */
  payloadBytes: number;
  /** The stream's last sequence (it never goes back, also when its tail was removed). */
  lastSeq: number;
}

export interface LogSnapshotSummary {
  streams: StreamSummary[];
  metaKeys: number;
  /** Records, the end record included. */
  records: number;
  /** The end record arrived and counted every record before it. */
  complete: boolean;
}

export class LogSnapshotSummarizer {
  private readonly streams: StreamSummary[] = [];
  private readonly byId = new Map<number, StreamSummary>();
  private current: StreamSummary | null = null;
  private subjects = new Set<string>();
  private metaKeys = 0;
  private records = 0;
  private complete = false;

  /** Checks and counts one chunk; CORRUPT_RECORD if it does not check out. */
  add(chunk: Uint8Array): void {
    for (const r of parseChunk(chunk)) {
      if (this.complete) throw corrupt("data after the end record");
      if (r.kind === KIND_STREAM) {
        const name = decodeName(r.key);
        const record = decodeStream(r.value, name);
        const summary = {
          name,
          messages: 0,
          subjects: 0,
          payloadBytes: 0,
          lastSeq: record.lastSeq,
        };
        if (this.byId.has(record.id)) throw corrupt(`stream id ${record.id} used twice`);
        this.byId.set(record.id, summary);
        this.streams.push(summary);
      } else if (r.kind === KIND_MESSAGE) {
        const parsed = parseMessageKey(r.key);
        if (parsed === undefined) throw corrupt("malformed message key");
        const stream = this.byId.get(parsed.streamId);
        if (stream === undefined) throw corrupt(`message of unknown stream id ${parsed.streamId}`);
        const m = decodeMessage(r.value, stream.name, parsed.streamId, parsed.seq);
        if (this.current !== stream) {
          this.current = stream;
          this.subjects = new Set();
        }
        stream.messages++;
        stream.payloadBytes += m.payload.byteLength;
        if (!this.subjects.has(m.subject)) {
          this.subjects.add(m.subject);
          stream.subjects++;
        }
      } else if (r.kind === KIND_META) {
        decodeMeta(r.value, decodeName(r.key));
        this.metaKeys++;
      } else if (r.kind === KIND_END) {
        if (r.value.byteLength !== 8) throw corrupt("bad end record");
        const count = Number(Buffer.from(r.value).readBigUInt64BE(0));
        if (count !== this.records) {
          throw corrupt(`end record counts ${count} records, ${this.records} arrived`);
        }
        this.complete = true;
      } else {
        throw corrupt(`unknown record kind ${r.kind}`);
      }
      this.records++;
    }
  }

  summary(): LogSnapshotSummary {
    return {
      streams: this.streams.map((s) => ({ ...s })),
      metaKeys: this.metaKeys,
      records: this.records,
      complete: this.complete,
    };
  }
}
