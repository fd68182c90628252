/**
 * A backup file (`streamkv snapshot save FILE`): one node's frozen image of every bucket
 * (log/snapshot.ts chunks, as the node sent them) between a header and a trailer.
 *
 *   "SKVSNAP1"                                   magic, format 1 of the file
 *   u32 BE n, n bytes, u32 BE CRC32C of them     the SnapshotHeader (proto/client.proto)
 *   (u32 BE n > 0, n bytes)*                     the image, chunk by chunk
 *   u32 BE 0                                     no more chunks
 *   u64 BE image bytes, u32 BE chunks, 32 bytes SHA-256 of the image, "SKVEND01"
 *
 * The SHA-256 covers the image's bytes (the chunks without their lengths), the same
 * digest the node computed as it read them; each chunk has its own CRC32C and each record
 * in it its own too. The reader trusts no length before checking it against the file's
 * size and a bound, so a hostile file costs at most one bounded chunk of memory, and it
 * refuses a file that ends anywhere but right after the trailer (truncated) or holds
 * anything after it.
 *
 * The writer writes FILE.tmp, fsyncs it, renames it to FILE and fsyncs the directory:
 * FILE is either the previous one or the whole new one.
 */
import { createHash, type Hash } from "node:crypto";
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { crc32c } from "../log/index.js";
import {
  decodeSnapshotHeader,
  encodeSnapshotHeader,
  KvError,
  type SnapshotHeader,
} from "../proto/index.js";

const MAGIC = Buffer.from("SKVSNAP1", "latin1");
const END_MAGIC = Buffer.from("SKVEND01", "latin1");
const TRAILER_BYTES = 8 + 4 + 32 + END_MAGIC.byteLength;
/** A header names members and buckets: generous, but a bound before any allocation. */
export const MAX_HEADER_BYTES = 16 * 1024 * 1024;
/** A chunk is at most what the node was asked for, or one record (values are <= 1 MiB). */
export const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * A file system failure (no such directory, permissions, a full disk) as an error the
 * operator can act on; anything else is rethrown as it is (a bug).
 */
function fileError(path: string, what: string, err: unknown): unknown {
  if (err instanceof KvError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (typeof code !== "string") return err;
  return new KvError(
    "INVALID_ARGUMENT",
    `${path}: cannot ${what}: ${(err as Error).message}`,
    {},
    err,
  );
}

function corrupt(path: string, why: string, cause?: unknown): KvError {
  return new KvError("CORRUPT_RECORD", `${path}: not a usable backup: ${why}`, {}, cause);
}

/** fsync of a file or a directory (a directory: the names in it are durable). */
export async function fsyncPath(path: string): Promise<void> {
  const fd = await open(path, "r");
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** Writes a backup file chunk by chunk; `finish` checks the node's digest and makes it durable. */
export class BackupFileWriter {
  private readonly hash: Hash = createHash("sha256");
  private imageBytes = 0;
  private chunks = 0;
  private position = 0;
  private done = false;

  private constructor(
    readonly path: string,
    private readonly tmpPath: string,
    private readonly fd: FileHandle,
  ) {}

  /** Creates FILE.tmp (replacing one a crashed save left) and writes the header. */
  static async create(path: string, header: SnapshotHeader): Promise<BackupFileWriter> {
    const tmpPath = `${path}.tmp`;
    let fd: FileHandle;
    try {
      fd = await open(tmpPath, "w", 0o600);
    } catch (err) {
      throw fileError(tmpPath, "create it", err);
    }
    const w = new BackupFileWriter(path, tmpPath, fd);
    try {
      const body = encodeSnapshotHeader(header);
      await w.append(Buffer.concat([MAGIC, u32(body.byteLength), body, u32(crc32c(body))]));
      return w;
    } catch (err) {
      await w.abort();
      throw err;
    }
  }

  /** Image bytes written so far. */
  get bytes(): number {
    return this.imageBytes;
  }

  async writeChunk(data: Uint8Array): Promise<void> {
    if (data.byteLength === 0) return;
    if (data.byteLength > MAX_CHUNK_BYTES) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `a chunk of ${data.byteLength} bytes is above the bound of ${MAX_CHUNK_BYTES}`,
      );
    }
    this.hash.update(data);
    this.imageBytes += data.byteLength;
    this.chunks++;
    await this.append(u32(data.byteLength));
    await this.append(data);
  }

  /**
   * Ends the file: the image's SHA-256 must be `nodeSha256` (what the node read), else
   * the file is dropped. Then fsync, rename to FILE, fsync the directory.
   */
  async finish(nodeSha256: Uint8Array): Promise<{ bytes: number; sha256: string }> {
    const digest = this.hash.digest();
    if (!digest.equals(Buffer.from(nodeSha256))) {
      await this.abort();
      throw new KvError(
        "CORRUPT_RECORD",
        `the image written (sha256 ${digest.toString("hex")}) is not the one the node read (${Buffer.from(nodeSha256).toString("hex") || "no digest"}): nothing saved`,
      );
    }
    const end = Buffer.alloc(4 + TRAILER_BYTES);
    end.writeUInt32BE(0, 0);
    end.writeBigUInt64BE(BigInt(this.imageBytes), 4);
    end.writeUInt32BE(this.chunks, 12);
    digest.copy(end, 16);
    END_MAGIC.copy(end, 48);
    await this.append(end);
    try {
      // Durable before it is named: a crash leaves the previous FILE or this one whole.
      await this.fd.sync();
      await this.fd.close();
      this.done = true;
      await rename(this.tmpPath, this.path);
      await fsyncPath(dirname(this.path));
    } catch (err) {
      await this.abort();
      throw fileError(this.path, "make it durable", err);
    }
    return { bytes: this.position, sha256: digest.toString("hex") };
  }

  /** Drops FILE.tmp. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.fd.close().catch(() => {});
    await rm(this.tmpPath, { force: true });
  }

  private async append(bytes: Uint8Array): Promise<void> {
    let at = 0;
    try {
      while (at < bytes.byteLength) {
        const { bytesWritten } = await this.fd.write(
          bytes,
          at,
          bytes.byteLength - at,
          this.position,
        );
        at += bytesWritten;
        this.position += bytesWritten;
      }
    } catch (err) {
      throw fileError(this.tmpPath, "write it", err);
    }
  }
}

export interface BackupFileInfo {
  header: SnapshotHeader;
  /** The file's size in bytes. */
  fileBytes: number;
}

export interface BackupFileEnd {
  imageBytes: number;
  chunks: number;
  sha256: string;
}

/**
 * Reads a backup file: `open` checks the magic and the header, `chunks()` yields the
 * image's chunks in order (`last` on the final one) and, once they are all read, checks
 * the trailer: counts, the SHA-256 and that the file ends right there. Any failure is
 * CORRUPT_RECORD naming the file and what is wrong.
 */
export class BackupFileReader {
  private position = 0;
  private end: BackupFileEnd | undefined;

  private constructor(
    readonly path: string,
    private readonly fd: FileHandle,
    readonly fileBytes: number,
    readonly header: SnapshotHeader,
    start: number,
  ) {
    this.position = start;
  }

  static async open(path: string): Promise<BackupFileReader> {
    let fd: FileHandle;
    try {
      fd = await open(path, "r");
    } catch (err) {
      throw new KvError("INVALID_ARGUMENT", `${path}: cannot open: ${(err as Error).message}`);
    }
    try {
      const size = (await fd.stat()).size;
      const head = await readExactly(fd, path, 0, MAGIC.byteLength + 4, size, "the header");
      if (!head.subarray(0, MAGIC.byteLength).equals(MAGIC)) {
        throw corrupt(
          path,
          "it does not start with SKVSNAP1 (not a streamkv backup, or another format)",
        );
      }
      const n = head.readUInt32BE(MAGIC.byteLength);
      if (n > MAX_HEADER_BYTES) throw corrupt(path, `header length ${n} above ${MAX_HEADER_BYTES}`);
      const body = await readExactly(fd, path, head.byteLength, n + 4, size, "the header");
      const headerBytes = body.subarray(0, n);
      if (crc32c(headerBytes) !== body.readUInt32BE(n)) {
        throw corrupt(path, "the header's checksum does not match");
      }
      let header: SnapshotHeader;
      try {
        header = decodeSnapshotHeader(headerBytes);
      } catch (err) {
        throw corrupt(path, `the header does not decode (${(err as Error).message})`, err);
      }
      checkHeader(path, header);
      return new BackupFileReader(path, fd, size, header, head.byteLength + n + 4);
    } catch (err) {
      await fd.close();
      throw err;
    }
  }

  /** The trailer, once `chunks()` ran to its end. */
  get trailer(): BackupFileEnd | undefined {
    return this.end;
  }

  async *chunks(): AsyncGenerator<{ data: Uint8Array; offset: number; last: boolean }> {
    const hash = createHash("sha256");
    let imageBytes = 0;
    let count = 0;
    let pending: Uint8Array | undefined;
    let pendingOffset = 0;
    for (;;) {
      const n = (await this.read(4, "a chunk length")).readUInt32BE(0);
      if (n === 0) break;
      if (n > MAX_CHUNK_BYTES)
        throw corrupt(this.path, `chunk length ${n} above ${MAX_CHUNK_BYTES}`);
      const data = await this.read(n, "a chunk");
      hash.update(data);
      // One chunk of lookahead: the consumer learns which chunk is the last.
      if (pending !== undefined) yield { data: pending, offset: pendingOffset, last: false };
      pending = data;
      pendingOffset = imageBytes;
      imageBytes += n;
      count++;
    }
    const t = await this.read(TRAILER_BYTES, "the trailer");
    const stated = Number(t.readBigUInt64BE(0));
    const statedChunks = t.readUInt32BE(8);
    const sha = t.subarray(12, 44);
    if (!t.subarray(44).equals(END_MAGIC))
      throw corrupt(this.path, "the trailer's end mark is wrong");
    if (stated !== imageBytes || statedChunks !== count) {
      throw corrupt(
        this.path,
        `the trailer counts ${stated} bytes in ${statedChunks} chunks, the file holds ${imageBytes} in ${count}`,
      );
    }
    const digest = hash.digest();
    if (!digest.equals(sha)) {
      throw corrupt(
        this.path,
        `checksum mismatch: the image hashes to sha256 ${digest.toString("hex")}, the trailer says ${sha.toString("hex")}`,
      );
    }
    if (this.position !== this.fileBytes) {
      throw corrupt(this.path, `${this.fileBytes - this.position} bytes after the trailer`);
    }
    if (pending === undefined) throw corrupt(this.path, "the image is empty");
    this.end = { imageBytes, chunks: count, sha256: digest.toString("hex") };
    yield { data: pending, offset: pendingOffset, last: true };
  }

  async close(): Promise<void> {
    await this.fd.close().catch(() => {});
  }

  private async read(n: number, what: string): Promise<Buffer> {
    const b = await readExactly(this.fd, this.path, this.position, n, this.fileBytes, what);
    this.position += n;
    return b;
  }
}

/** `n` bytes at `position`, or CORRUPT_RECORD (truncated) when the file ends before them. */
async function readExactly(
  fd: FileHandle,
  path: string,
  position: number,
  n: number,
  size: number,
  what: string,
): Promise<Buffer> {
  if (position + n > size) {
    throw corrupt(path, `truncated: the file ends at byte ${size}, inside ${what}`);
  }
  const b = Buffer.alloc(n);
  let at = 0;
  while (at < n) {
    const { bytesRead } = await fd.read(b, at, n - at, position + at);
    if (bytesRead === 0) throw corrupt(path, `truncated: the file ends inside ${what}`);
    at += bytesRead;
  }
  return b;
}

function checkHeader(path: string, h: SnapshotHeader): void {
  if (h.formatVersion !== 1) {
    throw corrupt(path, `image format ${h.formatVersion} is not one this version reads (1)`);
  }
  // Index 0: a store to which no KV command was ever applied (an empty backup).
  if (h.raftIndex > 0 && h.raftTerm < 1) {
    throw corrupt(
      path,
      `raft index ${h.raftIndex} with term ${h.raftTerm}: an entry has a term >= 1`,
    );
  }
}
