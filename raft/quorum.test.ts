import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Inflights } from "./inflights.js";
import { committedIndex, hasQuorum, quorumSize, voteResult } from "./quorum.js";

const voters = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 3 }), {
  minLength: 1,
  maxLength: 7,
});

describe("quorum arithmetic", () => {
  it("committedIndex is the largest index a majority has reached", () => {
    fc.assert(
      fc.property(voters, fc.array(fc.nat(100), { minLength: 7, maxLength: 7 }), (ids, matches) => {
        const match = new Map(ids.map((id, i) => [id, matches[i]!]));
        const c = committedIndex(ids, (id) => match.get(id)!);
        const atLeast = (i: number) => ids.filter((id) => match.get(id)! >= i).length;
        expect(atLeast(c)).toBeGreaterThanOrEqual(quorumSize(ids.length));
        expect(atLeast(c + 1)).toBeLessThan(quorumSize(ids.length));
      }),
    );
  });

  it("any two quorums intersect", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), (n) => {
        expect(2 * quorumSize(n)).toBeGreaterThan(n);
      }),
    );
  });

  it("voteResult: won iff a majority granted, lost iff a majority can no longer grant", () => {
    fc.assert(
      fc.property(
        voters,
        fc.array(fc.constantFrom(true, false, undefined), { minLength: 7, maxLength: 7 }),
        (ids, answers) => {
          const votes = new Map<string, boolean>();
          ids.forEach((id, i) => {
            if (answers[i] !== undefined) votes.set(id, answers[i]!);
          });
          const granted = ids.filter((id) => votes.get(id) === true).length;
          const missing = ids.filter((id) => !votes.has(id)).length;
          const q = quorumSize(ids.length);
          const r = voteResult(ids, votes);
          expect(r === "won").toBe(granted >= q);
          expect(r === "lost").toBe(granted < q && granted + missing < q);
        },
      ),
    );
  });

  it("hasQuorum counts active voters", () => {
    expect(hasQuorum(["a", "b", "c"], (id) => id !== "c")).toBe(true);
    expect(hasQuorum(["a", "b", "c"], (id) => id === "a")).toBe(false);
  });
});

describe("inflight window", () => {
  it("is full at countMax or bytesMax and frees in order", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.nat(30), fc.boolean()), {
          maxLength: 60,
        }),
        (countMax, bytesMax, ops) => {
          const w = new Inflights(countMax, bytesMax);
          const model: { last: number; size: number }[] = [];
          let last = 0;
          for (const [step, size, isAdd] of ops) {
            if (isAdd && !w.full()) {
              last += step;
              w.add(last, size);
              model.push({ last, size });
            } else if (!isAdd && model.length > 0) {
              const upTo = model[Math.floor(model.length / 2)]!.last;
              w.freeLE(upTo);
              while (model.length > 0 && model[0]!.last <= upTo) model.shift();
            }
            const bytes = model.reduce((s, m) => s + m.size, 0);
            expect(w.count()).toBe(model.length);
            expect(w.inflightBytes()).toBe(bytes);
            expect(w.full()).toBe(model.length >= countMax || bytes >= bytesMax);
          }
        },
      ),
    );
  });
});
