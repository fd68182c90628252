/**
 * The in-memory state of an open log, shared by the batch (which mutates it)
 * and the readers: the stream indexes, the id counter, and the bodies of
 * records staged or being written but not yet in LevelDB.
 */
import { KvError } from "../proto/index.js";
import type { StreamIndex } from "./stream_index.js";

/** Default hard limit on a payload, whatever a stream's config says. */
export const DEFAULT_MAX_MESSAGE_SIZE_BYTES = 8 * 1024 * 1024;

/** A staged meta value; compared by identity when its write completes. */
export interface MetaSlot {
  value: Uint8Array | null;
}

export class LogState {
  readonly streams = new Map<string, StreamIndex>();
  /** Encoded message records not yet written, by `${streamId}:${seq}`. */
  readonly pendingMessages = new Map<string, Uint8Array>();
  readonly pendingMeta = new Map<string, MetaSlot>();
  /** The batch being staged, if any (the apply loop is the single writer). */
  openBatch: object | null = null;

  constructor(
    public nextStreamId: number,
    readonly maxMessageSizeBytes: number,
  ) {}

  requireStream(name: string): StreamIndex {
    const stream = this.streams.get(name);
    if (stream === undefined) {
      throw new KvError("STREAM_NOT_FOUND", `stream ${JSON.stringify(name)} not found`);
    }
    return stream;
  }
}

export function pendingKey(streamId: number, seq: number): string {
  return `${streamId}:${seq}`;
}
