import { describe, expect, it } from "vitest";
import {
  type AppendInput,
  type AppendOutput,
  appendLogDigest,
  appendLogModel,
} from "./append_log_model.js";
import { checkLinearizable } from "./checker.js";
import type { Op } from "./types.js";

type LogOp = Op<AppendInput, AppendOutput>;
const model = appendLogModel();

function op(
  clientId: number,
  callTime: number,
  returnTime: number | undefined,
  input: AppendInput,
  output?: AppendOutput,
): LogOp {
  return { clientId, callTime, returnTime, input, output };
}
const append = (value: string): AppendInput => ({ op: "append", value });
const read: AppendInput = { op: "read" };

describe("appendLogModel", () => {
  it("accepts appends at consecutive positions and reads of the whole list", () => {
    const ops = [
      op(1, 1, 2, append("a"), { index: 1 }),
      op(2, 3, 4, append("b"), { index: 2 }),
      op(3, 5, 6, read, { values: ["a", "b"] }),
      op(3, 7, 8, read, { length: 2, digest: appendLogDigest(["a", "b"]) }),
    ];
    expect(checkLinearizable(model, ops).result).toBe("ok");
  });

  it("orders concurrent appends by the positions they returned", () => {
    const ops = [
      op(1, 1, 10, append("a"), { index: 2 }),
      op(2, 2, 9, append("b"), { index: 1 }),
      op(3, 11, 12, read, { values: ["b", "a"] }),
    ];
    expect(checkLinearizable(model, ops).result).toBe("ok");
    const wrongRead = [...ops.slice(0, 2), op(3, 11, 12, read, { values: ["a", "b"] })];
    expect(checkLinearizable(model, wrongRead).result).toBe("illegal");
  });

  it("rejects two appends at the same position", () => {
    const ops = [op(1, 1, 3, append("a"), { index: 1 }), op(2, 2, 4, append("b"), { index: 1 })];
    expect(checkLinearizable(model, ops).result).toBe("illegal");
  });

  it("rejects a lost acknowledged append and a stale read", () => {
    const lost = [op(1, 1, 2, append("a"), { index: 1 }), op(2, 3, 4, read, { values: [] })];
    expect(checkLinearizable(model, lost).result).toBe("illegal");
    const digestStale = [
      op(1, 1, 2, append("a"), { index: 1 }),
      op(2, 3, 4, read, { length: 0, digest: appendLogDigest([]) }),
    ];
    expect(checkLinearizable(model, digestStale).result).toBe("illegal");
  });

  it("lets an unknown append show up later at any position, or never", () => {
    const later = [
      op(1, 1, undefined, append("x")),
      op(2, 2, 3, append("a"), { index: 1 }),
      op(2, 4, 5, read, { values: ["a"] }),
      op(2, 6, 7, read, { values: ["a", "x"] }),
    ];
    expect(checkLinearizable(model, later).result).toBe("ok");
    const never = [op(1, 1, undefined, append("x")), op(2, 2, 3, read, { values: [] })];
    expect(checkLinearizable(model, never).result).toBe("ok");
    const vanished = [
      op(1, 1, undefined, append("x")),
      op(2, 2, 3, read, { values: ["x"] }),
      op(2, 4, 5, read, { values: [] }),
    ];
    expect(checkLinearizable(model, vanished).result).toBe("illegal");
  });

  it("digests differ for different lists and orders", () => {
    const d = appendLogDigest(["a", "b"]);
    expect(d).toMatch(/^[0-9a-f]{16}$/);
    expect(appendLogDigest(["b", "a"])).not.toBe(d);
    expect(appendLogDigest(["a"])).not.toBe(d);
    expect(appendLogDigest([1, 2])).not.toBe(appendLogDigest(["1", "2"]));
  });
});
