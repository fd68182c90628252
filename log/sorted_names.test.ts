/**
 * SortedNames (the ordered subjects behind key listing) against a plain set, over random
 * interleavings of adds, removes, resets and reads (also changes during a read); and the
 * literal prefix of a filter.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fuzz } from "../test_support/index.js";
import { firstIndexAfter, SortedNames } from "./sorted_names.js";
import { compileFilter, literalPrefix } from "./subjects.js";

const NAMES = ["a", "a.b", "a.b.c", "a.c", "b", "b.a", "ab", "a-b", "é", "A", "a.b.d"];

const all = (names: SortedNames): string[] => [...names.from("")];

describe("SortedNames", () => {
  it("reads as the sorted set of present names, at every chunk size", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("toggle" as const), name: fc.constantFrom(...NAMES) }),
      fc.record({ kind: fc.constant("read" as const), after: fc.constantFrom("", ...NAMES) }),
      fc.record({ kind: fc.constant("reset" as const) }),
    );
    fuzz(
      fc.property(fc.constantFrom(4, 6, 1024), fc.array(op, { maxLength: 80 }), (size, ops) => {
        const names = new SortedNames(size);
        const model = new Set<string>();
        for (const o of ops) {
          if (o.kind === "toggle") {
            if (model.has(o.name)) {
              model.delete(o.name);
              names.remove(o.name);
            } else {
              model.add(o.name);
              names.add(o.name);
            }
          } else if (o.kind === "reset") {
            names.reset([...model].sort());
          } else {
            const sorted = [...model].sort();
            expect([...names.from(o.after)]).toEqual(sorted.filter((n) => n > o.after));
            expect([...names.from(o.after, true)]).toEqual(sorted.filter((n) => n >= o.after));
          }
          expect(names.size).toBe(model.size);
        }
        expect(all(names)).toEqual([...model].sort());
      }),
    );
  });

  it("a listing changed between steps yields every name present throughout, in order, once", () => {
    fuzz(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...NAMES), fc.boolean()), { maxLength: 40 }),
        fc.uniqueArray(fc.constantFrom(...NAMES)),
        (changes, initial) => {
          const names = new SortedNames(4);
          const model = new Set(initial);
          names.reset([...model].sort());
          const before = new Set(model);
          const touched = new Set<string>();
          const seen: string[] = [];
          let k = 0;
          for (const name of names.from("")) {
            seen.push(name);
            // Each step: one change, anywhere in the order.
            const change = changes[k++];
            if (change === undefined) continue;
            const [n, add] = change;
            touched.add(n);
            if (add && !model.has(n)) {
              model.add(n);
              names.add(n);
            } else if (!add && model.has(n)) {
              model.delete(n);
              names.remove(n);
            }
          }
          expect(seen).toEqual([...new Set(seen)].sort());
          for (const n of before) if (!touched.has(n)) expect(seen).toContain(n);
        },
      ),
    );
  });

  it("splits and merges chunks over many names", () => {
    const names = new SortedNames(8);
    const keys = Array.from({ length: 500 }, (_, i) => `k.${(i * 7919) % 500}`);
    for (const k of keys) names.add(k);
    expect(all(names)).toEqual([...keys].sort());
    for (const k of keys.filter((_, i) => i % 3 !== 0)) names.remove(k);
    expect(all(names)).toEqual(keys.filter((_, i) => i % 3 === 0).sort());
    expect([...names.from("k.4", true)].length).toBeGreaterThan(0);
  });

  it("clear forgets everything", () => {
    const names = new SortedNames();
    names.add("b");
    names.add("a");
    names.remove("b");
    names.clear();
    expect(all(names)).toEqual([]);
    names.add("c");
    expect(all(names)).toEqual(["c"]);
  });

  it("firstIndexAfter finds the first name after (or at) a point", () => {
    const sorted = ["a", "a.b", "b", "c"];
    expect(firstIndexAfter(sorted, "")).toBe(0);
    expect(firstIndexAfter(sorted, "a")).toBe(1);
    expect(firstIndexAfter(sorted, "a", true)).toBe(0);
    expect(firstIndexAfter(sorted, "a.a")).toBe(1);
    expect(firstIndexAfter(sorted, "c")).toBe(4);
  });
});

describe("literalPrefix", () => {
  it("is what every matching subject starts with", () => {
    expect(literalPrefix(">")).toBe("");
    expect(literalPrefix("*")).toBe("");
    expect(literalPrefix("a.>")).toBe("a.");
    expect(literalPrefix("a.b.>")).toBe("a.b.");
    expect(literalPrefix("a.*.c")).toBe("a.");
    expect(literalPrefix("*.b")).toBe("");
    const subjects = ["a", "a.b", "a.b.c", "a.x.c", "ab.c", "b.b", "a.bc.d"];
    for (const filter of [">", "a.>", "a.b.>", "a.*.c", "*.b", "a.*", "*"]) {
      const prefix = literalPrefix(filter);
      for (const s of subjects.filter(compileFilter(filter)))
        expect(s.startsWith(prefix)).toBe(true);
    }
  });
});
