/**
 * The index checkpoint (index_checkpoint.ts) on real LevelDB: a clean close writes it and
 * the next open loads it instead of scanning every message; it never outlives that open,
 * and any damage falls back to the full verifying scan. The model property test
 * (stream_log.property.test.ts) compares both kinds of reopen against a model.
 */
import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import { deleteIndexCheckpoint, readIndexCheckpoint } from "./index_checkpoint.js";
import { CHECKPOINT_HEADER_KEY, CHECKPOINT_PARTS_RANGE, CHECKPOINT_RANGE } from "./keys.js";
import { StreamIndex } from "./stream_index.js";
import { StreamLog } from "./stream_log.js";
import { bytes, collect, config, tempDir } from "./test_helpers.js";

const VIEW = { keyEncoding: "view", valueEncoding: "view" } as const;
const dirs: Array<{ remove: () => void }> = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) dir.remove();
});

function dir(): string {
  const d = tempDir("streamkv-checkpoint-");
  dirs.push(d);
  return d.path;
}

/** Two streams, history 3, several parts' worth of messages (each part is 1 MiB). */
async function fill(path: string, keys: number): Promise<{ a: number; b: number }> {
  const log = await StreamLog.open(path);
  await log.createStream(config("a", { maxMsgsPerSubject: 3 }));
  await log.createStream(config("b"));
  for (let round = 0; round < 4; round++) {
    for (let first = 0; first < keys; first += 500) {
      const batch = log.batch();
      for (let i = first; i < Math.min(keys, first + 500); i++) {
        const subject = `tenant-${i % 97}.key-${i}.${"x".repeat(1 + (i % 7))}`;
        batch.append("a", { subject, payload: bytes(`${round}:${i}`), timestampMs: 1000 + i });
      }
      batch.append("b", { subject: `b.${round}`, payload: bytes("b"), timestampMs: 5 });
      await batch.commit();
    }
  }
  await log.purge("a", { subject: "tenant-3.>" });
  await log.removeMessage("b", 1);
  const lastSeqs = { a: log.state("a").lastSeq, b: log.state("b").lastSeq };
  await log.close();
  return lastSeqs;
}

/** Everything a reader can see, in a comparable form. */
async function observe(log: StreamLog): Promise<unknown> {
  const out: Record<string, unknown> = { digest: await log.digest() };
  for (const name of log.streamNames()) {
    const subjects = await collect(log.subjects(name));
    out[name] = {
      state: log.state(name),
      horizon: log.watchHorizon(name),
      largest: log.largestPayload(name),
      subjects,
      seqs: subjects.map((s) => log.seqsOfSubject(name, s.subject)),
      page: [...log.subjectsAfter(name, "tenant-5.>", "tenant-5.key-500")].slice(0, 5),
    };
  }
  return out;
}

async function withDb<T>(
  path: string,
  fn: (db: ClassicLevel<Uint8Array, Uint8Array>) => Promise<T>,
) {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(path, VIEW);
  await db.open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

async function checkpointKeys(path: string): Promise<number> {
  return withDb(path, async (db) => (await db.keys({ ...CHECKPOINT_RANGE }).all()).length);
}

describe("index checkpoint", () => {
  it("is loaded after a clean close and equals what the full scan builds", async () => {
    const path = dir();
    await fill(path, 12_000);
    expect(await checkpointKeys(path)).toBeGreaterThanOrEqual(3); // header + several parts
    const fromCheckpoint = await StreamLog.open(path);
    expect(fromCheckpoint.opened.index).toEqual({ from: "checkpoint" });
    const seen = await observe(fromCheckpoint);
    // The open removed it before returning: nothing can make it stale.
    await fromCheckpoint.close();

    await withDb(path, (db) => deleteIndexCheckpoint(db as never));
    const fromScan = await StreamLog.open(path);
    expect(fromScan.opened.index).toEqual({ from: "scan" });
    expect(await observe(fromScan)).toEqual(seen);
    await fromScan.close();
  });

  it("is gone once open returns, so a crash after writes is recovered by the scan", async () => {
    const path = dir();
    await fill(path, 600);
    const db = new ClassicLevel<Uint8Array, Uint8Array>(path, VIEW);
    await db.open();
    const log = await StreamLog.open(db as never);
    expect(log.opened.index.from).toBe("checkpoint");
    expect((await db.keys({ ...CHECKPOINT_RANGE }).all()).length).toBe(0);
    const seq = await log.append("b", { subject: "after", payload: bytes("new"), timestampMs: 9 });
    // A crash: the db goes away without the log's close (so no new checkpoint).
    await db.close();
    const reopened = await StreamLog.open(path);
    expect(reopened.opened.index).toEqual({ from: "scan" });
    expect((await reopened.getBySeq("b", seq))?.payload).toEqual(bytes("new"));
    await reopened.close();
  });

  it("falls back to the scan when a part is damaged, and says why", async () => {
    const path = dir();
    await fill(path, 6_000);
    const before = await StreamLog.open(path);
    const seen = await observe(before);
    await before.close();
    await withDb(path, async (db) => {
      const [key, value] = (await db.iterator({ ...CHECKPOINT_PARTS_RANGE, limit: 1 }).all())[0]!;
      const damaged = value.slice();
      damaged[100] = damaged[100]! ^ 0x10;
      await db.put(key, damaged);
    });
    const log = await StreamLog.open(path);
    expect(log.opened.index).toEqual({
      from: "scan",
      rejectedCheckpoint: expect.stringContaining("CRC32C"),
    });
    expect(await observe(log)).toEqual(seen);
    await log.close();
    expect(await checkpointKeys(path)).toBeGreaterThanOrEqual(2); // a new one: header and parts
  });

  it("ignores parts left without their header (a close cut short) and clears them", async () => {
    const path = dir();
    await fill(path, 600);
    await withDb(path, (db) => db.del(CHECKPOINT_HEADER_KEY));
    const db = new ClassicLevel<Uint8Array, Uint8Array>(path, VIEW);
    await db.open();
    const log = await StreamLog.open(db as never);
    expect(log.opened.index).toEqual({ from: "scan" });
    expect((await db.keys({ ...CHECKPOINT_RANGE }).all()).length).toBe(0);
    await db.close();
  });

  it("is refused unless it describes exactly the streams the records name", async () => {
    const path = dir();
    const last = await fill(path, 600);
    await withDb(path, async (db) => {
      const streams = new Map([
        ["a", new StreamIndex(1, config("a", { maxMsgsPerSubject: 3 }), last.a)],
        ["b", new StreamIndex(2, config("b"), last.b)],
      ]);
      expect((await readIndexCheckpoint(db as never, streams))?.get("a")?.state()).toMatchObject({
        lastSeq: last.a,
      });
      streams.set("b", new StreamIndex(2, config("b"), last.b + 1));
      await expect(readIndexCheckpoint(db as never, streams)).rejects.toThrow(/moved on/);
      streams.delete("b");
      await expect(readIndexCheckpoint(db as never, streams)).rejects.toThrow(/2 streams/);
    });
  });
});
