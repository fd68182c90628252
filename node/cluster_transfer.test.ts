/**
 * Leadership transfer on three real `streamkv server` processes: `streamkv cluster
 * transfer <id>` finds the leader among its --server URLs and hands leadership over
 * while a client keeps writing (every acknowledged write is still there afterwards);
 * a follower answers NOT_LEADER with the leader's id, an unknown id is INVALID_ARGUMENT.
 * Also checks the forwarding metrics of a follower that forwarded writes. Then `streamkv
 * cluster remove` takes a follower and then the leader itself out while writes go on.
 */
import { describe, expect, it } from "vitest";
import { connect, type KvError } from "../client/index.js";
import { runCli, startCluster, waitFor } from "../test_support/index.js";
import { processFixture } from "./test_fixture.js";

const { nodes, conns } = processFixture();

const ids = ["n1", "n2", "n3"];

async function leaderIndex(): Promise<number> {
  let leader = -1;
  await waitFor(
    async () => {
      const all = await Promise.all(
        conns.map((c) => c.clusterStatus({ timeoutMs: 1000 }).catch(() => undefined)),
      );
      leader = all.findIndex((s) => s?.role === "leader");
      return leader >= 0 && all.every((s) => s?.leader === ids[leader]);
    },
    10_000,
    "one leader known to all",
  );
  return leader;
}

describe("leadership transfer (three processes)", () => {
  it("moves leadership with the CLI while writes continue, and refuses bad requests", async () => {
    nodes.push(...(await startCluster(ids)).nodes);
    for (const n of nodes) conns.push(await connect({ servers: n.url, timeoutMs: 5000 }));
    const leader = await leaderIndex();
    const follower = (leader + 1) % 3;
    const target = (leader + 2) % 3;

    // A follower cannot hand over what it does not hold; it names the leader.
    const err = (await conns[follower]!.transferLeadership(ids[target]!).catch(
      (e) => e,
    )) as KvError;
    expect(err.code).toBe("NOT_LEADER");
    expect(err.details.leaderId).toBe(ids[leader]);
    const bad = (await conns[leader]!.transferLeadership("nope").catch((e) => e)) as KvError;
    expect(bad.code).toBe("INVALID_ARGUMENT");

    // Writes through every node keep being acknowledged during the transfer.
    await conns[leader]!.createKeyValue({ bucket: "t" });
    const kvs = await Promise.all(conns.map((c) => c.keyValue("t")));
    const acked = new Map<string, number>();
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 2000; i++) {
        const key = `k${i}`;
        const rev = await kvs[i % 3]!.putString(key, `v${i}`).catch(() => 0);
        if (rev > 0) acked.set(key, rev);
      }
    })();
    await waitFor(() => acked.size >= 5, 10_000, "first writes");

    // The CLI asks a follower first (NOT_LEADER), then finds the leader.
    const servers = [follower, leader, target].map((i) => nodes[i]!.url).join(",");
    const r = await runCli(["cluster", "transfer", ids[target]!, "--server", servers]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`leader ${ids[target]} (term ${r.stdout.match(/term (\d+)/)?.[1]})\n`);
    expect(await leaderIndex()).toBe(target);
    const before = acked.size;
    await waitFor(() => acked.size >= before + 5, 10_000, "writes after the transfer");
    writing = false;
    await writer;
    for (const [key, rev] of acked) {
      const e = await kvs[target]!.get(key);
      expect(e?.revision).toBe(rev);
    }

    // Only the leader can answer the CLI; a lone follower URL gets a one-line error.
    const notHere = await runCli([
      "cluster",
      "transfer",
      ids[leader]!,
      "--server",
      nodes[follower]!.url,
    ]);
    expect(notHere.code).toBe(1);
    expect(notHere.stderr).toMatch(/^streamkv: NOT_LEADER: .*the leader is n\d.*--server\n$/);

    // The follower forwarded writes (every third went through it) and counts them.
    const metrics = await (
      await fetch(`http://127.0.0.1:${nodes[follower]!.clientPort}/metrics`)
    ).text();
    expect(metrics).toMatch(/streamkv_forwards_sent_total\{result="ok"\} [1-9]/);
    expect(metrics).toContain("streamkv_forwards_in_flight 0");
  });

  it("removes a follower, then the leader itself, while writes continue", async () => {
    const leader = await leaderIndex();
    const follower = (leader + 1) % 3;
    const last = (leader + 2) % 3;
    const kv = await conns[last]!.keyValue("t");
    const acked = new Map<string, number>();
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 2000; i++) {
        const rev = await kv.putString(`r${i}`, `v${i}`).catch(() => 0);
        if (rev > 0) acked.set(`r${i}`, rev);
      }
    })();
    const all = nodes.map((n) => n.url).join(",");
    const r1 = await runCli(["cluster", "remove", ids[follower]!, "--server", all]);
    expect(r1.stderr).toBe("");
    expect(r1.code).toBe(0);
    expect(r1.stdout).toMatch(new RegExp(`^removed ${ids[follower]}; members `));
    await waitFor(
      async () => {
        const s = await conns[last]!.clusterStatus({ timeoutMs: 1000 });
        return s.peers.length === 2 && !s.peers.some((p) => p.id === ids[follower]);
      },
      10_000,
      "two members",
    );
    let before = acked.size;
    await waitFor(() => acked.size >= before + 5, 10_000, "writes with two members");

    // The leader removes itself: it hands over to the last voter and steps down.
    const r2 = await runCli(["cluster", "remove", ids[leader]!, "--server", all, "--json"]);
    expect(r2.stderr).toBe("");
    expect(r2.code).toBe(0);
    await waitFor(
      async () => {
        const s = await conns[last]!.clusterStatus({ timeoutMs: 1000 });
        return s.role === "leader" && s.peers.map((p) => p.id).join() === ids[last];
      },
      10_000,
      "the last node leads alone",
    );
    before = acked.size;
    await waitFor(() => acked.size >= before + 5, 10_000, "writes on the lone node");
    writing = false;
    await writer;
    for (const [key, rev] of acked) expect((await kv.get(key))?.revision).toBe(rev);
    // Removing the last voter is refused.
    const r3 = await runCli(["cluster", "remove", ids[last]!, "--server", nodes[last]!.url]);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/^streamkv: INVALID_ARGUMENT: .*last voter/);
  });
});
