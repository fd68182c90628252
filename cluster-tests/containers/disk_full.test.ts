/**
 * A follower whose disk fills up: every node's /data is a small tmpfs, and a
 * follower's is filled to the last byte (a file written until ENOSPC) while a client
 * writes through the other two. What it pins (node/disk_full.ts):
 *
 * - the full node stays up and halts: the first write to hit the full disk fails, it
 *   logs "data directory full" with LevelDB's own "No space left on device", closes its
 *   stores, and answers every request DISK_FULL (a client that knows only it sees that
 *   code), /readyz 503 saying why, streamkv_disk_full 1;
 * - the other two keep serving: writes are acked before, during and after;
 * - once the file is removed, the node reopens its stores by itself (same container,
 *   same process), catches up from the leader and serves again;
 * - nothing acked is lost: all three hold the same log, with every acked write at its
 *   revision.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { connect, KvError } from "../../client/index.js";
import { waitFor } from "../../test_support/index.js";
import { waitForLeaderAmong } from "../harness/leader.js";
import { readCommitted } from "../harness/workload.js";
import { docker } from "./docker.js";
import { dockerClusterPerTest } from "./fixture.js";

const run = promisify(execFile);

/** Run in the container (node, no shell there): fills /data, prints the error and the bytes left. */
const FILL = `
const fs = require("fs");
const fd = fs.openSync("/data/filler", "w");
const chunk = Buffer.alloc(65536);
let code = "none";
for (let n = 0; n < 100000; n++) {
  try { fs.writeSync(fd, chunk); } catch (e) { code = e.code; break; }
}
for (let n = 0; n < 1000 && code === "ENOSPC"; n++) {
  try { fs.writeSync(fd, Buffer.alloc(512)); } catch { break; }
}
fs.closeSync(fd);
const s = fs.statfsSync("/data");
console.log(code, s.bavail * s.bsize);
`;

async function http(url: string, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url.replace(/^ws/, "http") + path);
  return { status: res.status, body: await res.text() };
}

describe("a follower's disk fills up", () => {
  const startCluster = dockerClusterPerTest();

  for (const whose of ["follower", "leader"] as const) {
    it(`a ${whose}'s disk: the full node halts answering DISK_FULL, the others serve on, it serves again once space is freed, nothing acked is lost`, async () => {
      const c = await startCluster(3, { STREAMKV_LOG_LEVEL: "info" }, 24);
      const all = c.ids.map((_, i) => i);
      const leader = await waitForLeaderAmong(c, all, 30_000);
      const full = whose === "leader" ? leader : (leader + 1) % 3;
      const rest = all.filter((i) => i !== full);
      const nc = await connect({ servers: rest.map((i) => c.urls[i]!), timeoutMs: 5000 });
      // A client that knows only the full node: it must see the clear error, not a hang.
      const onlyFull = await connect({ servers: c.urls[full]!, timeoutMs: 5000 });
      const acked: { key: string; value: string; revision: number }[] = [];
      // Writes in flight at the leader when its disk filled: applied or not, never twice.
      const unknown: { key: string; value: string }[] = [];
      const logs = async () =>
        (await run("docker", ["logs", c.containerId(full)], { timeout: 30_000 })).stderr;
      try {
        const kv = await nc.createKeyValue({ bucket: "disk-full", history: 64 });
        const put = async (key: string, value: string) => {
          try {
            acked.push({ key, value, revision: await kv.putString(key, value) });
          } catch (err) {
            if (whose === "follower" || !(err instanceof KvError)) throw err;
            unknown.push({ key, value });
          }
        };
        for (let n = 0; n < 50; n++) await put(`k${n % 25}`, `before-${n}`);

        const filled = await docker(["exec", c.containerId(full), "node", "-e", FILL], 60_000);
        expect(filled).toBe("ENOSPC 0");

        // Writes through the others go on until the full node has halted, and 50 after.
        let afterHalt = 0;
        const halted = async () =>
          (await http(c.urls[full]!, "/metrics")).body.includes("streamkv_disk_full 1");
        const deadline = Date.now() + 60_000;
        for (let n = 0; n < 3000 && afterHalt < 50 && Date.now() < deadline; n++) {
          await put(`k${n % 25}`, `${"x".repeat(512)}-${n}`);
          if (afterHalt > 0 || (n % 10 === 0 && (await halted()))) afterHalt++;
        }
        expect(afterHalt).toBe(50);
        const running = await docker(["inspect", "-f", "{{.State.Running}}", c.containerId(full)]);
        expect(running).toBe("true");
        const ready = await http(c.urls[full]!, "/readyz");
        expect(ready.status).toBe(503);
        expect(ready.body).toMatch(/data directory is full/);
        const refused = await onlyFull
          .keyValue("disk-full")
          .then((k) => k.get("k1"))
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(refused).toMatchObject({ code: "DISK_FULL" });
        const lines = await logs();
        expect(lines).toContain(
          '"msg":"data directory full: stopped serving until space is freed"',
        );
        expect(lines).toMatch(/No space left on device/i);
        expect(lines).not.toContain('"msg":"fatal error, stopping"');

        // Space freed: the node reopens by itself and catches up; writes go on meanwhile.
        await docker([
          "exec",
          c.containerId(full),
          "node",
          "-e",
          'require("fs").rmSync("/data/filler")',
        ]);
        const freedAt = Date.now();
        await waitFor(
          async () => (await http(c.urls[full]!, "/readyz")).status === 200,
          30_000,
          "the full node to serve again after space was freed",
          200,
        );
        const resumedMs = Date.now() - freedAt;
        for (let n = 0; n < 20; n++) await put(`k${n % 25}`, `after-${n}`);
        expect(await logs()).toContain('"msg":"space freed: serving again"');
        console.log(
          `disk-full: ${c.ids[full]} ready again ${resumedMs} ms after the file was removed`,
        );
      } finally {
        await onlyFull.close();
        await nc.close();
      }

      // All three hold the same log (the freed node once it caught up), every acked write in it.
      const last = acked.at(-1)!.revision;
      await waitFor(
        async () => {
          const mine = await readCommitted(c.urls[full]!, "disk-full");
          return mine.at(-1)?.revision === last;
        },
        30_000,
        "the freed node to catch up",
        200,
      );
      const logsOf = await Promise.all(all.map((i) => readCommitted(c.urls[i]!, "disk-full")));
      expect(JSON.stringify(logsOf[1])).toBe(JSON.stringify(logsOf[0]));
      expect(JSON.stringify(logsOf[2])).toBe(JSON.stringify(logsOf[0]));
      const at = new Map(logsOf[0]!.map((e) => [e.revision, e] as const));
      const lost = acked.filter((a) => {
        const e = at.get(a.revision);
        return e?.key !== a.key || e.value !== a.value;
      });
      console.log(
        `disk-full: ${c.ids[full]} filled, halted and resumed; ${acked.length} writes acked, ${logsOf[0]!.length} in the log, ${lost.length} lost`,
      );
      expect(lost).toEqual([]);
      const twice = unknown.filter((u) => logsOf[0]!.filter((e) => e.value === u.value).length > 1);
      expect(twice).toEqual([]);
      if (whose === "follower") expect(unknown).toEqual([]);
      console.log(`disk-full (${whose}): ${unknown.length} writes indeterminate`);
    }, 180_000);
  }
});
