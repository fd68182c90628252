import { ClassicLevel } from "classic-level";
import { afterEach, describe, expect, it } from "vitest";
import { MESSAGES_RANGE } from "./keys.js";
import { LogSnapshotReader, LogSnapshotWriter } from "./snapshot.js";
import { StreamLog } from "./stream_log.js";
import { bytes, collect, config, errorCode, tempDir, text } from "./test_helpers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openLog(): Promise<{ log: StreamLog; path: string }> {
  const dir = tempDir("streamkv-snap-");
  const holder = { log: await StreamLog.open(dir.path) };
  cleanups.push(async () => {
    await holder.log.close();
    dir.remove();
  });
  return { log: holder.log, path: dir.path };
}

const put = (subject: string, payload: string, timestampMs = 1) => ({
  subject,
  payload: bytes(payload),
  timestampMs,
});

/** A log with history limits, markers, gaps, a retired id and meta records. */
async function fill(log: StreamLog, rounds = 40): Promise<void> {
  await log.createStream(config("KV_a", { maxMsgsPerSubject: 3 }));
  await log.createStream(config("KV_b"));
  await log.createStream(config("KV_gone"));
  await log.createStream(config("KV_empty"));
  for (let i = 0; i < rounds; i++) {
    await log.append("KV_a", put(`k.${i % 7}`, `a-${i}-${"x".repeat(i)}`, i));
    await log.append("KV_b", put(`m.${i % 3}.n`, `b-${i}`, i));
  }
  await log.append("KV_b", { ...put("m.0.n", ""), operation: "DEL" });
  await log.purge("KV_b", { subject: "m.1.n", keep: 1 });
  await log.append("KV_empty", put("z", "gone soon"));
  await log.purge("KV_empty");
  await log.deleteStream("KV_gone");
  await log.writeMeta({ "kv/applied": bytes("applied-77"), "kv/ring/0": bytes("r0") });
}

/** Streams the whole export of `from` into `to` with small chunks; returns the chunk count. */
async function transfer(
  from: StreamLog,
  to: StreamLog,
  maxBytes = 300,
  extra: Record<string, Uint8Array | null> = {},
): Promise<number> {
  const reader = await LogSnapshotReader.open(from, "kv/applied");
  const writer = LogSnapshotWriter.begin(to);
  let offset = 0;
  let chunks = 0;
  try {
    for (let i = 0; i < 100_000; i++) {
      const { data, done } = await reader.read(offset, maxBytes);
      await writer.write(offset, data, done);
      offset += data.byteLength;
      chunks++;
      if (done) break;
    }
  } finally {
    reader.close();
  }
  await writer.install(extra);
  return chunks;
}

async function snapshotOf(log: StreamLog) {
  const names = log.streamNames();
  const out: Record<string, unknown> = {};
  for (const name of names) {
    out[name] = {
      config: log.streamConfig(name),
      state: log.state(name),
      messages: (await collect(log.iterate(name))).map((m) => ({ ...m, payload: text(m.payload) })),
    };
  }
  return { names, out, applied: text(await log.getMeta("kv/applied")) };
}

async function rawMessageKeys(path: string): Promise<number> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(path, {
    keyEncoding: "view",
    valueEncoding: "view",
  });
  await db.open();
  try {
    return (await db.keys({ ...MESSAGES_RANGE }).all()).length;
  } finally {
    await db.close();
  }
}

describe("log snapshot export and import", () => {
  it("a round trip across two LevelDBs gives the same digest and data, and survives a reopen", async () => {
    const { log: source } = await openLog();
    await fill(source);
    const { log: target, path } = await openLog();
    // The target has a past of its own, which the import replaces entirely.
    await target.createStream(config("KV_old"));
    await target.createStream(config("KV_a"));
    for (let i = 0; i < 10; i++) await target.append("KV_old", put(`o.${i}`, `old-${i}`));
    await target.writeMeta({ "kv/applied": bytes("applied-3"), "kv/bucket/old": bytes("x") });

    const chunks = await transfer(source, target);
    expect(chunks).toBeGreaterThan(5);
    expect(await target.digest()).toBe(await source.digest());
    expect(await snapshotOf(target)).toEqual(await snapshotOf(source));
    expect(await target.getMeta("kv/bucket/old")).toBeNull();

    // Writes go on: seqs continue, a new stream gets an id of its own.
    const next = source.state("KV_b").lastSeq + 1;
    expect(await target.append("KV_b", put("m.9.n", "after"))).toBe(next);
    await target.createStream(config("KV_new"));
    await target.append("KV_new", put("n", "fresh"));
    await source.append("KV_b", put("m.9.n", "after"));
    await source.createStream(config("KV_new"));
    await source.append("KV_new", put("n", "fresh"));
    expect(await target.digest()).toBe(await source.digest());

    // Reopen: the indexes rebuild from disk the same, the old ranges are gone.
    await target.close();
    const reopened = await StreamLog.open(path);
    expect(await reopened.digest()).toBe(await source.digest());
    expect(await snapshotOf(reopened)).toEqual(await snapshotOf(source));
    await reopened.close();
    const live = source.streamNames().reduce((n, s) => n + source.state(s).messages, 0);
    expect(await rawMessageKeys(path)).toBe(live);
    const again = await StreamLog.open(path);
    cleanups.push(() => again.close());
  });

  it("exports the view of one moment: writes after open are not in it", async () => {
    const { log: source } = await openLog();
    await fill(source, 10);
    const before = await source.digest();
    const reader = await LogSnapshotReader.open(source, "kv/applied");
    expect(text(reader.peekedMeta)).toBe("applied-77");
    await source.append("KV_a", put("k.late", "late"));
    await source.writeMeta({ "kv/applied": bytes("applied-78") });
    const { log: target } = await openLog();
    const writer = LogSnapshotWriter.begin(target);
    let offset = 0;
    for (let i = 0; i < 1000; i++) {
      const { data, done } = await reader.read(offset, 64);
      // A resend of the same offset gives the same bytes.
      expect((await reader.read(offset, 64)).data).toEqual(data);
      await writer.write(offset, data, done);
      offset += data.byteLength;
      if (done) break;
    }
    reader.close();
    // The view cannot be rewound.
    expect(await errorCode(() => reader.read(0, 64))).toBe("INVALID_ARGUMENT");
    await writer.install();
    expect(await target.digest()).toBe(before);
    expect(text(await target.getMeta("kv/applied"))).toBe("applied-77");
  });

  it("keeps this replica's local meta records and adds the caller's in the same write", async () => {
    const { log: source } = await openLog();
    await fill(source, 5);
    await source.writeMeta({ "node/id": bytes("leader") });
    const { log: target } = await openLog();
    await target.writeMeta({ "node/id": bytes("follower"), "node/other": bytes("kept") });
    await transfer(source, target, 1024, { "node/snapshot": bytes("meta") });
    expect(text(await target.getMeta("node/id"))).toBe("follower");
    expect(text(await target.getMeta("node/other"))).toBe("kept");
    expect(text(await target.getMeta("node/snapshot"))).toBe("meta");
    expect(text(await target.getMeta("kv/applied"))).toBe("applied-77");
  });

  it("detects a corrupted chunk and a corrupted record inside a re-sealed chunk", async () => {
    const { log: source } = await openLog();
    await fill(source, 20);
    const { log: target } = await openLog();
    await target.createStream(config("KV_mine"));
    await target.append("KV_mine", put("a", "mine"));
    const before = await target.digest();

    const reader = await LogSnapshotReader.open(source, "kv/applied");
    const first = await reader.read(0, 1 << 20);
    reader.close();
    const flipped = first.data.slice();
    flipped[Math.floor(flipped.length / 2)]! ^= 0x40;
    const w1 = LogSnapshotWriter.begin(target);
    expect(await errorCode(() => w1.write(0, flipped, first.done))).toBe("CORRUPT_RECORD");
    // A broken import refuses more chunks; dropping it leaves the log as it was.
    expect(await errorCode(() => w1.write(0, first.data, first.done))).toBe("INVALID_ARGUMENT");
    w1.abort();

    // Damage one stored record's body and re-seal the chunk: the record's own CRC catches it.
    const resealed = first.data.slice();
    const at = Buffer.from(resealed).indexOf(Buffer.from("a-7-"));
    expect(at).toBeGreaterThan(0);
    resealed[at] = "A".charCodeAt(0);
    const { crc32c } = await import("./crc32c.js");
    const body = resealed.length - 4;
    new DataView(resealed.buffer).setUint32(body, crc32c(resealed, 0, body), true);
    const w2 = LogSnapshotWriter.begin(target);
    expect(await errorCode(() => w2.write(0, resealed, first.done))).toBe("CORRUPT_RECORD");
    w2.abort();
    // Truncated: the end record is missing.
    const w3 = LogSnapshotWriter.begin(target);
    const partial = await LogSnapshotReader.open(source, "kv/applied");
    const small = await partial.read(0, 100);
    partial.close();
    expect(small.done).toBe(false);
    await w3.write(0, small.data, false);
    expect(await errorCode(() => w3.install())).toBe("INVALID_ARGUMENT");
    w3.abort();

    expect(await target.digest()).toBe(before);
    expect(text((await target.lastBySubject("KV_mine", "a"))?.payload)).toBe("mine");
  });

  it("a crash in the middle of an import leaves the old state whole, and the staged data is cleared", async () => {
    const { log: source } = await openLog();
    await fill(source, 60);
    const dir = tempDir("streamkv-snap-crash-");
    cleanups.push(() => dir.remove());
    let target = await StreamLog.open(dir.path);
    await target.createStream(config("KV_mine"));
    for (let i = 0; i < 5; i++) await target.append("KV_mine", put(`a.${i}`, `mine-${i}`));
    await target.writeMeta({ "kv/applied": bytes("applied-5") }, { sync: true });
    const before = await target.digest();
    const reader = await LogSnapshotReader.open(source, "kv/applied");
    const writer = LogSnapshotWriter.begin(target);
    let offset = 0;
    for (let i = 0; i < 6; i++) {
      const { data, done } = await reader.read(offset, 200);
      expect(done).toBe(false);
      await writer.write(offset, data, done);
      offset += data.byteLength;
    }
    reader.close();
    // "Crash": the process stops between chunks (no install, no abort).
    await target.flush();
    await target.close();
    expect(await rawMessageKeys(dir.path)).toBeGreaterThan(5);

    target = await StreamLog.open(dir.path);
    expect(await target.digest()).toBe(before);
    expect(text(await target.getMeta("kv/applied"))).toBe("applied-5");
    // A new stream never reuses an id the import reserved.
    await target.createStream(config("KV_later"));
    await target.append("KV_later", put("x", "later"));
    await target.close();
    expect(await rawMessageKeys(dir.path)).toBe(6);
    // The next import succeeds.
    target = await StreamLog.open(dir.path);
    await transfer(source, target);
    expect(await target.digest()).toBe(await source.digest());
    await target.close();
  });

  it("refuses to export a log with a corrupted record", async () => {
    const { log: source, path } = await openLog();
    await source.createStream(config("KV_a"));
    await source.append("KV_a", put("a", "first"));
    await source.close();
    const db = new ClassicLevel<Uint8Array | string, Uint8Array>(path, {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    const log = await StreamLog.open(db);
    cleanups.push(async () => {
      await log.close();
      await db.close();
    });
    const [key, value] = (
      await db.iterator<Uint8Array, Uint8Array>({ ...MESSAGES_RANGE }).all()
    )[0]!;
    const damaged = value.slice();
    damaged[damaged.length - 7]! ^= 1;
    await db.put(key, damaged);
    const reader = await LogSnapshotReader.open(log, "kv/applied");
    expect(await errorCode(() => reader.read(0, 1 << 20))).toBe("CORRUPT_RECORD");
    reader.close();
  });
});
