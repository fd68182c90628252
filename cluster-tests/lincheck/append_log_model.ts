/**
 * A replicated append-only log (what a Raft cluster offers its clients):
 * `append(v)` returns the 1-based position v landed at; `read()` returns the
 * whole list, or just its length and digest (`appendLogDigest`) so a test
 * need not ship long lists around.
 *
 * States are immutable cons cells carrying a running 64-bit digest, so an
 * append is O(1) and the memoization key stays short however long the log.
 */
import { hashString32, hex32, mix32 } from "./hash.js";
import { historyEndTime } from "./patch.js";
import type { Model, Op } from "./types.js";

export type AppendValue = string | number;

export type AppendInput = { op: "append"; value: AppendValue } | { op: "read" };

export type AppendOutput =
  /** append: the 1-based position; omit it if the client does not learn it. */
  | { index?: number }
  /** read: the full list... */
  | { values: readonly AppendValue[] }
  /** ...or its length and `appendLogDigest(list)`. */
  | { length: number; digest: string };

export interface LogState {
  readonly length: number;
  readonly hash1: number;
  readonly hash2: number;
  readonly value: AppendValue | undefined;
  readonly prev: LogState | undefined;
}

const EMPTY: LogState = { length: 0, hash1: 0, hash2: 0, value: undefined, prev: undefined };

function appendTo(state: LogState, value: AppendValue): LogState {
  const text = JSON.stringify(value);
  return {
    length: state.length + 1,
    hash1: mix32(Math.imul(state.hash1, 0x01000193) ^ hashString32(text, 0x243f6a88)),
    hash2: mix32(Math.imul(state.hash2, 0x5bd1e995) ^ hashString32(text, 0x85a308d3)),
    value,
    prev: state,
  };
}

function digestOf(state: LogState): string {
  return hex32(state.hash1) + hex32(state.hash2);
}

/** The digest a `read` may return instead of the list; 16 hex digits. */
export function appendLogDigest(values: readonly AppendValue[]): string {
  let state = EMPTY;
  for (const v of values) state = appendTo(state, v);
  return digestOf(state);
}

function sameList(state: LogState, values: readonly AppendValue[]): boolean {
  if (values.length !== state.length) return false;
  let cell: LogState | undefined = state;
  for (let i = values.length - 1; i >= 0; i--) {
    if (cell === undefined || cell.value !== values[i]) return false;
    cell = cell.prev;
  }
  return true;
}

function tail(state: LogState, count: number): AppendValue[] {
  const out: AppendValue[] = [];
  for (
    let cell: LogState | undefined = state;
    cell?.prev !== undefined && out.length < count;
    cell = cell.prev
  ) {
    out.push(cell.value as AppendValue);
  }
  return out.reverse();
}

/**
 * An append without a response whose value (appended by no other op) shows up
 * in a read happened, at the position the read shows: give it that output.
 * This keeps the verdict and spares the search from placing it blindly, which
 * is exponential in the number of such appends.
 */
function resolveSeenAppends(
  history: readonly Op<AppendInput, AppendOutput>[],
): Op<AppendInput, AppendOutput>[] {
  const appends = new Map<AppendValue, number>();
  const seenAt = new Map<AppendValue, number>();
  for (const op of history) {
    if (op.input.op === "append") {
      appends.set(op.input.value, (appends.get(op.input.value) ?? 0) + 1);
    } else if (op.returnTime !== undefined && op.output !== undefined && "values" in op.output) {
      op.output.values.forEach((v, i) => {
        if (!seenAt.has(v)) seenAt.set(v, i + 1);
      });
    }
  }
  const end = historyEndTime(history);
  return history.map((op) => {
    if (op.returnTime !== undefined || op.input.op !== "append") return op;
    const index = seenAt.get(op.input.value);
    if (index === undefined || appends.get(op.input.value) !== 1) return op;
    return {
      clientId: op.clientId,
      input: op.input,
      callTime: op.callTime,
      returnTime: op.effectDeadline ?? end,
      output: { index },
    };
  });
}

export function appendLogModel(): Model<LogState, AppendInput, AppendOutput> {
  return {
    name: "append-log",
    init: () => [EMPTY],
    prepare: resolveSeenAppends,
    step(state, input, output, returned) {
      if (input.op === "append") {
        const after = appendTo(state, input.value);
        if (!returned) return [after, state];
        const index = output !== undefined && "index" in output ? output.index : undefined;
        return index === undefined || index === after.length ? [after] : [];
      }
      if (!returned) return [state];
      if (output !== undefined && "values" in output)
        return sameList(state, output.values) ? [state] : [];
      if (output !== undefined && "digest" in output) {
        return output.length === state.length && output.digest === digestOf(state) ? [state] : [];
      }
      throw new Error("append-log: read output must be { values } or { length, digest }");
    },
    stateKey: (state) => `${state.length}:${digestOf(state)}`,
    describeOp(input, output, returned) {
      const result = returned ? JSON.stringify(output) : "?";
      return input.op === "append"
        ? `append(${JSON.stringify(input.value)}) -> ${result}`
        : `read() -> ${result}`;
    },
    describeState(state) {
      const shown = tail(state, 8);
      const elided = state.length > shown.length ? "..., " : "";
      return `length ${state.length}: [${elided}${shown.map((v) => JSON.stringify(v)).join(", ")}]`;
    },
  };
}
