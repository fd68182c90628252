/**
 * SortedNames (the ordered subjects behind key listing) against a plain set, over random
 * interleavings of adds, removes and reads; and the literal prefix of a filter.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fuzz } from "../test_support/index.js";
import { firstIndexAfter, SortedNames } from "./sorted_names.js";
import { compileFilter, literalPrefix } from "./subjects.js";

const NAMES = ["a", "a.b", "a.b.c", "a.c", "b", "b.a", "ab", "a-b", "é", "A", "a.b.d"];

describe("SortedNames", () => {
  it("reads as the sorted set of present names, and a read array never changes", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("toggle" as const), name: fc.constantFrom(...NAMES) }),
      fc.record({ kind: fc.constant("read" as const) }),
    );
    fuzz(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const names = new SortedNames();
        const model = new Set<string>();
        const reads: { view: readonly string[]; copy: string[] }[] = [];
        for (const o of ops) {
          if (o.kind === "toggle") {
            if (model.has(o.name)) {
              model.delete(o.name);
              names.remove(o.name);
            } else {
              model.add(o.name);
              names.add(o.name);
            }
          } else {
            const view = names.view();
            expect(view).toEqual([...model].sort());
            reads.push({ view, copy: [...view] });
          }
        }
        expect(names.view()).toEqual([...model].sort());
        for (const r of reads) expect(r.view).toEqual(r.copy);
      }),
    );
  });

  it("clear forgets everything, pending or merged", () => {
    const names = new SortedNames();
    names.add("b");
    names.view();
    names.add("a");
    names.remove("b");
    names.clear();
    expect(names.view()).toEqual([]);
    names.add("c");
    expect(names.view()).toEqual(["c"]);
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
