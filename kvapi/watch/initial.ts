/**
 * The initial part of a watch, read lazily from the log up to the boundary B
 * fixed at subscribe time. Lazily, so a watch over a large bucket holds one
 * entry at a time, and a consumer that reads slowly slows only its own scan.
 *
 * Writes applied during the scan may trim or purge entries <= B before the
 * scan reaches them; those are skipped, and the write that removed them is > B,
 * so it reaches the watcher live: no gap, no duplicate.
 */
import type { IterateOptions } from "../../log/index.js";
import { KvError } from "../../proto/index.js";
import type { KvLog } from "../log_port.js";
import type { InitialSource, WatchEvent } from "./watcher.js";

export type InitialMode =
  /** The latest entry (as of B) of each matching key whose latest is >= fromSeq (default 1). */
  | { kind: "latest"; fromSeq?: number }
  /** Every retained entry from `fromSeq` on (includeHistory, resumeFromRevision). */
  | { kind: "all"; fromSeq: number };

export interface InitialScan {
  log: KvLog;
  bucket: string;
  stream: string;
  filter: string;
  boundary: number;
  mode: InitialMode;
  ignoreDeletes: boolean;
  /**
   * Called before every entry and once the scan reached B; a KvError it returns ends the
   * watch (removals during the scan may have taken entries a resumed watch needed, and
   * the client's resume point would pass them: see resume.ts).
   */
  recheck?: () => KvError | undefined;
}

/** What the scan reads from the log: in seq order, only what it will yield. */
function iterateOptions(scan: InitialScan): IterateOptions {
  return {
    fromSeq: scan.mode.fromSeq ?? 1,
    toSeq: scan.boundary,
    filter: scan.filter,
    // One pass in seq order over the stream, judged from the in-memory index before any
    // read: each key's latest entry as of B is the one with no later seq <= B, so the
    // entries kept are in revision order and none is read only to be dropped.
    lastPerSubject: scan.mode.kind === "latest",
    putsOnly: scan.ignoreDeletes,
  };
}

/**
 * How many entries the scan should yield, for `delta`, counted from the index (no read).
 * Exact unless a write removes entries during the scan; then it is an upper bound, and
 * the live part is exact again.
 */
function expectedCount(scan: InitialScan): number {
  if ((scan.mode.fromSeq ?? 1) > scan.boundary) return 0;
  return scan.log.count(scan.stream, iterateOptions(scan));
}

/** A deleted stream is a deleted bucket to the watcher. */
function bucketGone(scan: InitialScan, err: unknown): unknown {
  if (err instanceof KvError && err.code === "STREAM_NOT_FOUND") {
    return new KvError("BUCKET_NOT_FOUND", `bucket ${JSON.stringify(scan.bucket)} was deleted`);
  }
  return err;
}

async function* scanChunks(scan: InitialScan): AsyncGenerator<WatchEvent[]> {
  const { log, stream, boundary, mode } = scan;
  if ((mode.fromSeq ?? 1) > boundary) return;
  try {
    // The stored messages are WatchEvents already: no copy per entry.
    yield* log.iterateChunks(stream, iterateOptions(scan));
  } catch (err) {
    throw bucketGone(scan, err);
  }
}

/**
 * Whether `event` may be handed out now (undefined: the scan is over). An entry trimmed or
 * purged since its chunk was read is skipped. Before each entry, not only at the end, the
 * recheck runs: the client moves its resume point past every entry it gets, so a removal
 * ahead of the scan must stop it before that.
 */
function admit(scan: InitialScan, event: WatchEvent | undefined): boolean {
  try {
    // The chunks end at the boundary (toSeq): only what was removed since is skipped.
    if (event !== undefined && scan.log.payloadSize(scan.stream, event.seq) === undefined) {
      return false;
    }
    const outgrown = scan.recheck?.();
    if (outgrown !== undefined) throw outgrown;
    return true;
  } catch (err) {
    throw bucketGone(scan, err);
  }
}

export function initialSource(scan: InitialScan): InitialSource {
  return {
    chunks: scanChunks(scan),
    admit: (event) => admit(scan, event),
    expected: expectedCount(scan),
  };
}
