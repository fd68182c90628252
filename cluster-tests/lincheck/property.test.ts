/**
 * Property tests: histories recorded from a real sequential object with
 * random overlapping call/return windows (random_history.ts) are always
 * linearizable; corrupting one read to a value nobody wrote makes them illegal,
 * and the smallest failing prefix points at exactly that read.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AppendInput, type AppendOutput, appendLogModel } from "./append_log_model.js";
import { bruteForceLinearizable } from "./brute_force.js";
import { checkLinearizable } from "./checker.js";
import { type KvInput, type KvOutput, kvModel, kvPerKeyModel } from "./kv_model.js";
import { checkKvRevisions } from "./kv_revisions.js";
import { patchAppendHistory, patchKvHistory } from "./patch.js";
import {
  appendLogWorkload,
  generateHistory,
  kvWorkload,
  registerWorkload,
  type Workload,
} from "./random_history.js";
import { registerModel } from "./register_model.js";
import type { Model, Op } from "./types.js";

/** Checks with and without the model's `prepare` rewrite; the verdicts must match. */
function withAndWithoutPrepare<S, I, O>(model: Model<S, I, O>, ops: Op<I, O>[]): "ok" | "illegal" {
  const expected = checkLinearizable({ ...model, prepare: undefined }, ops).result;
  expect(checkLinearizable(model, ops).result).toBe(expected);
  expect(expected).not.toBe("unknown");
  return expected === "ok" ? "ok" : "illegal";
}

const shape = fc.record({
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
  clients: fc.integer({ min: 1, max: 5 }),
  ops: fc.integer({ min: 1, max: 80 }),
  // Each unknown-outcome op multiplies the work of proving a history illegal;
  // 10% of writes is already far more than a healthy test run produces.
  unknownRate: fc.constantFrom(0, 0.05, 0.1),
  settleUnknown: fc.boolean(),
  pick: fc.nat(),
});

function checkModel<S, I, O>(
  name: string,
  model: Model<S, I, O>,
  workload: () => Workload<I, O>,
  corrupt: (op: Op<I, O>) => Op<I, O>,
  heavyUnknownRate: number,
): void {
  describe(name, () => {
    it("accepts every generated history and rejects it with one impossible read", () => {
      let corrupted = 0;
      fc.assert(
        fc.property(shape, ({ pick, ...options }) => {
          const w = workload();
          const history = generateHistory(w, options);
          const ok = checkLinearizable(model, history);
          expect(ok.result).toBe("ok");

          const reads = history
            .map((op, i) => ({ op, i }))
            .filter(({ op }) => op.returnTime !== undefined && w.isRead(op.input));
          if (reads.length === 0) return;
          const { i } = reads[pick % reads.length];
          const bad = [...history];
          bad[i] = corrupt(history[i]);
          const r = checkLinearizable(model, bad);
          expect(r.result).toBe("illegal");
          if (r.result !== "illegal") return;
          // Every earlier response is explainable, so the culprit is the corrupted read.
          expect(r.culprit).toBe(bad[i]);
          corrupted += 1;
        }),
        { numRuns: 100, seed: 4242 },
      );
      expect(corrupted).toBeGreaterThan(50);
    });

    it("proves illegal with many unknown outcomes when they are settled", () => {
      fc.assert(
        fc.property(shape, ({ pick, ...options }) => {
          const w = workload();
          const history = generateHistory(w, { ...options, unknownRate: 0.2, settleUnknown: true });
          const reads = history.flatMap((op, i) =>
            op.returnTime !== undefined && w.isRead(op.input) ? [i] : [],
          );
          if (reads.length === 0) return;
          const i = reads[pick % reads.length];
          const bad = [...history];
          bad[i] = corrupt(history[i]);
          const r = checkLinearizable(model, bad);
          expect(r.result).toBe("illegal");
          if (r.result === "illegal") expect(r.culprit).toBe(bad[i]);
        }),
        { numRuns: 40, seed: 2718 },
      );
    });

    it("accepts generated histories with many unknown outcomes", () => {
      fc.assert(
        fc.property(shape, ({ pick: _, ...options }) => {
          const history = generateHistory(workload(), {
            ...options,
            unknownRate: heavyUnknownRate,
          });
          expect(checkLinearizable(model, history).result).toBe("ok");
        }),
        { numRuns: 60, seed: 31337 },
      );
    });
  });
}

checkModel(
  "register",
  registerModel(),
  registerWorkload,
  (op) => ({ ...op, output: "never-written" }),
  0.3,
);

checkModel(
  "append log",
  appendLogModel(),
  appendLogWorkload,
  (op) => {
    const output = op.output as { values: string[] };
    return { ...op, output: { values: [...output.values, "never-appended"] } };
  },
  0.3,
);

const corruptGet = (op: Op<KvInput, KvOutput>): Op<KvInput, KvOutput> => {
  const revision = op.output?.kind === "entry" ? op.output.revision : 1;
  return { ...op, output: { kind: "entry", value: "never-written", revision } };
};
checkModel("kv exact", kvModel(), () => kvWorkload({ keys: 3 }), corruptGet, 0.3);
checkModel("kv per key", kvPerKeyModel(), () => kvWorkload({ keys: 3 }), corruptGet, 0.3);

describe("append log: resolving unknown appends seen by reads", () => {
  it("never changes a verdict", () => {
    const value = fc.constantFrom("a", "b", "c");
    const op = fc.record({
      clientId: fc.nat(3),
      append: fc.boolean(),
      value,
      callTime: fc.nat(10),
      length: fc.nat(4),
      unknown: fc.nat(3).map((n) => n === 0),
      seen: fc.array(value, { maxLength: 3 }),
    });
    const seen = { ok: 0, illegal: 0 };
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 7 }), (rows) => {
        const ops = rows.map(
          (r): Op<AppendInput, AppendOutput> => ({
            clientId: r.clientId,
            input: r.append ? { op: "append", value: r.value } : { op: "read" },
            callTime: r.callTime,
            returnTime: r.unknown ? undefined : r.callTime + r.length,
            output: r.append ? {} : { values: r.seen },
          }),
        );
        seen[withAndWithoutPrepare(appendLogModel(), ops)] += 1;
      }),
      { numRuns: 1000, seed: 13 },
    );
    expect(seen.ok).toBeGreaterThan(50);
    expect(seen.illegal).toBeGreaterThan(50);
  });
});

describe("patching unknown outcomes from the final committed log", () => {
  const heavy = fc.record({
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
    clients: fc.integer({ min: 2, max: 5 }),
    ops: fc.integer({ min: 20, max: 80 }),
    pick: fc.nat(),
  });

  it("leaves append histories without unknown ops, still linearizable, still catching a bad read", () => {
    fc.assert(
      fc.property(heavy, ({ pick, ...options }) => {
        const w = appendLogWorkload();
        const history = generateHistory(w, { ...options, unknownRate: 0.3 });
        const patched = patchAppendHistory(history, w.committed());
        expect(patched.every((op) => op.returnTime !== undefined)).toBe(true);
        // With no unknown op left, the search is close to linear.
        const ok = checkLinearizable(appendLogModel(), patched, {
          maxSteps: 20 * patched.length + 100,
        });
        expect(ok.result).toBe("ok");
        const reads = patched.flatMap((op, i) => (op.input.op === "read" ? [i] : []));
        if (reads.length === 0) return;
        const i = reads[pick % reads.length];
        const bad = [...patched];
        const output = bad[i].output as { values: string[] };
        bad[i] = { ...bad[i], output: { values: [...output.values, "never-appended"] } };
        expect(checkLinearizable(appendLogModel(), bad).result).toBe("illegal");
      }),
      { numRuns: 60, seed: 5 },
    );
  });

  it("resolves unknown kv writes to their committed revisions", () => {
    fc.assert(
      fc.property(heavy, ({ pick: _, ...options }) => {
        const w = kvWorkload({ keys: 3 });
        const history = generateHistory(w, { ...options, unknownRate: 0.3 });
        const patched = patchKvHistory(history, w.committed());
        // Only deletes and purges, which carry no value to recognize, may stay unknown.
        for (const op of patched) {
          if (op.returnTime === undefined) expect(["delete", "purge"]).toContain(op.input.op);
        }
        expect(checkLinearizable(kvModel(), patched).result).toBe("ok");
        expect(checkKvRevisions(patched).result).toBe("ok");
      }),
      { numRuns: 60, seed: 6 },
    );
  });
});

describe("kv revision checks", () => {
  it("pass on every generated history", () => {
    fc.assert(
      fc.property(shape, ({ pick: _, ...options }) => {
        const history = generateHistory(kvWorkload({ keys: 4 }), options);
        expect(checkKvRevisions(history)).toEqual({ result: "ok" });
      }),
      { numRuns: 100, seed: 77 },
    );
  });
});

describe("per-key checking is sound", () => {
  // Arbitrary small KV histories, mostly illegal: whatever the exact model
  // accepts, the per-key model and the revision checks must accept too.
  const key = fc.constantFrom("a", "b");
  const value = fc.constantFrom("x", "y", "z");
  const revision = fc.integer({ min: 0, max: 5 });
  const input: fc.Arbitrary<KvInput> = fc.oneof(
    fc.record({ op: fc.constant("put" as const), key, value }),
    fc.record({ op: fc.constant("create" as const), key, value }),
    fc.record({ op: fc.constant("update" as const), key, value, last: revision }),
    fc.record({ op: fc.constant("delete" as const), key }),
    fc.record({ op: fc.constant("get" as const), key }),
  );
  const output = (i: KvInput): fc.Arbitrary<KvOutput> => {
    if (i.op === "get") {
      return fc.oneof(
        fc.constant<KvOutput>({ kind: "absent" }),
        fc.record({ kind: fc.constant("entry" as const), value, revision }),
      );
    }
    const written = fc.record({ kind: fc.constant("written" as const), revision });
    if (i.op === "put" || i.op === "delete") return written;
    const code = i.op === "create" ? ("KEY_EXISTS" as const) : ("WRONG_LAST_REVISION" as const);
    return fc.oneof(written, fc.constant<KvOutput>({ kind: "rejected", code }));
  };
  const op = input.chain((i) =>
    fc.record({
      clientId: fc.nat(3),
      input: fc.constant(i),
      callTime: fc.nat(10),
      length: fc.nat(4),
      unknown: fc.nat(6).map((n) => n === 0),
      output: output(i),
    }),
  );

  const history = fc.array(op, { minLength: 1, maxLength: 7 }).map((rows) =>
    rows.map(
      (r): Op<KvInput, KvOutput> => ({
        clientId: r.clientId,
        input: r.input,
        callTime: r.callTime,
        returnTime: r.unknown ? undefined : r.callTime + r.length,
        output: r.output,
      }),
    ),
  );

  it("resolving unknown writes seen by reads never changes a verdict", () => {
    const seen = { ok: 0, illegal: 0 };
    fc.assert(
      fc.property(history, (ops) => {
        for (const verdict of [
          withAndWithoutPrepare(kvModel(), ops),
          withAndWithoutPrepare(kvPerKeyModel(), ops),
        ]) {
          seen[verdict] += 1;
        }
      }),
      { numRuns: 1500, seed: 12 },
    );
    expect(seen.ok).toBeGreaterThan(100);
    expect(seen.illegal).toBeGreaterThan(100);
  });

  it("the checker agrees with brute force on both kv models", () => {
    fc.assert(
      fc.property(history, (ops) => {
        for (const model of [kvModel(), kvPerKeyModel()] as const) {
          const expected = bruteForceLinearizable(model as Model<unknown, KvInput, KvOutput>, ops);
          const got = checkLinearizable(model as Model<unknown, KvInput, KvOutput>, ops).result;
          expect(got).toBe(expected ? "ok" : "illegal");
        }
      }),
      { numRuns: 800, seed: 14 },
    );
  });

  it("exact ok implies per-key ok and revision checks ok", () => {
    let exactOk = 0;
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 7 }), (rows) => {
        const history: Op<KvInput, KvOutput>[] = rows.map((r) => ({
          clientId: r.clientId,
          input: r.input,
          callTime: r.callTime,
          returnTime: r.unknown ? undefined : r.callTime + r.length,
          output: r.output,
        }));
        if (checkLinearizable(kvModel(), history).result !== "ok") return;
        exactOk += 1;
        expect(checkLinearizable(kvPerKeyModel(), history).result).toBe("ok");
        expect(checkKvRevisions(history).result).toBe("ok");
      }),
      { numRuns: 1500, seed: 99 },
    );
    expect(exactOk).toBeGreaterThan(50);
  });
});
