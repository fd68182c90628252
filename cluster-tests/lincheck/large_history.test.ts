/**
 * The perf-sanity history (cluster-tests/README.md): 2,000 ops over 10 keys by
 * 5 clients. Only correctness is asserted here; timings are printed by
 * perf_sanity.ts, never asserted.
 */
import { describe, expect, it } from "vitest";
import { checkLinearizable } from "./checker.js";
import { kvModel, kvPerKeyModel } from "./kv_model.js";
import { checkKvRevisions } from "./kv_revisions.js";
import { generateHistory, kvWorkload } from "./random_history.js";

describe("a 2,000-op kv history", () => {
  const history = generateHistory(kvWorkload({ keys: 10 }), {
    seed: 42,
    clients: 5,
    ops: 2000,
    unknownRate: 0.02,
  });

  it("is linearizable per key, exactly, and by the revision checks", () => {
    expect(history.length).toBeGreaterThan(1950);
    const perKey = checkLinearizable(kvPerKeyModel(), history);
    expect(perKey.result).toBe("ok");
    expect(perKey.stats.partitions).toBe(10);
    expect(checkLinearizable(kvModel(), history).result).toBe("ok");
    expect(checkKvRevisions(history).result).toBe("ok");
  });

  it("is illegal once a read late in the history returns an overwritten value", () => {
    // The last read that saw a value, then overwrite its output with the first
    // value ever written to that key (long overwritten by then).
    const reads = history.flatMap((op, i) =>
      op.input.op === "get" && op.output?.kind === "entry" ? [i] : [],
    );
    const i = reads[reads.length - 1];
    const key = history[i].input.key;
    const firstOp = history.find(
      (op) => op.input.key === key && "value" in op.input && op.output?.kind === "written",
    );
    const firstValue =
      firstOp !== undefined && "value" in firstOp.input ? firstOp.input.value : undefined;
    if (firstValue === undefined || firstOp?.output?.kind !== "written") {
      throw new Error("seed 42 must write a value to the key first; pick another seed");
    }
    const bad = [...history];
    bad[i] = {
      ...history[i],
      output: { kind: "entry", value: firstValue, revision: firstOp.output.revision },
    };
    const r = checkLinearizable(kvPerKeyModel(), bad);
    expect(r.result).toBe("illegal");
    if (r.result !== "illegal") return;
    expect(r.partition).toBe(key);
    expect(r.culprit).toBe(bad[i]);
  });
});
