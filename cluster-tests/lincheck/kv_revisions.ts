/**
 * Cross-key revision checks that need no search, to pair with the per-key
 * model (which cannot see other keys): within a bucket,
 * - identity: one revision names one entry (same key, same value or marker),
 *   whether learned from a write's response, a read or a CAS error;
 * - real time: an op that was called after another op returned, having seen
 *   revision r, must get a revision > r for its write.
 * Both are necessary conditions of the exact model, so a violation is a real
 * bug; passing them plus `kvPerKeyModel` is still weaker than `kvModel`.
 */
import { describeKvOp, type KvInput, type KvOutput } from "./kv_model.js";
import type { Op } from "./types.js";

export type KvRevisionResult = { result: "ok" } | { result: "illegal"; explanation: string };

const VIOLATIONS_SHOWN_MAX = 10;

interface Observation {
  op: Op<KvInput, KvOutput>;
  revision: number;
}

function describe(op: Op<KvInput, KvOutput>): string {
  const returned = op.returnTime !== undefined;
  const what = describeKvOp(op.input, returned ? op.output : undefined, returned);
  return `[client ${String(op.clientId)}] ${what}  [${op.callTime}, ${returned ? op.returnTime : "no response"}]`;
}

export function checkKvRevisions(history: readonly Op<KvInput, KvOutput>[]): KvRevisionResult {
  const violations: string[] = [];
  const buckets = new Map<string, Op<KvInput, KvOutput>[]>();
  for (const op of history) {
    if (op.returnTime === undefined || op.output === undefined) continue;
    const bucket = op.input.bucket ?? "default";
    let ops = buckets.get(bucket);
    if (ops === undefined) {
      ops = [];
      buckets.set(bucket, ops);
    }
    ops.push(op);
  }
  for (const [bucket, ops] of [...buckets.entries()].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  )) {
    checkBucket(bucket, ops, violations);
  }
  if (violations.length === 0) return { result: "ok" };
  const shown = violations.slice(0, VIOLATIONS_SHOWN_MAX);
  if (violations.length > shown.length) shown.push(`... ${violations.length - shown.length} more`);
  return { result: "illegal", explanation: shown.join("\n") };
}

function checkBucket(bucket: string, ops: Op<KvInput, KvOutput>[], violations: string[]): void {
  // What each observed revision names: "key=value" or "key=marker".
  const named = new Map<number, { what: string; op: Op<KvInput, KvOutput> }>();
  const observations: Observation[] = [];
  const writes: Observation[] = [];
  const writeAt = new Map<number, Observation>();
  const name = (op: Op<KvInput, KvOutput>, revision: number, what: string | undefined): void => {
    if (!Number.isSafeInteger(revision) || revision < 1) {
      violations.push(
        `bucket ${bucket}: revision ${revision} is not a positive safe integer: ${describe(op)}`,
      );
      return;
    }
    observations.push({ op, revision });
    if (what === undefined) return;
    const seen = named.get(revision);
    if (seen === undefined) named.set(revision, { what, op });
    else if (seen.what !== what) {
      violations.push(
        `bucket ${bucket}: revision ${revision} names two different entries:\n  ${describe(seen.op)}\n  ${describe(op)}`,
      );
    }
  };
  for (const op of ops) {
    const out = op.output!;
    const input = op.input;
    if (out.kind === "written") {
      const value =
        input.op === "put" || input.op === "create" || input.op === "update"
          ? JSON.stringify(input.value)
          : "marker";
      name(op, out.revision, `${input.key}=${value}`);
      const twin = writeAt.get(out.revision);
      if (twin !== undefined) {
        violations.push(
          `bucket ${bucket}: two accepted writes share revision ${out.revision}:\n  ${describe(twin.op)}\n  ${describe(op)}`,
        );
      }
      if (Number.isSafeInteger(out.revision)) {
        writes.push({ op, revision: out.revision });
        writeAt.set(out.revision, { op, revision: out.revision });
      }
    } else if (out.kind === "entry") {
      name(op, out.revision, `${input.key}=${JSON.stringify(out.value)}`);
    } else if (
      out.kind === "rejected" &&
      out.currentRevision !== undefined &&
      out.currentRevision > 0
    ) {
      name(op, out.currentRevision, undefined);
    }
  }
  // Sweep writes by call time against everything observed strictly before.
  observations.sort((a, b) => a.op.returnTime! - b.op.returnTime!);
  writes.sort((a, b) => a.op.callTime - b.op.callTime);
  let j = 0;
  let maxSeen: Observation | undefined;
  for (const write of writes) {
    while (j < observations.length && observations[j].op.returnTime! < write.op.callTime) {
      if (maxSeen === undefined || observations[j].revision > maxSeen.revision)
        maxSeen = observations[j];
      j += 1;
    }
    if (maxSeen !== undefined && write.revision <= maxSeen.revision) {
      violations.push(
        `bucket ${bucket}: a write called after revision ${maxSeen.revision} was seen got revision ${write.revision}:\n  seen:  ${describe(maxSeen.op)}\n  write: ${describe(write.op)}`,
      );
    }
  }
}
