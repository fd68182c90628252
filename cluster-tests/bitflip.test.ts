/**
 * A flipped bit in a follower's data files (issue 13), with real processes and real
 * LevelDB: a follower is stopped, one bit of its files is flipped (inside a stored
 * value in a table file; inside LevelDB's MANIFEST; inside the write-ahead log that
 * holds its last writes), and it must refuse to start (exit 1, "CORRUPT_RECORD:
 * corrupt LevelDB file <path>"), so it serves and replicates nothing while the
 * others serve reads and writes with their logs unchanged. Then the operator's reset from the README ("A member with
 * corrupted data"): `cluster remove`, wipe the data dir, start with --join,
 * `cluster add`; it catches up from the others and holds every acknowledged write.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { KeyValue } from "../client/index.js";
import { runCli, waitFor } from "../test_support/index.js";
import { type Flipped, flipAt, flipInside } from "./harness/bitflip.js";
import type { LocalCluster } from "./harness/cluster.js";
import { clusterFixture } from "./harness/fixture.js";
import { readCommitted } from "./harness/workload.js";

const fx = clusterFixture();

async function putAll(kv: KeyValue, prefix: string, count: number, acked: Map<string, Buffer>) {
  for (let i = 0; i < count; i++) {
    // Random bytes: incompressible, so LevelDB stores them as they are and they can be found.
    const value = randomBytes(400);
    await kv.put(`${prefix}.${i}`, value);
    acked.set(`${prefix}.${i}`, value);
  }
}

/** Every acknowledged value, read from node `i` itself (stale: its own state). */
async function checkHolds(c: LocalCluster, i: number, acked: Map<string, Buffer>) {
  const nc = await fx.connect({ servers: c.nodes[i]!.url, timeoutMs: 10_000 });
  const kv = await nc.keyValue("bits");
  for (const [key, value] of acked) {
    const e = await kv.get(key, { stale: true });
    expect(Buffer.from(e!.value).equals(value), `${c.nodes[i]!.id} ${key}`).toBe(true);
  }
  await nc.close();
}

async function sameLogs(c: LocalCluster, nodes: number[]) {
  const logs = await Promise.all(nodes.map((i) => readCommitted(c.nodes[i]!.url, "bits")));
  for (const l of logs) expect(l).toEqual(logs[0]);
  return logs[0]!;
}

describe("a flipped bit in a follower's data files", () => {
  it("is refused at start, the others go on, and the reset member catches up", async () => {
    const c = await fx.start();
    const leader = await c.waitForLeader();
    const f = (leader + 1) % 3;
    const others = [leader, (leader + 2) % 3];
    const follower = c.nodes[f]!;
    const db = join(follower.dataDir, "db");
    const nc = await fx.connect({ servers: c.urls, timeoutMs: 10_000 });
    const kv = await nc.createKeyValue({ bucket: "bits" });
    const acked = new Map<string, Buffer>();

    // Early writes reach a table: a restart has LevelDB write its recovered log to one.
    await putAll(kv, "early", 40, acked);
    await c.waitForApplied(f, (await c.status(leader))!.commitIndex);
    expect(await c.kill(f, "SIGTERM")).toBe(0);
    await c.startNode(f);
    // Late writes stay in the write-ahead log (a clean stop does not flush it).
    await putAll(kv, "late", 20, acked);
    await c.waitForApplied(f, (await c.status(leader))!.commitIndex);
    expect(await c.kill(f, "SIGTERM")).toBe(0);
    const before = await sameLogs(c, others);

    // A bit inside a stored value in a table, inside LevelDB's MANIFEST (which tables
    // hold the data), then inside the log's last writes (kept flipped for the reset).
    const manifest = readdirSync(db).find((n) => n.startsWith("MANIFEST-"))!;
    const spots: Array<[string, () => Flipped]> = [
      ["ldb", () => flipInside(db, /\.ldb$/, acked.get("early.7")!)],
      ["manifest", () => flipAt(join(db, manifest), statSync(join(db, manifest)).size >> 1)],
      ["log", () => flipInside(db, /\.log$/, acked.get("late.19")!)],
    ];
    for (const [name, flip] of spots) {
      const damage = flip();
      const err = await c.startNode(f).then(
        () => new Error("started on damaged data"),
        (e: Error) => e,
      );
      expect(err.message).toContain("server exited (1) before listening");
      expect(err.message).toContain(
        `cannot start: CORRUPT_RECORD: corrupt LevelDB file ${damage.file}`,
      );
      expect(follower.proc).toBeUndefined();
      // Meanwhile the others serve writes and reads, with nothing of the damaged node's.
      await putAll(kv, `while.${name}`, 5, acked);
      if (name !== "log") damage.undo();
    }
    // Nothing listens where the damaged node would serve.
    await expect(
      fetch(`http://127.0.0.1:${follower.clientPort}/healthz`, {
        signal: AbortSignal.timeout(2000),
      }),
    ).rejects.toThrow();
    const after = await sameLogs(c, others);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after).toHaveLength(before.length + 15);
    for (const i of others) await checkHolds(c, i, acked);

    // The reset: remove the member (its votes and acks must no longer count), wipe its
    // data dir, start it empty outside the group (--join), add it back.
    const status = await nc.clusterStatus();
    const live = others.map((i) => c.nodes[i]!.url).join(",");
    const removed = await runCli(
      ["cluster", "remove", follower.id, "--server", live, "--timeout", "20000"],
      {
        timeoutMs: 30_000,
      },
    );
    expect([removed.code, removed.stderr]).toEqual([0, ""]);
    expect(removed.stdout).toMatch(new RegExp(`^removed ${follower.id}; members `));
    rmSync(follower.dataDir, { recursive: true, force: true });
    mkdirSync(follower.dataDir, { mode: 0o700 });
    await c.startNode(f, ["--join", "--cluster-id", status.clusterId]);
    const addStarted = Date.now();
    const added = await runCli(
      [
        "cluster",
        "add",
        `${follower.id}=127.0.0.1:${follower.peerPort}`,
        "--server",
        live,
        "--timeout",
        "20000",
      ],
      { timeoutMs: 30_000 },
    );
    expect([added.code, added.stderr]).toEqual([0, ""]);
    const commit = (await c.status(leader))!.commitIndex;
    await c.waitForApplied(f, commit, 30_000);
    const catchUpMs = Date.now() - addStarted;
    await waitFor(
      async () => {
        const s = await c.status(f);
        return s?.peers.length === 3 && s.peers.every((p) => p.voter);
      },
      15_000,
      "three voters again",
    );
    await checkHolds(c, f, acked);
    const all = await sameLogs(c, [0, 1, 2]);
    expect(all).toEqual(after);
    // And it takes writes again, through itself.
    const direct = await fx.connect({ servers: follower.url, timeoutMs: 10_000 });
    const rev = await (await direct.keyValue("bits")).put("after.reset", randomBytes(16));
    expect(rev).toBe(after.length + 1);
    console.log(
      `bitflip: reset member caught up ${acked.size} values in ${catchUpMs} ms after cluster add`,
    );
  }, 180_000);
});
