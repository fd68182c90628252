/**
 * A start that fails exits 2 with one line, in bounded time, and leaves no data dir
 * behind that it created itself: never one that existed before, nor one with data.
 * Real `streamkv server` processes.
 */
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../client/index.js";
import {
  binPath,
  freePort,
  removeDir,
  runCommand,
  startServer,
  tempDir,
} from "../test_support/index.js";

const root = tempDir();
let busy: Server;
let busyPort: number;

beforeAll(async () => {
  busyPort = await freePort();
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(busyPort, "127.0.0.1", resolve));
});

afterAll(async () => {
  await new Promise((resolve) => busy.close(resolve));
  removeDir(root);
});

function server(args: string[]) {
  return runCommand(process.execPath, [binPath, "server", ...args], {
    env: { STREAMKV_LOG_LEVEL: "warn" },
    timeoutMs: 15_000,
  });
}

describe("a failed start", () => {
  it("refuses a data dir the file system will not create (procfs) at once, exit 2", async () => {
    const started = Date.now();
    const r = await server(["--data", "/proc/nope/data", "--client-port", "0", "--peer-port", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /^streamkv server: --data \/proc\/nope\/data: cannot create the directory \/proc\/nope:/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("refuses an unknown STREAMKV_UNSAFE_TEST_FAULT at once, exit 2, naming the known ones", async () => {
    const r = await runCommand(
      process.execPath,
      [binPath, "server", "--data", join(root, "fault"), "--client-port", "0", "--peer-port", "0"],
      {
        env: { STREAMKV_LOG_LEVEL: "warn", STREAMKV_UNSAFE_TEST_FAULT: "no-fsync" },
        timeoutMs: 15_000,
      },
    );
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      'streamkv server: STREAMKV_UNSAFE_TEST_FAULT "no-fsync": not a test fault (cas-at-proposer, skip-dedupe); unset it: it exists only for the test suites',
    );
    expect(existsSync(join(root, "fault"))).toBe(false);
  });

  it("on a busy client port removes the data dir it created, parents included", async () => {
    const dir = join(root, "fresh", "a", "data");
    const r = await server(["--data", dir, "--client-port", String(busyPort), "--peer-port", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot listen on 127\.0\.0\.1: .*EADDRINUSE/);
    expect(existsSync(join(root, "fresh"))).toBe(false);
  });

  it("on a busy peer port of a cluster member removes the data dir it created", async () => {
    const dir = join(root, "member");
    const peers = `n1=127.0.0.1:${busyPort},n2=127.0.0.1:${await freePort()}`;
    const r = await server([
      "--data",
      dir,
      "--id",
      "n1",
      "--peers",
      peers,
      "--client-port",
      "0",
      "--peer-port",
      String(busyPort),
    ]);
    expect(r.code).toBe(2);
    expect(existsSync(dir)).toBe(false);
  });

  it("keeps a data dir that existed before, empty or holding data", async () => {
    const empty = join(root, "empty");
    mkdirSync(empty, { mode: 0o700 });
    const r = await server([
      "--data",
      empty,
      "--client-port",
      String(busyPort),
      "--peer-port",
      "0",
    ]);
    expect(r.code).toBe(2);
    expect(existsSync(empty)).toBe(true);

    const used = join(root, "used");
    const node = await startServer({ dataDir: used });
    const nc = await connect({ servers: node.url });
    await (await nc.createKeyValue({ bucket: "kept" })).putString("k", "v");
    await nc.close();
    expect(await node.stop()).toBe(0);
    const files = readdirSync(used).sort();
    const again = await server([
      "--data",
      used,
      "--client-port",
      String(busyPort),
      "--peer-port",
      "0",
    ]);
    expect(again.code).toBe(2);
    expect(readdirSync(used).sort()).toEqual(files);
    const restarted = await startServer({ dataDir: used });
    const nc2 = await connect({ servers: restarted.url });
    const value = await (await nc2.keyValue("kept")).get("k");
    expect(new TextDecoder().decode(value?.value)).toBe("v");
    await nc2.close();
    expect(await restarted.stop()).toBe(0);
  });
});
