/**
 * `/readyz` follows what a node can serve: 200 on every node of a healthy cluster,
 * 503 on a node that cannot reach a quorum (two of three killed), and 200 again on it
 * and on a restarted node once a leader is back and they caught up.
 */
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../test_support/index.js";
import { LocalCluster } from "./harness/cluster.js";

let cluster: LocalCluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

async function readyz(c: LocalCluster, i: number): Promise<number | undefined> {
  return (await c.http(i, "/readyz", 3000))?.status;
}

describe("/readyz in a three-node cluster", () => {
  it("is 503 without a quorum and 200 once a leader is back and the node caught up", async () => {
    const c = await LocalCluster.start();
    cluster = c;
    for (const n of c.nodes) {
      await waitFor(async () => (await readyz(c, n.index)) === 200, 10_000, `${n.id} ready`);
    }
    const leader = await c.waitForLeader();
    const survivor = (leader + 1) % 3;
    const other = (leader + 2) % 3;
    await c.kill(leader, "SIGKILL");
    await c.kill(other, "SIGKILL");
    // A lone follower loses its leader after an election timeout and cannot elect one.
    await waitFor(async () => (await readyz(c, survivor)) === 503, 10_000, "503 without quorum");
    const body = (await c.http(survivor, "/readyz", 3000))!.body;
    expect(body.length).toBeGreaterThan(0);
    expect((await c.status(survivor))!.role).not.toBe("leader");
    // Still 503 a moment later: it does not flap to ready on its own.
    expect(await readyz(c, survivor)).toBe(503);

    await c.startNode(other);
    await c.waitForLeader(15_000);
    await waitFor(async () => (await readyz(c, survivor)) === 200, 10_000, "survivor ready");
    await waitFor(async () => (await readyz(c, other)) === 200, 10_000, "restarted node ready");
  });
});
