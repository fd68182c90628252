/**
 * A flipped bit in a follower's data files (issue 13), with real processes and real
 * LevelDB: a follower is stopped and one bit of its files is flipped, spot after spot.
 * Inside LevelDB's MANIFEST (which tables hold the data) or the write-ahead log that
 * holds its last writes, it must refuse to start (exit 1, "CORRUPT_RECORD: corrupt
 * LevelDB file <path>"). Inside a table, which a start no longer reads (issue 10: restart
 * time independent of history), it starts, and its background scrub (run fast here)
 * finds the damage, halts it (it serves and votes no more) and leaves the marker every
 * later start refuses on: shown with a bloom filter block, which no record checksum
 * sees, and with a stored value. Meanwhile the others serve reads and writes with their
 * logs unchanged. Then the operator's reset from the README ("A member with corrupted
 * data"): `cluster remove`, wipe the data dir, start with --join, `cluster add`; it
 * catches up from the others and holds every acknowledged write.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { KeyValue } from "../client/index.js";
import { runCli, waitFor } from "../test_support/index.js";
import { type Flipped, flipAt, flipInFilter, flipInside } from "./harness/bitflip.js";
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
  it("is refused at start or halted by the scrub, the others go on, and the reset member catches up", async () => {
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

    // The scrub at 256 MiB/s: it verifies these few tables within milliseconds of a start.
    const scrubFast = ["--scrub-bytes-per-second", String(256 * 1024 * 1024)];
    const refusedAtStart = async (file: string) => {
      const err = await c.startNode(f, scrubFast).then(
        () => new Error("started on damaged data"),
        (e: Error) => e,
      );
      expect(err.message).toContain("server exited (1) before listening");
      expect(err.message).toContain(`cannot start: CORRUPT_RECORD: corrupt LevelDB file ${file}`);
      expect(follower.proc).toBeUndefined();
    };
    // Started on a damaged table: the scrub halts it and marks its data dir.
    const haltedByScrub = async (file: string) => {
      const proc = follower.proc!;
      const http = `http://127.0.0.1:${follower.clientPort}`;
      const metrics = async () => (await fetch(`${http}/metrics`)).text();
      await waitFor(
        async () => /\nstreamkv_data_corrupt 1\n/.test(await metrics()),
        15_000,
        "the scrub to halt the damaged node",
      );
      expect(await metrics()).toMatch(/\nstreamkv_scrub_corruptions_total 1\n/);
      expect(proc.stderr()).toContain('"msg":"the scrub found damaged data: stopping this node"');
      expect(proc.stderr()).toContain(`"file":"${file}","offset":`);
      expect(existsSync(join(db, "CORRUPT"))).toBe(true);
      // It serves nothing: not ready, every request answers CORRUPT_RECORD.
      expect((await fetch(`${http}/readyz`)).status).toBe(503);
      const direct = await fx.connect({ servers: follower.url, timeoutMs: 5000 });
      const read = await (async () => {
        const kv = await direct.keyValue("bits");
        await kv.get("early.1", { stale: true });
      })().then(
        () => undefined,
        (e: { code?: string }) => e.code,
      );
      expect(read).toBe("CORRUPT_RECORD");
      await direct.close();
      // Stopped, it exits 1; every start after it refuses, naming the damage.
      expect(await c.kill(f, "SIGTERM")).toBe(1);
      await refusedAtStart(file);
      const verify = await runCli(["verify", "--data", follower.dataDir]);
      expect(verify.code).toBe(1);
      expect(verify.stdout).toContain(`corrupt LevelDB file ${file}: offset`);
    };

    // LevelDB's MANIFEST, then the log's last writes: refused at start (recovery reads
    // them). Then a bloom filter block and a value of a table: the scrub's (the last one
    // kept, marker and all, for the reset).
    const manifest = readdirSync(db).find((n) => n.startsWith("MANIFEST-"))!;
    const spots: Array<[string, () => Flipped]> = [
      ["manifest", () => flipAt(join(db, manifest), statSync(join(db, manifest)).size >> 1)],
      ["log", () => flipInside(db, /\.log$/, acked.get("late.19")!)],
      ["value", () => flipInside(db, /\.ldb$/, acked.get("early.7")!)],
      ["filter", () => flipInFilter(db, acked.get("early.11")!)],
    ];
    for (const [name, flip] of spots) {
      const damage = flip();
      if (name === "manifest" || name === "log") await refusedAtStart(damage.file);
      else if (name === "filter") {
        await c.startNode(f, scrubFast);
        await haltedByScrub(damage.file);
      } else {
        // While the stream log's open scan reads every record, a start refuses a damaged
        // value by its CRC32C ("corrupt record: stream ..."); an open that reads less
        // starts, and the scrub halts it. Never served either way.
        const started = await c.startNode(f, scrubFast).then(
          () => true,
          (e: Error) => {
            expect(e.message).toContain("server exited (1) before listening");
            expect(e.message).toContain("cannot start: CORRUPT_RECORD: corrupt record");
            return false;
          },
        );
        if (started) await haltedByScrub(damage.file);
      }
      expect(follower.proc).toBeUndefined();
      // Meanwhile the others serve writes and reads, with nothing of the damaged node's.
      await putAll(kv, `while.${name}`, 5, acked);
      if (name !== "filter") {
        damage.undo();
        rmSync(join(db, "CORRUPT"), { force: true });
      }
    }
    // Nothing listens where the damaged node would serve.
    await expect(
      fetch(`http://127.0.0.1:${follower.clientPort}/healthz`, {
        signal: AbortSignal.timeout(2000),
      }),
    ).rejects.toThrow();
    const after = await sameLogs(c, others);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after).toHaveLength(before.length + 20);
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
