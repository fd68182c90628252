/**
 * History patching from ground truth (etcd's tests/robustness
 * validate/patch_history.go): ops without a response are what makes checking
 * expensive, since each may take effect anywhere after its call, or never.
 * After a test, the final committed log says which of them happened: a write
 * found in it gets its real output and a response "at the end"; a write not
 * found in it never happened and is dropped; a read without a response changes
 * nothing and is dropped.
 *
 * Sound only if `committed` is final: read it after the last client op, once a
 * leader has committed an entry of its own term (entries not in that leader's
 * log can never commit later). Values must be unique per write: a value found
 * twice is ambiguous and its op stays unknown.
 */
import type { AppendInput, AppendOutput, AppendValue } from "./append_log_model.js";
import type { KvInput, KvOutput } from "./kv_model.js";
import type { Op } from "./types.js";

/** A time after every call and response of the history: "responded at the end". */
export function historyEndTime<I, O>(history: readonly Op<I, O>[]): number {
  let end = 0;
  for (const op of history) {
    end = Math.max(end, op.callTime, op.returnTime ?? 0, op.effectDeadline ?? 0);
  }
  return end + 1;
}

/** The op with its now-known output, responding by its deadline or at the end. */
function resolved<I, O>(op: Op<I, O>, end: number, output: O): Op<I, O> {
  return {
    clientId: op.clientId,
    input: op.input,
    callTime: op.callTime,
    returnTime: op.effectDeadline ?? end,
    output,
  };
}

/** Positions of values that occur exactly once. */
function uniquePositions<V, K>(items: readonly V[], keyOf: (item: V) => K): Map<K, number> {
  const seen = new Map<K, number>();
  const twice = new Set<K>();
  items.forEach((item, i) => {
    const k = keyOf(item);
    if (seen.has(k)) twice.add(k);
    else seen.set(k, i);
  });
  for (const k of twice) seen.delete(k);
  return seen;
}

export function patchAppendHistory(
  history: readonly Op<AppendInput, AppendOutput>[],
  committed: readonly AppendValue[],
): Op<AppendInput, AppendOutput>[] {
  const end = historyEndTime(history);
  const at = uniquePositions(committed, (v) => v);
  const ambiguous = new Set(committed.filter((v) => !at.has(v)));
  const out: Op<AppendInput, AppendOutput>[] = [];
  for (const op of history) {
    if (op.returnTime !== undefined) {
      out.push(op);
    } else if (op.input.op === "append") {
      const value = op.input.value;
      const position = at.get(value);
      if (position !== undefined) out.push(resolved(op, end, { index: position + 1 }));
      else if (ambiguous.has(value)) out.push(op);
      // else: not in the final log, so it never took effect.
    }
  }
  return out;
}

/** One entry of a bucket's final committed log; `value` is null for DEL and PURGE markers. */
export interface CommittedKvEntry {
  bucket?: string;
  key: string;
  revision: number;
  value: string | null;
}

export function patchKvHistory(
  history: readonly Op<KvInput, KvOutput>[],
  committed: readonly CommittedKvEntry[],
): Op<KvInput, KvOutput>[] {
  const end = historyEndTime(history);
  const id = (bucket: string | undefined, key: string, value: string) =>
    JSON.stringify([bucket ?? "", key, value]);
  const puts = committed.filter((e) => e.value !== null);
  const at = uniquePositions(puts, (e) => id(e.bucket, e.key, e.value!));
  const ambiguous = new Set(
    puts.map((e) => id(e.bucket, e.key, e.value!)).filter((k) => !at.has(k)),
  );
  const out: Op<KvInput, KvOutput>[] = [];
  for (const op of history) {
    const input = op.input;
    if (op.returnTime !== undefined || input.op === "delete" || input.op === "purge") {
      // Markers carry no value to recognize them by: such ops stay unknown.
      out.push(op);
    } else if (input.op !== "get") {
      const k = id(input.bucket, input.key, input.value);
      const position = at.get(k);
      if (position !== undefined) {
        out.push(resolved(op, end, { kind: "written", revision: puts[position].revision }));
      } else if (ambiguous.has(k)) {
        out.push(op);
      }
    }
  }
  return out;
}
