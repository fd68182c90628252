/**
 * The images that backups (`streamkv snapshot save`) read from this node: each one a
 * frozen LevelDB view of the applied state (node/snapshot_store.ts `openImage`, the
 * same image a follower's InstallSnapshot gets), read chunk by chunk by the client that
 * opened it, so neither side ever holds more than a chunk.
 *
 * An open image pins old data on disk (LevelDB cannot drop what the view still sees),
 * so they are bounded: at most `maxOpen` at once (OVERLOADED beyond), and one not read
 * for `idleMs` is closed. Each image's SHA-256 is taken over its bytes as they are read
 * and handed out with the last chunk, for the client to check what it wrote.
 */
import { createHash, type Hash } from "node:crypto";
import { KvError, type SnapshotHeader } from "../proto/index.js";
import type { Cancel, Clock } from "./clock.js";

/** What `open` freezes: the header and a reader of the image's bytes. */
export interface FrozenImage {
  header: SnapshotHeader;
  read(offset: number, maxBytes: number): Promise<{ data: Uint8Array; done: boolean }>;
  close(): void;
}

export interface ImageChunk {
  offset: number;
  data: Uint8Array;
  done: boolean;
  /** Set on the last chunk: SHA-256 of every byte of the image. */
  imageSha256: Uint8Array;
}

export interface BackupImagesOptions {
  clock: Clock;
  /** Images open at once (default 2). */
  maxOpen?: number;
  /** An image not read this long is closed (default 30 s). */
  idleMs?: number;
}

interface OpenImage {
  image: FrozenImage;
  hash: Hash;
  /** Bytes hashed so far: a chunk starting here is new, one before it a resend. */
  hashedBytes: number;
  digest: Uint8Array | undefined;
  reading: boolean;
  /** Closed while a read ran: the view is released when that read settles. */
  closeAfterRead: boolean;
  cancelIdle: Cancel;
}

export class BackupImages {
  private readonly images = new Map<number, OpenImage>();
  private opening = 0;
  private nextId = 1;
  private readonly maxOpen: number;
  private readonly idleMs: number;
  private closed = false;

  constructor(private readonly opts: BackupImagesOptions) {
    this.maxOpen = opts.maxOpen ?? 2;
    this.idleMs = opts.idleMs ?? 30_000;
  }

  /** Images open now (tests, status). */
  get openCount(): number {
    return this.images.size;
  }

  async open(freeze: () => Promise<FrozenImage>): Promise<{ id: number; header: SnapshotHeader }> {
    if (this.closed) throw new KvError("SHUTTING_DOWN", "the node is shutting down");
    if (this.images.size + this.opening >= this.maxOpen) {
      throw new KvError(
        "OVERLOADED",
        `${this.maxOpen} backups are being read from this node already; retry when one is done`,
      );
    }
    this.opening++;
    let image: FrozenImage;
    try {
      image = await freeze();
    } finally {
      this.opening--;
    }
    if (this.closed) {
      image.close();
      throw new KvError("SHUTTING_DOWN", "the node is shutting down");
    }
    const id = this.nextId++;
    this.images.set(id, {
      image,
      hash: createHash("sha256"),
      hashedBytes: 0,
      digest: undefined,
      reading: false,
      closeAfterRead: false,
      cancelIdle: this.idleTimer(id),
    });
    return { id, header: image.header };
  }

  async read(id: number, offset: number, maxBytes: number): Promise<ImageChunk> {
    const open = this.images.get(id);
    if (open === undefined) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `backup image ${id} is not open on this node (closed, idle for ${this.idleMs} ms, or opened elsewhere): start the save again`,
      );
    }
    if (open.reading) {
      throw new KvError("INVALID_ARGUMENT", `backup image ${id}: one read at a time`);
    }
    open.cancelIdle();
    open.reading = true;
    try {
      const { data, done } = await open.image.read(offset, maxBytes);
      if (offset === open.hashedBytes) {
        open.hash.update(data);
        open.hashedBytes += data.byteLength;
        if (done) open.digest = new Uint8Array(open.hash.digest());
      }
      return {
        offset,
        data,
        done,
        imageSha256: done ? (open.digest ?? new Uint8Array(0)) : new Uint8Array(0),
      };
    } finally {
      open.reading = false;
      if (open.closeAfterRead) open.image.close();
      else if (this.images.get(id) === open) open.cancelIdle = this.idleTimer(id);
    }
  }

  close(id: number): void {
    const open = this.images.get(id);
    if (open === undefined) return;
    this.images.delete(id);
    open.cancelIdle();
    // Never under a running read: the reader's LevelDB iterator would fail beneath it.
    if (open.reading) open.closeAfterRead = true;
    else open.image.close();
  }

  closeAll(): void {
    this.closed = true;
    for (const id of [...this.images.keys()]) this.close(id);
  }

  private idleTimer(id: number): Cancel {
    return this.opts.clock.after(this.idleMs, () => this.close(id));
  }
}
