/**
 * The forwarder alone, with a scripted leader view and a loopback "network" between a
 * follower's and a leader's Forwarder: forwarding and answers, retries across a leader
 * change with the same request id, TIMEOUT (not a "not applied" code) once a send's
 * fate is unknown, NO_LEADER when none is known, the in-flight bound, and answers for
 * another incarnation or from another node ignored.
 */
import { describe, expect, it } from "vitest";
import { decodeCommand, type UnstampedCommand } from "../kvapi/index.js";
import { KvError } from "../proto/index.js";
import { forwardFromWire, forwardToWire, type WireForwardBody } from "./forward_wire.js";
import { Forwarder, type LeaderView, type ProposalResult } from "./forwarding.js";
import type { Proposer } from "./leader_proposer.js";
import { silentLogger } from "./log.js";

const put = (id: string): UnstampedCommand => ({
  type: "put",
  bucket: "b",
  key: "k",
  value: new Uint8Array([1]),
  request: { id },
});

/** A scripted proposer: a view the test sets, leader events when it changes. */
function scripted(
  initial: LeaderView,
  propose: (c: UnstampedCommand) => Promise<ProposalResult>,
): Proposer & { set(view: LeaderView): void } {
  let view = initial;
  const listeners = new Set<() => void>();
  return {
    view: () => view,
    propose,
    onLeaderChange(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    set(v) {
      view = v;
      for (const l of [...listeners]) l();
    },
  };
}

interface Net {
  /** The follower's leader view; assigning it fires a leader event. */
  view: LeaderView;
  /** Frames sent by the follower, by destination, as they go on the wire. */
  sent: { to: string; frame: WireForwardBody }[];
  follower: Forwarder;
  leaders: Map<string, Forwarder>;
  /** What each leader proposed (request ids). */
  proposed: string[];
}

/** A follower "f" and leaders by id; `deliver` false drops the follower's frames. */
function net(
  opts: {
    deliver?: (to: string) => boolean;
    leaderPropose?: (c: UnstampedCommand, leaderId: string) => Promise<ProposalResult>;
  } = {},
  followerOpts: { maxInFlight?: number; writeTimeoutMs?: number; attemptTimeoutMs?: number } = {},
): Net {
  const followerView = scripted({ isLeader: false, leaderId: null, stopped: false }, () =>
    Promise.reject(new KvError("NOT_LEADER", "not the leader")),
  );
  const n = {
    get view() {
      return followerView.view();
    },
    set view(v: LeaderView) {
      followerView.set(v);
    },
    sent: [],
    leaders: new Map(),
    proposed: [],
    follower: undefined as unknown as Forwarder,
  } as Net;
  const leader = (id: string) => {
    const f = new Forwarder({
      id,
      log: silentLogger,
      proposer: scripted({ isLeader: true, leaderId: id, stopped: false }, async (c) => {
        n.proposed.push(c.request && "id" in c.request ? c.request.id : "?");
        if (opts.leaderPropose) return opts.leaderPropose(c, id);
        return { revision: n.proposed.length, count: 0, index: 10 + n.proposed.length };
      }),
      send: (_to, frame) => {
        // Through the wire form both ways, as the peer port carries it.
        const wire = forwardToWire(frame);
        queueMicrotask(() => n.follower.receive(id, forwardFromWire(wire)));
        return true;
      },
    });
    n.leaders.set(id, f);
    return f;
  };
  leader("l1");
  leader("l2");
  n.follower = new Forwarder({
    id: "f",
    log: silentLogger,
    proposer: followerView,
    send: (to, frame) => {
      const wire = forwardToWire(frame);
      n.sent.push({ to, frame: wire });
      if (opts.deliver && !opts.deliver(to)) return true;
      queueMicrotask(() => n.leaders.get(to)?.receive("f", forwardFromWire(wire)));
      return true;
    },
    retryMs: 5,
    writeTimeoutMs: followerOpts.writeTimeoutMs ?? 2000,
    attemptTimeoutMs: followerOpts.attemptTimeoutMs ?? 300,
    ...(followerOpts.maxInFlight === undefined ? {} : { maxInFlight: followerOpts.maxInFlight }),
  });
  return n;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as KvError).code;
  }
  return "no error";
}

describe("Forwarder", () => {
  it("forwards to the leader and returns its result", async () => {
    const n = net();
    n.view = { isLeader: false, leaderId: "l1", stopped: false };
    const r = await n.follower.submit(put("r1"));
    expect(r).toEqual({ revision: 1, count: 0, index: 11, forwarded: true });
    const sent = n.sent[0]!;
    expect(sent.to).toBe("l1");
    const req = (sent.frame as { forward_request: { command: Uint8Array } }).forward_request;
    expect(decodeCommand(req.command).request).toEqual({ id: "r1" });
  });

  it("carries a definite error with its details back unchanged", async () => {
    const n = net({
      leaderPropose: () =>
        Promise.reject(new KvError("WRONG_LAST_REVISION", "wrong", { currentRevision: 7 })),
    });
    n.view = { isLeader: false, leaderId: "l1", stopped: false };
    const err = (await n.follower.submit(put("r1")).catch((e) => e)) as KvError;
    expect(err.code).toBe("WRONG_LAST_REVISION");
    expect(err.details.currentRevision).toBe(7);
    expect(n.proposed).toEqual(["r1"]);
  });

  it("retries against the new leader with the same request id when leadership moves", async () => {
    const n = net({ deliver: (to) => to !== "l1" });
    n.view = { isLeader: false, leaderId: "l1", stopped: false };
    const p = n.follower.submit(put("r2"));
    // Once the first send went out (and was lost), leadership moves.
    for (const deadline = Date.now() + 5_000; n.sent.length === 0 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    n.view = { isLeader: false, leaderId: "l2", stopped: false };
    const r = await p;
    expect(r.forwarded).toBe(true);
    expect(n.sent.map((s) => s.to)).toEqual(["l1", "l2"]);
    expect(n.proposed).toEqual(["r2"]);
  });

  it("sends again after no answer, and ends with TIMEOUT once a send's fate is unknown", async () => {
    const n = net({ deliver: () => false }, { writeTimeoutMs: 400, attemptTimeoutMs: 100 });
    n.view = { isLeader: false, leaderId: "l1", stopped: false };
    const err = (await n.follower.submit(put("r3")).catch((e) => e)) as KvError;
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toMatch(/may have been applied/);
    expect(n.sent.length).toBeGreaterThanOrEqual(2);
  });

  it("answers NO_LEADER when no leader was known the whole time (nothing sent)", async () => {
    const n = net({}, { writeTimeoutMs: 100 });
    expect(await codeOf(n.follower.submit(put("r4")))).toBe("NO_LEADER");
    expect(n.sent).toEqual([]);
  });

  it("bounds the writes in flight", async () => {
    const n = net({ deliver: () => false }, { maxInFlight: 2, writeTimeoutMs: 200 });
    n.view = { isLeader: false, leaderId: "l1", stopped: false };
    const a = n.follower.submit(put("a"));
    const b = n.follower.submit(put("b"));
    expect(n.follower.forwardsInFlight()).toBe(2);
    expect(await codeOf(n.follower.submit(put("c")))).toBe("OVERLOADED");
    await Promise.allSettled([a, b]);
    expect(n.follower.forwardsInFlight()).toBe(0);
  });

  it("ignores answers for another incarnation or from another node", async () => {
    const n = net({ deliver: () => false }, { writeTimeoutMs: 300, attemptTimeoutMs: 1000 });
    n.view = { isLeader: false, leaderId: "l1", stopped: false };
    const p = n.follower.submit(put("r5"));
    for (const deadline = Date.now() + 5_000; n.sent.length === 0 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const id = (n.sent[0]!.frame as { forward_request: { id: number } }).forward_request.id;
    const answer = (from: string, r: Record<string, unknown>) =>
      n.follower.receive(from, forwardFromWire({ forward_response: r }));
    answer("l1", { id, session: "someone-else", revision: 99, index: 1 });
    answer("l2", {
      id,
      session: n.follower.session,
      revision: 98,
      index: 1,
    });
    answer("l1", {
      id,
      session: n.follower.session,
      revision: 5,
      count: 0,
      index: 9,
    });
    expect(await p).toEqual({ revision: 5, count: 0, index: 9, forwarded: true });
  });

  it("refuses a forwarded time advance and an undecodable command", async () => {
    const replies: WireForwardBody[] = [];
    const f = new Forwarder({
      id: "l",
      log: silentLogger,
      proposer: scripted({ isLeader: true, leaderId: "l", stopped: false }, () =>
        Promise.reject(new Error("must not propose")),
      ),
      send: (_to, frame) => {
        replies.push(forwardToWire(frame));
        return true;
      },
    });
    const request = (r: Record<string, unknown>) =>
      f.receive("f", forwardFromWire({ forward_request: r }));
    request({ id: 1, session: "s", command: new Uint8Array([0xff, 0xff, 0xff]) });
    const { encodeCommand } = await import("../kvapi/index.js");
    request({
      id: 2,
      session: "s",
      command: encodeCommand({ type: "timeAdvance", timestampMs: 1 }),
    });
    const codes = replies.map(
      (r) => (r as { forward_response: { error: { code: string } } }).forward_response.error.code,
    );
    // kvapi's decoder answers undecodable bytes with INVALID_ARGUMENT.
    expect(codes).toEqual(["INVALID_ARGUMENT", "INVALID_ARGUMENT"]);
    expect(JSON.stringify(replies[1])).toMatch(/leader only/);
  });

  it("stops at the client's deadline when it comes before the write timeout", async () => {
    const n = net({ deliver: () => false }, { writeTimeoutMs: 5000, attemptTimeoutMs: 100 });
    n.view = { isLeader: false, leaderId: "l1", stopped: false };
    const started = Date.now();
    const err = (await n.follower.submit(put("d1"), Date.now() + 250).catch((e) => e)) as KvError;
    expect(err.code).toBe("TIMEOUT");
    expect(Date.now() - started).toBeLessThan(1000);
    // And never past its own limit, whatever the client asks.
    const m = net({ deliver: () => false }, { writeTimeoutMs: 200, attemptTimeoutMs: 100 });
    m.view = { isLeader: false, leaderId: "l1", stopped: false };
    const t0 = Date.now();
    expect(await codeOf(m.follower.submit(put("d2"), Date.now() + 60_000))).toBe("TIMEOUT");
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("follows a stale leader's hint at once, before its own view moves", async () => {
    const n = net({
      leaderPropose: async (_c, id) => {
        if (id === "l1") throw new KvError("NOT_LEADER", "l1 lost it", { leaderId: "l2" });
        return { revision: 9, count: 0, index: 20 };
      },
    });
    // The follower's own view stays on the stale leader the whole time.
    n.view = { isLeader: false, leaderId: "l1", stopped: false };
    const r = await n.follower.submit(put("h1"));
    expect(r).toMatchObject({ revision: 9, forwarded: true });
    expect(n.sent.map((s) => s.to)).toEqual(["l1", "l2"]);
    expect(n.proposed).toEqual(["h1", "h1"]);
    // Counted for metrics on both sides.
    expect(Object.fromEntries(n.follower.forwardStats().sent)).toEqual({ NOT_LEADER: 1, ok: 1 });
    expect(Object.fromEntries(n.leaders.get("l1")!.forwardStats().received)).toEqual({
      NOT_LEADER: 1,
    });
    expect(Object.fromEntries(n.leaders.get("l2")!.forwardStats().received)).toEqual({ ok: 1 });
    expect(n.follower.forwardsInFlight()).toBe(0);
  });

  it("does not ping-pong between two stale nodes faster than it polls", async () => {
    const n = net(
      {
        leaderPropose: async (_c, id) => {
          throw new KvError("NOT_LEADER", "stale", { leaderId: id === "l1" ? "l2" : "l1" });
        },
      },
      { writeTimeoutMs: 200 },
    );
    n.view = { isLeader: false, leaderId: "l1", stopped: false };
    expect(await codeOf(n.follower.submit(put("p1")))).toBe("NOT_LEADER");
    // pollMs is 5: at most ~200 / 5 tries plus the immediate hints, not thousands.
    expect(n.sent.length).toBeLessThan(60);
  });
});
