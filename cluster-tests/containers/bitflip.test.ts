/**
 * A flipped bit in a follower's data files, in containers (issue 13): the follower is
 * stopped (`docker stop`), one bit is flipped in its /data volume from the host (the
 * volume's directory under Docker's root; root reads it while the container is down).
 * Inside the write-ahead log that holds its last writes: started again, it must exit 1
 * at once with "cannot start: CORRUPT_RECORD: corrupt LevelDB file /data/db/<file>".
 * Inside a table's bloom filter block, which a start no longer reads (issue 10): it
 * starts, its background scrub (the default 16 MiB/s: these tables take milliseconds)
 * finds the damage and halts it (streamkv_data_corrupt 1, nothing served), `docker stop`
 * ends it with exit 1, and every start after exits 1 with the same line naming the
 * table. Meanwhile the other two serve writes and reads with unchanged, identical logs.
 * Then the operator's reset (README, "A member with corrupted data"): `streamkv
 * cluster remove`, the container replaced by one with an empty volume and
 * STREAMKV_JOIN, `streamkv cluster add`; it catches up and holds every acked write.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { connect, type KeyValue } from "../../client/index.js";
import { runCli, waitFor } from "../../test_support/index.js";
import { type Flipped, flipInFilter, flipInside } from "../harness/bitflip.js";
import { waitForLeaderAmong } from "../harness/leader.js";
import { readCommitted } from "../harness/workload.js";
import { docker } from "./docker.js";
import type { DockerCluster } from "./docker_cluster.js";
import { dockerClusterPerTest } from "./fixture.js";

const run = promisify(execFile);

async function putAll(kv: KeyValue, prefix: string, count: number, acked: Map<string, Buffer>) {
  for (let i = 0; i < count; i++) {
    const value = randomBytes(400);
    await kv.put(`${prefix}.${i}`, value);
    acked.set(`${prefix}.${i}`, value);
  }
}

async function applied(c: DockerCluster, i: number, index: number, timeoutMs = 30_000) {
  await waitFor(
    async () => ((await c.status(i))?.appliedIndex ?? -1) >= index,
    timeoutMs,
    `${c.ids[i]} applied through ${index}`,
  );
}

/** Every acked value from node `i`'s own state (a stale read: no leader asked). */
async function holdsAll(c: DockerCluster, i: number, acked: Map<string, Buffer>) {
  const nc = await connect({ servers: c.urls[i]!, timeoutMs: 10_000 });
  try {
    const kv = await nc.keyValue("bits");
    for (const [key, value] of acked) {
      const e = await kv.get(key, { stale: true });
      expect(Buffer.from(e!.value).equals(value), `${c.ids[i]} ${key}`).toBe(true);
    }
  } finally {
    await nc.close();
  }
}

async function sameLogs(c: DockerCluster, nodes: number[]) {
  const logs = await Promise.all(nodes.map((i) => readCommitted(c.urls[i]!, "bits")));
  for (const l of logs) expect(l).toEqual(logs[0]);
  return logs[0]!;
}

describe("a flipped bit in a follower's data files (containers)", () => {
  const startCluster = dockerClusterPerTest();

  it("is refused at start or halted by the scrub, the others go on, and the reset member catches up", async () => {
    const started = Date.now();
    const c = await startCluster(3);
    const all = [0, 1, 2];
    const leader = await waitForLeaderAmong(c, all, 30_000);
    const f = (leader + 1) % 3;
    const others = all.filter((i) => i !== f);
    const id = c.containerId(f);
    const nc = await connect({ servers: others.map((i) => c.urls[i]!), timeoutMs: 10_000 });
    const acked = new Map<string, Buffer>();
    try {
      const kv = await nc.createKeyValue({ bucket: "bits" });
      // Early writes end up in a table (a restart writes LevelDB's recovered log to one),
      // late ones stay in the write-ahead log (a clean stop does not flush it).
      await putAll(kv, "early", 40, acked);
      await applied(c, f, (await c.status(leader))!.commitIndex);
      await c.stop(f);
      await c.restart(f);
      await waitForLeaderAmong(c, all, 30_000);
      await putAll(kv, "late", 20, acked);
      await applied(c, f, (await c.status(leader))!.commitIndex);
      await c.stop(f);
      const before = await sameLogs(c, others);
      const db = join(await c.dataPath(f), "db");

      const exitsOnStart = async (damage: Flipped) => {
        const since = Math.floor(Date.now() / 1000);
        await c.restart(f);
        await waitFor(
          async () => (await docker(["inspect", "-f", "{{.State.Running}}", id])) === "false",
          30_000,
          "the damaged node to exit",
          100,
        );
        expect(await docker(["inspect", "-f", "{{.State.ExitCode}}", id])).toBe("1");
        // The server logs to stderr, which `docker logs` passes on as its own.
        const logs = await run("docker", ["logs", "--since", String(since), id], {
          timeout: 30_000,
        });
        const file = `/data/db/${damage.file.split("/").pop()}`;
        expect(logs.stdout + logs.stderr).toContain(
          `cannot start: CORRUPT_RECORD: corrupt LevelDB file ${file}: offset`,
        );
        // Nothing answers on its port.
        await expect(
          fetch(`${c.urls[f]!.replace("ws:", "http:")}/healthz`, {
            signal: AbortSignal.timeout(2000),
          }),
        ).rejects.toThrow();
      };

      // The log first (a start that opens LevelDB replays it into a table), undone.
      const wal = flipInside(db, /\.log$/, acked.get("late.19")!);
      await exitsOnStart(wal);
      await putAll(kv, "while.log", 5, acked);
      wal.undo();
      // A table's bloom filter: the start passes it, the scrub halts the running node.
      const filter = flipInFilter(db, acked.get("early.7")!);
      await c.restart(f);
      const metrics = `${c.urls[f]!.replace("ws:", "http:")}/metrics`;
      await waitFor(
        async () => {
          const text = await fetch(metrics, { signal: AbortSignal.timeout(2000) }).then(
            (r) => r.text(),
            () => "",
          );
          return /\nstreamkv_data_corrupt 1\n/.test(text);
        },
        60_000,
        "the scrub to halt the damaged node",
        200,
      );
      const ready = await fetch(`${c.urls[f]!.replace("ws:", "http:")}/readyz`);
      expect(ready.status).toBe(503);
      await docker(["stop", "--time", "20", id], 40_000);
      expect(await docker(["inspect", "-f", "{{.State.ExitCode}}", id])).toBe("1");
      await exitsOnStart(filter);
      await putAll(kv, "while.ldb", 5, acked);
      const after = await sameLogs(c, others);
      expect(after.slice(0, before.length)).toEqual(before);
      expect(after).toHaveLength(before.length + 10);
      for (const i of others) await holdsAll(c, i, acked);

      // The reset, as the README tells an operator.
      const clusterId = (await nc.clusterStatus()).clusterId;
      const live = others.map((i) => c.urls[i]!).join(",");
      const removed = await runCli(
        ["cluster", "remove", c.ids[f]!, "--server", live, "--timeout", "20000"],
        { timeoutMs: 30_000 },
      );
      expect([removed.code, removed.stderr]).toEqual([0, ""]);
      await c.replace(f, { STREAMKV_JOIN: "true", STREAMKV_CLUSTER_ID: clusterId });
      const addStarted = Date.now();
      const added = await runCli(
        ["cluster", "add", `${c.ids[f]}=${c.ids[f]}:7421`, "--server", live, "--timeout", "20000"],
        { timeoutMs: 30_000 },
      );
      expect([added.code, added.stderr]).toEqual([0, ""]);
      await applied(c, f, (await c.status(leader))!.commitIndex, 60_000);
      const catchUpMs = Date.now() - addStarted;
      await waitFor(
        async () => {
          const s = await c.status(f);
          return s?.peers.length === 3 && s.peers.every((p) => p.voter);
        },
        30_000,
        "three voters again",
      );
      await holdsAll(c, f, acked);
      expect(await sameLogs(c, all)).toEqual(after);
      const direct = await connect({ servers: c.urls[f]!, timeoutMs: 10_000 });
      try {
        const rev = await (await direct.keyValue("bits")).put("after.reset", randomBytes(16));
        expect(rev).toBe(after.length + 1);
      } finally {
        await direct.close();
      }
      console.log(
        `bitflip (containers): ${c.ids[f]} refused a damaged log at start, was halted by its scrub on a damaged table and refused it at start after; reset member caught up ${acked.size} values in ${catchUpMs} ms after cluster add; ${Date.now() - started} ms in all`,
      );
    } finally {
      await nc.close();
    }
  }, 240_000);
});
