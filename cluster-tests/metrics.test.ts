/**
 * `/metrics` of three real `streamkv server` processes, scraped before and after a
 * load on one bucket: the series an operator alerts and graphs on must move, and only
 * the right ones (KV ops by bucket, op and result; Raft commit/apply, persist and apply
 * latency, proposals, follower lag on the leader only; watchers; bytes; data dir). Then
 * the leader fails over (`streamkv_raft_leader_changes_total` counts the new one), and
 * quorum is lost and regained: `streamkv_raft_has_leader` goes to 0 on the survivor and
 * back to 1.
 */
import { describe, expect, it } from "vitest";
import type { Entry } from "../client/index.js";
import { waitFor } from "../test_support/index.js";
import { clusterFixture } from "./harness/fixture.js";
import { type Scrape, scrape } from "./harness/scrape.js";
import { codeOf, text } from "./harness/util.js";

const fx = clusterFixture();

const PUTS = 100;
const GETS = 20;
/** Requests naming buckets that do not exist: none of them may become a label value. */
const MADE_UP_BUCKETS = 150;

describe("/metrics on a three-node cluster", () => {
  it("moves the right series under load, and has-leader flips when quorum goes and comes back", async () => {
    const c = await fx.start();
    const leader = await c.waitForLeader();
    const follower = (leader + 1) % 3;
    const other = (leader + 2) % 3;
    const before = await Promise.all(c.nodes.map((n) => scrape(c, n.index)));
    for (const s of before) {
      expect(s.sum("streamkv_raft_has_leader")).toBe(1);
      expect(s.sum("streamkv_raft_leader_changes_total")).toBeGreaterThanOrEqual(1);
    }
    expect(before[leader]!.sum("streamkv_raft_role", { role: "leader" })).toBe(1);
    expect(before[follower]!.sum("streamkv_raft_role", { role: "follower" })).toBe(1);

    const nc = await fx.connect({ servers: c.nodes[leader]!.url, timeoutMs: 10_000 });
    const kv = await nc.createKeyValue({ bucket: "metered", history: 2 });
    const watching = await fx.connect({ servers: c.nodes[follower]!.url, timeoutMs: 10_000 });
    const watch = await (await watching.keyValue("metered")).watch(">", { updatesOnly: true });
    const seen: Entry[] = [];
    // Kept open until the scrape (leaving the loop would stop the watch).
    const watchLoop = (async () => {
      for await (const e of watch) if (e !== null) seen.push(e);
    })();
    for (let i = 0; i < PUTS; i++) await kv.put(`k.${i % 10}`, text(`value-${i}`));
    for (let i = 0; i < GETS; i++) await kv.get(`k.${i % 10}`);
    expect(await codeOf(kv.create("k.0", text("again")))).toBe("KEY_EXISTS");
    for (let i = 0; i < MADE_UP_BUCKETS; i++) {
      expect(await codeOf(nc.keyValue(`made-up-${i}`))).toBe("BUCKET_NOT_FOUND");
    }
    await waitFor(() => seen.length === PUTS, 10_000, "every put watched");
    const commit = (await c.status(leader))!.commitIndex;
    for (const n of c.nodes) await c.waitForApplied(n.index, commit);
    const after = await Promise.all(c.nodes.map((n) => scrape(c, n.index)));
    const delta = (i: number, name: string, match: Record<string, string> = {}) =>
      after[i]!.sum(name, match) - before[i]!.sum(name, match);

    // KV requests, by bucket, op and result, where the client sent them.
    const ops = "streamkv_kv_ops_total";
    expect(delta(leader, ops, { bucket: "metered", op: "put", result: "ok" })).toBe(PUTS);
    expect(delta(leader, ops, { bucket: "metered", op: "get", result: "ok" })).toBe(GETS);
    expect(delta(leader, ops, { bucket: "metered", op: "create", result: "KEY_EXISTS" })).toBe(1);
    expect(delta(leader, ops, { bucket: "_other", result: "BUCKET_NOT_FOUND" })).toBe(
      MADE_UP_BUCKETS,
    );
    const bucketValues = new Set(after[leader]!.matching(ops).map((s) => s.labels.bucket));
    // No made-up name became a label value ("" is for requests that name no bucket).
    expect([...bucketValues].filter((b) => !["", "_other", "metered"].includes(b!))).toEqual([]);
    expect(delta(follower, ops, { op: "put" })).toBe(0);
    expect(delta(leader, "streamkv_kv_op_seconds_count", { op: "put" })).toBe(PUTS);
    expect(delta(leader, "streamkv_client_bytes_total", { direction: "in" })).toBeGreaterThan(
      PUTS * "value-00".length,
    );
    expect(after[leader]!.sum("streamkv_client_connections")).toBeGreaterThanOrEqual(1);

    // Raft: every node committed, persisted and applied the writes.
    for (const i of [leader, follower, other]) {
      expect(delta(i, "streamkv_raft_commit_index")).toBeGreaterThanOrEqual(PUTS);
      expect(delta(i, "streamkv_raft_applied_index")).toBeGreaterThanOrEqual(PUTS);
      expect(delta(i, "streamkv_raft_applied_entries_total")).toBeGreaterThanOrEqual(PUTS);
      expect(delta(i, "streamkv_raft_persist_seconds_count")).toBeGreaterThan(0);
      expect(delta(i, "streamkv_raft_apply_seconds_count")).toBeGreaterThan(0);
      expect(after[i]!.sum("streamkv_data_dir_bytes")).toBeGreaterThan(0);
      expect(after[i]!.sum("streamkv_disk_available_bytes")).toBeGreaterThan(0);
      expect(after[i]!.sum("streamkv_disk_size_bytes")).toBeGreaterThanOrEqual(
        after[i]!.sum("streamkv_disk_available_bytes"),
      );
      expect(after[i]!.sum("streamkv_process_resident_memory_bytes")).toBeGreaterThan(0);
      // The background scrub ran a cycle over the live tables (none, or a few), found nothing.
      expect(after[i]!.sum("streamkv_scrub_last_cycle_completed_seconds")).toBeGreaterThan(
        Date.now() / 1000 - 600,
      );
      expect(after[i]!.sum("streamkv_scrub_corruptions_total")).toBe(0);
      expect(after[i]!.sum("streamkv_data_corrupt")).toBe(0);
    }
    // The bucket create and the puts, proposed by the leader; none failed.
    expect(delta(leader, "streamkv_raft_proposals_committed_total")).toBeGreaterThanOrEqual(
      PUTS + 2,
    );
    expect(delta(follower, "streamkv_raft_proposals_committed_total")).toBe(0);
    expect(after[leader]!.sum("streamkv_raft_proposals_failed_total")).toBe(0);
    expect(after[leader]!.sum("streamkv_raft_proposals_pending")).toBe(0);
    // Follower lag: one series per follower, on the leader only.
    const lag = after[leader]!.matching("streamkv_raft_follower_lag_entries");
    expect(lag.map((s) => s.labels.peer).sort()).toEqual(
      [c.nodes[follower]!.id, c.nodes[other]!.id].sort(),
    );
    for (const s of lag) expect(s.value).toBeGreaterThanOrEqual(0);
    expect(after[follower]!.matching("streamkv_raft_follower_lag_entries")).toEqual([]);
    // The watch lives on the follower; its queue was drained to our loop.
    expect(after[follower]!.sum("streamkv_watchers")).toBe(1);
    expect(after[leader]!.sum("streamkv_watchers")).toBe(0);
    expect(after[follower]!.has("streamkv_watch_queue_entries")).toBe(true);
    expect(after[follower]!.sum("streamkv_watch_queue_max_entries")).toBeLessThanOrEqual(
      after[follower]!.sum("streamkv_watch_queue_entries"),
    );
    watch.stop();
    await watchLoop;

    // Failover: the leader dies, the other two elect one and count the change.
    const hasLeader = async (i: number) => (await scrape(c, i)).sum("streamkv_raft_has_leader");
    const changes = async (i: number) =>
      (await scrape(c, i)).sum("streamkv_raft_leader_changes_total");
    await c.kill(leader, "SIGKILL");
    const next = await c.waitForLeader(15_000);
    expect(next).not.toBe(leader);
    for (const i of [follower, other]) {
      expect(await hasLeader(i)).toBe(1);
      expect(await changes(i)).toBeGreaterThan(after[i]!.sum("streamkv_raft_leader_changes_total"));
    }
    const survivor = next === follower ? other : follower;

    // Quorum lost: the new leader dies too; the survivor knows no leader.
    await c.kill(next, "SIGKILL");
    await waitFor(async () => (await hasLeader(survivor)) === 0, 15_000, "has_leader 0");
    const lost: Scrape = await scrape(c, survivor);
    expect(lost.sum("streamkv_raft_role", { role: "leader" })).toBe(0);
    // Quorum back: a leader is elected and counted.
    await c.startNode(next);
    await waitFor(
      async () => (await hasLeader(survivor)) === 1 && (await hasLeader(next)) === 1,
      20_000,
      "has_leader 1 again",
    );
    const regained = await scrape(c, survivor);
    expect(regained.sum("streamkv_raft_leader_changes_total")).toBeGreaterThan(
      lost.sum("streamkv_raft_leader_changes_total"),
    );
    expect(regained.sum("streamkv_raft_term")).toBeGreaterThan(
      after[survivor]!.sum("streamkv_raft_term"),
    );
  }, 120_000);
});
