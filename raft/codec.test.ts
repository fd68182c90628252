import fc from "fast-check";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { isKvError, raftSchema } from "../proto/index.js";
import {
  decodeConfChange,
  decodeMessage,
  encodeConfChange,
  encodeMessage,
  messagePbType,
} from "./codec.js";
import { EntryType } from "./storage.js";
import { ConfChangeType, MESSAGE_TYPES, type Message, RAFT_WIRE_MAX } from "./types.js";

const index = fc.integer({ min: 0, max: RAFT_WIRE_MAX });
const context = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const id = fc.string({ minLength: 1, maxLength: 8 });
const bytes = fc.uint8Array({ maxLength: 32 });
const conf = fc.record({
  voters: fc.array(id, { maxLength: 5 }),
  learners: fc.array(id, { maxLength: 3 }),
});

const message: fc.Arbitrary<Message> = fc
  .record({
    // MsgSnap and MsgSnapResp have round trips of their own below.
    type: fc.constantFrom(...MESSAGE_TYPES.filter((t) => t !== "MsgSnap" && t !== "MsgSnapResp")),
    from: id,
    to: id,
    term: index,
    logTerm: index,
    index: fc.integer({ min: 0, max: 1_000_000 }),
    n: fc.integer({ min: 0, max: 4 }),
    entryTerm: index,
    commit: index,
    reject: fc.boolean(),
    rejectHint: index,
    context,
    transfer: fc.boolean(),
    data: bytes,
  })
  .map((r) => {
    // Only MsgApp carries entries: after (index, logTerm), terms in logTerm..term.
    const app = r.type === "MsgApp";
    const logTerm = app ? Math.min(r.logTerm, r.term) : r.logTerm;
    const entryTerm = logTerm + (r.entryTerm % (r.term - logTerm + 1));
    return { ...r, logTerm, entryTerm, n: app ? r.n : 0 };
  })
  .map((r) => ({
    type: r.type,
    from: r.from,
    to: r.to,
    term: r.term,
    logTerm: r.logTerm,
    index: r.index,
    entries: Array.from({ length: r.n }, (_, i) => ({
      index: r.index + 1 + i,
      term: r.entryTerm,
      type: (i % 3) as EntryType,
      data: r.data,
    })),
    commit: r.commit,
    reject: r.reject,
    rejectHint: r.rejectHint,
    context: r.context,
    transfer: r.transfer,
    snapshot: null,
    snapshotIndex: 0,
    snapshotOffset: 0,
  }));

describe("raft codec", () => {
  it("round-trips every message", () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(decodeMessage(encodeMessage(m))).toEqual(m);
      }),
    );
  });

  it("round-trips an InstallSnapshot chunk", () => {
    fc.assert(
      fc.property(index, index, conf, bytes, fc.boolean(), (i, t, c, data, done) => {
        const m: Message = { ...emptyMsg(), type: "MsgSnap" };
        m.snapshot = { meta: { index: i, term: t, conf: c }, offset: 7, data, done };
        expect(decodeMessage(encodeMessage(m))).toEqual(m);
      }),
    );
  });

  describe("MsgSnapResp (snapshot_index/snapshot_offset, and index/commit before them)", () => {
    const snapResp = (snapshotIndex: number, snapshotOffset: number): Message => ({
      ...emptyMsg(),
      type: "MsgSnapResp",
      snapshotIndex,
      snapshotOffset,
    });
    // A snapshot index is a log index: bounded like every other (2^52, raft/types.ts).
    const snapIndex = fc.integer({ min: 1, max: RAFT_WIRE_MAX });

    it("round-trips between new nodes", () => {
      fc.assert(
        fc.property(snapIndex, index, (i, offset) => {
          expect(decodeMessage(encodeMessage(snapResp(i, offset)))).toEqual(snapResp(i, offset));
        }),
      );
    });

    it("new -> old: an old node reads the copy in index/commit and skips the new fields", () => {
      // The schema as it was before fields 14 and 15.
      const old = protobuf.Root.fromJSON(raftSchema).lookupType("streamkv.raft.Message");
      old.remove(old.fields.snapshot_index!);
      old.remove(old.fields.snapshot_offset!);
      for (const [i, offset] of [
        [42, 300],
        [42, 0],
        [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
      ] as const) {
        const pb = old.toObject(old.decode(encodeMessage(snapResp(i, offset))), {
          longs: Number,
        });
        expect({ index: pb.index ?? 0, commit: pb.commit }).toEqual({ index: offset, commit: i });
      }
    });

    it("old -> new: without snapshot_index, decode takes index (offset) and commit (snapshot)", () => {
      const pb = messagePbType();
      const fromOld = (fields: Record<string, unknown>) =>
        decodeMessage(
          pb.encode(pb.fromObject({ type: 9, from: "a", to: "b", term: 1, ...fields })).finish(),
        );
      expect(fromOld({ index: 300, commit: 42 })).toEqual(snapResp(42, 300));
      expect(fromOld({ commit: 42 })).toEqual(snapResp(42, 0));
      // The new fields win over the copy; index/commit stay 0 either way.
      expect(fromOld({ index: 1, commit: 2, snapshot_index: 42, snapshot_offset: 300 })).toEqual(
        snapResp(42, 300),
      );
      expect(fromOld({ snapshot_index: 42 })).toEqual(snapResp(42, 0));
      let err: unknown;
      try {
        fromOld({ snapshot_index: "9007199254740993" });
      } catch (e) {
        err = e;
      }
      expect(isKvError(err, "MALFORMED_FRAME")).toBe(true);
      expect(() => fromOld({ snapshot_index: String(RAFT_WIRE_MAX + 1) })).toThrow(/exceeds 2\^52/);
    });

    it("other messages keep index and commit", () => {
      const m: Message = { ...emptyMsg(), type: "MsgApp", index: 3, commit: 7 };
      expect(decodeMessage(encodeMessage(m))).toEqual(m);
    });
  });

  it("round-trips a ConfChange", () => {
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2), id, conf, (type, nodeId, c) => {
        const cc = { type: type as ConfChangeType, nodeId, conf: c };
        expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
      }),
    );
    expect(ConfChangeType.RemoveServer).toBe(2);
    const withContext = {
      type: ConfChangeType.AddLearner,
      nodeId: "n4",
      conf: { voters: ["n1"], learners: ["n4"] },
      context: new TextEncoder().encode("127.0.0.1:7421"),
    };
    expect(decodeConfChange(encodeConfChange(withContext))).toEqual(withContext);
  });

  it("refuses a term, index or commit above 2^52 (headroom for the node's own increments)", () => {
    const pb = messagePbType();
    const at = (fields: Record<string, unknown>) =>
      pb.encode(pb.fromObject({ type: 6, from: "a", to: "b", ...fields })).finish();
    expect(decodeMessage(at({ term: RAFT_WIRE_MAX })).term).toBe(RAFT_WIRE_MAX);
    const above = [String(RAFT_WIRE_MAX + 1), String(Number.MAX_SAFE_INTEGER)];
    for (const v of above) {
      for (const field of ["term", "log_term", "index", "commit", "reject_hint"]) {
        expect(() => decodeMessage(at({ [field]: v }))).toThrow(/exceeds 2\^52/);
      }
      expect(() => decodeMessage(at({ entries: [{ index: v, term: 1 }] }))).toThrow(/2\^52/);
      expect(() => decodeMessage(at({ entries: [{ index: 1, term: v }] }))).toThrow(/2\^52/);
    }
    // A read context is not a term: the driver draws them up to 2^53.
    expect(decodeMessage(at({ context: String(Number.MAX_SAFE_INTEGER) })).context).toBe(
      Number.MAX_SAFE_INTEGER,
    );
  });

  it("rejects garbage and out-of-range numbers with MALFORMED_FRAME", () => {
    const pb = messagePbType();
    const cases: Uint8Array[] = [
      new Uint8Array([0xff, 0xff, 0xff]),
      pb.encode(pb.fromObject({ type: 0, from: "a", to: "b", term: "9007199254740993" })).finish(),
      pb.encode(pb.fromObject({ type: 99, from: "a", to: "b" })).finish(),
      pb.encode(pb.fromObject({ type: 0, from: "", to: "b" })).finish(),
      pb.encode(pb.fromObject({ type: 8, from: "a", to: "b" })).finish(),
      pb
        .encode(pb.fromObject({ type: 0, from: "a", to: "b", entries: [{ index: 1, type: 7 }] }))
        .finish(),
      pb
        .encode(
          pb.fromObject({ type: 0, from: "a", to: "b", entries: [{ index: 2 }, { index: 4 }] }),
        )
        .finish(),
    ];
    for (const bytes of cases) expectMalformed(bytes);
  });

  it("refuses a MsgApp whose entries no log could hold (found by raft/step.fuzz.test.ts)", () => {
    const pb = messagePbType();
    const app = (fields: Record<string, unknown>) =>
      pb.encode(pb.fromObject({ type: 0, from: "2", to: "1", term: 4, ...fields })).finish();
    const entry = (index: number, term: number) => ({ index, term, type: 0, data: [1] });
    // The fuzz case: a leader at term 2 with 4 entries took this from "2" at term 4, became
    // its follower and appended entry 5 of term 1 after entry 4 of term 2; its storage then
    // refused the write ("term 1 < previous term 2") and the node stopped.
    const refused = [
      app({ log_term: 2, index: 4, entries: [entry(5, 1)] }),
      app({ log_term: 2, index: 4, entries: [entry(5, 3), entry(6, 2)] }),
      app({ log_term: 2, index: 4, entries: [entry(5, 5)] }), // above the sender's term
      app({ log_term: 5, index: 4 }), // the previous entry newer than the sender's term
      app({ log_term: 2, index: 4, entries: [entry(7, 3)] }), // a gap after index 4
      app({ type: 6, log_term: 2, index: 4, entries: [entry(5, 3)] }), // not a MsgApp
    ];
    for (const bytes of refused) expectMalformed(bytes);
    const ok = decodeMessage(app({ log_term: 2, index: 4, entries: [entry(5, 2), entry(6, 4)] }));
    expect(ok.entries.map((e) => `${e.index}/${e.term}`)).toEqual(["5/2", "6/4"]);
  });

  it("never throws anything but a KvError on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          decodeMessage(b);
        } catch (e) {
          expect(isKvError(e)).toBe(true);
        }
      }),
    );
  });
});

function expectMalformed(bytes: Uint8Array): void {
  let err: unknown;
  try {
    decodeMessage(bytes);
  } catch (e) {
    err = e;
  }
  expect(isKvError(err, "MALFORMED_FRAME"), String(err)).toBe(true);
}

function emptyMsg(): Message {
  return {
    type: "MsgApp",
    from: "a",
    to: "b",
    term: 1,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: 0,
    transfer: false,
    snapshot: null,
    snapshotIndex: 0,
    snapshotOffset: 0,
  };
}
void EntryType;
