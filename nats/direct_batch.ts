/**
 * The reads behind batched DIRECT.GET requests (nats-server 2.11, ADR-31): `batch` (the
 * entries from a sequence on, optionally of one filter) and `multi_last` (the latest
 * entry of every key matching some filters, optionally as of `up_to_seq`). Both read
 * through a watch of the bucket, so they are linearizable on any node like every other
 * read of the NATS port, and both end at the watch's boundary: a batch never waits for
 * writes that have not happened yet.
 */
import type { Entry } from "../kvapi/index.js";
import { compileFilter } from "../log/index.js";
import { isKvError } from "../proto/index.js";
import type { NatsKvBackend, NatsWatch } from "./types.js";

export interface BatchLimits {
  /** Entries one answer may carry. */
  maxMessages: number;
  /** Value bytes one answer may carry (at least one entry is always sent). */
  maxBytes: number;
  /** Entries the scan behind a multi_last may read (matching or not). */
  maxScanned: number;
  /** Keys a multi_last may match (nats-server answers 413 beyond 1024). */
  maxSubjects: number;
  watchMaxPending: number | undefined;
}

export interface BatchEntry {
  entry: Entry;
  /** Matching entries after this one (Nats-Num-Pending). */
  pending: number;
}

export interface BatchRead {
  entries: BatchEntry[];
  /** Matching entries after the last one sent (the end-of-batch's Nats-Num-Pending). */
  pendingAfter: number;
  /** multi_last: the revision the answer is consistent at (Nats-UpTo-Sequence). */
  upTo?: number;
}

/** The entries of `keyFilter` from revision `fromSeq` on, oldest first. */
export async function readFrom(
  backend: NatsKvBackend,
  bucket: string,
  keyFilter: string,
  fromSeq: number,
  limits: BatchLimits,
): Promise<BatchRead> {
  const watch = await resumeAt(backend, bucket, keyFilter, Math.max(fromSeq, 1), limits);
  const entries: BatchEntry[] = [];
  let bytes = 0;
  try {
    // Bounded by maxMessages: each pass takes one entry or ends.
    while (entries.length < limits.maxMessages) {
      const next = await watch.next();
      if (next.done || next.value === null) break;
      const e = next.value;
      if (entries.length > 0 && bytes + e.value.length > limits.maxBytes) {
        return { entries, pendingAfter: e.delta + 1 };
      }
      bytes += e.value.length;
      entries.push({ entry: e, pending: e.delta });
    }
  } finally {
    watch.stop();
  }
  return { entries, pendingAfter: entries[entries.length - 1]?.pending ?? 0 };
}

/**
 * A watch resumed at `fromSeq`; a resume point below what the bucket still holds starts
 * at its oldest entry instead, as nats-server's reads do.
 */
async function resumeAt(
  backend: NatsKvBackend,
  bucket: string,
  keyFilter: string,
  fromSeq: number,
  limits: BatchLimits,
): Promise<NatsWatch> {
  const opts = (from: number) => ({
    resumeFromRevision: from,
    ...(limits.watchMaxPending === undefined ? {} : { maxPending: limits.watchMaxPending }),
  });
  try {
    return await backend.watch(bucket, keyFilter, opts(fromSeq));
  } catch (err) {
    if (!isKvError(err, "REVISION_COMPACTED")) throw err;
    const info = await backend.bucketInfo(bucket, { stale: false });
    return await backend.watch(bucket, keyFilter, opts(Math.max(fromSeq, info.firstRevision)));
  }
}

/**
 * The latest entry (markers included) of every key matching one of `keyFilters`, as of
 * revision `upToSeq` when given, in revision order; "too many" when more than
 * maxSubjects keys match or the scan would read more than maxScanned entries.
 */
export async function readMultiLast(
  backend: NatsKvBackend,
  bucket: string,
  keyFilters: string[],
  upToSeq: number | undefined,
  limits: BatchLimits,
): Promise<BatchRead | "too many"> {
  const filter = keyFilters.length === 1 ? keyFilters[0]! : ">";
  const matchers = keyFilters.map((f) => compileFilter(f));
  // Without values: only the entries sent are read whole, bounded by maxBytes.
  const watch = await backend.watch(bucket, filter, {
    metaOnly: true,
    ...(limits.watchMaxPending === undefined ? {} : { maxPending: limits.watchMaxPending }),
  });
  const latest: Entry[] = [];
  let boundary: number;
  try {
    boundary = watch.initRevision;
    // Bounded by maxScanned: each pass reads one entry or ends.
    for (let scanned = 0; ; scanned++) {
      if (scanned >= limits.maxScanned) return "too many";
      const next = await watch.next();
      if (next.done || next.value === null) break;
      const e = next.value;
      if (!matchers.some((m) => m(e.key))) continue;
      if (latest.length >= limits.maxSubjects) return "too many";
      latest.push(e);
    }
  } finally {
    watch.stop();
  }
  const upTo = upToSeq ?? boundary;
  const asOf: Entry[] = [];
  for (const e of latest) {
    if (e.revision <= upTo) {
      asOf.push(e);
      continue;
    }
    const history = await backend.history(bucket, e.key, { stale: false });
    const older = history.filter((h) => h.revision <= upTo);
    const last = older[older.length - 1];
    if (last !== undefined) asOf.push(last);
  }
  asOf.sort((a, b) => a.revision - b.revision);
  const entries: BatchEntry[] = [];
  let bytes = 0;
  for (const meta of asOf) {
    if (entries.length >= limits.maxMessages) break;
    if (entries.length > 0 && bytes + meta.size > limits.maxBytes) break;
    const e =
      meta.operation === "PUT" && meta.value.length < meta.size
        ? await backend.get(bucket, meta.key, meta.revision, { stale: false })
        : meta;
    // Gone since the scan (trimmed or purged): the answer is as of the scan or without it.
    if (e === null) continue;
    bytes += e.value.length;
    entries.push({ entry: e, pending: asOf.length - entries.length - 1 });
  }
  return { entries, pendingAfter: asOf.length - entries.length, upTo };
}
