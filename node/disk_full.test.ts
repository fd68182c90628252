/**
 * A node whose data directory fills up (a real server process on a real 16 MiB tmpfs,
 * filled to ENOSPC by a file beside its data) stays up: every request answers
 * DISK_FULL, /readyz says why, streamkv_disk_full is 1; once the file is removed it
 * reopens its stores by itself and serves again, with every acknowledged write at its
 * revision. The three-node case (a follower's disk full while the others serve on) is
 * in the container suite (cluster-tests/containers/disk_full.test.ts).
 *
 * Mounting a tmpfs needs root; elsewhere the test is skipped, saying why (under CI it
 * fails instead).
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connect, KvError } from "../client/index.js";
import { type ServerProcess, startServer, tempDir, waitFor } from "../test_support/index.js";
import { isDiskFull } from "./disk_full.js";

const root = process.getuid?.() === 0;
const skip = !root && !process.env.CI;
if (skip) console.warn("node/disk_full.test.ts skipped: mounting a tmpfs needs root");

/** Writes `path` until the file system refuses (ENOSPC), to the last byte it takes. */
function fill(path: string): string {
  const fd = openSync(path, "w");
  let code = "none";
  try {
    for (let n = 0; n < 10_000; n++) {
      try {
        writeSync(fd, Buffer.alloc(65536));
      } catch (err) {
        code = (err as NodeJS.ErrnoException).code ?? String(err);
        break;
      }
    }
    for (let n = 0; n < 1000 && code === "ENOSPC"; n++) {
      try {
        writeSync(fd, Buffer.alloc(512));
      } catch {
        break;
      }
    }
  } finally {
    closeSync(fd);
  }
  return code;
}

async function http(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe("isDiskFull", () => {
  it("knows ENOSPC and EDQUOT by code, by LevelDB's words, and through causes", () => {
    expect(isDiskFull(Object.assign(new Error("write"), { code: "ENOSPC" }))).toBe(true);
    expect(isDiskFull(Object.assign(new Error("write"), { code: "EDQUOT" }))).toBe(true);
    const level = new Error("IO error: /data/db/000012.log: No space left on device");
    expect(isDiskFull(new Error("stream log write failed", { cause: level }))).toBe(true);
    expect(isDiskFull(new Error("IO error: Input/output error"))).toBe(false);
    expect(isDiskFull(Object.assign(new Error("write"), { code: "EIO" }))).toBe(false);
    expect(isDiskFull(undefined)).toBe(false);
    const cyclic: { message: string; cause?: unknown } = { message: "x" };
    cyclic.cause = cyclic;
    expect(isDiskFull(cyclic)).toBe(false);
  });
});

describe.skipIf(skip)("a node whose data directory fills up", () => {
  const mount = tempDir("streamkv-diskfull-");
  let mounted = false;
  let server: ServerProcess | undefined;
  afterAll(async () => {
    await server?.stop();
    if (mounted) execFileSync("umount", [mount]);
    rmSync(mount, { recursive: true, force: true });
  });

  it("answers DISK_FULL, stays up, and serves again once space is freed", async () => {
    if (!root) throw new Error("node/disk_full.test.ts needs root under CI (it mounts a tmpfs)");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", mount]);
    mounted = true;
    const dataDir = join(mount, "data");
    mkdirSync(dataDir, { mode: 0o700 });
    server = await startServer({ dataDir, env: { STREAMKV_LOG_LEVEL: "info" } });
    const node = server;
    const nc = await connect({ servers: node.url, timeoutMs: 5000 });
    const acked: { key: string; value: string; revision: number }[] = [];
    try {
      const kv = await nc.createKeyValue({ bucket: "full", history: 64 });
      for (let n = 0; n < 40; n++) {
        const value = `before-${n}`;
        acked.push({ key: `k${n % 10}`, value, revision: await kv.putString(`k${n % 10}`, value) });
      }

      expect(fill(join(mount, "filler"))).toBe("ENOSPC");
      expect(statfsSync(mount).bavail).toBe(0);

      // Writes go on until the first one to reach the full disk; then every call is refused.
      let refused: unknown;
      const deadline = Date.now() + 30_000;
      for (let n = 0; n < 5000 && refused === undefined && Date.now() < deadline; n++) {
        const value = `${"x".repeat(2048)}-${n}`;
        try {
          acked.push({
            key: `k${n % 10}`,
            value,
            revision: await kv.putString(`k${n % 10}`, value),
          });
        } catch (err) {
          refused = err;
        }
      }
      expect(refused).toBeInstanceOf(KvError);
      expect((refused as KvError).code).toBe("DISK_FULL");
      expect((refused as KvError).message).toMatch(/data directory is full/);
      await expect(kv.get("k1")).rejects.toMatchObject({ code: "DISK_FULL" });
      await expect(kv.putString("k1", "while full")).rejects.toMatchObject({ code: "DISK_FULL" });

      const ready = await http(node.clientPort, "/readyz");
      expect(ready.status).toBe(503);
      expect(ready.body).toMatch(/data directory is full/);
      expect((await http(node.clientPort, "/healthz")).status).toBe(200);
      expect((await http(node.clientPort, "/metrics")).body).toMatch(/^streamkv_disk_full 1$/m);
      expect(node.stderr()).toContain(
        '"msg":"data directory full: stopped serving until space is freed"',
      );
      // Still the same process, and it did not stop.
      expect(node.proc.exitCode).toBeNull();

      rmSync(join(mount, "filler"));
      await waitFor(
        async () => (await http(node.clientPort, "/readyz")).status === 200,
        20_000,
        "the node to serve again after space was freed",
        100,
      );
      expect((await http(node.clientPort, "/metrics")).body).toMatch(/^streamkv_disk_full 0$/m);
      expect(node.stderr()).toContain('"msg":"space freed: serving again"');

      // Every acknowledged write is there at its revision; new writes are acknowledged.
      const histories = new Map<string, Map<number, string>>();
      for (const key of new Set(acked.map((a) => a.key))) {
        const h = await kv.history(key);
        histories.set(key, new Map(h.map((e) => [e.revision, new TextDecoder().decode(e.value)])));
      }
      const lost = acked.filter((a) => histories.get(a.key)?.get(a.revision) !== a.value);
      expect(lost).toEqual([]);
      const after = await kv.putString("k1", "after");
      expect(after).toBeGreaterThan(acked.at(-1)!.revision);
      expect((await kv.get("k1"))?.revision).toBe(after);
      console.log(
        `disk-full (one node, 16 MiB tmpfs): ${acked.length} writes acked before DISK_FULL, all present after space was freed`,
      );
    } finally {
      await nc.close();
    }
  }, 90_000);
});
