/**
 * `streamkv snapshot status FILE`: what a backup file holds, read once from start to end
 * (header, every chunk's CRC and every record's, the trailer and the SHA-256), in the
 * memory of one chunk plus the distinct keys of one bucket at a time.
 */
import { bucketOfStream } from "../kvapi/index.js";
import { LogSnapshotSummarizer } from "../log/index.js";
import { KvError, type SnapshotHeader } from "../proto/index.js";
import { BackupFileReader } from "./backup_file.js";

export interface BackupBucketSummary {
  bucket: string;
  /** Distinct keys with at least one stored entry (markers included). */
  keys: number;
  /** Stored entries: history and markers count, as a bucket's `values`. */
  messages: number;
  /** Value bytes of those entries. */
  valueBytes: number;
  lastRevision: number;
}

export interface BackupDescription {
  file: string;
  header: SnapshotHeader;
  fileBytes: number;
  imageBytes: number;
  chunks: number;
  sha256: string;
  /** Everything checked out: the trailer's SHA-256, every chunk and record checksum. */
  checksumOk: true;
  buckets: BackupBucketSummary[];
}

/** Reads and checks the whole file; CORRUPT_RECORD naming what is wrong otherwise. */
export async function describeBackup(file: string): Promise<BackupDescription> {
  const reader = await BackupFileReader.open(file);
  const summarizer = new LogSnapshotSummarizer();
  try {
    for await (const chunk of reader.chunks()) summarizer.add(chunk.data);
  } finally {
    await reader.close();
  }
  const summary = summarizer.summary();
  const end = reader.trailer;
  if (!summary.complete || end === undefined) {
    throw new KvError(
      "CORRUPT_RECORD",
      `${file}: not a usable backup: the image has no end record`,
    );
  }
  const buckets = summary.streams.flatMap((s) => {
    const bucket = bucketOfStream(s.name);
    if (bucket === undefined) return [];
    return [
      {
        bucket,
        keys: s.subjects,
        messages: s.messages,
        valueBytes: s.payloadBytes,
        lastRevision: s.lastSeq,
      },
    ];
  });
  return {
    file,
    header: reader.header,
    fileBytes: reader.fileBytes,
    imageBytes: end.imageBytes,
    chunks: end.chunks,
    sha256: end.sha256,
    checksumOk: true,
    buckets,
  };
}
