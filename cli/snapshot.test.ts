/**
 * `streamkv snapshot save|status|restore` against a real node (one process, real LevelDB,
 * real WebSocket): a save, what status says of it, a restore started as a node that holds
 * the same buckets, keys, histories and revisions; and every way a file or a target can
 * be bad: a flipped byte in the header or the body, a file cut anywhere, a non-empty data
 * dir, an id outside --peers; each refused with its code, a non-zero exit and nothing
 * written. Also who may save (an admin token) and each subcommand's --help. The three-node
 * save-under-writes and restore into a new cluster is cluster-tests/backup_restore.test.ts.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../client/index.js";
import { newToken, sha256Hex } from "../node/index.js";
import {
  freePorts,
  removeDir,
  runCli,
  type ServerProcess,
  startServer,
  tempDir,
} from "../test_support/index.js";

const admin = newToken();
const reader = newToken();
const dir = tempDir("streamkv-snapshot-cli-");
let server: ServerProcess;
let file: string;
const started: ServerProcess[] = [];

const text = (s: string) => new TextEncoder().encode(s);
const asAdmin = { STREAMKV_TOKEN: admin };

beforeAll(async () => {
  const tokensFile = join(dir, "tokens.json");
  writeFileSync(
    tokensFile,
    JSON.stringify({
      tokens: [
        { name: "admin", sha256: sha256Hex(admin), admin: true, read: ["*"], write: ["*"] },
        { name: "reader", sha256: sha256Hex(reader), read: ["*"] },
      ],
    }),
    { mode: 0o600 },
  );
  server = await startServer({ args: ["--tokens-file", tokensFile] });
  const nc = await connect({ servers: server.url, token: admin });
  try {
    const cfg = await nc.createKeyValue({ bucket: "cfg", history: 4 });
    for (let i = 0; i < 30; i++) await cfg.put(`app.k${i % 6}`, text(`v${i}`));
    await cfg.delete("app.k1");
    await cfg.purge("app.k2");
    const blobs = await nc.createKeyValue({ bucket: "blobs" });
    await blobs.put("big", new Uint8Array(200_000).fill(7));
    await nc.createKeyValue({ bucket: "empty" });
  } finally {
    await nc.close();
  }
  file = join(dir, "backup.snap");
  const r = await runCli(["snapshot", "save", file, "-s", server.url], { env: asAdmin });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
}, 120_000);

afterAll(async () => {
  for (const s of [server, ...started]) await s?.stop("SIGKILL");
  for (const s of [server, ...started]) if (s) removeDir(s.dataDir);
  removeDir(dir);
});

/** A copy of the backup with `edit` applied, as a new file. */
function variant(name: string, edit: (bytes: Buffer) => Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, edit(Buffer.from(readFileSync(file))));
  return path;
}

/** Restores `path` into a fresh target; expects a refusal that wrote nothing. */
async function expectRefused(path: string, code: string, why: RegExp): Promise<void> {
  const target = join(dir, `target-${Math.random().toString(36).slice(2)}`);
  const status = await runCli(["snapshot", "status", path]);
  expect(status.code).toBe(1);
  expect(status.stderr).toMatch(new RegExp(`^streamkv: ${code}: `));
  expect(status.stderr).toMatch(why);
  const restore = await runCli(["snapshot", "restore", path, "--data", target, "--id", "n1"]);
  expect(restore.code).toBe(1);
  expect(restore.stderr).toMatch(new RegExp(`^streamkv: ${code}: `));
  expect(restore.stderr).toMatch(why);
  expect(existsSync(target)).toBe(false);
  // No staging directory left beside it either.
  expect(readdirSync(dir).filter((n) => n.includes("restoring"))).toEqual([]);
}

// Each CLI run is a process of its own (a few seconds on a loaded machine while dist/ is stale).
describe("streamkv snapshot", { timeout: 120_000 }, () => {
  it("status prints the header, the buckets with their counts, the size and the checksum", async () => {
    const r = await runCli(["snapshot", "status", file, "--json"]);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.checksumOk).toBe(true);
    expect(d.fileBytes).toBe(readFileSync(file).byteLength);
    expect(d.imageBytes).toBeGreaterThan(200_000);
    expect(d.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(d.header).toMatchObject({
      formatVersion: 1,
      nodeId: "n1",
      voters: ["n1"],
      learners: [],
      streamkvVersion: expect.stringMatching(/^\d+\.\d+\.\d+/),
      buckets: ["blobs", "cfg", "empty"],
    });
    expect(d.header.raftIndex).toBeGreaterThan(30);
    expect(d.header.raftTerm).toBeGreaterThanOrEqual(1);
    expect(Math.abs(Date.now() - d.header.createdMs)).toBeLessThan(120_000);
    // cfg: 30 puts over 6 keys (history 4), a DEL on k1, a PURGE that left only its marker on k2.
    expect(d.buckets).toEqual([
      { bucket: "blobs", keys: 1, messages: 1, valueBytes: 200_000, lastRevision: 1 },
      expect.objectContaining({ bucket: "cfg", keys: 6, lastRevision: 32 }),
      { bucket: "empty", keys: 0, messages: 0, valueBytes: 0, lastRevision: 0 },
    ]);
    const cfg = d.buckets[1];
    // k0, k3, k4, k5: 4 each; k1: 4 (3 puts and its DEL); k2: its PURGE marker alone.
    expect(cfg.messages).toBe(4 * 4 + 4 + 1);

    const human = await runCli(["snapshot", "status", file]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain("checksum          ok");
    expect(human.stdout).toContain(`raft index        ${d.header.raftIndex}`);
    expect(human.stdout).toMatch(/BUCKET\s+KEYS\s+ENTRIES\s+VALUE BYTES\s+LAST REVISION/);
    expect(human.stdout).toMatch(/cfg\s+6\s+21\s+\d+\s+32/);
  });

  it("a restored node holds every bucket, key, history entry and revision, and goes on", async () => {
    const target = join(dir, "restored");
    const r = await runCli(["snapshot", "restore", file, "--data", target, "--id", "n1", "-j"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ voters: ["n1"], dataDir: target });
    const [clientPort, peerPort] = await freePorts(2);
    const node = await startServer({
      dataDir: target,
      clientPort: clientPort!,
      peerPort: peerPort!,
    });
    started.push(node);
    const before = await connect({ servers: server.url, token: admin });
    const after = await connect({ servers: node.url });
    try {
      expect((await after.listBuckets()).map((b) => b.bucket)).toEqual(["blobs", "cfg", "empty"]);
      for (const bucket of ["blobs", "cfg", "empty"]) {
        const [a, b] = [await before.keyValue(bucket), await after.keyValue(bucket)];
        const sa = await a.status();
        const sb = await b.status();
        expect(sb).toMatchObject({
          values: sa.values,
          bytes: sa.bytes,
          history: sa.history,
          firstRevision: sa.firstRevision,
          lastRevision: sa.lastRevision,
        });
        for (const key of ["big", "app.k0", "app.k1", "app.k2", "app.k5"]) {
          const shape = (es: Awaited<ReturnType<typeof a.history>>) =>
            es.map((e) => ({
              r: e.revision,
              op: e.operation,
              v: Buffer.from(e.value).toString("hex"),
              t: e.created.getTime(),
            }));
          expect(shape(await b.history(key))).toEqual(shape(await a.history(key)));
        }
      }
      // Revisions continue from the backup's, and CAS sees the restored revisions.
      const cfg = await after.keyValue("cfg");
      const latest = (await cfg.get("app.k0"))!.revision;
      expect(await cfg.update("app.k0", text("next"), latest)).toBe(33);
      const status = await after.clusterStatus();
      const header = JSON.parse((await runCli(["snapshot", "status", file, "-j"])).stdout).header;
      expect(status.appliedIndex).toBeGreaterThan(header.raftIndex);
    } finally {
      await before.close();
      await after.close();
    }
  });

  it("refuses a data dir that is not empty, and an id outside --peers, writing nothing", async () => {
    const busy = join(dir, "busy");
    mkdirSync(busy);
    writeFileSync(join(busy, "keep.txt"), "mine");
    const r = await runCli(["snapshot", "restore", file, "--data", busy, "--id", "n1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^streamkv: USAGE: --data .*busy is not empty/);
    expect(readdirSync(busy)).toEqual(["keep.txt"]);

    const target = join(dir, "never");
    const peers = "n1=127.0.0.1:7421,n2=127.0.0.1:7423,n3=127.0.0.1:7425";
    const bad = await runCli([
      "snapshot",
      "restore",
      file,
      "--data",
      target,
      "--id",
      "n9",
      "--peers",
      peers,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^streamkv: USAGE: --id n9 is not in --peers/);
    expect(existsSync(target)).toBe(false);
    const noId = await runCli(["snapshot", "restore", file, "--data", target]);
    expect(noId.code).toBe(2);
    expect(existsSync(target)).toBe(false);
    const underFile = await runCli([
      "snapshot",
      "restore",
      file,
      "--data",
      join(file, "sub"),
      "--id",
      "n1",
    ]);
    expect(underFile.code).toBe(2);
    expect(underFile.stderr).toMatch(/^streamkv: USAGE: --data .*sub: cannot/);
  });

  it("refuses a file with a flipped byte in its header or its body", async () => {
    await expectRefused(
      variant("header.snap", (b) => {
        b[20] = b[20]! ^ 0xff;
        return b;
      }),
      "CORRUPT_RECORD",
      /header's checksum does not match/,
    );
    await expectRefused(
      variant("body.snap", (b) => {
        const at = Math.floor(b.length / 2);
        b[at] = b[at]! ^ 0x01;
        return b;
      }),
      "CORRUPT_RECORD",
      /checksum mismatch/,
    );
    await expectRefused(
      variant("magic.snap", (b) => {
        b.write("NOTSNAP!", 0, "latin1");
        return b;
      }),
      "CORRUPT_RECORD",
      /does not start with SKVSNAP1/,
    );
    await expectRefused(
      variant("extra.snap", (b) => Buffer.concat([b, Buffer.from("x")])),
      "CORRUPT_RECORD",
      /1 bytes after the trailer/,
    );
  });

  it("refuses a file cut short anywhere: in the header, a chunk, before or inside the trailer", async () => {
    const size = readFileSync(file).byteLength;
    for (const keep of [0, 5, 30, Math.floor(size / 2), size - 60, size - 20, size - 1]) {
      await expectRefused(
        variant(`cut-${keep}.snap`, (b) => b.subarray(0, keep)),
        "CORRUPT_RECORD",
        /truncated/,
      );
    }
  });

  it("a missing file is an error, not a crash", async () => {
    const r = await runCli(["snapshot", "status", join(dir, "nope.snap")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^streamkv: INVALID_ARGUMENT: .*nope\.snap: cannot open/);
  });

  it("save needs an admin token: none is UNAUTHORIZED, a reader's is FORBIDDEN; nothing is written", async () => {
    const out = join(dir, "denied.snap");
    const none = await runCli(["snapshot", "save", out, "-s", server.url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^streamkv: UNAUTHORIZED: /);
    const read = await runCli(["snapshot", "save", out, "-s", server.url], {
      env: { STREAMKV_TOKEN: reader },
    });
    expect(read.code).toBe(1);
    expect(read.stderr).toMatch(/^streamkv: FORBIDDEN: reader may not take a backup/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.tmp`)).toBe(false);
    const nowhere = await runCli(
      ["snapshot", "save", join(dir, "no-such-dir", "x.snap"), "-s", server.url],
      {
        env: asAdmin,
      },
    );
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(
      /^streamkv: INVALID_ARGUMENT: .*x\.snap\.tmp: cannot create it: ENOENT/,
    );
  });

  it("--help of snapshot and of each subcommand", async () => {
    const top = await runCli(["snapshot", "--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/save <file>[\s\S]*status <file>[\s\S]*restore <file>/);
    const save = await runCli(["snapshot", "save", "--help"]);
    expect(save.code).toBe(0);
    expect(save.stdout).toMatch(/^usage: streamkv snapshot save <file>/);
    for (const flag of ["--server", "--token-file", "--tls-ca", "--chunk-bytes", "--timeout"]) {
      expect(save.stdout).toContain(flag);
    }
    const status = await runCli(["snapshot", "status", "--help"]);
    expect(status.stdout).toMatch(/^usage: streamkv snapshot status <file>[\s\S]*--json/);
    const restore = await runCli(["snapshot", "restore", "--help"]);
    expect(restore.stdout).toMatch(
      /^usage: streamkv snapshot restore <file> --data <dir> --id <id>/,
    );
    for (const flag of ["--data", "--id", "--peers", "--cluster-id"])
      expect(restore.stdout).toContain(flag);
    const wrong = await runCli(["snapshot", "load", "x"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^streamkv: USAGE: unknown command "snapshot load"/);
    const main = await runCli(["--help"]);
    expect(main.stdout).toMatch(/snapshot\s+backups/);
  });
});
