/**
 * A read/write/compare-and-swap register, optionally one per key: the classic
 * object of linearizability papers, used to test the checker itself.
 */
import type { Model } from "./types.js";

export type RegisterValue = string | number | null;

export type RegisterInput =
  | { op: "write"; value: RegisterValue; key?: string }
  | { op: "read"; key?: string }
  | { op: "cas"; from: RegisterValue; to: RegisterValue; key?: string };

/** read -> the value; cas -> whether it swapped; write -> nothing (undefined). */
export type RegisterOutput = RegisterValue | boolean | undefined;

export function registerModel(
  options: { initial?: RegisterValue } = {},
): Model<RegisterValue, RegisterInput, RegisterOutput> {
  const initial = options.initial ?? null;
  return {
    name: "register",
    init: () => [initial],
    partition: (input) => input.key ?? "",
    step(state, input, output, returned) {
      switch (input.op) {
        case "write":
          // No response: it happened here, or not (yet): fork.
          return returned ? [input.value] : [input.value, state];
        case "read":
          return !returned || output === state ? [state] : [];
        case "cas": {
          const swaps = state === input.from;
          if (!returned) return swaps ? [input.to, state] : [state];
          if (output === true) return swaps ? [input.to] : [];
          if (output === false) return swaps ? [] : [state];
          throw new Error(`register: cas output must be a boolean, got ${String(output)}`);
        }
      }
    },
    stateKey: (state) => JSON.stringify(state),
    describeOp(input, output, returned) {
      const key = input.key === undefined ? "" : `${JSON.stringify(input.key)}: `;
      const result = returned ? JSON.stringify(output) : "?";
      switch (input.op) {
        case "write":
          return `${key}write(${JSON.stringify(input.value)})${returned ? "" : " -> ?"}`;
        case "read":
          return `${key}read() -> ${result}`;
        case "cas":
          return `${key}cas(${JSON.stringify(input.from)}, ${JSON.stringify(input.to)}) -> ${result}`;
      }
    },
    describeState: (state) => JSON.stringify(state),
  };
}
