import { describe, expect, it } from "vitest";
import { checkLinearizable } from "./checker.js";
import { HistoryRecorder } from "./history.js";
import { type RegisterInput, type RegisterOutput, registerModel } from "./register_model.js";

describe("HistoryRecorder", () => {
  it("assigns strictly increasing times from a counter", () => {
    const rec = new HistoryRecorder<RegisterInput, RegisterOutput>();
    const a = rec.call(1, { op: "write", value: 1 });
    const b = rec.call(2, { op: "read" });
    rec.ok(a, undefined);
    rec.ok(b, 1);
    expect(rec.history()).toEqual([
      {
        clientId: 1,
        input: { op: "write", value: 1 },
        callTime: 1,
        returnTime: 3,
        output: undefined,
      },
      { clientId: 2, input: { op: "read" }, callTime: 2, returnTime: 4, output: 1 },
    ]);
  });

  it("drops definite failures, keeps unknown and pending ops without a return time", () => {
    const rec = new HistoryRecorder<RegisterInput, RegisterOutput>();
    const failed = rec.call(1, { op: "write", value: 1 });
    const lost = rec.call(2, { op: "write", value: 2 });
    rec.call(3, { op: "write", value: 3 });
    const settled = rec.call(4, { op: "write", value: 4 });
    rec.failDefinitely(failed);
    rec.unknown(lost);
    rec.unknown(settled, { settled: true });
    expect(rec.pendingCount()).toBe(1);
    const ops = rec.history();
    expect(ops.map((o) => o.clientId)).toEqual([2, 3, 4]);
    expect(ops.every((o) => o.returnTime === undefined)).toBe(true);
    expect(ops.map((o) => o.effectDeadline)).toEqual([undefined, undefined, 7]);
  });

  it("asserts on completing an op twice or an unknown handle", () => {
    const rec = new HistoryRecorder<RegisterInput, RegisterOutput>();
    const a = rec.call(1, { op: "read" });
    rec.ok(a, null);
    expect(() => rec.ok(a, null)).toThrow(/already completed/);
    expect(() => rec.unknown(99)).toThrow(/unknown handle/);
  });

  it("records histories the checker can judge", async () => {
    const rec = new HistoryRecorder<RegisterInput, RegisterOutput>();
    let value: number | null = null;
    // Async clients in one event loop: effects happen between call and response.
    const client = async (id: number) => {
      for (let i = 0; i < 20; i++) {
        if (i % 2 === 0) {
          const h = rec.call(id, { op: "write", value: id * 100 + i });
          await Promise.resolve();
          value = id * 100 + i;
          await Promise.resolve();
          rec.ok(h, undefined);
        } else {
          const h = rec.call(id, { op: "read" });
          await Promise.resolve();
          const seen = value;
          await Promise.resolve();
          rec.ok(h, seen);
        }
      }
    };
    await Promise.all([client(1), client(2), client(3)]);
    expect(checkLinearizable(registerModel(), rec.history()).result).toBe("ok");
  });
});
