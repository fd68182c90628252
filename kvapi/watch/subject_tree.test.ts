import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { matchSubject } from "../../log/index.js";
import { SubjectTree } from "./subject_tree.js";

function matches(tree: SubjectTree<string>, subject: string): string[] {
  const out: string[] = [];
  tree.match(subject, (v) => out.push(v));
  return out.sort();
}

const token = fc.constantFrom("a", "b", "c");
const subjectArb = fc.array(token, { minLength: 1, maxLength: 4 }).map((t) => t.join("."));
const filterArb = fc
  .tuple(
    fc.array(fc.constantFrom("a", "b", "c", "*"), { minLength: 1, maxLength: 4 }),
    fc.boolean(),
  )
  .map(([tokens, tail]) => (tail ? [...tokens.slice(0, -1), ">"] : tokens).join("."));

describe("SubjectTree", () => {
  it("matches literal, * and > filters like matchSubject", () => {
    const tree = new SubjectTree<string>();
    for (const f of ["a", "a.b", "a.*", "a.>", "*.b", ">", "*", "a.b.c", "*.*.c"])
      tree.insert(f, f);
    expect(matches(tree, "a")).toEqual(["*", ">", "a"]);
    expect(matches(tree, "a.b")).toEqual(["*.b", ">", "a.*", "a.>", "a.b"]);
    expect(matches(tree, "a.b.c")).toEqual(["*.*.c", ">", "a.>", "a.b.c"]);
    expect(matches(tree, "x.y")).toEqual([">"]);
  });

  it("agrees with matchSubject for random filters and subjects, through inserts and removals", () => {
    fc.assert(
      fc.property(
        fc.array(filterArb, { minLength: 1, maxLength: 30 }),
        fc.array(subjectArb, { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 15 }),
        (filters, subjects, removals) => {
          const tree = new SubjectTree<string>();
          const live = new Map<string, string>();
          filters.forEach((f, i) => {
            tree.insert(f, `${i}`);
            live.set(`${i}`, f);
          });
          for (const r of removals) {
            const id = `${r % filters.length}`;
            const f = filters[r % filters.length]!;
            expect(tree.remove(f, id)).toBe(live.delete(id));
          }
          expect(tree.size).toBe(live.size);
          for (const s of subjects) {
            const want = [...live].filter(([, f]) => matchSubject(f, s)).map(([id]) => id);
            expect(matches(tree, s)).toEqual(want.sort());
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("prunes empty branches on removal", () => {
    const tree = new SubjectTree<number>();
    tree.insert("a.b.c", 1);
    tree.insert("a.*.>", 2);
    expect(tree.remove("a.b.c", 1)).toBe(true);
    expect(tree.remove("a.b.c", 1)).toBe(false);
    expect(tree.remove("a.*.>", 2)).toBe(true);
    expect(tree.size).toBe(0);
    // biome-ignore lint/suspicious/noExplicitAny: inspecting the private root to check pruning.
    const root = (tree as any).root;
    expect(root.literal.size).toBe(0);
    expect(root.star).toBeUndefined();
  });

  it("rejects inserting the same value twice under one filter", () => {
    const tree = new SubjectTree<number>();
    tree.insert("a", 1);
    expect(() => tree.insert("a", 1)).toThrow(/assertion/);
  });
});
