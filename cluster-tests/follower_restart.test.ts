/**
 * A follower is killed with SIGKILL; writes go on through the leader and the other
 * follower (forwarded); the follower restarts on its data directory and catches up
 * from the leader's log: same log as the leader, every acked write readable on it
 * (linearizable and, once caught up, stale), and it serves writes again.
 */
import { describe, expect, it } from "vitest";
import { clusterFixture } from "./harness/fixture.js";
import { str, text } from "./harness/util.js";
import { checkRun, readCommitted, runKvWorkload } from "./harness/workload.js";

const fx = clusterFixture();

describe("follower killed and restarted", () => {
  it("keeps serving writes, then the follower catches up from the log", async () => {
    const c = await fx.start();
    const leader = await c.waitForLeader();
    const follower = (leader + 1) % 3;
    const admin = await fx.connect({ servers: c.urls, timeoutMs: 5000 });
    const kv = await admin.createKeyValue({ bucket: "fr", history: 64 });
    // Written before the kill, in a bucket of its own so the workload's starts empty.
    const before = await (await admin.createKeyValue({ bucket: "fr0" })).put("k", text("b"));

    expect(await c.kill(follower, "SIGKILL")).toBe("SIGKILL");
    const alive = c.nodes.filter((n) => n.index !== follower).map((n) => n.url);
    const result = await runKvWorkload({
      urls: alive,
      bucket: "fr",
      clients: 2,
      maxOps: 150,
      durationMs: 10_000,
      keys: 16,
      seed: 11,
    });
    expect(result.acked.length).toBeGreaterThan(50);
    expect(result.unknownWrites).toBe(0);

    await c.startNode(follower);
    const commit = (await c.status(leader))!.commitIndex;
    await c.waitForApplied(follower, commit);
    const [fromLeader, fromFollower] = await Promise.all([
      readCommitted(c.nodes[leader]!.url, "fr"),
      readCommitted(c.nodes[follower]!.url, "fr"),
    ]);
    expect(fromFollower).toEqual(fromLeader);
    const verdict = checkRun(result, fromLeader);
    expect(verdict.lost).toEqual([]);
    expect(verdict.linearizable).toBe("ok");

    const direct = await fx.connect({ servers: c.nodes[follower]!.url, timeoutMs: 5000 });
    const fkv = await direct.keyValue("fr");
    const f0 = await direct.keyValue("fr0");
    expect((await f0.get("k", { stale: true }))?.revision).toBe(before);
    const last = result.acked.at(-1)!;
    const latest = await fkv.get(last.key);
    expect(latest?.revision).toBeGreaterThanOrEqual(last.revision);
    // and it takes writes again (forwarded, or its own if it leads now)
    const rev = await fkv.put("after", text("a"));
    expect(str((await kv.get("after"))!.value)).toBe("a");
    expect((await kv.get("after"))!.revision).toBe(rev);
  });
});
