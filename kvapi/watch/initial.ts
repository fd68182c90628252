/**
 * The initial part of a watch, read lazily from the log up to the boundary B
 * fixed at subscribe time. Lazily, so a watch over a large bucket holds one
 * entry at a time, and a consumer that reads slowly slows only its own scan.
 *
 * Writes applied during the scan may trim or purge entries <= B before the
 * scan reaches them; those are skipped, and the write that removed them is > B,
 * so it reaches the watcher live: no gap, no duplicate.
 */
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

/** The newest seq of `subject` that is <= boundary, or 0. */
function latestAtOrBelow(log: KvLog, stream: string, subject: string, boundary: number): number {
  const info = log.subjectInfo(stream, subject);
  if (info === undefined) return 0;
  if (info.lastSeq <= boundary) return info.lastSeq;
  const seqs = log.seqsOfSubject(stream, subject);
  for (let i = seqs.length - 1; i >= 0; i--) if (seqs[i]! <= boundary) return seqs[i]!;
  return 0;
}

function countAtOrBelow(seqs: readonly number[], fromSeq: number, boundary: number): number {
  let n = 0;
  for (const seq of seqs) if (seq >= fromSeq && seq <= boundary) n++;
  return n;
}

/**
 * How many entries the scan should yield, for `delta`. Exact unless a write
 * removes entries during the scan, or markers are skipped (ignoreDeletes) among
 * older revisions; then it is an upper bound, and the live part is exact again.
 */
function expectedCount(scan: InitialScan): number {
  const { log, stream, filter, boundary, mode } = scan;
  let n = 0;
  // One subject at a time from the sorted index: a watch over a million keys builds no
  // list of them (the cost is a pass over the matching keys, no memory).
  for (const info of log.subjectsAfter(stream, filter, "")) {
    if (mode.kind === "latest") {
      const seq = latestAtOrBelow(log, stream, info.subject, boundary);
      if (seq === 0 || seq < (mode.fromSeq ?? 1)) continue;
      if (scan.ignoreDeletes && seq === info.lastSeq && info.operation !== "PUT") continue;
      n++;
    } else {
      n += countAtOrBelow(log.seqsOfSubject(stream, info.subject), mode.fromSeq, boundary);
    }
  }
  return n;
}

async function* scanEntries(scan: InitialScan): AsyncGenerator<WatchEvent> {
  const { log, stream, filter, boundary, mode } = scan;
  const fromSeq = mode.fromSeq ?? 1;
  if (fromSeq > boundary) return;
  try {
    for await (const m of log.iterate(stream, { fromSeq, toSeq: boundary, filter })) {
      if (m.seq > boundary) return;
      if (scan.ignoreDeletes && m.operation !== "PUT") continue;
      if (mode.kind === "latest" && latestAtOrBelow(log, stream, m.subject, boundary) !== m.seq) {
        continue;
      }
      // Before each entry, not only at the end: the client moves its resume point past
      // every entry it gets, so a removal ahead of the scan must stop it before that.
      const outgrown = scan.recheck?.();
      if (outgrown !== undefined) throw outgrown;
      yield {
        seq: m.seq,
        subject: m.subject,
        payload: m.payload,
        operation: m.operation,
        timestampMs: m.timestampMs,
      };
    }
    const outgrown = scan.recheck?.();
    if (outgrown !== undefined) throw outgrown;
  } catch (err) {
    if (err instanceof KvError && err.code === "STREAM_NOT_FOUND") {
      throw new KvError("BUCKET_NOT_FOUND", `bucket ${JSON.stringify(scan.bucket)} was deleted`);
    }
    throw err;
  }
}

export function initialSource(scan: InitialScan): InitialSource {
  return { entries: scanEntries(scan), expected: expectedCount(scan) };
}
