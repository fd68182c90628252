/**
 * Three real `streamkv server` processes on loopback, Raft over the peer port: a leader
 * is elected, a write on the leader is read linearizably on a follower and seen by a
 * follower's watch, a write sent to a follower is forwarded to the leader, and a leader
 * stopping with SIGTERM hands over leadership. cluster-tests/ has the chaos tests.
 */
import { describe, expect, it } from "vitest";
import { connect } from "../client/index.js";
import { startCluster, waitFor } from "../test_support/index.js";
import { processFixture } from "./test_fixture.js";

const { nodes, conns } = processFixture();

describe("three-node cluster (smoke)", () => {
  it("elects, replicates, forwards follower writes, serves follower reads and watches, hands over on SIGTERM", async () => {
    const ids = ["n1", "n2", "n3"];
    nodes.push(...(await startCluster(ids)).nodes);
    for (const n of nodes) conns.push(await connect({ servers: n.url, timeoutMs: 5000 }));
    let leader = -1;
    await waitFor(
      async () => {
        const all = await Promise.all(conns.map((c) => c.clusterStatus({ timeoutMs: 1000 })));
        leader = all.findIndex((s) => s.role === "leader");
        return leader >= 0 && all.every((s) => s.leader === ids[leader]);
      },
      10_000,
      "one leader known to all",
    );
    const follower = (leader + 1) % 3;
    const other = (leader + 2) % 3;
    const kv = await conns[leader]!.createKeyValue({ bucket: "c", history: 3 });
    const fkv = await conns[follower]!.keyValue("c");
    const watch = await (await conns[other]!.keyValue("c")).watch(">", { updatesOnly: true });
    const it = watch[Symbol.asyncIterator]();
    expect((await it.next()).value).toBeNull();
    const rev = await kv.putString("k", "v1");
    const seen = await fkv.get("k");
    expect(seen?.revision).toBe(rev);
    const live = await it.next();
    expect((live.value as { revision: number }).revision).toBe(rev);
    const forwarded = await fkv.putString("k", "v2");
    expect(forwarded).toBe(rev + 1);
    expect((await it.next()).value).toMatchObject({ revision: rev + 1 });
    expect((await kv.get("k"))?.revision).toBe(rev + 1);
    watch.stop();
    expect(await nodes[leader]!.stop("SIGTERM")).toBe(0);
    await waitFor(
      async () => {
        const s = await conns[follower]!.clusterStatus({ timeoutMs: 1000 }).catch(() => undefined);
        return s !== undefined && s.leader !== "" && s.leader !== ids[leader];
      },
      5000,
      "a new leader",
    );
  });
});
