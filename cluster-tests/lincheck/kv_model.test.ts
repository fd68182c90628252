import { describe, expect, it } from "vitest";
import { checkLinearizable } from "./checker.js";
import { type KvInput, type KvOutput, kvModel, kvPerKeyModel } from "./kv_model.js";
import { checkKvRevisions } from "./kv_revisions.js";
import type { Op } from "./types.js";

type KvOp = Op<KvInput, KvOutput>;

let nextClient = 0;
function op(
  callTime: number,
  returnTime: number | undefined,
  input: KvInput,
  output?: KvOutput,
): KvOp {
  nextClient += 1;
  return { clientId: nextClient, callTime, returnTime, input, output };
}
const put = (key: string, value: string, bucket?: string): KvInput =>
  bucket === undefined ? { op: "put", key, value } : { op: "put", key, value, bucket };
const create = (key: string, value: string): KvInput => ({ op: "create", key, value });
const update = (key: string, value: string, last: number): KvInput => ({
  op: "update",
  key,
  value,
  last,
});
const del = (key: string, last?: number): KvInput =>
  last === undefined ? { op: "delete", key } : { op: "delete", key, last };
const purge = (key: string): KvInput => ({ op: "purge", key });
const get = (key: string): KvInput => ({ op: "get", key });
const rev = (revision: number): KvOutput => ({ kind: "written", revision });
const entry = (value: string, revision: number): KvOutput => ({ kind: "entry", value, revision });
const absent: KvOutput = { kind: "absent" };
const keyExists = (currentRevision?: number): KvOutput =>
  currentRevision === undefined
    ? { kind: "rejected", code: "KEY_EXISTS" }
    : { kind: "rejected", code: "KEY_EXISTS", currentRevision };
const wrongLast = (currentRevision?: number): KvOutput =>
  currentRevision === undefined
    ? { kind: "rejected", code: "WRONG_LAST_REVISION" }
    : { kind: "rejected", code: "WRONG_LAST_REVISION", currentRevision };

function verdicts(ops: KvOp[]): { exact: string; perKey: string; revisions: string } {
  return {
    exact: checkLinearizable(kvModel(), ops).result,
    perKey: checkLinearizable(kvPerKeyModel(), ops).result,
    revisions: checkKvRevisions(ops).result,
  };
}
const allOk = { exact: "ok", perKey: "ok", revisions: "ok" };

describe("kv models agree on classic histories", () => {
  it("accept a sequential history of every operation", () => {
    const ops = [
      op(1, 2, get("a"), absent),
      op(3, 4, create("a", "v1"), rev(1)),
      op(5, 6, create("a", "v2"), keyExists(1)),
      op(7, 8, update("a", "v3", 1), rev(2)),
      op(9, 10, update("a", "v4", 1), wrongLast(2)),
      op(11, 12, get("a"), entry("v3", 2)),
      op(13, 14, put("b", "w1"), rev(3)),
      op(15, 16, del("a"), rev(4)),
      op(17, 18, get("a"), absent),
      // update compares with the latest entry whatever it is, markers included
      op(19, 20, update("a", "v5", 4), rev(5)),
      op(21, 22, purge("a"), rev(6)),
      // create succeeds when the latest entry is a marker
      op(23, 24, create("a", "v6"), rev(7)),
      op(25, 26, del("a", 6), wrongLast(7)),
      op(27, 28, del("a", 7), rev(8)),
      op(29, 30, get("b"), entry("w1", 3)),
    ];
    expect(verdicts(ops)).toEqual(allOk);
  });

  it("treat update with last = 0 as 'no entry at all'", () => {
    expect(verdicts([op(1, 2, update("a", "v", 0), rev(1))])).toEqual(allOk);
    const afterWrite = [op(1, 2, put("a", "v"), rev(1)), op(3, 4, update("a", "w", 0), rev(2))];
    expect(verdicts(afterWrite).exact).toBe("illegal");
    expect(verdicts(afterWrite).perKey).toBe("illegal");
  });

  it("reject a stale read after an acknowledged write", () => {
    const ops = [
      op(1, 2, put("a", "v1"), rev(1)),
      op(3, 4, put("a", "v2"), rev(2)),
      op(5, 6, get("a"), entry("v1", 1)),
    ];
    expect(verdicts(ops)).toMatchObject({ exact: "illegal", perKey: "illegal" });
  });

  it("reject a lost write: an acknowledged put never seen by a later read", () => {
    const ops = [op(1, 2, put("a", "v1"), rev(1)), op(3, 4, get("a"), absent)];
    expect(verdicts(ops)).toMatchObject({ exact: "illegal", perKey: "illegal" });
  });

  it("reject a read reporting the wrong revision for the value it saw", () => {
    const ops = [op(1, 2, put("a", "v1"), rev(1)), op(3, 4, get("a"), entry("v1", 2))];
    expect(verdicts(ops)).toMatchObject({ exact: "illegal", perKey: "illegal" });
  });

  it("reject two compare-and-sets from the same revision both succeeding", () => {
    const base = op(1, 2, put("a", "v0"), rev(1));
    const bothUpdates = [
      base,
      op(3, 6, update("a", "x", 1), rev(2)),
      op(4, 5, update("a", "y", 1), rev(3)),
    ];
    expect(verdicts(bothUpdates)).toMatchObject({ exact: "illegal", perKey: "illegal" });
    const bothCreates = [op(3, 6, create("b", "x"), rev(1)), op(4, 5, create("b", "y"), rev(2))];
    expect(verdicts(bothCreates)).toMatchObject({ exact: "illegal", perKey: "illegal" });
    // One wins, the other sees the winner's revision.
    const oneWins = [
      base,
      op(3, 6, update("a", "x", 1), rev(2)),
      op(4, 7, update("a", "y", 1), wrongLast(2)),
    ];
    expect(verdicts(oneWins)).toEqual(allOk);
  });

  it("order concurrent writes by the revisions they returned", () => {
    // The later call took the earlier revision; a read after both must see the other.
    const ops = [
      op(1, 10, put("a", "x"), rev(2)),
      op(2, 9, put("a", "y"), rev(1)),
      op(11, 12, get("a"), entry("x", 2)),
    ];
    expect(verdicts(ops)).toEqual(allOk);
    const wrong = [...ops.slice(0, 2), op(11, 12, get("a"), entry("y", 1))];
    expect(verdicts(wrong)).toMatchObject({ exact: "illegal", perKey: "illegal" });
  });

  it("check the current revision carried by a CAS error", () => {
    const ops = [op(1, 2, put("a", "v"), rev(1)), op(3, 4, create("a", "w"), keyExists(5))];
    expect(verdicts(ops)).toMatchObject({ exact: "illegal", perKey: "illegal" });
    const wrongCode = [op(1, 2, put("a", "v"), rev(1)), op(3, 4, create("a", "w"), wrongLast(1))];
    expect(verdicts(wrongCode)).toMatchObject({ exact: "illegal", perKey: "illegal" });
  });

  it("let an unknown-outcome write appear later, or never", () => {
    const appears = [
      op(1, undefined, put("a", "x")),
      op(2, 3, get("a"), absent),
      op(4, 5, get("a"), entry("x", 1)),
      op(6, 7, put("a", "y"), rev(2)),
    ];
    expect(verdicts(appears)).toEqual(allOk);
    const never = [
      op(1, undefined, put("a", "x")),
      op(2, 3, get("a"), absent),
      op(4, 5, put("a", "y"), rev(1)),
    ];
    expect(verdicts(never)).toEqual(allOk);
    const undone = [
      op(1, undefined, put("a", "x")),
      op(2, 3, get("a"), entry("x", 1)),
      op(4, 5, get("a"), absent),
    ];
    expect(verdicts(undone)).toMatchObject({ exact: "illegal", perKey: "illegal" });
  });

  it("fork on an unknown compare-and-set", () => {
    const base = [op(1, 2, put("a", "v0"), rev(1)), op(3, undefined, update("a", "x", 1))];
    expect(verdicts([...base, op(4, 5, get("a"), entry("v0", 1))])).toEqual(allOk);
    expect(verdicts([...base, op(4, 5, get("a"), entry("x", 2))])).toEqual(allOk);
    // A second CAS from revision 1 succeeding proves the first did not (yet) happen...
    const second = [
      ...base,
      op(4, 5, update("a", "y", 1), rev(2)),
      op(6, 7, get("a"), entry("y", 2)),
    ];
    expect(verdicts(second)).toEqual(allOk);
    // ...and then it can never happen.
    expect(verdicts([...second, op(8, 9, get("a"), entry("x", 3))])).toMatchObject({
      exact: "illegal",
      perKey: "illegal",
    });
  });
});

describe("where the exact and per-key models differ", () => {
  it("only the exact model sees gaps and duplicates in bucket-wide revisions", () => {
    const gap = [op(1, 2, put("a", "v"), rev(1)), op(3, 4, put("a", "w"), rev(3))];
    expect(verdicts(gap)).toEqual({ exact: "illegal", perKey: "ok", revisions: "ok" });
    const duplicate = [op(1, 2, put("a", "v"), rev(1)), op(3, 4, put("b", "w"), rev(1))];
    expect(verdicts(duplicate)).toEqual({ exact: "illegal", perKey: "ok", revisions: "illegal" });
  });

  it("only the exact model learns an unknown write happened from another key's revision", () => {
    const ops = [
      op(1, undefined, put("a", "x")),
      op(2, 3, put("b", "y"), rev(2)),
      // Revision 1 must have been taken by put(a, x), so a must be present.
      op(4, 5, get("a"), absent),
    ];
    expect(verdicts(ops)).toEqual({ exact: "illegal", perKey: "ok", revisions: "ok" });
  });

  it("the per-key model still rejects a key's revisions going backwards", () => {
    const ops = [op(1, 2, put("a", "v"), rev(5)), op(3, 4, put("a", "w"), rev(3))];
    expect(verdicts(ops)).toMatchObject({ perKey: "illegal", revisions: "illegal" });
  });

  it("the per-key model pins an unknown write's revision from a later read", () => {
    const ops = [
      op(1, 2, put("a", "v"), rev(4)),
      op(3, undefined, put("a", "x")),
      op(5, 6, get("a"), entry("x", 9)),
      op(7, 8, get("a"), entry("x", 8)),
    ];
    expect(verdicts(ops).perKey).toBe("illegal");
    expect(verdicts(ops.slice(0, 3)).perKey).toBe("ok");
    // An unknown write cannot have taken a revision at or below the one before it.
    expect(verdicts([...ops.slice(0, 2), op(5, 6, get("a"), entry("x", 4))]).perKey).toBe(
      "illegal",
    );
  });

  it("checkKvRevisions catches cross-key real-time revision order", () => {
    const ops = [op(1, 2, put("a", "v"), rev(5)), op(3, 4, put("b", "w"), rev(3))];
    const r = checkKvRevisions(ops);
    expect(r.result).toBe("illegal");
    if (r.result === "illegal") expect(r.explanation).toContain("got revision 3");
    expect(verdicts(ops).perKey).toBe("ok");
    // A read that saw revision 5 orders later writes too.
    const viaRead = [
      op(1, 2, put("a", "v"), rev(5)),
      op(3, 4, get("a"), entry("v", 5)),
      op(5, 6, put("b", "w"), rev(4)),
    ];
    expect(checkKvRevisions(viaRead).result).toBe("illegal");
    // Concurrent writes may take revisions in either order.
    const concurrent = [op(1, 4, put("a", "v"), rev(5)), op(2, 3, put("b", "w"), rev(3))];
    expect(checkKvRevisions(concurrent).result).toBe("ok");
  });

  it("checkKvRevisions rejects one revision naming two entries", () => {
    const ops = [op(1, 2, put("a", "v"), rev(1)), op(3, 4, get("b"), entry("z", 1))];
    const r = checkKvRevisions(ops);
    expect(r.result).toBe("illegal");
    if (r.result === "illegal") expect(r.explanation).toContain("names two different entries");
    expect(checkKvRevisions([op(1, 2, put("a", "v"), rev(0))]).result).toBe("illegal");
  });
});

describe("buckets", () => {
  it("keep separate revision counters and separate partitions", () => {
    const ops = [op(1, 2, put("a", "v", "b1"), rev(1)), op(3, 4, put("a", "w", "b2"), rev(1))];
    expect(verdicts(ops)).toEqual(allOk);
    const r = checkLinearizable(kvModel(), [
      ...ops,
      op(5, 6, { op: "get", key: "a", bucket: "b2" }, entry("v", 1)),
    ]);
    expect(r.result).toBe("illegal");
    if (r.result === "illegal") expect(r.partition).toBe("b2");
  });

  it("name the failing key in the per-key explanation", () => {
    const r = checkLinearizable(kvPerKeyModel(), [
      op(1, 2, put("cfg.a", "v1"), rev(1)),
      op(3, 4, get("cfg.a"), entry("v0", 1)),
    ]);
    expect(r.result).toBe("illegal");
    if (r.result !== "illegal") return;
    expect(r.partition).toBe("cfg.a");
    expect(r.explanation).toContain('get(cfg.a) -> "v0"@1');
    expect(r.explanation).toContain('possible states after it: "v1"@1');
  });

  it("blame the read, not the write it resolved, when a resolved write cannot fit", () => {
    const ops = [
      op(1, 2, put("cfg.a", "v1"), rev(3)),
      { ...op(3, undefined, update("cfg.a", "v2", 3)), effectDeadline: 6 },
      op(4, 5, update("cfg.a", "v3", 3), rev(7)),
      op(8, 9, get("cfg.a"), entry("v2", 8)),
    ];
    // Without the read, the lost update simply never happened.
    expect(checkLinearizable(kvPerKeyModel(), ops.slice(0, 3)).result).toBe("ok");
    const r = checkLinearizable(kvPerKeyModel(), ops);
    expect(r.result).toBe("illegal");
    if (r.result !== "illegal") return;
    expect(r.culprit).toBe(ops[3]);
    expect(r.explanation).toContain("no response; output inferred from a read");
  });

  it("assert on an output that does not fit the op", () => {
    const bad = [op(1, 2, get("a"), rev(1))];
    expect(() => checkLinearizable(kvModel(), bad)).toThrow(/does not fit/);
    expect(() => checkLinearizable(kvPerKeyModel(), bad)).toThrow(/does not fit/);
  });
});
