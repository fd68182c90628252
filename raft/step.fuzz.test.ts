/**
 * Raft messages from a peer, through the codec and then `step` on a live core in each
 * role (leader, follower, pre-candidate, candidate of a 3-node cluster): the bytes are
 * either mutated encodings of real messages or structurally valid adversarial messages
 * (terms, indexes and commits around the core's own, at the 2^52 bound and beyond it,
 * entries, snapshot chunks, from members and from a stranger). What the codec refuses
 * is a KvError MALFORMED_FRAME; what it takes is stepped. After every step and every
 * Ready of every core: terms never decrease, stay safe integers near the 2^52 bound,
 * commit <= last index, an entry once committed on a core never changes there, and no
 * two cores lead in one term.
 *
 * Nothing may throw. A message that proves its sender broke Raft itself (a second
 * leader in this term, or entries conflicting with what is committed here) is dropped
 * and counted in `status().violations` (where etcd-io/raft panics): the test checks that
 * every counted message really made that claim, and that the core is unharmed.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isKvError } from "../proto/index.js";
import { fuzz, fuzzBytes } from "../test_support/index.js";
import { decodeMessage, encodeMessage } from "./codec.js";
import type { EntryType } from "./storage.js";
import { TestCluster, type TestNode } from "./test_cluster.js";
import { MESSAGE_TYPES, type Message, RAFT_WIRE_MAX } from "./types.js";

type Role = "leader" | "follower" | "precandidate" | "candidate";
const ROLES: readonly Role[] = ["leader", "follower", "precandidate", "candidate"];
const IDS = ["1", "2", "3"];

/** A 3-node cluster with a committed log, and the id of the core in `role`. */
function clusterWith(role: Role): { c: TestCluster; target: string } {
  const c = new TestCluster(IDS, { preVote: role !== "candidate" });
  c.elect("1");
  c.propose("1", "a");
  c.propose("1", "b");
  c.stabilize();
  c.propose("1", "c"); // appended on the leader, not yet replicated
  c.processReady();
  if (role === "leader") return { c, target: "1" };
  if (role === "follower") return { c, target: "2" };
  c.isolate("3");
  c.node("3").core.campaign();
  c.processReady();
  expect(c.node("3").core.status().role).toBe(role);
  return { c, target: "3" };
}

/** A number relative to the target's state, or a fixed one at and beyond the bound. */
type NumSpec = { anchor: "term" | "last" | "commit" | "zero"; delta: number } | { fixed: number };
const num: fc.Arbitrary<NumSpec> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      anchor: fc.constantFrom("term" as const, "last" as const, "commit" as const, "zero" as const),
      delta: fc.integer({ min: -2, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      fixed: fc.constantFrom(
        RAFT_WIRE_MAX - 1,
        RAFT_WIRE_MAX,
        RAFT_WIRE_MAX + 1,
        Number.MAX_SAFE_INTEGER,
        2 ** 32,
      ),
    }),
  },
);

function resolve(spec: NumSpec, n: TestNode): number {
  if ("fixed" in spec) return spec.fixed;
  const s = n.core.status();
  const base = { term: s.term, last: s.lastIndex, commit: s.commitIndex, zero: 0 }[spec.anchor];
  return Math.max(0, base + spec.delta);
}

const adversarial = fc.record({
  type: fc.constantFrom(...MESSAGE_TYPES),
  from: fc.constantFrom("1", "2", "3", "x"),
  term: num,
  logTerm: num,
  index: num,
  commit: num,
  entries: fc.array(fc.record({ term: num, type: fc.integer({ min: 0, max: 2 }) }), {
    maxLength: 3,
  }),
  reject: fc.boolean(),
  rejectHint: num,
  context: fc.nat(5),
  transfer: fc.boolean(),
  snap: fc.record({
    index: num,
    term: num,
    offset: fc.constantFrom(0, 0, 1, 7, 64),
    data: fc.uint8Array({ maxLength: 16 }),
    done: fc.boolean(),
    voters: fc.subarray(["1", "2", "3", "x"]),
  }),
  snapshotIndex: num,
  snapshotOffset: num,
});
type Adversarial = typeof adversarial extends fc.Arbitrary<infer T> ? T : never;

function build(a: Adversarial, to: TestNode): Message {
  const r = (s: NumSpec) => resolve(s, to);
  const index = r(a.index);
  return {
    type: a.type,
    from: a.from,
    to: to.id,
    term: r(a.term),
    logTerm: r(a.logTerm),
    index,
    entries: a.entries.map((e, i) => ({
      index: index + 1 + i,
      term: r(e.term),
      type: e.type as EntryType,
      data: new TextEncoder().encode(`x${i}`),
    })),
    commit: r(a.commit),
    reject: a.reject,
    rejectHint: r(a.rejectHint),
    context: a.context,
    transfer: a.transfer,
    snapshot:
      a.type === "MsgSnap"
        ? {
            meta: {
              index: r(a.snap.index),
              term: r(a.snap.term),
              conf: { voters: a.snap.voters, learners: [] },
            },
            offset: a.snap.offset,
            data: a.snap.data,
            done: a.snap.done,
          }
        : null,
    snapshotIndex: a.type === "MsgSnapResp" ? Math.max(1, r(a.snapshotIndex)) : 0,
    snapshotOffset: a.type === "MsgSnapResp" ? r(a.snapshotOffset) : 0,
  };
}

/** Real messages of a running cluster, encoded: the seeds of the mutated inputs. */
function realMessages(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const c = new TestCluster(IDS);
  const record = () => {
    c.processReady();
    for (const m of c.queue) out.push(encodeMessage(m));
    c.deliver();
  };
  c.node("1").core.campaign();
  for (let i = 0; i < 6; i++) record();
  c.propose("1", "a");
  for (let i = 0; i < 4; i++) record();
  c.node("1").core.readIndex(3);
  for (let i = 0; i < 4; i++) record();
  const seen = new Set(out.map((b) => Buffer.from(b).toString("hex")));
  return [...seen].map((h) => new Uint8Array(Buffer.from(h, "hex")));
}

/** What every core must keep true; `committed` is what each core has committed so far. */
class Invariants {
  /** Messages the target dropped as broken Raft (each checked to be such a claim). */
  dropped = 0;
  private readonly terms = new Map<string, number>();
  private readonly committed = new Map<string, Map<number, number>>();
  private readonly leaders = new Map<number, string>();

  check(c: TestCluster): void {
    for (const n of c.nodes.values()) {
      const s = n.core.status();
      const where = `${n.id} (${s.role}, term ${s.term})`;
      for (const v of [s.term, s.commitIndex, s.lastIndex, s.firstIndex, s.appliedIndex]) {
        if (!Number.isSafeInteger(v)) broken(`${where}: ${v} is not a safe integer`);
      }
      // The codec caps what a peer says at 2^52; a core adds only its own elections.
      if (s.term > RAFT_WIRE_MAX + 8 || s.lastIndex > RAFT_WIRE_MAX + 8) {
        broken(`${where}: past the bound (last index ${s.lastIndex})`);
      }
      if (s.term < (this.terms.get(n.id) ?? 0)) broken(`${where}: term went back`);
      this.terms.set(n.id, s.term);
      if (s.commitIndex > s.lastIndex) broken(`${where}: commit ${s.commitIndex} > last index`);
      if (s.role === "leader") {
        const other = this.leaders.get(s.term);
        if (other !== undefined && other !== n.id)
          broken(`${other} and ${n.id} lead term ${s.term}`);
        this.leaders.set(s.term, n.id);
      }
      let mine = this.committed.get(n.id);
      if (mine === undefined) this.committed.set(n.id, (mine = new Map()));
      for (const [index, term] of mine) {
        // Below the first index it was compacted into a snapshot.
        if (index >= s.firstIndex && termAt(n, index) !== term) {
          broken(`${where}: committed entry ${index} changed`);
        }
      }
      for (let i = Math.max(s.firstIndex, s.commitIndex - 4); i <= s.commitIndex; i++) {
        const t = termAt(n, i);
        if (t !== undefined && !mine.has(i)) mine.set(i, t);
      }
    }
  }
}

function broken(what: string): never {
  throw new Error(`invariant broken: ${what}`);
}

function termAt(n: TestNode, index: number): number | undefined {
  // The core's own view: stable storage plus its unstable tail.
  const log = (n.core as unknown as { log: { term(i: number): number | undefined } }).log;
  return log.term(index);
}

/** Does `m` claim what the core drops: a second leader of its term, or a committed conflict? */
function claimsBrokenRaft(m: Message, before: ReturnType<TestNode["core"]["status"]>, n: TestNode) {
  const leaderClaim = m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap";
  if (leaderClaim && before.role === "leader" && m.term === before.term) return true;
  return (
    m.type === "MsgApp" &&
    m.term >= before.term &&
    m.entries.some((e) => e.index <= before.commitIndex && termAt(n, e.index) !== e.term)
  );
}

/** Decodes as the peer port does, steps into the target, and checks after each Ready. */
function deliver(c: TestCluster, target: string, bytes: Uint8Array, inv: Invariants): void {
  let m: Message;
  try {
    m = decodeMessage(bytes);
  } catch (err) {
    expect(isKvError(err, "MALFORMED_FRAME"), String(err)).toBe(true);
    return;
  }
  // The node drops a message addressed to another id (RaftKvService.receive).
  if (m.to !== target) return;
  const n = c.node(target);
  const before = n.core.status();
  n.core.step(m);
  const after = n.core.status().violations;
  if (after.count > before.violations.count) {
    expect(claimsBrokenRaft(m, before, n), after.last).toBe(true);
    inv.dropped++;
  }
  inv.check(c);
  // The others answer and move on; a stranger's messages go nowhere.
  for (let round = 0; round < 2; round++) {
    c.processReady();
    c.deliver((q) => q.to !== "x");
    inv.check(c);
  }
}

const seeds = realMessages();
const input = fc.oneof(
  { weight: 3, arbitrary: adversarial.map((a) => ({ kind: "message" as const, a })) },
  { weight: 2, arbitrary: fuzzBytes(seeds).map((bytes) => ({ kind: "bytes" as const, bytes })) },
  { weight: 1, arbitrary: fc.constant({ kind: "tick" as const }) },
);

describe("raft messages through the codec into step (fuzzed)", () => {
  it("never throw, and every core keeps the invariants, in each role", () => {
    let dropped = 0;
    fuzz(
      fc.property(
        fc.constantFrom(...ROLES),
        fc.array(input, { minLength: 1, maxLength: 6 }),
        (role, inputs) => {
          const { c, target } = clusterWith(role);
          const inv = new Invariants();
          inv.check(c);
          for (const x of inputs) {
            if (x.kind === "tick") {
              c.tickAll();
              c.processReady();
              c.deliver((q) => q.to !== "x");
              inv.check(c);
              continue;
            }
            const bytes = x.kind === "bytes" ? x.bytes : encodeMessage(build(x.a, c.node(target)));
            deliver(c, target, bytes, inv);
          }
          dropped += inv.dropped;
        },
      ),
    );
    // The generator does make broken-Raft claims, and each was dropped, not fatal.
    expect(dropped).toBeGreaterThan(0);
  });

  it("what the codec takes of an adversarial message is within the 2^52 bound", () => {
    const { c, target } = clusterWith("follower");
    const n = c.node(target);
    fuzz(
      fc.property(adversarial, (a) => {
        const m = build(a, n);
        let decoded: Message;
        try {
          decoded = decodeMessage(encodeMessage(m));
        } catch (err) {
          expect(isKvError(err, "MALFORMED_FRAME")).toBe(true);
          return;
        }
        // What decodes is within the bound, whatever was sent.
        const d = decoded;
        const values = [d.term, d.logTerm, d.index, d.commit, d.rejectHint, d.snapshotIndex];
        values.push(...d.entries.flatMap((e) => [e.index, e.term]));
        if (d.snapshot) values.push(d.snapshot.meta.index, d.snapshot.meta.term);
        expect(values.every((v) => Number.isSafeInteger(v) && v <= RAFT_WIRE_MAX)).toBe(true);
        expect(m.term).toBeLessThanOrEqual(RAFT_WIRE_MAX);
      }),
    );
  });
});
