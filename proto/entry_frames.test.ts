/**
 * The hand-written watch-entry frames decode, with the generated protobufjs schema, to
 * exactly what protobufjs's own encoding of the same frame decodes to, for random entries
 * (non-ASCII keys, large integers, empty and large values, every operation).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fuzz, mutatedBytes } from "../test_support/index.js";
import {
  decodeServerFrame,
  encodeServerFrame,
  entryFromWire,
  entryToWire,
  type WireObject,
} from "./client_codec.js";
import { decodeServerAnswer, encodeServerAnswer } from "./client_responses.js";
import { decodeEntryFrame, encodeEntryFrame } from "./entry_frames.js";
import type { Entry } from "./types.js";

/** protobufjs's own encoding, as a plain Uint8Array (as ours), so both decode alike. */
const reference = (frame: Record<string, unknown>) =>
  decodeServerFrame(new Uint8Array(encodeServerFrame(frame)));

const safeUint = fc.maxSafeNat();
const entryArb: fc.Arbitrary<Entry> = fc
  .record({
    bucket: fc.string({ minLength: 1, maxLength: 20 }),
    key: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 10 })),
    value: fc.uint8Array({ maxLength: 300 }),
    revision: safeUint,
    createdMs: fc.integer({ min: 0, max: 8.64e15 }),
    delta: safeUint,
    operation: fc.constantFrom("PUT" as const, "DEL" as const, "PURGE" as const),
    size: safeUint,
  })
  .map((r) => ({
    bucket: r.bucket,
    key: r.key,
    value: r.value,
    revision: r.revision,
    created: new Date(r.createdMs),
    delta: r.delta,
    operation: r.operation,
    size: r.size,
  }));

describe("encodeEntryFrame", () => {
  it("decodes like protobufjs's encoding of the same frame, single and batched", () => {
    fc.assert(
      fc.property(safeUint, fc.array(entryArb, { minLength: 1, maxLength: 8 }), (id, entries) => {
        const batched = decodeServerFrame(encodeEntryFrame(id, entries, true));
        expect(batched).toEqual(
          reference({ id, watch_event: { entries: { entries: entries.map(entryToWire) } } }),
        );
        const single = decodeServerFrame(encodeEntryFrame(id, [entries[0]!], false));
        expect(single).toEqual(reference({ id, watch_event: { entry: entryToWire(entries[0]!) } }));
      }),
      { numRuns: 300 },
    );
  });

  it("round-trips through the SDK's decoder as watch_entry and watch_entries", () => {
    fc.assert(
      fc.property(fc.array(entryArb, { minLength: 1, maxLength: 5 }), (entries) => {
        expect(
          decodeServerAnswer(encodeServerAnswer(7, { type: "watch_entries", entries })),
        ).toEqual({
          id: 7,
          answer: { type: "watch_entries", entries },
        });
        expect(
          decodeServerAnswer(encodeServerAnswer(7, { type: "watch_entry", entry: entries[0]! })),
        ).toEqual({ id: 7, answer: { type: "watch_entry", entry: entries[0] } });
      }),
      { numRuns: 200 },
    );
  });

  it("refuses what it cannot encode exactly instead of writing a wrong frame", () => {
    const e: Entry = {
      bucket: "b",
      key: "k",
      value: new Uint8Array(0),
      revision: 1,
      created: new Date(-1),
      delta: 0,
      operation: "PUT",
      size: 0,
    };
    expect(() => encodeEntryFrame(1, [e], false)).toThrow(RangeError);
    expect(() =>
      encodeEntryFrame(1, [{ ...e, created: new Date(0), revision: 2 ** 53 }], false),
    ).toThrow(RangeError);
    expect(() => encodeEntryFrame(1, [e, e], false)).toThrow(RangeError);
  });

  it("the SDK's fast decoder reads every entry frame as the general decoder does", () => {
    fc.assert(
      fc.property(safeUint, fc.array(entryArb, { minLength: 0, maxLength: 6 }), (id, entries) => {
        const ascii = entries.every((e) =>
          [...(e.bucket + e.key)].every((c) => c.charCodeAt(0) < 0x80),
        );
        for (const batched of [true, false]) {
          if (!batched && entries.length !== 1) continue;
          const fast = decodeEntryFrame(encodeEntryFrame(id, entries, batched));
          // Non-ASCII text is left to the general decoder (keys are ASCII by the rules).
          if (!ascii) {
            expect(fast).toBeUndefined();
            continue;
          }
          expect(fast).toEqual({ id, entries, batched });
        }
      }),
      { numRuns: 300 },
    );
  });

  it("a damaged entry frame is read as the general decoder reads it, or left to it", () => {
    const e: Entry = {
      bucket: "orders",
      key: "k.1",
      value: new Uint8Array([1, 2, 3]),
      revision: 300,
      created: new Date(1_700_000_000_000),
      delta: 2,
      operation: "DEL",
      size: 3,
    };
    const seeds = [
      encodeEntryFrame(5, [e], false),
      encodeEntryFrame(5, [e, { ...e, revision: 301, key: "k.22" }], true),
    ];
    fuzz(
      fc.property(mutatedBytes(seeds), (b) => {
        const fast = decodeEntryFrame(b);
        if (fast === undefined) return;
        // What the fast decoder accepted protobufjs decodes too, to the same entries.
        const frame = decodeServerFrame(b);
        const event = frame.watch_event as WireObject;
        const list = fast.batched
          ? (((event.entries as WireObject).entries as WireObject[] | undefined) ?? [])
          : [event.entry as WireObject];
        expect(fast.id).toBe(frame.id ?? 0);
        expect(fast.entries).toEqual(list.map(entryFromWire));
      }),
    );
  });
});
