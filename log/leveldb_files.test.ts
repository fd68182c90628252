/**
 * LevelDB's own checksums (leveldb_files.ts), on real databases written by
 * classic-level: every single-bit flip of a write-ahead log, a table and a MANIFEST is
 * found (a table's footer padding aside, which nothing reads), while a log cut short at
 * any byte (a crash before the sync) passes. The start check reads the logs and the
 * MANIFEST only; damage inside a table is found by the whole check (`verifyLevelDb`,
 * also what the node's scrub runs per table). It also shows the hazard the start check
 * exists for: LevelDB alone opens a damaged log and drops acknowledged writes from the
 * middle of it.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import {
  CORRUPT_MARKER,
  checkLogFile,
  checkTableFile,
  Damage,
  TableReadBuffer,
  verifyLevelDb,
  verifyLevelDbFiles,
} from "./leveldb_files.js";
import { StreamLog } from "./stream_log.js";
import { config, errorCode, tempDir } from "./test_helpers.js";

const dirs: Array<{ remove: () => void }> = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove();
});

type Db = ClassicLevel<string, Uint8Array>;
const open = async (path: string): Promise<Db> => {
  const db: Db = new ClassicLevel(path, { valueEncoding: "view" });
  await db.open();
  return db;
};

/**
 * A db whose first `tabled` keys are in a table (a reopen writes the recovered log to
 * one) and the next `logged` in the write-ahead log. Values are random: incompressible.
 */
async function makeDb(tabled: number, logged: number, valueBytes = 200) {
  const dir = tempDir("streamkv-ldbfiles-");
  dirs.push(dir);
  const values = new Map<string, Uint8Array>();
  const put = async (db: Db, i: number) => {
    const key = `k${String(i).padStart(5, "0")}`;
    values.set(key, randomBytes(valueBytes));
    await db.put(key, values.get(key)!, { sync: true });
  };
  let db = await open(dir.path);
  for (let i = 0; i < tabled; i++) await put(db, i);
  await db.close();
  db = await open(dir.path);
  for (let i = tabled; i < tabled + logged; i++) await put(db, i);
  await db.close();
  const names = readdirSync(dir.path);
  const file = (re: RegExp) => join(dir.path, names.find((n) => re.test(n)) ?? "none");
  return {
    path: dir.path,
    values,
    wal: file(/\.log$/),
    table: file(/\.ldb$/),
    manifest: file(/^MANIFEST-/),
  };
}

function flip(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

function damageOf(check: () => unknown): Damage | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    if (err instanceof Damage) return err;
    throw err;
  }
}

describe("LevelDB file checks", () => {
  it("pass a database with a table, a write-ahead log and a MANIFEST", async () => {
    const db = await makeDb(300, 20);
    const report = await verifyLevelDbFiles(db.path);
    // At start CURRENT, the MANIFEST, the log; the table is only stat'ed.
    expect(report.files).toBe(3);
    const whole = await verifyLevelDb(db.path);
    expect(whole).toMatchObject({ files: 4, tables: 1, skipped: [], damage: [] });
    expect(whole.bytes).toBe(report.bytes + readFileSync(db.table).length);
    const layout = checkTableFile(readFileSync(db.table));
    expect(layout.data.length).toBeGreaterThan(5);
    expect(layout.filter).toHaveLength(1);
    expect(await verifyLevelDbFiles(join(db.path, "absent"))).toEqual({ files: 0, bytes: 0 });
  });

  it("refuse a log LevelDB would open after silently dropping acknowledged writes", async () => {
    const db = await makeDb(0, 40, 3000);
    const wal = readFileSync(db.wal);
    // One bit inside the value of the 6th of 40 synced puts.
    const at = Buffer.from(wal).indexOf(db.values.get("k00005")!) + 100;
    writeFileSync(db.wal, flip(wal, at * 8));
    await expect(verifyLevelDbFiles(db.path)).rejects.toMatchObject({
      code: "CORRUPT_RECORD",
      message: expect.stringMatching(
        /^corrupt LevelDB file .*\d+\.log: offset \d+: record checksum mismatch/,
      ),
    });
    expect(await errorCode(() => StreamLog.open(db.path))).toBe("CORRUPT_RECORD");
    // What the check prevents: LevelDB opens, and puts from the middle are gone for good.
    const level = await open(db.path);
    const keys = await level.keys().all();
    await level.close();
    expect(keys).not.toContain("k00005");
    expect(keys).toContain("k00039");
    expect(readdirSync(db.path).some((n) => n === db.wal.split("/").pop())).toBe(false);
  });

  it("find every single-bit flip in a write-ahead log", async () => {
    const db = await makeDb(0, 12, 100);
    const wal = readFileSync(db.wal);
    expect(damageOf(() => checkLogFile(wal))).toBeUndefined();
    const missed: number[] = [];
    for (let bit = 0; bit < wal.length * 8; bit++) {
      if (damageOf(() => checkLogFile(flip(wal, bit))) === undefined) missed.push(bit);
    }
    expect(missed).toEqual([]);
  });

  it("find every single-bit flip in a MANIFEST", async () => {
    const db = await makeDb(50, 0);
    const manifest = readFileSync(db.manifest);
    const missed: number[] = [];
    for (let bit = 0; bit < manifest.length * 8; bit++) {
      if (damageOf(() => checkLogFile(flip(manifest, bit))) === undefined) missed.push(bit);
    }
    expect(missed).toEqual([]);
  });

  it("find every single-bit flip in a table but in the footer padding nothing reads", async () => {
    const db = await makeDb(40, 0, 100);
    const table = readFileSync(db.table);
    const layout = checkTableFile(table);
    const missed: number[] = [];
    for (let bit = 0; bit < table.length * 8; bit++) {
      const damaged = flip(table, bit);
      if (damageOf(() => checkTableFile(damaged)) !== undefined) continue;
      missed.push(bit);
      // Harmless: the blocks found are the same ones.
      expect(checkTableFile(damaged)).toEqual(layout);
    }
    for (const bit of missed) expect(bit >> 3).toBeGreaterThanOrEqual(layout.footer);
    expect(missed.length).toBeLessThan(40 * 8);
    // Damage in a value, the bloom filter and the index block, through the whole check.
    const spots = {
      value: Buffer.from(table).indexOf(db.values.get("k00020")!) + 10,
      filter: layout.filter[0]!.offset + 3,
      index: layout.index.offset + 2,
    };
    for (const [spot, at] of Object.entries(spots)) {
      writeFileSync(db.table, flip(table, at * 8));
      // Not read at start; found by the whole check, with the file and the block's offset.
      await verifyLevelDbFiles(db.path);
      const { damage } = await verifyLevelDb(db.path);
      expect(damage, spot).toEqual([
        { file: db.table, offset: expect.any(Number), reason: expect.stringMatching(/block/) },
      ]);
      expect(damage[0]!.offset).toBeLessThanOrEqual(at);
    }
  });

  it("pass a log cut short at any byte (a crash before the sync), which LevelDB opens with a prefix", async () => {
    const db = await makeDb(0, 10, 100);
    const wal = readFileSync(db.wal);
    for (let cut = 0; cut <= wal.length; cut++) {
      expect(
        damageOf(() => checkLogFile(wal.subarray(0, cut))),
        `cut at ${cut}`,
      ).toBeUndefined();
    }
    // A zero-filled tail too (allocated, never written), but not data after zeros.
    const zeros = Buffer.concat([wal, Buffer.alloc(4096)]);
    expect(damageOf(() => checkLogFile(zeros))).toBeUndefined();
    expect(damageOf(() => checkLogFile(Buffer.concat([zeros, Buffer.from([1])])))).toBeDefined();
    // The cut log opens with the puts whose records are whole.
    writeFileSync(db.wal, wal.subarray(0, wal.length - 50));
    await verifyLevelDbFiles(db.path);
    const level = await open(db.path);
    const keys = await level.keys().all();
    await level.close();
    expect(keys).toEqual([...db.values.keys()].slice(0, 9));
  });

  it("check the files the MANIFEST holds, and leave alone those LevelDB no longer uses", async () => {
    const db = await makeDb(30, 5);
    const table = readFileSync(db.table);
    // A table a compaction cut short at close (or a crash), never in the MANIFEST: LevelDB
    // deletes it at the next open. An older log it does not replay, damaged.
    writeFileSync(join(db.path, "999990.ldb"), table.subarray(0, table.length >> 1));
    writeFileSync(join(db.path, "000001.log"), flip(readFileSync(db.wal), 100));
    await verifyLevelDbFiles(db.path);
    // A live table cut short, or gone.
    writeFileSync(db.table, table.subarray(0, table.length - 1));
    await expect(verifyLevelDbFiles(db.path)).rejects.toMatchObject({
      message: expect.stringContaining(
        `${table.length - 1} bytes where the MANIFEST recorded ${table.length}`,
      ),
    });
    rmSync(db.table);
    await expect(verifyLevelDbFiles(db.path)).rejects.toMatchObject({
      code: "CORRUPT_RECORD",
      message: expect.stringMatching(
        /MANIFEST-\d+: offset 0: names table \d+, which does not exist/,
      ),
    });
  });

  it("pass many tables with compactions under way at close", async () => {
    const dir = tempDir("streamkv-ldbfiles-");
    dirs.push(dir);
    let tables = 0;
    for (let round = 0; round < 3; round++) {
      const level = await open(dir.path);
      for (let b = 0; b < 20; b++) {
        const batch = level.batch();
        for (let i = 0; i < 200; i++) batch.put(`k${b}-${i}`, randomBytes(1000));
        await batch.write();
      }
      await level.close();
      await verifyLevelDbFiles(dir.path);
      const report = await verifyLevelDb(dir.path);
      expect(report.damage).toEqual([]);
      tables = report.tables;
    }
    expect(tables).toBeGreaterThan(1);
  });

  it("refuse a CURRENT that names no MANIFEST", async () => {
    const db = await makeDb(5, 0);
    const current = join(db.path, "CURRENT");
    const text = readFileSync(current, "utf8");
    writeFileSync(
      current,
      text.replace(/\d(\n)$/, (d) => `${(Number(d[0]) + 1) % 10}\n`),
    );
    await expect(verifyLevelDbFiles(db.path)).rejects.toMatchObject({
      code: "CORRUPT_RECORD",
      message: expect.stringContaining("CURRENT: offset 0: names MANIFEST-"),
    });
  });

  it("pass a damaged table at start, report it in the whole check, and refuse a start after the marker", async () => {
    const dir = tempDir("streamkv-ldbfiles-");
    dirs.push(dir);
    const payload = randomBytes(500);
    let log = await StreamLog.open(dir.path);
    await log.createStream(config("s"), { sync: true });
    await log.append(
      "s",
      { subject: "a", payload, operation: "PUT", timestampMs: 1 },
      { sync: true },
    );
    await log.close();
    // Reopened once: the record moved from the log to a table.
    log = await StreamLog.open(dir.path);
    await log.close();
    const table = join(dir.path, readdirSync(dir.path).find((n) => n.endsWith(".ldb"))!);
    const bytes = readFileSync(table);
    const at = Buffer.from(bytes).indexOf(payload) + 7;
    writeFileSync(table, flip(bytes, at * 8));
    await verifyLevelDbFiles(dir.path);
    const report = await verifyLevelDb(dir.path);
    expect(report.damage).toEqual([
      { file: table, offset: expect.any(Number), reason: "data block checksum mismatch" },
    ]);
    // What the node's scrub leaves when it finds it: every start refuses, with its words.
    const found = `corrupt LevelDB file ${table}: offset ${report.damage[0]!.offset}: data block checksum mismatch`;
    writeFileSync(join(dir.path, CORRUPT_MARKER), `${found}\n`);
    await expect(StreamLog.open(dir.path)).rejects.toMatchObject({
      code: "CORRUPT_RECORD",
      message: expect.stringMatching(
        new RegExp(
          `^${found.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(recorded in .*CORRUPT when it was found\\); this node must not start`,
        ),
      ),
    });
    expect((await verifyLevelDb(dir.path)).damage).toEqual([
      { file: join(dir.path, CORRUPT_MARKER), offset: 0, reason: found },
    ]);
  });

  it("bound what they read of a hostile file: a huge marker, a huge file in a table's place", async () => {
    const db = await makeDb(30, 0);
    const marker = join(db.path, CORRUPT_MARKER);
    // 8 MiB on one line: the refusal carries at most the first 4 KiB of it.
    writeFileSync(marker, Buffer.alloc(8 * 1024 * 1024, "x"));
    const err = await verifyLevelDbFiles(db.path).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toMatchObject({ code: "CORRUPT_RECORD" });
    expect(err!.message.length).toBeLessThan(4096 + 512);
    rmSync(marker);
    // A 4 GiB sparse file where a table of a few KiB belongs: refused by its size, never
    // read (a read of it would fail: more than a Buffer holds).
    truncateSync(db.table, 4 * 1024 ** 3);
    const started = performance.now();
    await expect(verifyLevelDbFiles(db.path)).rejects.toMatchObject({
      message: expect.stringContaining(`${4 * 1024 ** 3} bytes where the MANIFEST recorded`),
    });
    expect((await verifyLevelDb(db.path)).damage).toEqual([
      { file: db.table, offset: 0, reason: expect.stringMatching(/^4294967296 bytes where/) },
    ]);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("verify a database while it is written and compacted, skipping what is deleted meanwhile", async () => {
    const dir = tempDir("streamkv-ldbfiles-");
    dirs.push(dir);
    const level = await open(dir.path);
    let writing = true;
    const writer = (async () => {
      // Bounded: at most 400 batches of 100 KB, or until the checks below are done.
      for (let b = 0; b < 400 && writing; b++) {
        const batch = level.batch();
        for (let i = 0; i < 100; i++) batch.put(`k${b % 40}-${i}`, randomBytes(1000));
        await batch.write();
      }
    })();
    try {
      let tables = 0;
      for (let round = 0; round < 10; round++) {
        const report = await verifyLevelDb(dir.path);
        expect(report.damage).toEqual([]);
        tables += report.tables;
      }
      expect(tables).toBeGreaterThan(0);
    } finally {
      writing = false;
      await writer;
      await level.close();
    }
  });
});

describe("TableReadBuffer", () => {
  it("reads files into one reused buffer; a shorter, longer or missing file shows as such", async () => {
    const tmp = tempDir();
    const dir = tmp.path;
    try {
      const big = randomBytes(300_000);
      const small = randomBytes(1000);
      writeFileSync(join(dir, "big.ldb"), big);
      writeFileSync(join(dir, "small.ldb"), small);
      const reader = new TableReadBuffer();
      const a = await reader.read(join(dir, "big.ldb"), big.length);
      expect(Buffer.compare(a!, big)).toBe(0);
      const b = await reader.read(join(dir, "small.ldb"), small.length);
      expect(Buffer.compare(b!, small)).toBe(0);
      // The second read reused the first one's memory.
      expect(b!.buffer).toBe(a!.buffer);
      expect((await reader.read(join(dir, "small.ldb"), small.length + 10))!.length).toBe(
        small.length,
      );
      expect(
        (await reader.read(join(dir, "small.ldb"), small.length - 10))!.length,
      ).toBeGreaterThan(small.length - 10);
      expect(await reader.read(join(dir, "gone.ldb"), 10)).toBeUndefined();
    } finally {
      tmp.remove();
    }
  });
});
