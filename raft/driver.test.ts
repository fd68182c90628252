import { describe, expect, it } from "vitest";
import { isKvError } from "../proto/index.js";
import { applyConfChange } from "./core.js";
import { FailPoints, InjectedCrash, RaftDriver, type RaftStateMachine } from "./driver.js";
import { MemoryRaftStorage } from "./memory_storage.js";
import { Sfc32 } from "./prng.js";
import { SimStateMachine } from "./sim/sim_state_machine.js";
import type { Message } from "./types.js";

/** Drivers wired by an in-memory transport; ticks are driven by the test. */
function cluster(ids: string[], failPoints?: FailPoints, onFatal?: (err: unknown) => void) {
  const drivers = new Map<string, RaftDriver<number>>();
  const ticks = new Map<string, () => void>();
  const sms = new Map<string, SimStateMachine>();
  const storages = new Map<string, MemoryRaftStorage>();
  ids.forEach((id, i) => {
    const sm = new SimStateMachine();
    sms.set(id, sm);
    const storage = new MemoryRaftStorage({
      initialConf: { voters: ids, learners: [] },
      applyConfChange,
    });
    storages.set(id, storage);
    const d = new RaftDriver<number>({
      id,
      storage,
      stateMachine: sm,
      prng: new Sfc32(i + 1),
      electionTimeoutTicks: 10,
      heartbeatTicks: 2,
      transport: {
        send: (m: Message) => queueMicrotask(() => drivers.get(m.to)?.receive(m)),
      },
      ticker: { start: (fn) => ticks.set(id, fn), stop: () => ticks.delete(id) },
      ...(i === 0 && failPoints ? { failPoints } : {}),
      ...(onFatal ? { onFatal } : {}),
    });
    drivers.set(id, d);
    d.start();
  });
  const settle = async () => {
    for (let i = 0; i < 50; i++) await Promise.resolve();
  };
  const tickUntil = async (cond: () => boolean, ticksMax = 200) => {
    for (let i = 0; i < ticksMax && !cond(); i++) {
      for (const fn of ticks.values()) fn();
      await settle();
    }
    return cond();
  };
  const leader = () => [...drivers.values()].find((d) => d.status().role === "leader");
  return { drivers, sms, storages, tickUntil, settle, leader };
}

const bytes = (s: string) => new TextEncoder().encode(s);

describe("RaftDriver", () => {
  it("elects a leader and returns the state machine's result to the proposer", async () => {
    const c = cluster(["a", "b", "c"]);
    expect(await c.tickUntil(() => c.leader() !== undefined)).toBe(true);
    const leader = c.leader()!;
    const p = leader.propose(bytes("x"));
    await c.tickUntil(() => c.sms.get(leader.id)!.values.length === 1, 20);
    await expect(p).resolves.toEqual({ index: 2, result: 1 });
    expect(
      await c.tickUntil(() => [...c.sms.values()].every((s) => s.values.length === 1), 20),
    ).toBe(true);
  });

  it("a follower rejects proposals with NOT_LEADER and the leader's id", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.tickUntil(() => c.leader() !== undefined);
    await c.tickUntil(() => [...c.drivers.values()].every((d) => d.status().leaderId !== null), 20);
    const leader = c.leader()!;
    const follower = [...c.drivers.values()].find((d) => d !== leader)!;
    const err = await follower.propose(bytes("y")).catch((e) => e);
    expect(isKvError(err, "NOT_LEADER")).toBe(true);
    expect(err.details.leaderId).toBe(leader.id);
  });

  it("ReadIndex on a follower resolves once it has applied the leader's commit index", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.tickUntil(() => c.leader() !== undefined);
    const leader = c.leader()!;
    const written = leader.propose(bytes("z"));
    await c.tickUntil(() => c.sms.get(leader.id)!.values.length === 1, 20);
    await written;
    const follower = [...c.drivers.values()].find((d) => d !== leader)!;
    const read = follower.readIndex();
    await c.tickUntil(() => false, 10);
    const index = await read;
    expect(c.sms.get(follower.id)!.appliedIndex()).toBeGreaterThanOrEqual(index);
    expect(c.sms.get(follower.id)!.valueSet.has("z")).toBe(true);
  });

  it("a read parked at a leader that died is asked of the new leader, not left to time out", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.tickUntil(() => c.leader() !== undefined);
    await c.tickUntil(() => [...c.drivers.values()].every((d) => d.status().leaderId !== null), 20);
    const old = c.leader()!;
    const follower = [...c.drivers.values()].find((d) => d !== old)!;
    const w = old.propose(bytes("before"));
    await c.tickUntil(() => c.sms.get(follower.id)!.values.length === 1, 20);
    await w;
    old.stop();
    // The follower still names the dead leader: its MsgReadIndex goes nowhere.
    expect(follower.status().leaderId).toBe(old.id);
    let settled: number | Error | undefined;
    follower.readIndex().then(
      (i) => {
        settled = i;
      },
      (e: Error) => {
        settled = e;
      },
    );
    let ticks = 0;
    await c.tickUntil(() => {
      ticks++;
      return settled !== undefined;
    }, 100);
    // Answered soon after the election (10-20 ticks), far before the 100-tick timeout.
    expect(typeof settled).toBe("number");
    expect(ticks).toBeLessThan(60);
    expect(settled as number).toBeGreaterThanOrEqual(2);
    const now = c.leader()!;
    expect(now.id).not.toBe(old.id);
  });

  it("a triggered failure point stops the driver and fails its pending requests", async () => {
    const fp = new FailPoints();
    const fatal: unknown[] = [];
    const c = cluster(["a"], fp, (err) => fatal.push(err));
    expect(await c.tickUntil(() => c.leader() !== undefined)).toBe(true);
    const a = c.drivers.get("a")!;
    fp.enable("raft_before_send", () => {
      throw new InjectedCrash("raft_before_send");
    });
    const p = a.propose(bytes("w"));
    await c.settle();
    const err = await p.catch((e) => e);
    expect(isKvError(err, "SHUTTING_DOWN")).toBe(true);
    expect(fatal[0]).toBeInstanceOf(InjectedCrash);
    expect(a.isStopped()).toBe(true);
  });

  it("the leader's appends leave before its own write is durable; the client waits for it", async () => {
    const c = cluster(["a", "b", "c"]);
    expect(await c.tickUntil(() => c.leader() !== undefined)).toBe(true);
    const leader = c.leader()!;
    await c.tickUntil(() => [...c.drivers.values()].every((d) => d.status().commitIndex >= 1), 20);
    // Hold the leader's writes: its persists do not resolve until released.
    const storage = c.storages.get(leader.id)!;
    const persist = storage.persist.bind(storage);
    const held: (() => void)[] = [];
    storage.persist = (request) => {
      const done = persist(request);
      return new Promise((resolve) => held.push(() => resolve(done)));
    };
    let answered = false;
    const p = leader.propose(bytes("x")).then((r) => {
      answered = true;
      return r;
    });
    await c.settle();
    const followers = [...c.drivers.values()].filter((d) => d !== leader);
    // The followers got and stored the entry while the leader's write is pending.
    for (const f of followers) expect(f.status().lastIndex).toBe(2);
    expect(held.length).toBeGreaterThan(0);
    expect(answered).toBe(false);
    expect(c.sms.get(leader.id)!.values).toEqual([]);
    storage.persist = persist;
    for (const release of held.splice(0)) release();
    await c.tickUntil(() => answered, 20);
    await expect(p).resolves.toEqual({ index: 2, result: 1 });
  });

  it("leadership transfer moves the leader to the named peer", async () => {
    const c = cluster(["a", "b", "c"]);
    await c.tickUntil(() => c.leader() !== undefined);
    const leader = c.leader()!;
    const to = ["a", "b", "c"].find((id) => id !== leader.id)!;
    const done = leader.transferLeadership(to);
    await c.tickUntil(() => c.leader()?.id === to, 30);
    await done;
    expect(c.leader()!.id).toBe(to);
  });

  it("answers a proposal when the state machine decided it; reads wait for the apply", async () => {
    const c = cluster(["a"]);
    expect(await c.tickUntil(() => c.leader() !== undefined)).toBe(true);
    const leader = c.leader()!;
    const sm = c.sms.get(leader.id)!;
    // The state machine decides at once and holds its "write" until released.
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const plain = sm.apply.bind(sm);
    const heldApply: RaftStateMachine<number>["apply"] = (entries, decided) => {
      const results = plain(entries);
      for (let i = 0; i < entries.length; i++) decided?.(entries[i]!, results[i]!);
      return held.then(() => results);
    };
    (sm as RaftStateMachine<number>).apply = heldApply;
    const proposed = leader.propose(bytes("x"));
    let answered = false;
    void proposed.then(() => {
      answered = true;
    });
    expect(await c.tickUntil(() => answered, 20)).toBe(true);
    await expect(proposed).resolves.toEqual({ index: 2, result: 1 });
    // A read point at or after the entry waits until its apply is done.
    let read = false;
    void leader.readIndex().then(() => {
      read = true;
    });
    expect(await c.tickUntil(() => read, 10)).toBe(false);
    release();
    expect(await c.tickUntil(() => read, 20)).toBe(true);
  });
});
