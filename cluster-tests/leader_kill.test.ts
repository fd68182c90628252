/**
 * The leader is killed with SIGKILL while three clients write (put / create / update /
 * get with unique values, each client connected to all nodes, through followers too):
 *
 * - the cluster elects a new leader and acknowledged writes resume;
 * - after the old leader restarts, every node has the same log, and every
 *   acknowledged write is in it (nothing acked is lost);
 * - a watch started (on the leader) before the kill sees every committed revision
 *   exactly once, in order, across its reconnect to another node;
 * - the client history, patched with the final log, is linearizable (lincheck, exact
 *   KV model), and revisions are consistent across keys.
 */
import { describe, expect, it } from "vitest";
import type { Entry } from "../client/index.js";
import { waitFor } from "../test_support/index.js";
import { clusterFixture } from "./harness/fixture.js";
import { checkRun, readCommitted, runKvWorkload } from "./harness/workload.js";

const fx = clusterFixture();

describe("leader killed with SIGKILL during writes", () => {
  it("loses no acked write, fails over, and keeps watches and histories correct", async () => {
    const c = await fx.start();
    const leader = await c.waitForLeader();
    const others = c.nodes.filter((n) => n.index !== leader).map((n) => n.url);
    const admin = await fx.connect({ servers: others, timeoutMs: 5000 });
    // history 64 > writes per key here, so the final log holds every write.
    await admin.createKeyValue({ bucket: "chaos", history: 64 });

    const watcher = await fx.connect({
      servers: [c.nodes[leader]!.url, ...others],
      timeoutMs: 5000,
    });
    const watch = await (await watcher.keyValue("chaos")).watch(">", { updatesOnly: true });
    const watched: Entry[] = [];
    let watchError: unknown;
    const watching = (async () => {
      for await (const e of watch) if (e !== null) watched.push(e);
    })().catch((err) => {
      watchError = err;
    });

    const base = (await c.status(leader))!.commitIndex;
    const work = runKvWorkload({
      urls: c.urls,
      bucket: "chaos",
      clients: 3,
      maxOps: 300,
      durationMs: 15_000,
      keys: 32,
      seed: 5,
    });
    await waitFor(
      async () => ((await c.status(leader))?.commitIndex ?? 0) >= base + 60,
      10_000,
      "writes before the kill",
    );
    const killedAt = Date.now();
    await c.kill(leader, "SIGKILL");
    const newLeader = await c.waitForLeader(10_000);
    expect(newLeader).not.toBe(leader);
    const electedAt = Date.now();
    await c.startNode(leader);
    const result = await work;

    // Writes resumed: some were acknowledged after the new leader was known.
    const after = result.acked.filter((a) => a.ackedAtMs > electedAt);
    expect(after.length, `errors: ${JSON.stringify([...result.errors])}`).toBeGreaterThan(0);
    const firstAckAfterKillMs = Math.min(
      ...result.acked.filter((a) => a.ackedAtMs > killedAt).map((a) => a.ackedAtMs),
    );
    console.log(
      `leader_kill: ${result.ops} ops, ${result.acked.length} acked, ${result.unknownWrites} unknown, first ack ${firstAckAfterKillMs - killedAt} ms after the kill, errors ${JSON.stringify([...result.errors])}`,
    );

    // Every node converges on the same log; no acked write is missing from it.
    const finalLeader = await c.waitForLeader();
    // A write of this leader's term commits everything before it.
    await admin.createKeyValue({ bucket: "barrier" });
    const commit = (await c.status(finalLeader))!.commitIndex;
    await Promise.all(c.nodes.map((n) => c.waitForApplied(n.index, commit)));
    const logs = await Promise.all(c.urls.map((u) => readCommitted(u, "chaos")));
    for (const log of logs.slice(1)) expect(log).toEqual(logs[0]);
    const committed = logs[0]!;
    expect(committed.map((e) => e.revision)).toEqual(committed.map((_, i) => i + 1));
    const verdict = checkRun(result, committed);
    expect(verdict.lost).toEqual([]);
    expect(verdict.linearizable).toBe("ok");
    expect(verdict.revisions).toBe("ok");

    // The watch saw exactly the committed log, in order, once.
    const last = committed.at(-1)?.revision ?? 0;
    await waitFor(
      () => watchError !== undefined || (watched.at(-1)?.revision ?? 0) >= last,
      10_000,
      "the watch to reach the last revision",
    );
    expect(watchError).toBeUndefined();
    watch.stop();
    await watching;
    expect(
      watched.map((e) => ({
        key: e.key,
        revision: e.revision,
        operation: e.operation,
        value: e.operation === "PUT" ? new TextDecoder().decode(e.value) : null,
      })),
    ).toEqual(committed);
  });
});
