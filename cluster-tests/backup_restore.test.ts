/**
 * Backup and restore with real processes (issue 14): `streamkv snapshot save` through a
 * follower of a live three-node cluster while writers run on every node, then `streamkv
 * snapshot restore` of every member of a NEW three-node cluster (its own ports, ids and
 * --peers) from that file, started as usual. The new cluster must hold exactly the source
 * at the backup's Raft index: every bucket, key, history entry, value and revision (the
 * bucket nobody wrote during the save equal to the source's whole; the written one equal
 * to the source's prefix up to the restored last revision), every write acknowledged
 * before the save began, on every restored node; and it must keep taking writes, with
 * revisions that continue from the backup's.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { connect, type KvConnection } from "../client/index.js";
import { removeDir, runCli, tempDir, waitFor } from "../test_support/index.js";
import { LocalCluster } from "./harness/cluster.js";
import { text } from "./harness/util.js";
import { type CommittedEntry, readCommitted } from "./harness/workload.js";

/** Each writer's bound: at most this many writes, and no longer than WRITE_MS in all. */
const WRITES_MAX = 2000;
const WRITE_MS = 60_000;

interface Ack {
  key: string;
  revision: number;
  ackedAtMs: number;
}

/** Puts unique keys into `bucket` through `url` until `stop()`, recording each ack. */
function writer(url: string, bucket: string, name: string) {
  const acks: Ack[] = [];
  let stopping = false;
  const done = (async () => {
    const nc = await connect({ servers: url, timeoutMs: 10_000 });
    try {
      const kv = await nc.keyValue(bucket);
      const until = Date.now() + WRITE_MS;
      for (let i = 0; i < WRITES_MAX && !stopping && Date.now() < until; i++) {
        const key = `${name}.${i}`;
        const revision = await kv.put(key, text(`${name}-${i}`));
        acks.push({ key, revision, ackedAtMs: Date.now() });
      }
    } finally {
      await nc.close();
    }
  })();
  return {
    acks,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

async function bucketsOf(url: string): Promise<string[]> {
  const nc = await connect({ servers: url, timeoutMs: 10_000 });
  try {
    return (await nc.listBuckets()).map((b) => b.bucket);
  } finally {
    await nc.close();
  }
}

describe("backup and restore", () => {
  it("a save under writes restores into a new three-node cluster that holds the source at the backup's index", {
    timeout: 240_000,
  }, async () => {
    const dir = tempDir("streamkv-backup-");
    const file = join(dir, "cluster.snap");
    let source: LocalCluster | undefined;
    let restored: LocalCluster | undefined;
    const conns: KvConnection[] = [];
    try {
      source = await LocalCluster.start();
      const leader = await source.waitForLeader();
      const follower = (leader + 1) % 3;
      const admin = await connect({ servers: source.urls, timeoutMs: 10_000 });
      conns.push(admin);
      // A bucket nobody writes during the save: history, markers, a purge, CAS.
      const stat = await admin.createKeyValue({ bucket: "static", history: 5 });
      for (let i = 0; i < 120; i++) await stat.put(`cfg.${i % 17}`, text(`v${i}`));
      await stat.delete("cfg.3");
      await stat.purge("cfg.4");
      await stat.create("cfg.3", text("again"));
      await admin.createKeyValue({ bucket: "live", history: 1 });
      await admin.createKeyValue({ bucket: "gone" });
      await admin.deleteKeyValue("gone");

      const writers = source.urls.map((url, i) => writer(url, "live", `w${i}`));
      // Writes acknowledged before the save begins must all be in the backup.
      await waitFor(() => writers.every((w) => w.acks.length >= 20), 30_000, "writers under way");
      const saveBeganMs = Date.now();
      const save = await runCli(
        [
          "snapshot",
          "save",
          file,
          "-s",
          source.nodes[follower]!.url,
          "--chunk-bytes",
          "4096",
          "-j",
        ],
        { timeoutMs: 60_000 },
      );
      expect(save.stderr).toBe("");
      expect(save.code).toBe(0);
      const saved = JSON.parse(save.stdout);
      expect(saved.header.nodeId).toBe(source.nodes[follower]!.id);
      // The writers went on during the save and after it.
      const countAfterSave = writers.map((w) => w.acks.length);
      await waitFor(
        () => writers.every((w, i) => w.acks.length > countAfterSave[i]! + 5),
        30_000,
        "writes after the save",
      );
      await Promise.all(writers.map((w) => w.stop()));
      const ackedBefore = writers.flatMap((w) => w.acks.filter((a) => a.ackedAtMs < saveBeganMs));
      expect(ackedBefore.length).toBeGreaterThanOrEqual(60);

      const status = await runCli(["snapshot", "status", file, "-j"]);
      expect(status.code).toBe(0);
      const described = JSON.parse(status.stdout);
      expect(described.header.voters).toEqual(["n1", "n2", "n3"]);
      expect(described.header.buckets).toEqual(["live", "static"]);
      expect(described.chunks).toBeGreaterThan(5);

      // The source's state, read after the writers stopped.
      const sourceStatic = await readCommitted(source.urls[0]!, "static");
      const sourceLive = await readCommitted(source.urls[0]!, "live");

      restored = await LocalCluster.start({
        prepare: async (nodes, peers) => {
          for (const n of nodes) {
            const r = await runCli([
              "snapshot",
              "restore",
              file,
              "--data",
              n.dataDir,
              "--id",
              n.id,
              "--peers",
              peers,
            ]);
            expect(r.stderr).toBe("");
            expect(r.code).toBe(0);
          }
        },
      });
      await restored.waitForLeader();
      for (let i = 0; i < 3; i++) await restored.waitForApplied(i, described.header.raftIndex);

      const liveRestoredLast = described.buckets.find(
        (b: { bucket: string }) => b.bucket === "live",
      ).lastRevision;
      const expectedLive = sourceLive.filter((e: CommittedEntry) => e.revision <= liveRestoredLast);
      // Point in time: the source went on past the backup, which holds what was acked before it.
      expect(sourceLive.length).toBeGreaterThan(expectedLive.length);
      expect(expectedLive.length).toBeGreaterThanOrEqual(ackedBefore.length);
      for (const n of restored.nodes) {
        expect(await bucketsOf(n.url)).toEqual(["live", "static"]);
        expect(await readCommitted(n.url, "static")).toEqual(sourceStatic);
        const live = await readCommitted(n.url, "live");
        expect(live).toEqual(expectedLive);
        const got = new Map(live.map((e) => [e.key, e.revision]));
        for (const a of ackedBefore) expect(got.get(a.key), a.key).toBe(a.revision);
      }

      // Bucket statuses agree for the bucket nobody wrote; the new cluster takes writes.
      const next = await connect({ servers: restored.urls, timeoutMs: 10_000 });
      conns.push(next);
      const a = await (await admin.keyValue("static")).status();
      const b = await (await next.keyValue("static")).status();
      expect(b).toMatchObject({
        values: a.values,
        bytes: a.bytes,
        firstRevision: a.firstRevision,
        lastRevision: a.lastRevision,
        history: 5,
        replicas: 3,
      });
      const live = await next.keyValue("live");
      expect(await live.put("after.restore", text("x"))).toBe(liveRestoredLast + 1);
      const cs = await next.clusterStatus();
      expect(cs.peers.map((p) => p.id).sort()).toEqual(["n1", "n2", "n3"]);
    } finally {
      await Promise.all(conns.map((c) => c.close()));
      await source?.destroy();
      await restored?.destroy();
      removeDir(dir);
    }
  });
});
