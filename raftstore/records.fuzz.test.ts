/**
 * The Raft storage's records, fuzzed at open (`LevelRaftStorage.open` on memory-level,
 * what a node reads at start): a hard state, a snapshot meta and five entries, one
 * record changed per case.
 * - A changed value, or a changed key past the prefix, is refused as CORRUPT_RECORD
 *   (every record carries a CRC-32 of its key and body): a flipped bit always, any
 *   other edit too. Bytes that came out unchanged load the state that was written.
 * - Garbage under a valid checksum (a writer bug) is refused as CORRUPT_RECORD, or
 *   loads a state a Raft core starts on: no other exception at open or at start.
 */
import fc from "fast-check";
import { MemoryLevel } from "memory-level";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKvError } from "../proto/index.js";
import {
  applyConfChange,
  type Entry,
  EntryType,
  RaftCore,
  type RaftStorage,
  Sfc32,
} from "../raft/index.js";
import { applyEdits, edit, fuzz, mutatedBytes } from "../test_support/index.js";
import { type AnyClassicLevel, encodeValue, LevelRaftStorage } from "./level_raft_storage.js";

const RAW = { keyEncoding: "buffer", valueEncoding: "buffer" } as const;
const PREFIX_BYTES = 2; // "r!"
const ent = (index: number, term: number): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new TextEncoder().encode(`e${index}`),
});
const options = { initialConf: { voters: ["a", "b", "c"], learners: [] }, applyConfChange };

type Pair = [Buffer, Buffer];
let written: Pair[] = [];
let state: unknown;

function freshDb(): AnyClassicLevel {
  return new MemoryLevel() as unknown as AnyClassicLevel;
}

async function load(pairs: Pair[]): Promise<LevelRaftStorage> {
  const db = freshDb();
  await db.open();
  await db.batch(
    pairs.map(([key, value]) => ({ type: "put" as const, key, value })),
    RAW,
  );
  return LevelRaftStorage.open(db, options);
}

function stateOf(s: RaftStorage) {
  return {
    initial: s.initialState(),
    snapshot: s.snapshotMeta(),
    entries: s.entries(s.firstIndex(), s.lastIndex() + 1),
  };
}

beforeAll(async () => {
  const db = freshDb();
  const s = await LevelRaftStorage.open(db, options);
  await s.persist({
    entries: [ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 3)],
    hardState: { currentTerm: 3, votedFor: "b", commitIndex: 4 },
  });
  await s.close();
  for await (const [k, v] of db.iterator<Buffer, Buffer>(RAW)) written.push([k, v]);
  await db.close();
  expect(written.length).toBe(7);
  state = stateOf(await load(written));
});

afterAll(() => {
  written = [];
});

/** The written records with record `at` replaced by `value` (and its key by `key`). */
function withRecord(at: number, key: Buffer | undefined, value: Buffer): Pair[] {
  const pairs = written.map(([k, v]) => [k, v] as Pair);
  const i = at % pairs.length;
  pairs[i] = [key ?? pairs[i]![0], value];
  return pairs;
}

async function refusedOrSame(pairs: Pair[], unchanged: boolean): Promise<void> {
  let s: LevelRaftStorage;
  try {
    s = await load(pairs);
  } catch (err) {
    expect(isKvError(err, "CORRUPT_RECORD"), String(err)).toBe(true);
    expect(unchanged).toBe(false);
    return;
  }
  expect(unchanged, "a changed record was loaded").toBe(true);
  expect(stateOf(s)).toEqual(state);
}

describe("raft storage records at open (fuzzed)", () => {
  it("a flipped bit in any value is refused as CORRUPT_RECORD", async () => {
    await fuzz(
      fc.asyncProperty(fc.nat(), fc.nat(), fc.nat(7), async (at, pos, bit) => {
        const i = at % written.length;
        const value = Buffer.from(written[i]![1]);
        value[pos % value.length]! ^= 1 << bit;
        await refusedOrSame(withRecord(i, undefined, value), false);
      }),
    );
  });

  it("any edit of a value or of a key past the prefix is refused; unchanged bytes load as written", async () => {
    await fuzz(
      fc.asyncProperty(
        fc.nat(),
        fc.boolean(),
        fc.array(edit, { minLength: 1, maxLength: 4 }),
        async (at, editKey, edits) => {
          const i = at % written.length;
          const [k, v] = written[i]!;
          const key = editKey
            ? Buffer.concat([
                k.subarray(0, PREFIX_BYTES),
                applyEdits(k.subarray(PREFIX_BYTES), edits),
              ])
            : k;
          const value = editKey ? v : Buffer.from(applyEdits(v, edits));
          const unchanged = Buffer.compare(key, k) === 0 && Buffer.compare(value, v) === 0;
          await refusedOrSame(withRecord(i, key, value), unchanged);
        },
      ),
    );
  });

  it("garbage under a valid checksum: CORRUPT_RECORD, or a state a core starts on", async () => {
    const bodies = written.map(([, v]) => new Uint8Array(v.subarray(5)));
    await fuzz(
      fc.asyncProperty(fc.nat(), mutatedBytes(bodies), async (at, body) => {
        const i = at % written.length;
        const key = written[i]![0];
        let s: LevelRaftStorage;
        try {
          s = await load(withRecord(i, undefined, encodeValue(key, body)));
        } catch (err) {
          expect(isKvError(err, "CORRUPT_RECORD"), String(err)).toBe(true);
          return;
        }
        const core = new RaftCore({
          id: "a",
          storage: s,
          prng: new Sfc32(1),
          electionTimeoutTicks: 10,
          heartbeatTicks: 1,
          appliedIndex: s.snapshotMeta().index,
        });
        expect(Number.isSafeInteger(core.status().term)).toBe(true);
      }),
    );
  });
});
