/**
 * The streaming snapshot seam end to end through the driver and core: the leader
 * reads chunks lazily from an image, the follower stores each chunk before it is
 * acknowledged, a chunk that fails its checks restarts the transfer (no crash), and
 * the follower installs the image and then follows the log.
 */
import { describe, expect, it } from "vitest";
import { KvError } from "../proto/index.js";
import { applyConfChange } from "./core.js";
import { RaftDriver, type RaftStateMachine } from "./driver.js";
import { MemoryRaftStorage } from "./memory_storage.js";
import { Sfc32 } from "./prng.js";
import { SimStateMachine } from "./sim/sim_state_machine.js";
import { bytesSnapshotStore, type SnapshotStore } from "./snapshot.js";
import type { Message } from "./types.js";

const bytes = (s: string) => new TextEncoder().encode(s);

interface Probe {
  /** Chunk writes seen by the follower's sink, and how many to fail. */
  writes: number;
  failWrites: Set<number>;
  reads: number[];
}

/** The simulator's machine behind a store that counts reads and can fail chunk writes. */
function instrumented(sm: SimStateMachine, probe: Probe): SnapshotStore {
  const inner = bytesSnapshotStore(sm);
  return {
    open: async () => {
      const source = await inner.open();
      return {
        index: source.index,
        read: (offset, maxBytes) => {
          probe.reads.push(offset);
          return source.read(offset, maxBytes);
        },
        close: () => source.close(),
      };
    },
    receive: async (meta) => {
      const sink = await inner.receive(meta);
      return {
        write: async (offset, data, done) => {
          if (probe.failWrites.has(++probe.writes)) {
            throw new KvError("CORRUPT_RECORD", "corrupt snapshot chunk (injected)");
          }
          await sink.write(offset, data, done);
        },
        install: (m) => sink.install(m),
        abort: () => sink.abort(),
      };
    },
  };
}

function cluster(ids: string[]) {
  const drivers = new Map<string, RaftDriver<number>>();
  const ticks = new Map<string, () => void>();
  const sms = new Map<string, SimStateMachine>();
  const probes = new Map<string, Probe>();
  const cut = new Set<string>();
  const fatal: unknown[] = [];
  ids.forEach((id, i) => {
    const sm = new SimStateMachine();
    const probe: Probe = { writes: 0, failWrites: new Set(), reads: [] };
    sms.set(id, sm);
    probes.set(id, probe);
    const machine: RaftStateMachine<number> = {
      appliedIndex: () => sm.appliedIndex(),
      restoredMeta: () => sm.restoredMeta(),
      apply: (entries) => sm.apply(entries),
      snapshots: instrumented(sm, probe),
    };
    const d = new RaftDriver<number>({
      id,
      storage: new MemoryRaftStorage({
        initialConf: { voters: ids, learners: [] },
        applyConfChange,
      }),
      stateMachine: machine,
      prng: new Sfc32(i + 7),
      electionTimeoutTicks: 10,
      heartbeatTicks: 2,
      core: { snapshotChunkBytes: 16 },
      transport: {
        send: (m: Message) => {
          if (cut.has(m.from) || cut.has(m.to)) return;
          queueMicrotask(() => drivers.get(m.to)?.receive(m));
        },
      },
      ticker: { start: (fn) => ticks.set(id, fn), stop: () => ticks.delete(id) },
      onFatal: (err) => fatal.push(err),
    });
    drivers.set(id, d);
    d.start();
  });
  const settle = async () => {
    for (let i = 0; i < 50; i++) await Promise.resolve();
  };
  const tickUntil = async (cond: () => boolean, ticksMax = 300) => {
    for (let i = 0; i < ticksMax && !cond(); i++) {
      for (const fn of ticks.values()) fn();
      await settle();
    }
    return cond();
  };
  const leader = () => [...drivers.values()].find((d) => d.status().role === "leader");
  return { drivers, sms, probes, cut, fatal, tickUntil, leader };
}

describe("streaming snapshots through the driver", () => {
  it("streams chunks lazily, restarts after a bad chunk, installs, then appends resume", async () => {
    const c = cluster(["a", "b", "c"]);
    expect(await c.tickUntil(() => c.leader() !== undefined)).toBe(true);
    const leader = c.leader()!;
    const lagging = [...c.drivers.keys()].find((id) => id !== leader.id)!;
    c.cut.add(lagging);
    const values = Array.from({ length: 30 }, (_, i) => `value-${i}`);
    await Promise.all(values.map((v) => leader.propose(bytes(v))));
    const others = [...c.drivers.values()].filter((d) => d.id !== lagging);
    for (const d of others) expect(await d.compact(0)).toBeGreaterThan(0);
    expect(leader.status().firstIndex).toBeGreaterThan(2);

    // The 2nd chunk the follower stores fails its checks: the transfer starts over.
    c.probes.get(lagging)!.failWrites.add(2);
    c.cut.delete(lagging);
    const sm = c.sms.get(lagging)!;
    expect(await c.tickUntil(() => sm.values.length === values.length)).toBe(true);
    expect(sm.values).toEqual(values);
    expect(sm.restores).toBe(1);

    const follower = c.drivers.get(lagging)!.snapshotStats();
    expect(follower.installed).toBe(1);
    expect(follower.failed).toBe(1);
    expect(follower.chunksReceived).toBeGreaterThan(5);
    const sent = others.reduce((n, d) => n + d.snapshotStats().sent, 0);
    expect(sent).toBeGreaterThanOrEqual(1);
    // Lazily read: offsets only ever move forward within an image, or restart at 0.
    const reads = c.probes.get(leader.id)!.reads;
    expect(reads.length).toBeGreaterThan(5);
    expect(reads.filter((o) => o === 0).length).toBeGreaterThanOrEqual(2);

    await leader.propose(bytes("after"));
    expect(await c.tickUntil(() => sm.values[sm.values.length - 1] === "after")).toBe(true);
    expect(c.fatal).toEqual([]);
  });
});
