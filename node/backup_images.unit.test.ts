/**
 * BackupImages on a real stream log (LevelDB in a temp dir) and a manual clock (the idle
 * timeout without waiting 30 s): a close that lands while a read runs (the client's
 * connection dropped) waits for that read instead of closing the LevelDB iterator under it,
 * an idle image is closed, at most two are open, a closed registry refuses, and the digest
 * of the last chunk is the SHA-256 of every byte read.
 */
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { LogSnapshotReader, StreamLog } from "../log/index.js";
import { isKvError } from "../proto/index.js";
import { removeDir, tempDir } from "../test_support/index.js";
import { BackupImages, type FrozenImage } from "./backup_images.js";
import { ManualClock } from "./clock.js";

const dirs: string[] = [];
const logs: StreamLog[] = [];

afterEach(async () => {
  await Promise.all(logs.splice(0).map((l) => l.close()));
  for (const d of dirs.splice(0)) removeDir(d);
});

async function filledLog(): Promise<StreamLog> {
  const dir = tempDir("streamkv-images-");
  dirs.push(dir);
  const log = await StreamLog.open(dir);
  logs.push(log);
  await log.createStream({
    name: "KV_a",
    maxMsgsPerSubject: 1,
    maxAgeMs: 0,
    maxBytes: -1,
    maxMsgs: -1,
    maxMsgSize: -1,
    discard: "new",
  });
  const b = log.batch();
  const payload = new Uint8Array(1000).fill(1);
  for (let i = 0; i < 300; i++) b.append("KV_a", { subject: `k.${i}`, payload, timestampMs: i });
  await b.commit({ sync: true });
  return log;
}

function freezer(log: StreamLog): () => Promise<FrozenImage> {
  return async () => {
    const reader = await LogSnapshotReader.open(log, "kv/applied");
    return {
      header: {
        formatVersion: 1,
        clusterId: "c",
        nodeId: "n1",
        voters: ["n1"],
        learners: [],
        raftIndex: 1,
        raftTerm: 1,
        createdMs: 0,
        streamkvVersion: "test",
        buckets: await reader.streamNames().then((n) => n.map((s) => s.slice(3))),
      },
      read: (offset, maxBytes) => reader.read(offset, maxBytes),
      close: () => reader.close(),
    };
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (!isKvError(err)) throw err;
    return err.code;
  }
}

describe("BackupImages", () => {
  it("a close during a read waits for it: the read completes, later reads are refused", async () => {
    const log = await filledLog();
    const images = new BackupImages({ clock: new ManualClock() });
    const { id, header } = await images.open(freezer(log));
    expect(header.buckets).toEqual(["a"]);
    const reading = images.read(id, 0, 64 * 1024);
    images.close(id);
    const chunk = await reading;
    expect(chunk.data.byteLength).toBeGreaterThan(0);
    expect(images.openCount).toBe(0);
    expect(await codeOf(images.read(id, chunk.data.byteLength, 64 * 1024))).toBe(
      "INVALID_ARGUMENT",
    );
  });

  it("the last chunk carries the SHA-256 of every byte; a resend of it too", async () => {
    const log = await filledLog();
    const images = new BackupImages({ clock: new ManualClock() });
    const { id } = await images.open(freezer(log));
    const hash = createHash("sha256");
    let offset = 0;
    let last = await images.read(id, 0, 8192);
    for (let i = 0; i < 1000 && !last.done; i++) {
      hash.update(last.data);
      expect(last.imageSha256.byteLength).toBe(0);
      offset += last.data.byteLength;
      last = await images.read(id, offset, 8192);
    }
    hash.update(last.data);
    expect(last.done).toBe(true);
    expect(Buffer.from(last.imageSha256)).toEqual(hash.digest());
    const resent = await images.read(id, offset, 8192);
    expect(Buffer.from(resent.imageSha256)).toEqual(Buffer.from(last.imageSha256));
    images.close(id);
  });

  it("an image not read for 30 s is closed; two at most; a closed registry refuses", async () => {
    const log = await filledLog();
    const clock = new ManualClock();
    const images = new BackupImages({ clock });
    const a = await images.open(freezer(log));
    await images.read(a.id, 0, 4096);
    const b = await images.open(freezer(log));
    expect(await codeOf(images.open(freezer(log)))).toBe("OVERLOADED");
    clock.advance(29_999);
    expect(images.openCount).toBe(2);
    clock.advance(1);
    expect(images.openCount).toBe(0);
    expect(await codeOf(images.read(a.id, 0, 4096))).toBe("INVALID_ARGUMENT");
    expect(await codeOf(images.read(b.id, 0, 4096))).toBe("INVALID_ARGUMENT");
    const c = await images.open(freezer(log));
    images.closeAll();
    expect(images.openCount).toBe(0);
    expect(await codeOf(images.read(c.id, 0, 4096))).toBe("INVALID_ARGUMENT");
    expect(await codeOf(images.open(freezer(log)))).toBe("SHUTTING_DOWN");
  });
});
