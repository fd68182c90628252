/**
 * Snapshot catch-up with real processes (issues 3 and 5): a three-node cluster with a
 * small `--snapshot-entries`; a follower is killed with SIGKILL; the others write until
 * the leader has compacted its Raft log past everything the follower has; the follower
 * restarts and can only catch up through InstallSnapshot (the entries it lacks are
 * gone). It must install a snapshot (status and metrics count it), then hold exactly
 * the leader's data (every bucket's full retained history, keys, bucket list, a bucket
 * deleted while it was down is gone) and keep applying later writes.
 */
import { describe, expect, it } from "vitest";
import { connect, type KeyValue } from "../client/index.js";
import { waitFor } from "../test_support/index.js";
import type { LocalCluster } from "./harness/cluster.js";
import { clusterFixture } from "./harness/fixture.js";
import { text } from "./harness/util.js";
import { readCommitted } from "./harness/workload.js";

const SNAPSHOT_ENTRIES = 200;

const fx = clusterFixture();

/** Writes `count` puts with up to `parallel` in flight. */
async function putMany(
  kv: KeyValue,
  count: number,
  keyOf: (i: number) => string,
  makeValue: (i: number) => Uint8Array,
  parallel = 32,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) await kv.put(keyOf(i), makeValue(i));
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

async function metric(c: LocalCluster, i: number, name: string): Promise<number> {
  const r = await c.http(i, "/metrics", 2000);
  const line = r?.body.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.split(" ")[1]);
}

describe("snapshot catch-up", () => {
  it("a follower behind the leader's compaction point catches up through a snapshot", async () => {
    const c = await fx.start({ args: ["--snapshot-entries", String(SNAPSHOT_ENTRIES)] });
    const leader = await c.waitForLeader();
    const follower = (leader + 1) % 3;
    const other = (leader + 2) % 3;
    const admin = await fx.connect({ servers: c.nodes[leader]!.url, timeoutMs: 10_000 });

    const kv = await admin.createKeyValue({ bucket: "snap", history: 4 });
    const gone = await admin.createKeyValue({ bucket: "gone" });
    await gone.put("x", text("doomed"));
    await putMany(
      kv,
      40,
      (i) => `early.${i}`,
      (i) => text(`early-${i}`),
    );
    const beforeKill = (await c.status(leader))!.commitIndex;
    await c.waitForApplied(follower, beforeKill);
    const followerLast = (await c.status(follower))!.commitIndex;

    expect(await c.kill(follower, "SIGKILL")).toBe("SIGKILL");

    // The leader's peer transport queues messages for the dead follower and delivers
    // them when it is back, and the leader keeps sending appends until its in-flight
    // window (64 messages) is full. One write at a time first fills that window with
    // one-entry messages, so everything after it reaches the follower only by snapshot.
    await putMany(
      kv,
      100,
      (i) => `seq.${i}`,
      (i) => text(`seq-${i}`),
      1,
    );
    // Big enough values that the snapshot takes several 256 KiB chunks; keys rewritten
    // so history trimming, markers and purges are all in the image.
    const big = (i: number) => text(`${i}:${"v".repeat(4096)}`);
    await putMany(kv, 500, (i) => `key.${i % 300}`, big);
    for (let i = 0; i < 20; i++) await kv.delete(`key.${i}`);
    for (let i = 20; i < 30; i++) await kv.purge(`key.${i}`);
    await admin.deleteKeyValue("gone");
    const later = await admin.createKeyValue({ bucket: "later", history: 2 });
    await putMany(
      later,
      50,
      (i) => `l.${i % 10}`,
      (i) => text(`later-${i}`),
    );

    // The leader compacted past everything the follower holds: only a snapshot helps.
    await waitFor(
      async () => {
        const s = await c.status(leader);
        return (s?.snapshot?.firstIndex ?? 0) > followerLast + 150;
      },
      20_000,
      "the leader compacting past the follower's log",
    );
    const leaderStatus = (await c.status(leader))!;
    expect(leaderStatus.snapshot!.compactions).toBeGreaterThan(0);
    expect(leaderStatus.snapshot!.index).toBeGreaterThan(followerLast);

    await c.startNode(follower);
    const commit = (await c.status(leader))!.commitIndex;
    await c.waitForApplied(follower, commit, 30_000);
    const fs = (await c.status(follower))!;
    expect(fs.snapshot!.installed).toBeGreaterThanOrEqual(1);
    expect(fs.snapshot!.index).toBeGreaterThan(followerLast);
    expect(
      await metric(c, follower, "streamkv_raft_snapshots_installed_total"),
    ).toBeGreaterThanOrEqual(1);
    const sent = await Promise.all(
      [leader, other].map((i) => metric(c, i, "streamkv_raft_snapshots_sent_total")),
    );
    expect(sent.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
    // Both ends timed it (streamkv_raft_snapshot_seconds).
    expect(
      await metric(c, follower, 'streamkv_raft_snapshot_seconds_count{kind="install"}'),
    ).toBeGreaterThanOrEqual(1);
    const timedSends = await Promise.all(
      [leader, other].map((i) => metric(c, i, 'streamkv_raft_snapshot_seconds_count{kind="send"}')),
    );
    // A node that sent none has no such series (NaN here).
    expect(timedSends.filter((n) => n >= 1)).toHaveLength(sent.filter((n) => n >= 1).length);

    const compareAll = async () => {
      const views = await Promise.all(
        c.nodes.map(async (n) => {
          const nc = await connect({ servers: n.url, timeoutMs: 10_000 });
          try {
            const buckets = (await nc.listBuckets()).map((b) => b.bucket).sort();
            const keys: Record<string, string[]> = {};
            for (const b of buckets) keys[b] = await (await nc.keyValue(b)).keys();
            return { buckets, keys };
          } finally {
            await nc.close();
          }
        }),
      );
      for (const v of views) expect(v).toEqual(views[leader]);
      expect(views[leader]!.buckets).toEqual(["later", "snap"]);
      for (const bucket of views[leader]!.buckets) {
        const logs = await Promise.all(c.nodes.map((n) => readCommitted(n.url, bucket)));
        for (const l of logs) expect(l).toEqual(logs[leader]);
        expect(logs[leader]!.length).toBeGreaterThan(0);
      }
    };
    await compareAll();

    // It goes on applying: writes through the leader and through the restored node.
    const direct = await fx.connect({ servers: c.nodes[follower]!.url, timeoutMs: 10_000 });
    const fkv = await direct.keyValue("snap");
    const r1 = await fkv.put("after.follower", text("f"));
    const r2 = await kv.put("after.leader", text("l"));
    expect(r2).toBeGreaterThan(r1);
    expect((await fkv.get("after.leader"))?.revision).toBe(r2);
    const end = (await c.status(leader))!.commitIndex;
    for (const i of [0, 1, 2]) await c.waitForApplied(i, end);
    await compareAll();
    // About 1,300 writes and three restarts' worth of waits: 6 s on an idle machine, over
    // 30 s when the two cores are shared with other suites.
  }, 120_000);
});
