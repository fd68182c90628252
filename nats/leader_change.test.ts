/**
 * A NATS KV watch (`@nats-io/kv`, unmodified) in a three-node cluster while the leader
 * is killed (SIGKILL), writes going on through a follower: the watcher must end up with
 * exactly the entries the bucket holds, in revision order, none lost and none twice.
 * Two cases: the watch on a follower (the node's watch goes on across the election),
 * and the watch on the leader itself (the client reconnects to another node, its
 * ordered consumer misses heartbeats and recreates itself from its last revision).
 */
import { Kvm, type KvWatchEntry } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDir, type ServerProcess, startCluster, waitFor } from "../test_support/index.js";

interface Status {
  id: string;
  role: string;
  leader: string;
}

async function statusOf(n: ServerProcess): Promise<Status | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${n.clientPort}/v1/status`, {
      signal: AbortSignal.timeout(1000),
    });
    return res.status === 200 ? ((await res.json()) as Status) : undefined;
  } catch {
    return undefined;
  }
}

const IDS = ["n1", "n2", "n3"];

describe.each([
  { on: "a follower", onLeader: false },
  { on: "the leader", onLeader: true },
])("a NATS KV watch on $on across a leader change", ({ onLeader }) => {
  let nodes: ServerProcess[] = [];
  const conns: NatsConnection[] = [];

  beforeAll(async () => {
    nodes = (await startCluster(IDS, { nats: true })).nodes;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) removeDir(n.dataDir);
  });

  it("sees every acknowledged write once, in order, after the leader is killed", async () => {
    let leaderId = "";
    await waitFor(
      async () => {
        const all = await Promise.all(nodes.map(statusOf));
        const leaders = all.filter((s) => s?.role === "leader");
        leaderId = leaders[0]?.id ?? "";
        return leaders.length === 1 && all.every((s) => s?.leader === leaderId);
      },
      30_000,
      "one leader every node knows",
      100,
    );
    const leader = nodes[IDS.indexOf(leaderId)]!;
    const [follower, writeNode] = nodes.filter((n) => n !== leader);
    const watchNode = onLeader ? leader : follower!;
    const w = await connect({ servers: `127.0.0.1:${writeNode!.natsPort}` });
    // Reconnects to the follower when its node dies (both known from the start).
    const r = await connect({
      servers: [`127.0.0.1:${watchNode.natsPort}`, `127.0.0.1:${follower!.natsPort}`],
      reconnectTimeWait: 200,
      maxReconnectAttempts: -1,
    });
    conns.push(w, r);
    const kv = await new Kvm(w).create("lc", { history: 10 });
    const ro = await new Kvm(r).open("lc");

    const seen: KvWatchEntry[] = [];
    const watch = await ro.watch({ key: "k.>" });
    const watching = (async () => {
      for await (const e of watch) seen.push(e);
    })();

    /** A put retried (bounded) while the cluster elects; a retry may write twice. */
    const put = async (key: string, value: string) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          return await kv.put(key, value);
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((res) => setTimeout(res, 100));
        }
      }
    };
    for (let i = 0; i < 20; i++) await put(`k.${i % 5}`, `before-${i}`);
    await waitFor(() => seen.length >= 20, 10_000, "the watch to see the first 20 writes");
    await leader.stop("SIGKILL");
    const killedAt = Date.now();
    for (let i = 0; i < 20; i++) await put(`k.${i % 5}`, `after-${i}`);
    const writtenMs = Date.now() - killedAt;

    // The truth: what the bucket holds (history 10 keeps every write of the 5 keys),
    // read through the writer's node (the watcher's may be the dead one).
    const truth: number[] = [];
    for (let k = 0; k < 5; k++) {
      for await (const e of await kv.history({ key: `k.${k}` })) truth.push(e.revision);
    }
    truth.sort((a, b) => a - b);
    expect(truth.length).toBeGreaterThanOrEqual(40);
    // On a follower the node's watch goes on. On the dead leader the consumer went with
    // it: nats.js recreates its ordered consumer after two missed heartbeats, 30 s each
    // (its setting, as against nats-server, where an R1 consumer dies with its server).
    await waitFor(
      () => seen.length >= truth.length,
      onLeader ? 90_000 : 20_000,
      `the watch to catch up (${truth.length} entries)`,
      100,
    );
    const caughtUpMs = Date.now() - killedAt;
    watch.stop();
    await watching;
    const revs = seen.map((e) => e.revision);
    expect(revs).toEqual(truth);
    expect(new Set(revs).size).toBe(revs.length);
    console.info(
      `leader ${leaderId} killed: 20 writes acknowledged within ${writtenMs} ms, the watch on ${IDS[nodes.indexOf(watchNode)]} had them all ${caughtUpMs} ms after the kill`,
    );
  }, 150_000);
});
