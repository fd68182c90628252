/**
 * Group commit drops ops a later op of the same slot overwrites (write_queue.ts). The
 * merged write must leave LevelDB exactly as the batches written one by one would:
 * checked against a model over random groups, and on a real LevelDB.
 */
import { ClassicLevel } from "classic-level";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { removeDir, tempDir } from "../test_support/index.js";
import { type WriteOp, WriteQueue, withoutOverwritten } from "./write_queue.js";

const KEYS = ["a", "b", "c", "d"];
/** Keys a and b are slotted (as a stream record or a meta key is); c and d are not. */
const slotOf = (k: string) => (k === "a" || k === "b" ? `m${k}` : undefined);
const bytes = (s: string) => new TextEncoder().encode(s);

const opArb = fc
  .record({
    key: fc.constantFrom(...KEYS),
    del: fc.boolean(),
    value: fc.string({ maxLength: 4 }),
  })
  .map(({ key, del, value }): WriteOp => {
    const slot = slotOf(key);
    const base = del
      ? { type: "del" as const, key: bytes(key) }
      : { type: "put" as const, key: bytes(key), value: bytes(value) };
    return slot === undefined ? base : { ...base, slot };
  });

function applyAll(ops: WriteOp[]): Map<string, string> {
  const state = new Map<string, string>();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  for (const op of ops) {
    if (op.type === "put") state.set(text(op.key), text(op.value));
    else state.delete(text(op.key));
  }
  return state;
}

describe("withoutOverwritten", () => {
  it("keeps the final state of every key and every untagged op", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const kept = withoutOverwritten(ops);
        expect(applyAll(kept)).toEqual(applyAll(ops));
        // Untagged ops all survive, in their order.
        expect(kept.filter((o) => o.slot === undefined)).toEqual(
          ops.filter((o) => o.slot === undefined),
        );
        // At most one op per slot is left.
        const slots = kept.flatMap((o) => (o.slot === undefined ? [] : [o.slot]));
        expect(new Set(slots).size).toBe(slots.length);
      }),
      { numRuns: 500 },
    );
  });
});

describe("WriteQueue on LevelDB", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) removeDir(dir);
    dir = undefined;
  });

  it("a merged group writes what its batches one by one would, with fewer ops", async () => {
    dir = tempDir();
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    await db.open();
    const queue = new WriteQueue(db as never);
    const batches: WriteOp[][] = fc.sample(fc.array(opArb, { minLength: 1, maxLength: 6 }), {
      numRuns: 50,
      seed: 7,
    });
    let ops = 0;
    const wrapped = db.batch.bind(db);
    (db as unknown as { batch: typeof db.batch }).batch = ((list: WriteOp[], o: never) => {
      ops += list.length;
      return wrapped(list as never, o);
    }) as never;
    // The first enqueue starts a write; the other 49 wait and go out as one group.
    await Promise.all(batches.map((b) => queue.enqueue(b, false, () => {})));
    expect(queue.writes).toBe(2);
    expect(ops).toBeLessThan(batches.flat().length);
    const stored = new Map<string, string>();
    for await (const [k, v] of db.iterator()) {
      stored.set(new TextDecoder().decode(k), new TextDecoder().decode(v));
    }
    expect(stored).toEqual(applyAll(batches.flat()));
    await db.close();
  });
});
