import { describe, expect, it } from "vitest";
import { type Entry, EntryType, type HardState } from "../storage.js";
import { emptyMessage } from "../types.js";
import { Checker, type ElectorView, type LogImage, type LogView } from "./checker.js";

const encoder = new TextEncoder();

/** A log given as the term of each entry from index 1; entry data is "t<term>i<index>". */
function log(terms: number[], role = "follower", commitIndex = 0): LogView & LogImage {
  const entries: Entry[] = terms.map((term, i) => ({
    index: i + 1,
    term,
    type: EntryType.Normal,
    data: encoder.encode(`t${term}i${i + 1}`),
  }));
  const term = (index: number) => (index === 0 ? 0 : entries[index - 1]?.term);
  return {
    summary: () => ({
      role,
      term: terms[terms.length - 1] ?? 0,
      commitIndex,
      firstIndex: 1,
      lastIndex: entries.length,
    }),
    termAt: term,
    term,
    entriesIn: (lo, hi) => entries.slice(lo - 1, hi - 1),
    firstIndex: () => 1,
    lastIndex: () => entries.length,
  };
}

function electors(logs: Record<string, LogImage>): Map<string, ElectorView> {
  const voters = Object.keys(logs);
  return new Map(
    voters.map((id) => [id, { voters, candidate: logs[id]!, voterLogs: [logs[id]!] }]),
  );
}

describe("Checker", () => {
  it("flags the Figure 8 state: an earlier term's entry committed while a node that lacks it can still win", () => {
    // S1 leads term 4 and has replicated 2/2 to S3 (but not yet 3/4): counting
    // replicas would commit 2/2, yet S2 (last entry 2/3) beats S3 and itself.
    const c = new Checker();
    const s1 = log([1, 2, 4], "leader", 2);
    const s2 = log([1, 3]);
    const s3 = log([1, 2]);
    c.observe("s1", "s1#1", s1);
    c.checkPotentialLeaders(electors({ s1, s2, s3 }));
    expect(c.violations).toHaveLength(1);
    expect(c.violations[0]).toMatch(/leader completeness: s2 could win an election/);
  });

  it("accepts the same logs once the current term's entry is on a majority", () => {
    const c = new Checker();
    const s1 = log([1, 2, 4], "leader", 3);
    const s2 = log([1, 3]);
    const s3 = log([1, 2, 4]);
    c.observe("s1", "s1#1", s1);
    c.checkPotentialLeaders(electors({ s1, s2, s3 }));
    expect(c.violations).toEqual([]);
  });

  it("holds a new leader to the entries committed in earlier terms only", () => {
    // n1 commits 2/3 in term 3. A candidate of term 2 whose votes were delayed
    // may still win term 2 afterwards: legal, and it need not have 2/3.
    const c = new Checker();
    c.observe("n1", "n1#1", log([1, 3], "leader", 2));
    c.observe("n3", "n3#1", log([1, 2], "leader"));
    expect(c.violations).toEqual([]);
    // A leader of term 4 without it is a violation.
    c.observe("n2", "n2#1", log([1, 2, 4], "leader"));
    expect(c.violations[0]).toBe("leader completeness: n2 (term 4) has 2/2, committed 2/3");
  });

  it("flags two votes by one node in one term, across restarts", () => {
    const c = new Checker();
    const grant = (from: string, to: string, term: number) => {
      const m = emptyMessage("MsgVoteResp", from, to, term);
      c.onSent(m);
    };
    grant("n3", "n1", 5);
    grant("n3", "n1", 5);
    expect(c.violations).toEqual([]);
    grant("n3", "n2", 5);
    expect(c.violations[0]).toBe("one vote per term: n3 voted for n1 and n2 in term 5");
  });

  it("flags a crash that takes back a vote, a term or an append acknowledgement", () => {
    const disk = (hs: HardState, lastIndex: number) => ({
      hardState: () => hs,
      firstIndex: () => 1,
      lastIndex: () => lastIndex,
      term: () => 1,
    });
    const vote = new Checker();
    vote.onSent(emptyMessage("MsgVoteResp", "n2", "n1", 3));
    vote.onCrash("n2", disk({ currentTerm: 3, votedFor: null, commitIndex: 0 }, 0), 0);
    expect(vote.violations[0]).toMatch(/durability: n2 voted for n1 in term 3/);

    const term = new Checker();
    term.onSent(emptyMessage("MsgHeartbeatResp", "n2", "n1", 7));
    term.onCrash("n2", disk({ currentTerm: 6, votedFor: null, commitIndex: 0 }, 0), 0);
    expect(term.violations[0]).toMatch(/durability: n2 sent messages in term 7/);

    const ack = new Checker();
    const m = emptyMessage("MsgAppResp", "n2", "n1", 2);
    m.index = 9;
    ack.onSent(m);
    ack.onCrash("n2", disk({ currentTerm: 2, votedFor: "n1", commitIndex: 0 }, 8), 0);
    expect(ack.violations[0]).toMatch(/durability: n2 acknowledged entries up to 9/);

    // Pre-votes carry the next term and promise nothing.
    const pre = new Checker();
    pre.onSent(emptyMessage("MsgPreVote", "n2", "n1", 4));
    pre.onCrash("n2", disk({ currentTerm: 3, votedFor: null, commitIndex: 0 }, 0), 0);
    expect(pre.violations).toEqual([]);
  });

  it("flags the durable hard state moving backwards", () => {
    const c = new Checker();
    c.onSync(
      "n1",
      { currentTerm: 3, votedFor: "n2", commitIndex: 5 },
      { currentTerm: 3, votedFor: "n3", commitIndex: 5 },
    );
    c.onSync(
      "n1",
      { currentTerm: 3, votedFor: "n2", commitIndex: 5 },
      { currentTerm: 3, votedFor: "n2", commitIndex: 4 },
    );
    expect(c.violations).toEqual([
      "n1: durable vote in term 3 changed from n2 to n3",
      "n1: durable commit index went back from 5 to 4",
    ]);
  });

  it("checks log matching incrementally: one (index, term) is one entry after one term", () => {
    const c = new Checker();
    const e = (index: number, term: number, text: string): Entry => ({
      index,
      term,
      type: EntryType.Normal,
      data: encoder.encode(text),
    });
    c.onAppend("n1", [e(1, 1, "a"), e(2, 2, "b")], [0, 1]);
    c.onAppend("n2", [e(2, 2, "b")], [1]);
    expect(c.violations).toEqual([]);
    c.onAppend("n3", [e(2, 2, "b")], [0]);
    expect(c.violations[0]).toMatch(/log matching: n3 wrote 2\/2 after term 0/);
    const d = new Checker();
    d.onAppend("n1", [e(2, 2, "b")], [1]);
    d.onAppend("n2", [e(2, 2, "c")], [1]);
    expect(d.violations[0]).toMatch(/log matching: n2 wrote 2\/2/);
  });

  it("checks a read against the state at its read index, not the state when it returned", () => {
    const c = new Checker();
    const leader = log([1, 1, 1, 1], "leader", 4);
    c.observe("n1", "n1#1", leader);
    // "t1i3" is the entry at index 3: acked at 10 ms.
    c.onAck("t1i3", 3, 10);
    // A read issued after the ack and served at index 3 or later is fine...
    c.checkRead("n2", 11, 3, 4);
    expect(c.violations).toEqual([]);
    // ...a read issued at the same instant as the ack may miss it...
    c.checkRead("n2", 10, 2, 4);
    expect(c.violations).toEqual([]);
    // ...but one served at index 2 misses it, even if the node had applied 4 by then.
    c.checkRead("n2", 11, 2, 4);
    expect(c.violations[0]).toMatch(/served at index 2, missing t1i3/);
  });

  it("flags an ack of a value that is not the committed entry at its index", () => {
    const c = new Checker();
    c.observe("n1", "n1#1", log([1, 1], "leader", 2));
    c.onAck("t1i2", 2, 5);
    expect(c.violations).toEqual([]);
    c.onAck("other", 1, 6);
    expect(c.violations[0]).toMatch(
      /ack of other at 1, but the entry committed there is another one/,
    );
  });
});
