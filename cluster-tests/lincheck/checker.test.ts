import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bruteForceLinearizable } from "./brute_force.js";
import { checkLinearizable } from "./checker.js";
import { type RegisterInput, type RegisterOutput, registerModel } from "./register_model.js";
import type { Op } from "./types.js";

type RegOp = Op<RegisterInput, RegisterOutput>;

/** A compact way to write register histories: [client, call, return | undefined, input, output]. */
function h(
  ...rows: [number, number, number | undefined, RegisterInput, RegisterOutput?][]
): RegOp[] {
  return rows.map(([clientId, callTime, returnTime, input, output]) => ({
    clientId,
    callTime,
    returnTime,
    input,
    output,
  }));
}
const write = (value: number | string | null): RegisterInput => ({ op: "write", value });
const read = (key?: string): RegisterInput =>
  key === undefined ? { op: "read" } : { op: "read", key };
const cas = (from: number | null, to: number): RegisterInput => ({ op: "cas", from, to });

const model = registerModel({ initial: 0 });

describe("checkLinearizable on a register", () => {
  it("accepts the empty history and a sequential one", () => {
    expect(checkLinearizable(model, []).result).toBe("ok");
    const seq = h(
      [1, 1, 2, write(1)],
      [1, 3, 4, read(), 1],
      [2, 5, 6, write(2)],
      [2, 7, 8, read(), 2],
    );
    expect(checkLinearizable(model, seq).result).toBe("ok");
  });

  it("rejects a stale read after an acknowledged write", () => {
    const r = checkLinearizable(model, h([1, 1, 2, write(1)], [2, 3, 4, read(), 0]));
    expect(r.result).toBe("illegal");
    if (r.result !== "illegal") return;
    expect(r.partition).toBe("");
    expect(r.culprit?.input).toEqual(read());
    expect(r.explanation).toContain("smallest failing prefix");
    expect(r.explanation).toContain("[client 2] read() -> 0  [3, 4]");
    expect(r.explanation).toContain("not legal in any of these states");
  });

  it("rejects a lost write: a later read sees the value it overwrote", () => {
    const r = checkLinearizable(
      model,
      h([1, 1, 2, write(1)], [1, 3, 4, write(2)], [2, 5, 6, read(), 1]),
    );
    expect(r.result).toBe("illegal");
  });

  it("lets a read concurrent with a write see either value", () => {
    for (const seen of [0, 1]) {
      const r = checkLinearizable(model, h([1, 1, 4, write(1)], [2, 2, 3, read(), seen]));
      expect(r.result).toBe("ok");
    }
    expect(checkLinearizable(model, h([1, 1, 4, write(1)], [2, 2, 3, read(), 2])).result).toBe(
      "illegal",
    );
  });

  it("finds the only order of concurrent writes that explains the reads", () => {
    // write(2) must take effect before write(1), although it was called later.
    const ok = h(
      [1, 1, 10, write(1)],
      [2, 2, 9, write(2)],
      [3, 3, 5, read(), 2],
      [3, 11, 12, read(), 1],
    );
    expect(checkLinearizable(model, ok).result).toBe("ok");
    // Once both writes returned, the value cannot change back.
    const flip = h(
      [1, 1, 10, write(1)],
      [2, 2, 9, write(2)],
      [3, 11, 12, read(), 1],
      [3, 13, 14, read(), 2],
    );
    expect(checkLinearizable(model, flip).result).toBe("illegal");
  });

  it("treats intervals as closed: an op returning at t overlaps one called at t", () => {
    expect(checkLinearizable(model, h([1, 1, 5, write(1)], [2, 5, 6, read(), 0])).result).toBe(
      "ok",
    );
    expect(checkLinearizable(model, h([1, 1, 5, write(1)], [2, 6, 7, read(), 0])).result).toBe(
      "illegal",
    );
  });

  it("rejects two compare-and-swaps from the same value both succeeding", () => {
    const both = h([1, 1, 4, cas(0, 1), true], [2, 2, 3, cas(0, 2), true]);
    expect(checkLinearizable(model, both).result).toBe("illegal");
    const one = h([1, 1, 4, cas(0, 1), true], [2, 2, 3, cas(0, 2), false], [3, 5, 6, read(), 1]);
    expect(checkLinearizable(model, one).result).toBe("ok");
  });

  it("lets an unknown-outcome write appear later, or never", () => {
    const appears = h([1, 1, undefined, write(1)], [2, 5, 6, read(), 0], [2, 7, 8, read(), 1]);
    expect(checkLinearizable(model, appears).result).toBe("ok");
    const never = h([1, 1, undefined, write(1)], [2, 5, 6, read(), 0], [2, 7, 8, read(), 0]);
    expect(checkLinearizable(model, never).result).toBe("ok");
    // Once seen, it cannot be undone: nothing else wrote 0.
    const undone = h([1, 1, undefined, write(1)], [2, 5, 6, read(), 1], [2, 7, 8, read(), 0]);
    expect(checkLinearizable(model, undone).result).toBe("illegal");
    // An unknown op cannot take effect before its call.
    const early = h([2, 1, 2, read(), 1], [1, 3, undefined, write(1)]);
    expect(checkLinearizable(model, early).result).toBe("illegal");
  });

  it("stops an unknown write from appearing after its effect deadline", () => {
    const settled: RegOp[] = [
      { clientId: 1, callTime: 1, returnTime: undefined, effectDeadline: 3, input: write(1) },
      { clientId: 2, callTime: 5, returnTime: 6, input: read(), output: 0 },
      { clientId: 2, callTime: 7, returnTime: 8, input: read(), output: 1 },
    ];
    expect(checkLinearizable(model, settled).result).toBe("illegal");
    // Without the deadline it may take effect between the reads.
    const open = settled.map(({ effectDeadline: _, ...op }) => op);
    expect(checkLinearizable(model, open).result).toBe("ok");
    // Before its deadline it may take effect, or not at all.
    const seen: RegOp[] = [settled[0], { ...settled[1], callTime: 2, returnTime: 4, output: 1 }];
    expect(checkLinearizable(model, seen).result).toBe("ok");
    expect(checkLinearizable(model, [settled[0], settled[1]]).result).toBe("ok");
  });

  it("ignores the output of an op without a response", () => {
    const ops: RegOp[] = [
      { clientId: 1, callTime: 1, returnTime: undefined, input: read(), output: 42 },
      { clientId: 2, callTime: 2, returnTime: 3, input: read(), output: 0 },
    ];
    expect(checkLinearizable(model, ops).result).toBe("ok");
  });

  it("checks partitions independently and names the failing one", () => {
    const ops: RegOp[] = h(
      [1, 1, 2, { op: "write", value: 1, key: "a" }],
      [1, 3, 4, read("a"), 1],
      [2, 1, 2, { op: "write", value: 1, key: "b" }],
      [2, 3, 4, read("b"), 0],
      // Seen across keys this would be fine ordering-wise; per key it is not.
    );
    const r = checkLinearizable(registerModel({ initial: 0 }), ops);
    expect(r.result).toBe("illegal");
    if (r.result === "illegal") expect(r.partition).toBe("b");
    expect(r.stats.partitions).toBe(2);
  });

  it("asserts on malformed histories", () => {
    const bad = [{ clientId: 1, callTime: 5, returnTime: 4, input: read(), output: 0 }];
    expect(() => checkLinearizable(model, bad)).toThrow(/returnTime/);
    const nan = [{ clientId: 1, callTime: Number.NaN, returnTime: 4, input: read(), output: 0 }];
    expect(() => checkLinearizable(model, nan)).toThrow(/callTime/);
    const both = [{ clientId: 1, callTime: 1, returnTime: 4, effectDeadline: 3, input: read() }];
    expect(() => checkLinearizable(model, both)).toThrow(/effectDeadline/);
  });
});

/**
 * A hard history: many fully concurrent writes and a final read of a value
 * nobody wrote. Proving it illegal means trying every subset of writes.
 */
function hardHistory(writes: number): RegOp[] {
  const ops: RegOp[] = [];
  for (let i = 0; i < writes; i++)
    ops.push({ clientId: i, callTime: i, returnTime: 1000 + i, input: write(i + 1) });
  for (let i = 0; i < writes; i++) {
    ops.push({ clientId: 100 + i, callTime: i, returnTime: 1000 + i, input: read(), output: i });
  }
  ops.push({ clientId: 999, callTime: 2000, returnTime: 2001, input: read(), output: -1 });
  return ops;
}

describe("budgets", () => {
  it("reports unknown when the step budget runs out, reproducibly", () => {
    const ops = hardHistory(24);
    const a = checkLinearizable(model, ops, { maxSteps: 20_000 });
    const b = checkLinearizable(model, ops, { maxSteps: 20_000 });
    expect(a).toEqual({
      result: "unknown",
      reason: "timeout",
      budget: "steps",
      partition: "",
      stats: a.stats,
    });
    expect(b).toEqual(a);
  });

  it("reports unknown when the memoized states exceed maxStates", () => {
    const r = checkLinearizable(model, hardHistory(24), { maxStates: 500 });
    expect(r.result).toBe("unknown");
    if (r.result === "unknown") expect(r.budget).toBe("states");
  });

  it("honours an optional wall-clock timeout", () => {
    const r = checkLinearizable(model, hardHistory(40), { timeoutMs: 1, maxSteps: 1e9 });
    expect(r.result).toBe("unknown");
    if (r.result === "unknown") expect(r.budget).toBe("wall-clock");
  });

  it("still reports illegal in one partition when another ran out of budget", () => {
    const hard = hardHistory(24).map((op) => ({ ...op, input: { ...op.input, key: "hard" } }));
    const easy = h([1, 1, 2, { op: "write", value: 1, key: "z" }], [2, 3, 4, read("z"), 0]);
    const r = checkLinearizable(model, [...hard, ...easy], { maxSteps: 20_000 });
    expect(r.result).toBe("illegal");
    if (r.result === "illegal") expect(r.partition).toBe("z");
  });
});

describe("agrees with brute force on small random histories", () => {
  it("register with cas, reads and unknown outcomes", () => {
    const value = fc.constantFrom<number | null>(0, 1, 2);
    const input = fc.oneof(
      value.map((v): RegisterInput => ({ op: "write", value: v })),
      fc.constant<RegisterInput>({ op: "read" }),
      fc.tuple(value, value).map(([f, t]): RegisterInput => ({ op: "cas", from: f, to: t })),
    );
    const op = fc
      .record({
        input,
        callTime: fc.nat(12),
        length: fc.nat(6),
        noResponse: fc.nat(5).map((x) => x === 0),
        settled: fc.boolean(),
        readValue: value,
        swapped: fc.boolean(),
      })
      .map((r): RegOp => {
        const op: RegOp = {
          clientId: 0,
          input: r.input,
          callTime: r.callTime,
          returnTime: r.noResponse ? undefined : r.callTime + r.length,
          output:
            r.input.op === "read" ? r.readValue : r.input.op === "cas" ? r.swapped : undefined,
        };
        if (r.noResponse && r.settled) op.effectDeadline = r.callTime + r.length;
        return op;
      });
    let illegal = 0;
    let ok = 0;
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 7 }), (ops) => {
        const withClients = ops.map((o, i) => ({ ...o, clientId: i }));
        const expected = bruteForceLinearizable(model, withClients);
        const got = checkLinearizable(model, withClients);
        if (got.result === "ok") ok += 1;
        else illegal += 1;
        expect(got.result).toBe(expected ? "ok" : "illegal");
      }),
      { numRuns: 400, seed: 20260101 },
    );
    // Both verdicts must be exercised for the comparison to mean anything.
    expect(ok).toBeGreaterThan(40);
    expect(illegal).toBeGreaterThan(40);
  });
});
