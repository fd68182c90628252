/**
 * The leader is paused with SIGSTOP for longer than the election timeout while clients
 * write (one client's first server is the paused leader), then resumed with SIGCONT:
 *
 * - the others elect a new leader and writes go on during the pause;
 * - the old leader steps down once it runs again and follows the new leader;
 * - never two leaders in one term (sampled from /v1/status all along), no acked write
 *   lost, and the history (reads on the old leader right after SIGCONT included) is
 *   linearizable.
 */
import { describe, expect, it } from "vitest";
import { waitFor } from "../test_support/index.js";
import { clusterFixture } from "./harness/fixture.js";
import { checkRun, readCommitted, runKvWorkload } from "./harness/workload.js";

const fx = clusterFixture();

describe("leader paused with SIGSTOP, then SIGCONT", () => {
  it("fails over, the old leader steps down, no split brain, no acked write lost", async () => {
    const c = await fx.start();
    const leader = await c.waitForLeader();
    const admin = await fx.connect({ servers: c.urls, timeoutMs: 5000 });
    await admin.createKeyValue({ bucket: "pause", history: 64 });

    // Who claims to lead in which term, sampled until the end of the test.
    const leadersByTerm = new Map<number, Set<string>>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const all = await Promise.all(c.nodes.map((n) => c.status(n.index)));
        for (const s of all) {
          if (s?.role !== "leader") continue;
          const set = leadersByTerm.get(s.term) ?? new Set<string>();
          set.add(s.id);
          leadersByTerm.set(s.term, set);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const oldTerm = (await c.status(leader))!.term;
    // Client 0 starts at the leader that will be paused.
    const urls = [c.nodes[leader]!.url, ...c.urls.filter((_, i) => i !== leader)];
    const stop = { requested: false };
    const work = runKvWorkload({
      urls,
      bucket: "pause",
      clients: 3,
      maxOps: 250,
      durationMs: 15_000,
      keys: 32,
      seed: 23,
      stop,
    });
    await waitFor(
      async () => ((await c.status(leader))?.commitIndex ?? 0) >= 40,
      10_000,
      "writes before the pause",
    );
    c.pause(leader);
    const pausedAt = Date.now();
    const newLeader = await c.waitForLeader(10_000);
    expect(newLeader).not.toBe(leader);
    const newTerm = (await c.status(newLeader))!.term;
    expect(newTerm).toBeGreaterThan(oldTerm);
    // Writes go on while the old leader is still paused.
    const committedBefore = (await c.status(newLeader))!.commitIndex;
    await waitFor(
      async () => ((await c.status(newLeader))?.commitIndex ?? 0) >= committedBefore + 20,
      10_000,
      "writes during the pause",
    );
    // Paused well beyond the election timeout (10 ticks of 50 ms, randomized up to 2x).
    await waitFor(() => Date.now() - pausedAt > 1500, 5000, "a long pause");
    c.resume(leader);
    await waitFor(
      async () => {
        const s = await c.status(leader);
        return s !== undefined && s.role === "follower" && s.leader === c.nodes[newLeader]!.id;
      },
      10_000,
      "the old leader to step down and follow",
    );
    const result = await work;
    stop.requested = true;
    sampling = false;
    await sampler;

    for (const [term, ids] of leadersByTerm) {
      expect(ids.size, `term ${term} had leaders ${[...ids].join(", ")}`).toBe(1);
    }

    const finalLeader = await c.waitForLeader();
    await admin.createKeyValue({ bucket: "barrier" });
    const commit = (await c.status(finalLeader))!.commitIndex;
    await Promise.all(c.nodes.map((n) => c.waitForApplied(n.index, commit)));
    const logs = await Promise.all(c.urls.map((u) => readCommitted(u, "pause")));
    for (const log of logs.slice(1)) expect(log).toEqual(logs[0]);
    const verdict = checkRun(result, logs[0]!);
    console.log(
      `leader_pause: ${result.ops} ops, ${result.acked.length} acked, ${result.unknownWrites} unknown, errors ${JSON.stringify([...result.errors])}`,
    );
    expect(verdict.lost).toEqual([]);
    expect(verdict.linearizable).toBe("ok");
    expect(verdict.revisions).toBe("ok");
  });
});
