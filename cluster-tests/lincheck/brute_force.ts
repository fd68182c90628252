/**
 * A reference oracle for tests: tries every order of the ops that respects
 * real time, through the model's powerset, with no memoization or list
 * tricks. Exponential; only for histories of a handful of ops.
 */
import { initialStates, type StateSet, stepSet } from "./search.js";
import type { Model, Op } from "./types.js";

const OPS_MAX = 9;

export function bruteForceLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Op<I, O>[],
): boolean {
  const prepared = model.prepare === undefined ? history : model.prepare(history);
  const parts = new Map<string, Op<I, O>[]>();
  for (const op of prepared) {
    const key = model.partition === undefined ? "" : model.partition(op.input);
    parts.set(key, [...(parts.get(key) ?? []), op]);
  }
  return [...parts.values()].every((ops) => partLinearizable(model, ops));
}

function partLinearizable<S, I, O>(model: Model<S, I, O>, ops: readonly Op<I, O>[]): boolean {
  const n = ops.length;
  if (n > OPS_MAX) throw new Error(`bruteForceLinearizable: ${n} ops is too many (max ${OPS_MAX})`);
  const end = (op: Op<I, O>) => op.returnTime ?? Number.POSITIVE_INFINITY;
  const used = new Array<boolean>(n).fill(false);
  const go = (knownLeft: number, state: StateSet<S>): boolean => {
    // Ops without a response may never take effect.
    if (knownLeft === 0) return true;
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      // i may come next only if no other remaining op returned before i was called.
      let minimal = true;
      for (let j = 0; j < n; j++) {
        if (j !== i && !used[j] && end(ops[j]) < ops[i].callTime) minimal = false;
      }
      if (!minimal) continue;
      const after = stepSet(model, state, ops[i]);
      if (after === undefined) continue;
      used[i] = true;
      const ok = go(knownLeft - (ops[i].returnTime === undefined ? 0 : 1), after);
      used[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return go(ops.filter((op) => op.returnTime !== undefined).length, initialStates(model));
}
