/**
 * `streamkv verify --data DIR` on the data directory of a real node (a server process,
 * real LevelDB): on the running node (read-only, while it takes writes), on the stopped
 * one, as JSON, with a flipped bit in a table (exit 1, the file, offset and reason), and
 * each bad usage (exit 2).
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../client/index.js";
import { removeDir, runCli, startServer, tempDir } from "../test_support/index.js";

const dataDir = tempDir("streamkv-verify-cli-");
const values: Buffer[] = [];

async function putSome(url: string, prefix: string, count: number): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const kv = await nc.createKeyValue({ bucket: "v" });
    for (let i = 0; i < count; i++) {
      const value = randomBytes(400);
      values.push(value);
      await kv.put(`${prefix}.${i}`, value);
    }
  } finally {
    await nc.close();
  }
}

beforeAll(async () => {
  // Written, stopped, started again: the recovered write-ahead log goes to a table.
  let server = await startServer({ dataDir });
  await putSome(server.url, "a", 200);
  expect(await server.stop("SIGTERM", 10_000)).toBe(0);
  server = await startServer({ dataDir });
  expect(await server.stop("SIGTERM", 10_000)).toBe(0);
}, 120_000);

afterAll(() => removeDir(dataDir));

describe("streamkv verify", () => {
  it("verifies a running node's directory while it takes writes", async () => {
    const server = await startServer({ dataDir });
    try {
      const writes = putSome(server.url, "b", 100);
      const r = await runCli(["verify", "--data", dataDir]);
      await writes;
      expect([r.code, r.stderr]).toEqual([0, ""]);
      expect(r.stdout).toMatch(
        new RegExp(
          `^verified ${join(dataDir, "db")}: \\d+ files \\(\\d+ tables\\), \\d+ bytes in \\d+\\.\\d\\d s \\(\\d+ MiB/s\\)\n`,
        ),
      );
      expect(r.stdout).toMatch(/ok: no damage found\n$/);
    } finally {
      expect(await server.stop("SIGTERM", 10_000)).toBe(0);
    }
  });

  it("verifies a stopped node's directory, as text and as JSON", async () => {
    const r = await runCli(["verify", "--data", dataDir]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const tables = Number(/\((\d+) tables\)/.exec(r.stdout)?.[1]);
    expect(tables).toBeGreaterThanOrEqual(1);
    const j = await runCli(["verify", "--data", join(dataDir, "db"), "--json"]);
    expect([j.code, j.stderr]).toEqual([0, ""]);
    const report = JSON.parse(j.stdout);
    expect(report).toMatchObject({ dbDir: join(dataDir, "db"), tables, skipped: [], damage: [] });
    expect(report.files).toBeGreaterThan(tables);
    expect(report.bytes).toBeGreaterThan(200 * 400);
    expect(report.seconds).toBeGreaterThan(0);
  });

  it("exits 1 naming the file, offset and reason of a flipped bit in a table", async () => {
    const db = join(dataDir, "db");
    const needle = values[50]!;
    const name = readdirSync(db).find(
      (n) => n.endsWith(".ldb") && readFileSync(join(db, n)).includes(needle),
    )!;
    const file = join(db, name);
    const bytes = readFileSync(file);
    bytes[bytes.indexOf(needle) + 200]! ^= 0x04;
    writeFileSync(file, bytes);
    const r = await runCli(["verify", "--data", dataDir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(`\ndamaged ${file}: offset \\d+: data block checksum mismatch\n1 damaged\n$`),
    );
    expect(r.stderr).toBe(
      `streamkv: CORRUPT_RECORD: 1 damaged file in ${db}; this node must not run on this data: reset the member (README, "A member with corrupted data")\n`,
    );
    const j = await runCli(["verify", "--data", dataDir, "-j"]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout).damage).toEqual([
      { file, offset: expect.any(Number), reason: "data block checksum mismatch" },
    ]);
  });

  it("exits 2 on bad usage, and 0 for --help", async () => {
    const empty = tempDir("streamkv-verify-empty-");
    try {
      for (const [args, message] of [
        [["verify"], "verify needs --data <dir>"],
        [["verify", "--data", join(empty, "absent")], "no LevelDB here"],
        [["verify", "--data", empty], "not a node's data directory"],
        [["verify", "--data", dataDir, "extra"], "wrong number of arguments"],
        [["verify", "--bogus"], "unknown flag --bogus"],
      ] as const) {
        const r = await runCli([...args]);
        expect([r.code, r.stdout], args.join(" ")).toEqual([2, ""]);
        expect(r.stderr).toMatch(new RegExp(`^streamkv: USAGE: .*${message}`));
      }
    } finally {
      removeDir(empty);
    }
    const h = await runCli(["verify", "--help"]);
    expect([h.code, h.stderr]).toEqual([0, ""]);
    expect(h.stdout).toMatch(/^usage: streamkv verify --data <dir>/);
    expect(h.stdout).toContain("--data");
  });
});
