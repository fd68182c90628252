/**
 * Reading a backup image from one node (`streamkv snapshot save`): the node freezes
 * every bucket at one Raft index and the client pulls the image chunk by chunk, one
 * request per chunk, so neither side holds more than a chunk and a slow disk here only
 * slows the node's reads down. The image lives on the node that froze it: if the
 * connection moves to another server the next read fails, and the save starts over.
 */
import { KvError, type SnapshotHeader } from "../proto/index.js";
import type { Connection } from "./connection.js";
import { expectAnswer } from "./wire.js";

export interface SnapshotChunk {
  /** Where in the image these bytes start. */
  offset: number;
  data: Uint8Array;
  /** The last chunk. */
  done: boolean;
  /** With the last chunk: the node's SHA-256 of the whole image. */
  imageSha256: Uint8Array;
}

export interface SnapshotImageOptions {
  /** Per request (default: the connection's). */
  timeoutMs?: number;
  /** Bytes per chunk asked for (default: the server's, 256 KiB; at most half its frame limit). */
  chunkBytes?: number;
}

/** An image open on the node; `close()` releases it (a closed connection does too). */
export class SnapshotImage implements AsyncIterable<SnapshotChunk> {
  private closed = false;

  /** @internal */
  constructor(
    private readonly conn: Connection,
    private readonly id: number,
    /** What the node froze: Raft index and term, members, buckets, time, version. */
    readonly header: SnapshotHeader,
    private readonly opts: SnapshotImageOptions,
  ) {}

  /** The chunks in order, each asked for once the previous one was taken. */
  async *[Symbol.asyncIterator](): AsyncIterator<SnapshotChunk> {
    let offset = 0;
    for (;;) {
      if (this.closed) throw new KvError("INVALID_ARGUMENT", "the snapshot image is closed");
      const answer = await this.conn.call(
        "snapshot_read",
        { snapshot_id: this.id, offset, max_bytes: this.opts.chunkBytes ?? 0 },
        this.opts.timeoutMs,
      );
      const chunk = expectAnswer(answer, "snapshot_chunk", "snapshot read");
      if (chunk.offset !== offset) {
        throw new KvError(
          "MALFORMED_FRAME",
          `snapshot read: asked for offset ${offset}, got ${chunk.offset}`,
        );
      }
      if (!chunk.done && chunk.data.byteLength === 0) {
        throw new KvError("MALFORMED_FRAME", "snapshot read: an empty chunk before the last");
      }
      offset += chunk.data.byteLength;
      yield {
        offset: chunk.offset,
        data: chunk.data,
        done: chunk.done,
        imageSha256: chunk.imageSha256,
      };
      if (chunk.done) return;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.conn.isClosed) return;
    await this.conn.call("snapshot_close", { snapshot_id: this.id }, this.opts.timeoutMs);
  }
}

/** Asks the connected node to freeze an image (needs an admin token). */
export async function openSnapshotImage(
  conn: Connection,
  opts: SnapshotImageOptions,
): Promise<SnapshotImage> {
  const answer = await conn.call("snapshot_open", {}, opts.timeoutMs);
  const opened = expectAnswer(answer, "snapshot_opened", "snapshot open");
  return new SnapshotImage(conn, opened.snapshotId, opened.header, opts);
}
