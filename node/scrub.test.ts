/**
 * The background scrub (scrub.ts) on a real LevelDB in a temporary directory, open as a
 * node holds it: it verifies every live table in a cycle, finds a bit flipped in a table
 * within a bounded time (marker written, counted, onDamage called once with
 * CORRUPT_RECORD naming the file and offset), reads no faster than its rate, and copes
 * with compactions deleting tables under it.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import { CORRUPT_MARKER, verifyLevelDb, verifyLevelDbFiles } from "../log/index.js";
import type { KvError } from "../proto/index.js";
import { removeDir, tempDir, waitFor } from "../test_support/index.js";
import { silentLogger } from "./log.js";
import { Scrubber } from "./scrub.js";

type Db = ClassicLevel<string, Uint8Array>;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A db holding about `mib` MiB of random (incompressible) values in tables, left open. */
async function tablesDb(mib: number): Promise<{ dir: string; db: Db; values: Uint8Array[] }> {
  const dir = tempDir("streamkv-scrub-");
  cleanups.push(() => removeDir(dir));
  // A 1 MiB write buffer: tables of about 1 MiB, so the rate is measured finely.
  const options = { valueEncoding: "view", writeBufferSize: 1024 * 1024 } as const;
  let db: Db = new ClassicLevel(dir, options);
  await db.open();
  const values: Uint8Array[] = [];
  for (let b = 0; b < mib; b++) {
    const batch = db.batch();
    for (let i = 0; i < 1024; i++) {
      const v = randomBytes(1000);
      values.push(v);
      batch.put(`k${String(b).padStart(4, "0")}-${String(i).padStart(4, "0")}`, v);
    }
    await batch.write();
  }
  await db.close();
  // Reopened: the write-ahead log goes to a table too.
  db = new ClassicLevel(dir, options);
  await db.open();
  cleanups.push(() => db.close());
  return { dir, db, values };
}

const tableBytes = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith(".ldb"))
    .reduce((sum, n) => sum + statSync(join(dir, n)).size, 0);

function scrubber(dir: string, bytesPerSecond: number, cyclePauseMs = 20) {
  const damage: KvError[] = [];
  const s = new Scrubber({
    dbDir: dir,
    bytesPerSecond,
    log: silentLogger,
    cyclePauseMs,
    onDamage: (err) => damage.push(err),
  });
  cleanups.push(() => s.stop());
  return { s, damage };
}

describe("the background scrub", () => {
  it("verifies every table, then finds a flipped bit in one, marks the dir and stops", async () => {
    const { dir, values } = await tablesDb(6);
    const { s, damage } = scrubber(dir, 256 * 1024 * 1024);
    await waitFor(() => s.stats.cycles >= 1, 10_000, "a first cycle");
    const whole = await verifyLevelDb(dir);
    expect(whole.damage).toEqual([]);
    expect(s.stats.verifiedTables).toBeGreaterThanOrEqual(whole.tables);
    expect(s.stats.lastCycleCompletedMs).toBeGreaterThan(Date.now() - 10_000);
    expect(s.stats.corruptions).toBe(0);

    // One bit inside a stored value of a live table, while the db is open.
    const needle = Buffer.from(values[2000]!);
    const name = readdirSync(dir).find(
      (n) => n.endsWith(".ldb") && readFileSync(join(dir, n)).includes(needle),
    )!;
    const file = join(dir, name);
    const bytes = readFileSync(file);
    const at = bytes.indexOf(needle) + 500;
    bytes[at]! ^= 0x10;
    writeFileSync(file, bytes);
    const flippedAt = Date.now();
    await waitFor(() => damage.length > 0, 10_000, "the scrub to find the damage");
    const foundMs = Date.now() - flippedAt;
    expect(foundMs).toBeLessThan(5000);
    expect(damage).toHaveLength(1);
    expect(damage[0]).toMatchObject({
      code: "CORRUPT_RECORD",
      message: expect.stringMatching(
        new RegExp(`^corrupt LevelDB file ${file}: offset \\d+: data block checksum mismatch`),
      ),
    });
    expect(s.stats.corruptions).toBe(1);
    const marker = readFileSync(join(dir, CORRUPT_MARKER), "utf8");
    expect(marker).toMatch(
      new RegExp(`^corrupt LevelDB file ${file}: offset \\d+: data block checksum mismatch\n`),
    );
    // The table is not read at start, but the marker is: the next start refuses.
    await expect(verifyLevelDbFiles(dir)).rejects.toMatchObject({
      code: "CORRUPT_RECORD",
      message: expect.stringContaining(`corrupt LevelDB file ${file}: offset`),
    });
    // It stopped on the damage: no more reads, no second report.
    const read = s.stats.verifiedBytes;
    await new Promise((r) => setTimeout(r, 200));
    expect(s.stats.verifiedBytes).toBe(read);
    expect(damage).toHaveLength(1);
    console.log(`scrub: damage found ${foundMs} ms after the flip`);
  });

  it("reads no faster than its rate", async () => {
    const { dir } = await tablesDb(6);
    const total = tableBytes(dir);
    const rate = 2 * 1024 * 1024;
    const started = performance.now();
    const { s } = scrubber(dir, rate, 0);
    // At most one table (about 1 MiB) ahead of the rate: measure over 3 s.
    await new Promise((r) => setTimeout(r, 3000));
    const seconds = (performance.now() - started) / 1000;
    const bytes = s.stats.verifiedBytes;
    const largest = Math.max(
      ...readdirSync(dir)
        .filter((n) => n.endsWith(".ldb"))
        .map((n) => statSync(join(dir, n)).size),
    );
    console.log(
      `scrub: ${bytes} bytes in ${seconds.toFixed(2)} s at a rate of ${rate} B/s (db ${total} bytes of tables, largest ${largest})`,
    );
    expect(bytes).toBeLessThanOrEqual(rate * seconds + largest);
    // And not much slower either (the machine is shared: a wide tolerance).
    expect(bytes).toBeGreaterThanOrEqual(rate * seconds * 0.7 - largest);
  });

  it("passes tables a compaction deletes under it", async () => {
    const { dir, db } = await tablesDb(2);
    const { s, damage } = scrubber(dir, 512 * 1024 * 1024, 0);
    // Bounded: 100 batches of 200 KB rewriting the same keys (compactions replace tables).
    for (let b = 0; b < 100; b++) {
      const batch = db.batch();
      for (let i = 0; i < 200; i++) batch.put(`k${b % 20}-${i}`, randomBytes(1000));
      await batch.write();
    }
    await waitFor(() => s.stats.cycles >= 3, 20_000, "three cycles");
    expect(damage).toEqual([]);
    expect(s.stats.verifiedTables).toBeGreaterThan(3);
    expect(s.stats.corruptions).toBe(0);
  });

  it("stops at once while it waits for its rate", async () => {
    const { dir } = await tablesDb(1);
    const { s } = scrubber(dir, 1024);
    await waitFor(() => s.stats.verifiedTables >= 1, 5000, "a first table");
    const t = performance.now();
    await s.stop();
    expect(performance.now() - t).toBeLessThan(500);
  });
});
