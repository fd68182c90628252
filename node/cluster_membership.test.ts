/**
 * Growing a cluster of real `streamkv server` processes from three voters to four: the
 * new node starts with --join (no group of its own), `streamkv cluster add` makes it a
 * learner and then a voter while a client keeps writing; it catches up and serves
 * linearizable reads, every old member learns its address, and a restarted member
 * (whose --peers do not name it) still reaches it.
 */
import { describe, expect, it } from "vitest";
import { connect } from "../client/index.js";
import {
  freePort,
  runCli,
  startCluster,
  startServer,
  tempDir,
  waitFor,
} from "../test_support/index.js";
import { loadAddressBook } from "./address_book.js";
import { processFixture } from "./test_fixture.js";

const { nodes, conns } = processFixture();

describe("cluster membership (real processes)", () => {
  it("grows 3 -> 4 with --join and cluster add while writes continue", async () => {
    const ids = ["n1", "n2", "n3"];
    const { nodes: started, peerPorts, peers } = await startCluster(ids);
    nodes.push(...started);
    for (const n of nodes) conns.push(await connect({ servers: n.url, timeoutMs: 5000 }));
    await waitFor(
      async () => {
        const all = await Promise.all(conns.map((c) => c.clusterStatus({ timeoutMs: 1000 })));
        return all.every((s) => s.leader !== "" && s.leader === all[0]!.leader);
      },
      10_000,
      "a leader",
    );
    const status = await conns[0]!.clusterStatus();
    expect(status.clusterId).toMatch(/^c-[0-9a-f]{16}$/);

    // Every bucket lives in the one group: replicas is the voter count, or omitted.
    await expect(conns[1]!.createKeyValue({ bucket: "r1", replicas: 1 })).rejects.toMatchObject({
      code: "INVALID_CONFIG",
      message: expect.stringContaining("replicas must be the cluster's voter count, 3"),
    });
    await conns[0]!.createKeyValue({ bucket: "m" });
    const kv = await conns[0]!.keyValue("m");
    expect((await kv.status()).replicas).toBe(3);
    expect((await kv.status()).replicaNodes.sort()).toEqual(["n1", "n2", "n3"]);
    for (let i = 0; i < 200; i++) await kv.putString(`pre${i}`, `v${i}`);
    const acked = new Map<string, number>();
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 5000; i++) {
        const rev = await kv.putString(`w${i}`, `v${i}`).catch(() => 0);
        if (rev > 0) acked.set(`w${i}`, rev);
      }
    })();

    // The new node: every member's address plus its own, the cluster id, --join.
    const p4 = await freePort();
    const n4 = await startServer({
      dataDir: tempDir(),
      peerPort: p4,
      args: [
        "--id",
        "n4",
        "--peers",
        `${peers},n4=127.0.0.1:${p4}`,
        "--join",
        "--cluster-id",
        status.clusterId,
      ],
    });
    nodes.push(n4);
    const c4 = await connect({ servers: n4.url, timeoutMs: 5000 });
    conns.push(c4);
    // It does not bootstrap a group of its own.
    const alone = await c4.clusterStatus();
    expect(alone.role).not.toBe("leader");

    const all = started.map((n) => n.url).join(",");
    const r = await runCli(
      ["cluster", "add", `n4=127.0.0.1:${p4}`, "--server", all, "--timeout", "20000"],
      { timeoutMs: 30_000 },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^added n4; members /);
    await waitFor(
      async () => {
        const views = await Promise.all(conns.map((c) => c.clusterStatus({ timeoutMs: 1000 })));
        return views.every(
          (v) =>
            v.peers.length === 4 &&
            v.peers.every((p) => p.voter) &&
            v.peers.find((p) => p.id === "n4")?.address === `127.0.0.1:${p4}`,
        );
      },
      15_000,
      "four voters, n4's address known everywhere",
    );
    const before = acked.size;
    await waitFor(() => acked.size >= before + 10, 10_000, "writes with four voters");
    writing = false;
    await writer;

    // n4 caught up and serves linearizable reads of everything acknowledged.
    const kv4 = await c4.keyValue("m");
    expect((await kv4.get("pre199"))?.revision).toBeGreaterThan(0);
    // The bucket reports the voters now, and is the same bucket asked for with 4 (or 0).
    for (const c of conns) {
      const st = await (await c.keyValue("m")).status();
      expect([st.replicas, st.replicaNodes.sort()]).toEqual([4, ["n1", "n2", "n3", "n4"]]);
    }
    await conns[1]!.createKeyValue({ bucket: "m", replicas: 4 });
    await conns[1]!.createKeyValue({ bucket: "m", replicas: 0 });
    await expect(conns[1]!.createKeyValue({ bucket: "m", replicas: 3 })).rejects.toMatchObject({
      code: "INVALID_CONFIG",
      message: expect.stringContaining("voter count, 4"),
    });
    for (const [key, rev] of acked) expect((await kv4.get(key))?.revision).toBe(rev);

    // Every old member recorded n4's address durably; one restarted with its original
    // --peers (no n4) still knows where n4 is.
    for (const n of started) {
      expect(loadAddressBook(n.dataDir)).toContainEqual({ id: "n4", host: "127.0.0.1", port: p4 });
    }
    const i = 0;
    await conns[i]!.close();
    expect(await nodes[i]!.stop("SIGTERM")).toBe(0);
    nodes[i] = await startServer({
      dataDir: started[i]!.dataDir,
      peerPort: peerPorts[i]!,
      args: ["--id", ids[i]!, "--peers", peers],
    });
    conns[i] = await connect({ servers: nodes[i]!.url, timeoutMs: 5000 });
    await waitFor(
      async () => {
        const v = await conns[i]!.clusterStatus({ timeoutMs: 1000 });
        return v.leader !== "" && v.peers.find((p) => p.id === "n4")?.address === `127.0.0.1:${p4}`;
      },
      10_000,
      "the restarted member knows n4",
    );
    expect(await kv4.putString("after", "restart")).toBeGreaterThan(0);
  });
});
