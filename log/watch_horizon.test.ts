/**
 * The watch horizon (StreamLog.watchHorizon): what a resuming watch must know about
 * removals. removedHighSeq is exact (the highest seq not stored), also after a reopen
 * or a snapshot install; vanishedHighSeq is persisted in the stream record.
 */
import { afterEach, describe, expect, it } from "vitest";
import { LogSnapshotReader, LogSnapshotWriter } from "./snapshot.js";
import { StreamLog } from "./stream_log.js";
import { bytes, config, tempDir } from "./test_helpers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openLog(): Promise<{ log: StreamLog; reopen(): Promise<StreamLog> }> {
  const dir = tempDir("streamkv-horizon-");
  const holder = { log: await StreamLog.open(dir.path) };
  cleanups.push(async () => {
    await holder.log.close();
    dir.remove();
  });
  return {
    log: holder.log,
    async reopen() {
      await holder.log.close();
      holder.log = await StreamLog.open(dir.path);
      return holder.log;
    },
  };
}

const put = (subject: string, payload = subject) => ({
  subject,
  payload: bytes(payload),
  timestampMs: 1,
});
const marker = (subject: string) => ({ ...put(subject, ""), operation: "DEL" as const });

describe("watch horizon", () => {
  it("is zero while nothing was ever removed", async () => {
    const { log, reopen } = await openLog();
    await log.createStream(config("s"));
    for (let i = 0; i < 5; i++) await log.append("s", put(`k.${i % 2}`));
    expect(log.watchHorizon("s")).toEqual({ removedHighSeq: 0, vanishedHighSeq: 0 });
    expect((await reopen()).watchHorizon("s")).toEqual({ removedHighSeq: 0, vanishedHighSeq: 0 });
  });

  it("removedHighSeq follows trims, and is found again exactly after a reopen", async () => {
    const { log, reopen } = await openLog();
    await log.createStream(config("s", { maxMsgsPerSubject: 2 }));
    // seqs 1..6: a b a b a c -> a's 1 trimmed (a keeps 3 and 5, b 2 and 4).
    for (const s of ["a", "b", "a", "b", "a", "c"]) await log.append("s", put(s));
    expect(log.watchHorizon("s").removedHighSeq).toBe(1);
    await log.removeMessage("s", 5);
    expect(log.watchHorizon("s").removedHighSeq).toBe(5);
    const again = await reopen();
    expect(again.watchHorizon("s")).toEqual({ removedHighSeq: 5, vanishedHighSeq: 0 });
    // A removal below the horizon does not lower it.
    await again.removeMessage("s", 2);
    expect(again.watchHorizon("s").removedHighSeq).toBe(5);
  });

  it("vanishedHighSeq records a subject whose last message went, and survives a reopen", async () => {
    const { log, reopen } = await openLog();
    await log.createStream(config("s"));
    await log.append("s", put("a")); // 1
    await log.append("s", marker("a")); // 2
    await log.append("s", put("b")); // 3
    // Trimming a subject down to its marker leaves it: nothing vanished.
    await log.purge("s", { subject: "a", keep: 1 });
    expect(log.watchHorizon("s")).toEqual({ removedHighSeq: 1, vanishedHighSeq: 0 });
    // purgeDeletes of an old marker removes the subject entirely.
    await log.purge("s", { subject: "a", keep: 0 });
    expect(log.watchHorizon("s")).toEqual({ removedHighSeq: 2, vanishedHighSeq: 2 });
    const again = await reopen();
    expect(again.watchHorizon("s")).toEqual({ removedHighSeq: 2, vanishedHighSeq: 2 });
  });

  it("an overwrite that trims a subject's only message does not make it vanish", async () => {
    const { log, reopen } = await openLog();
    await log.createStream(config("s", { maxMsgsPerSubject: 1 }));
    for (const s of ["a", "a", "b", "a"]) await log.append("s", put(s));
    expect(log.watchHorizon("s")).toEqual({ removedHighSeq: 2, vanishedHighSeq: 0 });
    expect((await reopen()).watchHorizon("s")).toEqual({ removedHighSeq: 2, vanishedHighSeq: 0 });
  });

  it("a purge of the whole stream makes every subject vanish", async () => {
    const { log, reopen } = await openLog();
    await log.createStream(config("s"));
    for (const s of ["a", "b", "c"]) await log.append("s", put(s));
    await log.purge("s");
    expect(log.watchHorizon("s")).toEqual({ removedHighSeq: 3, vanishedHighSeq: 3 });
    expect((await reopen()).watchHorizon("s")).toEqual({ removedHighSeq: 3, vanishedHighSeq: 3 });
  });

  it("discard=old limits that drop a subject's only message make it vanish", async () => {
    const { log } = await openLog();
    await log.createStream(config("s", { maxMsgs: 2 }));
    for (const s of ["a", "b", "c"]) await log.append("s", put(s));
    expect(log.watchHorizon("s")).toEqual({ removedHighSeq: 1, vanishedHighSeq: 1 });
  });

  it("is carried by a snapshot install", async () => {
    const source = await openLog();
    const target = await openLog();
    await source.log.createStream(config("s", { maxMsgsPerSubject: 1 }));
    for (const s of ["a", "b", "a", "c"]) await source.log.append("s", put(s));
    await source.log.append("s", marker("b")); // 5; b's 2 trimmed
    await source.log.purge("s", { subject: "b", keep: 0 }); // b vanishes at 5
    await source.log.writeMeta({ "kv/applied": bytes("x") });
    const expected = source.log.watchHorizon("s");
    expect(expected).toEqual({ removedHighSeq: 5, vanishedHighSeq: 5 });

    const reader = await LogSnapshotReader.open(source.log, "kv/applied");
    const writer = LogSnapshotWriter.begin(target.log);
    let offset = 0;
    try {
      for (let i = 0; i < 10_000; i++) {
        const { data, done } = await reader.read(offset, 256);
        await writer.write(offset, data, done);
        offset += data.byteLength;
        if (done) break;
      }
    } finally {
      reader.close();
    }
    await writer.install({});
    expect(target.log.watchHorizon("s")).toEqual(expected);
    expect((await target.reopen()).watchHorizon("s")).toEqual(expected);
  });
});
