/**
 * The contract every `RaftStorage` passes (hashicorp/raft's habit: one suite,
 * every implementation). Call it from a `*.test.ts` file; it registers vitest
 * `describe`/`it` blocks. When `reopen` is given, each test also checks that a
 * reopened storage holds exactly what the first one had once its persists resolved.
 *
 * `make(options)` must build a fresh, empty storage honouring `options`
 * (initialConf, applyConfChange); `reopen()` closes the current storage and
 * opens the same data again.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { ApplyConfChange } from "./memory_storage.js";
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type RaftStorage,
  type SnapshotMeta,
} from "./storage.js";

export interface ContractOptions {
  initialConf?: ConfState;
  applyConfChange?: ApplyConfChange;
}

export interface ContractSubject {
  storage: RaftStorage;
  reopen?: () => Promise<RaftStorage>;
  cleanup: () => Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function ent(index: number, term: number, text = `e${index}`, type: EntryType = EntryType.Normal) {
  return { index, term, type, data: encoder.encode(text) } satisfies Entry;
}

function range(lo: number, hi: number, term: number | ((i: number) => number)): Entry[] {
  const out: Entry[] = [];
  for (let i = lo; i < hi; i++) out.push(ent(i, typeof term === "number" ? term : term(i)));
  return out;
}

/** Test encoding of a ConfChange: "+v:id", "+l:id" or "-:id". */
function confChange(index: number, term: number, change: string): Entry {
  return ent(index, term, change, EntryType.ConfChange);
}

export const testApplyConfChange: ApplyConfChange = (conf, entry) => {
  const text = decoder.decode(entry.data);
  const [op, id] = text.split(":") as [string, string];
  const voters = conf.voters.filter((v) => v !== id);
  const learners = conf.learners.filter((v) => v !== id);
  if (op === "+v") voters.push(id);
  else if (op === "+l") learners.push(id);
  return { voters, learners };
};

const conf0: ConfState = { voters: ["a", "b", "c"], learners: [] };

interface Dump {
  hardState: HardState;
  conf: ConfState;
  snapshot: SnapshotMeta;
  firstIndex: number;
  lastIndex: number;
  entries: { index: number; term: number; type: number; data: string }[];
}

function dump(s: RaftStorage): Dump {
  const st = s.initialState();
  return {
    hardState: st.hardState,
    conf: st.conf,
    snapshot: s.snapshotMeta(),
    firstIndex: s.firstIndex(),
    lastIndex: s.lastIndex(),
    entries: s.entries(s.firstIndex(), s.lastIndex() + 1).map((e) => ({
      index: e.index,
      term: e.term,
      type: e.type,
      data: Buffer.from(e.data).toString("hex"),
    })),
  };
}

function terms(entries: Entry[]): number[] {
  return entries.map((e) => e.term);
}

function indexes(entries: Entry[]): number[] {
  return entries.map((e) => e.index);
}

export function raftStorageContract(
  name: string,
  make: (options?: ContractOptions) => Promise<ContractSubject>,
): void {
  describe(`RaftStorage contract: ${name}`, () => {
    let subject: ContractSubject | undefined;
    let storage: RaftStorage;

    afterEach(async () => {
      if (subject) await subject.cleanup();
      subject = undefined;
    });

    async function open(options?: ContractOptions): Promise<RaftStorage> {
      subject = await make(options);
      storage = subject.storage;
      return storage;
    }

    /** When the implementation is durable: reopen and expect the very same state. */
    async function expectSurvivesReopen(): Promise<void> {
      if (!subject?.reopen) return;
      const before = dump(storage);
      storage = await subject.reopen();
      expect(dump(storage)).toEqual(before);
    }

    it("starts empty, with the initial conf", async () => {
      const s = await open({ initialConf: conf0 });
      expect(s.firstIndex()).toBe(1);
      expect(s.lastIndex()).toBe(0);
      expect(s.term(0)).toBe(0);
      expect(s.term(1)).toBeUndefined();
      expect(s.entries(1, 1)).toEqual([]);
      expect(s.snapshotMeta()).toEqual({ index: 0, term: 0, conf: conf0 });
      expect(s.initialState()).toEqual({
        hardState: { currentTerm: 0, votedFor: null, commitIndex: 0 },
        conf: conf0,
      });
      await expectSurvivesReopen();
      expect(storage.initialState().conf).toEqual(conf0);
    });

    it("appends and reads ranges", async () => {
      const s = await open();
      await s.persist({ entries: range(1, 11, (i) => Math.ceil(i / 3)) });
      expect(s.firstIndex()).toBe(1);
      expect(s.lastIndex()).toBe(10);
      expect(indexes(s.entries(1, 11))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(terms(s.entries(1, 11))).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3, 4]);
      expect(indexes(s.entries(3, 5))).toEqual([3, 4]);
      expect(s.entries(11, 11)).toEqual([]);
      expect(decoder.decode(s.entries(7, 8)[0]!.data)).toBe("e7");
      expect(s.entries(7, 8)[0]!.type).toBe(EntryType.Normal);
      expect(() => s.entries(0, 2)).toThrow();
      expect(() => s.entries(5, 12)).toThrow();
      expect(() => s.entries(5, 4)).toThrow();
      await s.persist({ entries: [ent(11, 4, "", EntryType.Noop)] });
      expect(s.lastIndex()).toBe(11);
      expect(s.entries(11, 12)[0]!.type).toBe(EntryType.Noop);
      expect(s.entries(11, 12)[0]!.data.byteLength).toBe(0);
      await expectSurvivesReopen();
    });

    it("limits a read by maxBytes, returning at least one entry", async () => {
      const s = await open();
      await s.persist({ entries: range(1, 6, 1).map((e) => ({ ...e, data: new Uint8Array(10) })) });
      expect(indexes(s.entries(1, 6, 0))).toEqual([1]);
      expect(indexes(s.entries(1, 6, 9))).toEqual([1]);
      expect(indexes(s.entries(1, 6, 10))).toEqual([1]);
      expect(indexes(s.entries(1, 6, 19))).toEqual([1]);
      expect(indexes(s.entries(1, 6, 20))).toEqual([1, 2]);
      expect(indexes(s.entries(2, 6, 35))).toEqual([2, 3, 4]);
      expect(indexes(s.entries(1, 6, 1_000))).toEqual([1, 2, 3, 4, 5]);
      expect(indexes(s.entries(1, 3, 1_000))).toEqual([1, 2]);
      expect(s.entries(4, 4, 0)).toEqual([]);
    });

    it("answers term() at every boundary", async () => {
      const s = await open();
      expect(s.term(0)).toBe(0);
      await s.persist({ entries: [ent(1, 1), ent(2, 1), ent(3, 2)] });
      expect(s.term(0)).toBe(0);
      expect(s.term(1)).toBe(1);
      expect(s.term(3)).toBe(2);
      expect(s.term(4)).toBeUndefined();
      await s.compact(2, { index: 2, term: 1, conf: conf0 });
      expect(s.term(1)).toBeUndefined();
      expect(s.term(2)).toBe(1);
      expect(s.term(3)).toBe(2);
      expect(s.term(4)).toBeUndefined();
      await expectSurvivesReopen();
      expect(storage.term(2)).toBe(1);
      expect(storage.term(1)).toBeUndefined();
    });

    it("replaces a conflicting suffix", async () => {
      const s = await open();
      await s.persist({ entries: range(1, 6, 1) });
      await s.persist({ entries: [ent(3, 2, "x3"), ent(4, 2, "x4")] });
      expect(s.lastIndex()).toBe(4);
      expect(terms(s.entries(1, 5))).toEqual([1, 1, 2, 2]);
      expect(decoder.decode(s.entries(3, 4)[0]!.data)).toBe("x3");
      expect(s.term(5)).toBeUndefined();
      // Appending at the very start replaces everything.
      await s.persist({ entries: [ent(1, 3, "y1")] });
      expect(s.lastIndex()).toBe(1);
      expect(s.term(1)).toBe(3);
      await s.persist({ entries: [ent(2, 3), ent(3, 4)] });
      expect(terms(s.entries(1, 4))).toEqual([3, 3, 4]);
      await expectSurvivesReopen();
    });

    it("rejects gaps, non-contiguous batches and decreasing terms as programmer errors", async () => {
      const s = await open();
      await s.persist({ entries: range(1, 4, 2) });
      expect(() => s.persist({ entries: [ent(5, 2)] })).toThrow();
      expect(() => s.persist({ entries: [ent(4, 2), ent(6, 2)] })).toThrow();
      expect(() => s.persist({ entries: [ent(4, 1)] })).toThrow();
      expect(() => s.persist({ entries: [ent(4, 3), ent(5, 2)] })).toThrow();
      expect(() => s.persist({ entries: [ent(4, 2.5)] })).toThrow();
      expect(() =>
        s.persist({ hardState: { currentTerm: -1, votedFor: null, commitIndex: 0 } }),
      ).toThrow();
      expect(s.lastIndex()).toBe(3);
      expect(terms(s.entries(1, 4))).toEqual([2, 2, 2]);
      await expectSurvivesReopen();
    });

    it("round-trips the hard state", async () => {
      const s = await open();
      await s.persist({ hardState: { currentTerm: 5, votedFor: "b", commitIndex: 0 } });
      expect(s.initialState().hardState).toEqual({ currentTerm: 5, votedFor: "b", commitIndex: 0 });
      await expectSurvivesReopen();
      await storage.persist({
        hardState: { currentTerm: 6, votedFor: null, commitIndex: 3 },
        entries: range(1, 4, 6),
      });
      expect(storage.initialState().hardState).toEqual({
        currentTerm: 6,
        votedFor: null,
        commitIndex: 3,
      });
      await expectSurvivesReopen();
      const big = Number.MAX_SAFE_INTEGER;
      await storage.persist({
        hardState: { currentTerm: big, votedFor: "node-é", commitIndex: 3 },
      });
      await expectSurvivesReopen();
      expect(storage.initialState().hardState.currentTerm).toBe(big);
      expect(storage.initialState().hardState.votedFor).toBe("node-é");
    });

    it("compacts, keeping firstIndex/lastIndex/term consistent", async () => {
      const s = await open({ initialConf: conf0 });
      await s.persist({ entries: range(1, 11, (i) => (i <= 5 ? 1 : 2)) });
      const conf5: ConfState = { voters: ["a", "b"], learners: ["d"] };
      await s.compact(5, { index: 5, term: 1, conf: conf5 });
      expect(s.firstIndex()).toBe(6);
      expect(s.lastIndex()).toBe(10);
      expect(s.snapshotMeta()).toEqual({ index: 5, term: 1, conf: conf5 });
      expect(indexes(s.entries(6, 11))).toEqual([6, 7, 8, 9, 10]);
      expect(() => s.entries(5, 7)).toThrow();
      expect(s.initialState().conf).toEqual(conf5);
      await expectSurvivesReopen();
      // At or below the snapshot: nothing to do.
      await storage.compact(3, { index: 3, term: 1, conf: conf0 });
      expect(storage.firstIndex()).toBe(6);
      expect(() => storage.compact(11, { index: 11, term: 2, conf: conf0 })).toThrow();
      expect(() => storage.compact(7, { index: 7, term: 1, conf: conf0 })).toThrow();
      expect(() => storage.compact(7, { index: 8, term: 2, conf: conf0 })).toThrow();
      // Compacting everything leaves an empty log after the snapshot.
      await storage.compact(10, { index: 10, term: 2, conf: conf5 });
      expect(storage.firstIndex()).toBe(11);
      expect(storage.lastIndex()).toBe(10);
      expect(storage.term(10)).toBe(2);
      expect(storage.entries(11, 11)).toEqual([]);
      await expectSurvivesReopen();
      await storage.persist({ entries: [ent(11, 3)] });
      expect(storage.lastIndex()).toBe(11);
      expect(storage.term(11)).toBe(3);
      await expectSurvivesReopen();
    });

    it("installs a snapshot, resetting the log after it", async () => {
      const s = await open({ initialConf: conf0 });
      await s.persist({
        entries: range(1, 6, 1),
        hardState: { currentTerm: 1, votedFor: "a", commitIndex: 2 },
      });
      const conf20: ConfState = { voters: ["a", "b", "e"], learners: [] };
      await s.persist({
        snapshot: { index: 20, term: 3, conf: conf20 },
        hardState: { currentTerm: 3, votedFor: null, commitIndex: 20 },
      });
      expect(s.firstIndex()).toBe(21);
      expect(s.lastIndex()).toBe(20);
      expect(s.term(20)).toBe(3);
      expect(s.term(5)).toBeUndefined();
      expect(s.snapshotMeta()).toEqual({ index: 20, term: 3, conf: conf20 });
      expect(s.initialState()).toEqual({
        hardState: { currentTerm: 3, votedFor: null, commitIndex: 20 },
        conf: conf20,
      });
      await expectSurvivesReopen();
      // Entries at or below the snapshot are skipped; the rest are appended.
      await storage.persist({ entries: [ent(19, 3), ent(20, 3), ent(21, 3), ent(22, 4)] });
      expect(indexes(storage.entries(21, 23))).toEqual([21, 22]);
      await expectSurvivesReopen();
      // Snapshot + entries in one request: the entries follow the snapshot.
      await storage.persist({
        snapshot: { index: 30, term: 4, conf: conf20 },
        entries: [ent(31, 5)],
      });
      expect(storage.firstIndex()).toBe(31);
      expect(storage.lastIndex()).toBe(31);
      expect(storage.term(30)).toBe(4);
      await expectSurvivesReopen();
      // A snapshot behind the log still resets it (all entries are dropped).
      await storage.persist({ snapshot: { index: 25, term: 4, conf: conf0 } });
      expect(storage.firstIndex()).toBe(26);
      expect(storage.lastIndex()).toBe(25);
      expect(() => storage.persist({ entries: [ent(27, 5)] })).toThrow();
      await expectSurvivesReopen();
    });

    it("derives the conf from ConfChange entries, the snapshot, or the initial conf", async () => {
      const s = await open({ initialConf: conf0, applyConfChange: testApplyConfChange });
      await s.persist({
        entries: [ent(1, 1), confChange(2, 1, "+l:d"), ent(3, 1), confChange(4, 1, "+v:d")],
      });
      expect(s.initialState().conf).toEqual({ voters: ["a", "b", "c", "d"], learners: [] });
      await expectSurvivesReopen();
      // Truncating the last ConfChange reverts to the one before it.
      await storage.persist({ entries: [ent(4, 2)] });
      expect(storage.initialState().conf).toEqual({ voters: ["a", "b", "c"], learners: ["d"] });
      await expectSurvivesReopen();
      // After compaction the snapshot's conf is the base for later ConfChanges.
      const conf3: ConfState = { voters: ["a", "b", "c"], learners: ["d"] };
      await storage.compact(3, { index: 3, term: 1, conf: conf3 });
      expect(storage.initialState().conf).toEqual(conf3);
      await storage.persist({ entries: [confChange(5, 2, "-:a")] });
      expect(storage.initialState().conf).toEqual({ voters: ["b", "c"], learners: ["d"] });
      await expectSurvivesReopen();
    });

    it("refuses to guess a conf when ConfChange entries cannot be decoded", async () => {
      const s = await open({ initialConf: conf0 });
      await s.persist({ entries: [confChange(1, 1, "+v:d")] });
      expect(() => s.initialState()).toThrow(/applyConfChange/);
    });

    it("shows a persist to readers at once, before it resolves", async () => {
      const s = await open();
      const p = s.persist({
        entries: [ent(1, 1)],
        hardState: { currentTerm: 1, votedFor: "a", commitIndex: 0 },
      });
      expect(s.lastIndex()).toBe(1);
      expect(s.initialState().hardState.votedFor).toBe("a");
      await p;
      const q = s.compact(1, { index: 1, term: 1, conf: conf0 });
      expect(s.firstIndex()).toBe(2);
      await q;
    });

    it("keeps order across many concurrent persists (later truncations win)", async () => {
      const s = await open();
      // A model: the log as plain terms, index i at model[i - 1].
      const model: number[] = [];
      let hs: HardState = { currentTerm: 0, votedFor: null, commitIndex: 0 };
      let seed = 12345;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % n;
      };
      const promises: Promise<void>[] = [];
      const resolved: number[] = [];
      let term = 1;
      for (let k = 0; k < 300; k++) {
        const truncate = model.length > 0 && rand(4) === 0;
        const start = truncate ? 1 + rand(model.length) : model.length + 1;
        if (truncate) term++;
        const count = 1 + rand(5);
        const entries = range(start, start + count, term).map((e) => ({
          ...e,
          data: encoder.encode(`k${k}-${e.index}`),
        }));
        model.length = start - 1;
        for (let i = 0; i < count; i++) model.push(term);
        hs = { currentTerm: term, votedFor: rand(2) ? "a" : null, commitIndex: 0 };
        promises.push(s.persist({ entries, hardState: hs }).then(() => void resolved.push(k)));
        expect(s.lastIndex()).toBe(model.length);
        expect(terms(s.entries(1, s.lastIndex() + 1))).toEqual(model);
      }
      await Promise.all(promises);
      expect(resolved).toEqual(promises.map((_, k) => k));
      expect(terms(s.entries(1, s.lastIndex() + 1))).toEqual(model);
      expect(s.initialState().hardState).toEqual(hs);
      await expectSurvivesReopen();
      expect(terms(storage.entries(1, storage.lastIndex() + 1))).toEqual(model);
    });

    it("refuses writes after close", async () => {
      const s = await open();
      await s.persist({ entries: [ent(1, 1)] });
      await s.close();
      await expect(async () => s.persist({ entries: [ent(2, 1)] })).rejects.toThrow();
    });
  });
}
