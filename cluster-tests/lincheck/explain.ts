/**
 * Turns a failed search into text a person can act on: the response that
 * cannot be explained, the longest order the search could build, the states
 * it leaves, and why each op that could have come next did not fit.
 */
import { type DeadEnd, type StateSet, stepSet } from "./search.js";
import type { Model, Op } from "./types.js";

const ORDER_SHOWN_MAX = 12;
const CANDIDATES_SHOWN_MAX = 12;
const STATES_SHOWN_MAX = 4;
const TEXT_CHARS_MAX = 300;

export interface Culprit {
  /** The prefix cut: ops called at or before this time, responses after it ignored. */
  time: number;
  /** Ops of the prefix whose response arrived exactly at `time`. */
  ops: number[];
}

/**
 * `original` is the op as recorded when `prepare` rewrote it (an op without a
 * response whose output a later read proves): the text then says so.
 */
export function describeTimedOp<S, I, O>(
  model: Model<S, I, O>,
  op: Op<I, O>,
  original: Op<I, O> = op,
): string {
  if (original !== op) {
    const what = model.describeOp(op.input, op.output, true);
    return `[client ${String(op.clientId)}] ${clip(what)}  [${op.callTime}, no response; output inferred from a read]`;
  }
  const returned = op.returnTime !== undefined;
  const what = model.describeOp(op.input, returned ? op.output : undefined, returned);
  const pending =
    op.effectDeadline === undefined
      ? "no response"
      : `no response, settled by ${op.effectDeadline}`;
  const when = `[${op.callTime}, ${returned ? op.returnTime : pending}]`;
  return `[client ${String(op.clientId)}] ${clip(what)}  ${when}`;
}

export function explainIllegal<S, I, O>(
  model: Model<S, I, O>,
  partition: string,
  partitionOpCount: number,
  history: { ops: readonly Op<I, O>[]; original: readonly Op<I, O>[] },
  deadEnd: DeadEnd<S>,
  culprit: Culprit | undefined,
): string {
  const { ops, original } = history;
  const describe = (i: number) => describeTimedOp(model, ops[i], original[i]);
  const lines: string[] = [];
  lines.push(
    `not linearizable: partition ${JSON.stringify(partition)} (${partitionOpCount} ops), model ${model.name}`,
  );
  if (culprit !== undefined) {
    lines.push(
      `smallest failing prefix: the ${ops.length} ops called up to t=${culprit.time}, responses after t=${culprit.time} ignored.`,
      `every earlier response can be explained; this one cannot:`,
    );
    for (const i of culprit.ops) lines.push(`  ${describe(i)}`);
  }

  const order = deadEnd.order;
  lines.push(`longest linearizable order found (${order.length} ops):`);
  if (order.length === 0) lines.push("  (none: no op can come first)");
  const firstShown = Math.max(0, order.length - ORDER_SHOWN_MAX);
  if (firstShown > 0) lines.push(`  ... ${firstShown} earlier ops`);
  for (let k = firstShown; k < order.length; k++) {
    lines.push(`  ${k + 1}. ${describe(order[k])}`);
  }
  lines.push(`possible states after it: ${describeStates(model, deadEnd.after)}`);

  lines.push(
    `it cannot be extended: this op must be linearized before its response, but it cannot come next:`,
    `  ${describe(deadEnd.blocking)}`,
    `ops that could come next and why each fails:`,
  );
  for (const i of deadEnd.candidates.slice(0, CANDIDATES_SHOWN_MAX)) {
    const legal = stepSet(model, deadEnd.after, ops[i]) !== undefined;
    const why = legal
      ? "legal here, but no order of the remaining ops follows"
      : "not legal in any of these states";
    lines.push(`  - ${describe(i)}: ${why}`);
  }
  if (deadEnd.candidates.length > CANDIDATES_SHOWN_MAX) {
    lines.push(`  ... ${deadEnd.candidates.length - CANDIDATES_SHOWN_MAX} more`);
  }
  return lines.join("\n");
}

function describeStates<S, I, O>(model: Model<S, I, O>, set: StateSet<S>): string {
  const shown = set.states.slice(0, STATES_SHOWN_MAX).map((s) => clip(model.describeState(s)));
  const more = set.states.length - shown.length;
  const text = shown.length === 1 ? shown[0] : `one of ${shown.join(" | ")}`;
  return more > 0 ? `${text} | ... ${more} more` : text;
}

function clip(text: string): string {
  return text.length <= TEXT_CHARS_MAX ? text : `${text.slice(0, TEXT_CHARS_MAX)}...`;
}
