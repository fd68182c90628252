/**
 * The leader proposer against a stand-in for the driver's status/propose/subscribe (on
 * purpose: these cases need a driver in exact states; the real driver runs under it in
 * node/server.test.ts, the cluster tests and the KV simulator).
 */
import { describe, expect, it } from "vitest";
import { type ApplyResult, decodeCommand } from "../kvapi/index.js";
import { KvError } from "../proto/index.js";
import type { DriverListener } from "../raft/index.js";
import { ManualClock } from "./clock.js";
import { LeaderProposer, type RaftKvDriver } from "./leader_proposer.js";

function fakeDriver(role: "leader" | "follower", leaderId: string | null) {
  const listeners = new Set<DriverListener>();
  const d = {
    role,
    leaderId,
    stopped: false,
    proposed: [] as Uint8Array[],
    result: (index: number): ApplyResult | undefined => ({
      ok: true,
      revision: index,
      count: 0,
      index,
      disposition: "applied",
    }),
    status() {
      return { role: d.role, leaderId: d.leaderId, stopped: d.stopped };
    },
    async propose(data: Uint8Array) {
      d.proposed.push(data);
      const index = d.proposed.length;
      return { index, result: d.result(index) };
    },
    subscribe(l: DriverListener) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    emit() {
      for (const l of [...listeners]) l("leader");
    },
  };
  return d;
}

const put = { type: "put" as const, bucket: "b", key: "k", value: new Uint8Array([1]) };

function proposer(d: ReturnType<typeof fakeDriver>, clock: ManualClock, last = 0) {
  return new LeaderProposer({
    id: "n1",
    driver: d as unknown as RaftKvDriver,
    clock,
    lastTimestampMs: last,
  });
}

describe("LeaderProposer", () => {
  it("stamps the leader's time, never going back", async () => {
    const d = fakeDriver("leader", "n1");
    const clock = new ManualClock(1000);
    const p = proposer(d, clock, 5000);
    expect(await p.propose(put)).toEqual({ revision: 1, count: 0, index: 1 });
    clock.advance(7000);
    await p.propose({ ...put, request: { id: "r" } });
    const [first, second] = d.proposed.map(decodeCommand);
    expect(first!.timestampMs).toBe(5000);
    expect(second!.timestampMs).toBe(8000);
    expect(second!.request).toEqual({ id: "r" });
  });

  it("answers NOT_LEADER with the leader's id, NO_LEADER without one, SHUTTING_DOWN after close", async () => {
    const clock = new ManualClock();
    const follower = proposer(fakeDriver("follower", "n2"), clock);
    const e1 = (await follower.propose(put).catch((e) => e)) as KvError;
    expect([e1.code, e1.details.leaderId]).toEqual(["NOT_LEADER", "n2"]);
    const alone = proposer(fakeDriver("follower", null), clock);
    expect(((await alone.propose(put).catch((e) => e)) as KvError).code).toBe("NO_LEADER");
    const leader = proposer(fakeDriver("leader", "n1"), clock);
    leader.close();
    expect(((await leader.propose(put).catch((e) => e)) as KvError).code).toBe("SHUTTING_DOWN");
  });

  it("turns a failed command into its typed error, and a missing result into an assertion", async () => {
    const d = fakeDriver("leader", "n1");
    const p = proposer(d, new ManualClock());
    d.result = (index) => ({
      ok: false,
      error: new KvError("KEY_EXISTS", "exists", { currentRevision: 3 }),
      index,
      disposition: "applied",
    });
    const e = (await p.propose(put).catch((x) => x)) as KvError;
    expect([e.code, e.details.currentRevision]).toEqual(["KEY_EXISTS", 3]);
    d.result = () => undefined;
    const bug = await p.propose(put).catch((x) => x);
    expect(bug).not.toBeInstanceOf(KvError);
    expect(String(bug)).toMatch(/no apply result/);
  });

  it("waits for a leader by driver event, and gives NO_LEADER at the deadline", async () => {
    const d = fakeDriver("follower", null);
    const clock = new ManualClock();
    const p = proposer(d, clock);
    const waiting = p.waitForLeader(1000);
    d.leaderId = "n3";
    d.emit();
    await waiting;
    d.leaderId = null;
    const late = p.waitForLeader(500).catch((e) => e);
    await Promise.resolve();
    clock.advance(500);
    expect(((await late) as KvError).code).toBe("NO_LEADER");
    expect(clock.pending()).toBe(0);
  });
});
