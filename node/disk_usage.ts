/**
 * What the data directory takes on disk, and how full its file system is, for the
 * metrics (`streamkv_data_dir_bytes`, `streamkv_disk_*_bytes`). Scrapes come every few
 * seconds and a LevelDB directory holds thousands of files, so a walk is reused for
 * `maxAgeMs` and stops after `maxEntries` entries (reported as incomplete) rather than
 * let a scrape cost grow with the data.
 */
import { readdirSync, type Stats, statfsSync, statSync } from "node:fs";
import { join } from "node:path";

export interface DiskUsage {
  /** Bytes of the regular files under the data directory (as far as the walk got). */
  dataDirBytes: number;
  /** False when the walk stopped at its entry bound: `dataDirBytes` is a lower bound. */
  complete: boolean;
  /** The data directory's file system: its size and what an unprivileged writer may still use. */
  fsSizeBytes: number;
  fsAvailableBytes: number;
}

export interface DiskUsageOptions {
  maxEntries?: number;
  maxAgeMs?: number;
  now?: () => number;
}

/** Sizes of the files under `dir`, depth first, at most `maxEntries` entries looked at. */
export function directoryBytes(
  dir: string,
  maxEntries: number,
): { bytes: number; complete: boolean } {
  let bytes = 0;
  let seen = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const current = stack.pop() as string;
    let names: string[];
    try {
      names = readdirSync(current);
    } catch {
      continue; // removed under us (a LevelDB compaction): what is left is what counts
    }
    for (const name of names) {
      if (++seen > maxEntries) return { bytes, complete: false };
      let st: Stats;
      try {
        st = statSync(join(current, name));
      } catch {
        continue;
      }
      if (st.isDirectory()) stack.push(join(current, name));
      else if (st.isFile()) bytes += st.size;
    }
  }
  return { bytes, complete: true };
}

/** `dir`'s file system: its size and what an unprivileged writer may still use (bytes). */
export function fileSystemRoom(dir: string): { sizeBytes: number; availableBytes: number } {
  const fs = statfsSync(dir);
  return { sizeBytes: fs.blocks * fs.bsize, availableBytes: fs.bavail * fs.bsize };
}

/** A cached reader of `dir`'s usage. */
export function diskUsageOf(dir: string, opts: DiskUsageOptions = {}): () => DiskUsage {
  const maxEntries = opts.maxEntries ?? 100_000;
  const maxAgeMs = opts.maxAgeMs ?? 10_000;
  const now = opts.now ?? Date.now;
  let cached: { at: number; usage: DiskUsage } | undefined;
  return () => {
    const t = now();
    if (cached !== undefined && t - cached.at < maxAgeMs) return cached.usage;
    const walked = directoryBytes(dir, maxEntries);
    let fsSizeBytes = 0;
    let fsAvailableBytes = 0;
    try {
      ({ sizeBytes: fsSizeBytes, availableBytes: fsAvailableBytes } = fileSystemRoom(dir));
    } catch {
      // The scrape must still answer; 0 of 0 reads as "unknown", never as "full".
    }
    const usage: DiskUsage = {
      dataDirBytes: walked.bytes,
      complete: walked.complete,
      fsSizeBytes,
      fsAvailableBytes,
    };
    cached = { at: t, usage };
    return usage;
  };
}
