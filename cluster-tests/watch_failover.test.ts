/**
 * Watches under faults of the node they are on (issue: watches that never die): three
 * real nodes, writers overflowing a history of 4 during every fault, two watchers with
 * notices. Each round SIGKILLs (then restarts) or SIGSTOPs (then SIGCONTs) the node a
 * watcher is on. No watcher ends, every skipped revision is inside an announced catch-up
 * where a later entry of its key superseded it, and every final view equals the
 * cluster's. Failover times are printed; `npm run bench -- watch-failover` runs more
 * rounds and reports p50/p99.
 */
import { describe, expect, it } from "vitest";
import type { ConnectionEvent, Entry } from "../client/index.js";
import { waitFor } from "../test_support/index.js";
import { clusterFixture } from "./harness/fixture.js";
import { text } from "./harness/util.js";
import { checkWatchRun, failoverSummary, runWatchChaos } from "./harness/watch_chaos.js";

const fx = clusterFixture();

describe("watchers when the node they are on is killed or paused", () => {
  it("never end, never skip unannounced, and end with the cluster's state", async () => {
    const cluster = await fx.start();
    const r = await runWatchChaos({
      cluster,
      connect: (o) => fx.connect(o),
      bucket: "wf",
      rounds: 4,
      seed: 7,
    });
    const summary = failoverSummary(r.faults);
    console.log(
      `watch failover over ${r.faults.length} faults: p50 ${summary.p50.toFixed(0)} ms, max ${summary.max.toFixed(0)} ms; ` +
        `${r.writesAcked} writes acked, ${r.writesFailed} failed, last revision ${r.lastRevision}; ` +
        `catch-ups ${r.watchers.map((w) => w.catchUps.length).join("/")}, failovers ${r.watchers.map((w) => w.failovers).join("/")}`,
    );
    expect(checkWatchRun(r).join("\n")).toBe("");
    expect(r.faults.length).toBe(4);
    // History 4 over 10 keys overflows during a fault: the catch-up path really ran.
    expect(r.watchers.some((w) => w.catchUps.length > 0)).toBe(true);
  }, 180_000);
});

describe("a watcher on a node cut off from its leader", () => {
  it("is ended by the node with NO_LEADER, moves on, and resumes without a gap", async () => {
    const c = await fx.start();
    const leader = await c.waitForLeader();
    const follower = c.nodes.findIndex((n) => n.index !== leader);
    const third = c.nodes.findIndex((n) => n.index !== leader && n.index !== follower);
    const admin = await fx.connect({ servers: c.urls, timeoutMs: 8000 });
    const kv = await admin.createKeyValue({ bucket: "cut" });
    await kv.put("k", text("0"));
    // The watcher's only server is the follower: cut off, it has nowhere else to go, so
    // what it shows is the node's own refusal, then the resume once the others are back.
    const events: ConnectionEvent[] = [];
    const nc = await fx.connect({
      servers: [c.nodes[follower]!.url],
      timeoutMs: 8000,
      onEvent: (e) => events.push(e),
    });
    const w = await (await nc.keyValue("cut")).watch("k");
    const got: Array<Entry | null> = [];
    const reading = (async () => {
      for await (const e of w) got.push(e);
    })();
    await waitFor(() => got.length === 2, 10_000, "initial value and null");
    // SIGSTOP of the two others: the follower hears no leader (a partition, seen from it).
    c.pause(leader);
    c.pause(third);
    const t0 = Date.now();
    await waitFor(
      () => events.some((e) => e.type === "watch_resumed" && e.reason.startsWith("NO_LEADER")),
      10_000,
      "the node ending its watch with NO_LEADER",
    );
    const endedAfterMs = Date.now() - t0;
    expect(events.some((e) => e.type === "failover")).toBe(true);
    c.resume(leader);
    c.resume(third);
    await c.waitForLeader();
    const rev = await kv.put("k", text("1"));
    await waitFor(() => got.some((e) => e?.revision === rev), 15_000, "the write after healing");
    w.stop();
    await reading;
    console.log(`a cut-off follower ended its watch after ${endedAfterMs} ms`);
    // Between 1 s (two election timeouts) and a little more; never a gap or a repeat.
    expect(endedAfterMs).toBeLessThan(5000);
    expect(got.map((e) => e?.revision ?? null)).toEqual([1, null, rev]);
  }, 60_000);
});
