/**
 * Cluster identity: a node refuses to start with an id that is not in its --peers, or
 * on a data directory of another cluster (exit 2, one clear line); a node of another
 * cluster is refused at the peer handshake and cannot disturb the cluster.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  freePort,
  removeDir,
  runCli,
  type ServerProcess,
  startServer,
  tempDir,
  waitFor,
} from "../test_support/index.js";
import { LocalCluster } from "./harness/cluster.js";

let cluster: LocalCluster | undefined;
const extra: ServerProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(extra.splice(0).map((p) => p.stop("SIGKILL")));
  await cluster?.destroy();
  cluster = undefined;
  for (const d of dirs.splice(0)) removeDir(d);
});

describe("cluster identity", () => {
  it("refuses an id that is not one of --peers", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const r = await runCli([
      "server",
      "--id",
      "n9",
      "--peers",
      "n1=127.0.0.1:17001,n2=127.0.0.1:17002,n3=127.0.0.1:17003",
      "--data",
      dir,
      "--client-port",
      "0",
      "--peer-port",
      "0",
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--id n9 is not in --peers/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("refuses a data dir of another cluster and a peer of another cluster", async () => {
    const c = await LocalCluster.start();
    cluster = c;
    const leader = await c.waitForLeader();

    // The same node id, but --peers of another cluster (other addresses): refused.
    const victim = c.nodes[(leader + 1) % 3]!;
    expect(await c.kill(victim.index, "SIGTERM")).toBe(0);
    const elsewhere = [await freePort(), await freePort(), await freePort()];
    const otherPeers = c.nodes.map((n, i) => `${n.id}=127.0.0.1:${elsewhere[i]}`).join(",");
    const r = await runCli([
      "server",
      "--id",
      victim.id,
      "--peers",
      otherPeers,
      "--data",
      victim.dataDir,
      "--client-port",
      "0",
      "--peer-port",
      String(elsewhere[victim.index]),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/belongs to cluster c-[0-9a-f]{16}, but --peers describe cluster/);
    // With its own cluster's --peers it starts and rejoins.
    await c.startNode(victim.index);
    await c.waitForLeader();

    // A node of another cluster that names itself n3 and dials n1 and n2: refused.
    const intruderPort = await freePort();
    const intruderPeers = c.nodes
      .map((n) => `${n.id}=127.0.0.1:${n.id === "n3" ? intruderPort : n.peerPort}`)
      .join(",");
    const dir = tempDir();
    dirs.push(dir);
    const intruder = await startServer({
      dataDir: dir,
      peerPort: intruderPort,
      args: ["--id", "n3", "--peers", intruderPeers],
    });
    extra.push(intruder);
    const n1 = c.nodes[0]!;
    await waitFor(
      () => /peer refused the connection/.test(intruder.stderr()),
      10_000,
      "the intruder to be refused",
    );
    await waitFor(
      () => /belongs to cluster/.test(n1.proc!.stderr()),
      10_000,
      "n1 to log the refusal",
    );
    // The cluster is undisturbed; the intruder finds no leader.
    const leaderNow = await c.waitForLeader();
    const term = (await c.status(leaderNow))!.term;
    const r2 = await fetch(`http://127.0.0.1:${intruder.clientPort}/v1/status`);
    expect(((await r2.json()) as { leader: string }).leader).toBe("");
    expect((await c.status(leaderNow))!.term).toBe(term);
  });
});
