/**
 * `checkLinearizable`: is there a total order of the history's ops, consistent
 * with real time, that the sequential model accepts? Splits the history by the
 * model's partition key (P-compositionality), runs the Wing-Gong-Lowe search
 * on each part (search.ts), and on failure shrinks the failing part to its
 * smallest failing prefix so the explanation points at one response.
 */
import { explainIllegal } from "./explain.js";
import { type DeadEnd, type SearchLimits, searchPartition } from "./search.js";
import type { CheckOptions, CheckResult, CheckStats, Model, Op } from "./types.js";

const DEFAULT_MAX_STEPS = 5_000_000;
const DEFAULT_MAX_STATES = 1_000_000;
/** The partition key reported when the model has no `partition` function. */
export const WHOLE_HISTORY = "*";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`lincheck: ${message}`);
}

function validateHistory<I, O>(history: readonly Op<I, O>[]): void {
  for (let i = 0; i < history.length; i++) {
    const op = history[i];
    assert(
      typeof op.callTime === "number" && Number.isFinite(op.callTime),
      `op ${i}: callTime must be a finite number`,
    );
    assert(
      op.returnTime === undefined ||
        (typeof op.returnTime === "number" &&
          Number.isFinite(op.returnTime) &&
          op.returnTime >= op.callTime),
      `op ${i}: returnTime must be undefined or a finite number >= callTime`,
    );
    assert(
      op.effectDeadline === undefined ||
        (op.returnTime === undefined &&
          typeof op.effectDeadline === "number" &&
          Number.isFinite(op.effectDeadline) &&
          op.effectDeadline >= op.callTime),
      `op ${i}: effectDeadline needs returnTime undefined and a finite number >= callTime`,
    );
  }
}

export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Op<I, O>[],
  options: CheckOptions = {},
): CheckResult<I, O> {
  validateHistory(history);
  const limits: SearchLimits = {
    maxSteps: options.maxSteps ?? DEFAULT_MAX_STEPS,
    maxStates: options.maxStates ?? DEFAULT_MAX_STATES,
    deadline:
      options.timeoutMs === undefined
        ? Number.POSITIVE_INFINITY
        : performance.now() + options.timeoutMs,
  };
  assert(limits.maxSteps > 0 && limits.maxStates > 0, "maxSteps and maxStates must be positive");

  const parts = new Map<string, Op<I, O>[]>();
  for (const op of history) {
    const key = model.partition === undefined ? WHOLE_HISTORY : model.partition(op.input);
    let part = parts.get(key);
    if (part === undefined) {
      part = [];
      parts.set(key, part);
    }
    part.push(op);
  }
  const keys = [...parts.keys()].sort();
  const stats: CheckStats = { partitions: keys.length, ops: history.length, steps: 0, states: 0 };

  let firstUnknown: { partition: string; budget: "steps" | "states" | "wall-clock" } | undefined;
  for (const key of keys) {
    const original = parts.get(key)!;
    const ops = prepare(model, original);
    const outcome = searchPartition(model, ops, limits);
    stats.steps += outcome.steps;
    stats.states += outcome.states;
    if (outcome.verdict === "illegal") {
      const minimize = options.minimize ?? true;
      return illegal(model, key, original, ops, outcome.deadEnd, limits, minimize, stats);
    }
    if (outcome.verdict === "unknown") {
      firstUnknown ??= { partition: key, budget: outcome.budget };
      // Other partitions may still give a definite "illegal"; not so once the clock ran out.
      if (outcome.budget === "wall-clock") break;
    }
  }
  if (firstUnknown !== undefined) {
    return { result: "unknown", reason: "timeout", ...firstUnknown, stats };
  }
  return { result: "ok", stats };
}

/** The model's verdict-preserving rewrite of one partition, checked to be 1:1. */
function prepare<S, I, O>(model: Model<S, I, O>, ops: readonly Op<I, O>[]): readonly Op<I, O>[] {
  if (model.prepare === undefined) return ops;
  const prepared = model.prepare(ops);
  assert(
    prepared.length === ops.length,
    `model ${model.name}: prepare must keep every op in place`,
  );
  return prepared;
}

function illegal<S, I, O>(
  model: Model<S, I, O>,
  partition: string,
  original: readonly Op<I, O>[],
  ops: readonly Op<I, O>[],
  deadEnd: DeadEnd<S>,
  limits: SearchLimits,
  minimize: boolean,
  stats: CheckStats,
): CheckResult<I, O> {
  const smallest = minimize
    ? smallestFailingPrefix(model, original, ops, deadEnd, limits, stats)
    : undefined;
  const explanation =
    smallest === undefined
      ? explainIllegal(model, partition, original.length, { ops, original }, deadEnd, undefined)
      : explainIllegal(model, partition, original.length, smallest.prefix, smallest.deadEnd, {
          time: smallest.time,
          ops: smallest.culprits,
        });
  const culprit = smallest === undefined ? undefined : original[smallest.culpritIndexes[0]];
  return {
    result: "illegal",
    partition,
    explanation,
    ...(culprit === undefined ? {} : { culprit }),
    stats,
  };
}

/**
 * prefix(T) = the ops called at or before T, where responses after T are
 * treated as not yet received (unknown outcome). If the full history is
 * linearizable so is every prefix (an unknown op may take effect last, or
 * never), so "prefix(T) is illegal" is monotone in T and a binary search over
 * response times finds the first response that cannot be explained. Prefixes
 * are cut from the original history and prepared afresh, so a rewrite that a
 * later read justified is not applied before that read.
 */
function prefixAt<I, O>(
  ops: readonly Op<I, O>[],
  time: number,
): { ops: Op<I, O>[]; from: number[] } {
  const out: Op<I, O>[] = [];
  const from: number[] = [];
  ops.forEach((op, i) => {
    if (op.callTime > time) return;
    from.push(i);
    if (op.returnTime !== undefined && op.returnTime <= time) {
      out.push(op);
      return;
    }
    const pending: Op<I, O> = {
      clientId: op.clientId,
      input: op.input,
      callTime: op.callTime,
      returnTime: undefined,
    };
    if (op.effectDeadline !== undefined && op.effectDeadline <= time) {
      pending.effectDeadline = op.effectDeadline;
    }
    out.push(pending);
  });
  return { ops: out, from };
}

interface Prefix<I, O> {
  /** The prepared ops the search ran on. */
  ops: readonly Op<I, O>[];
  /** The same ops before `prepare` (identical objects where it changed nothing). */
  original: readonly Op<I, O>[];
}

function smallestFailingPrefix<S, I, O>(
  model: Model<S, I, O>,
  original: readonly Op<I, O>[],
  prepared: readonly Op<I, O>[],
  fullDeadEnd: DeadEnd<S>,
  limits: SearchLimits,
  stats: CheckStats,
):
  | {
      time: number;
      prefix: Prefix<I, O>;
      deadEnd: DeadEnd<S>;
      culprits: number[];
      culpritIndexes: number[];
    }
  | undefined {
  const times = [
    ...new Set(original.flatMap((op) => (op.returnTime === undefined ? [] : [op.returnTime]))),
  ];
  times.sort((a, b) => a - b);
  if (times.length === 0) return undefined;
  // One extra budget shared by every probe keeps the whole check bounded.
  let stepsLeft = limits.maxSteps;
  const probe = (time: number) => {
    const cut = prefixAt(original, time);
    const ops = prepare(model, cut.ops);
    const outcome = searchPartition(model, ops, { ...limits, maxSteps: stepsLeft });
    stepsLeft -= outcome.steps;
    stats.steps += outcome.steps;
    stats.states += outcome.states;
    return { outcome, prefix: { ops, original: cut.ops }, from: cut.from };
  };

  // Invariant: prefix(times[hi]) is illegal; prefix(times[lo - 1]) is not (or lo = 0).
  // The last response time cuts nothing that matters: reuse the full search.
  let lo = 0;
  let hi = times.length - 1;
  let found = {
    deadEnd: fullDeadEnd,
    prefix: { ops: prepared, original } as Prefix<I, O>,
    from: original.map((_, i) => i),
  };
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const { outcome, prefix, from } = probe(times[mid]);
    if (outcome.verdict === "unknown") return undefined;
    if (outcome.verdict === "illegal") {
      hi = mid;
      found = { deadEnd: outcome.deadEnd, prefix, from };
    } else {
      lo = mid + 1;
    }
  }
  const time = times[hi];
  const culprits: number[] = [];
  const culpritIndexes: number[] = [];
  found.from.forEach((index, i) => {
    if (original[index].returnTime === time) {
      culprits.push(i);
      culpritIndexes.push(index);
    }
  });
  return { time, prefix: found.prefix, deadEnd: found.deadEnd, culprits, culpritIndexes };
}
