import { ClassicLevel } from "classic-level";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KvError } from "../proto/index.js";
import { deleteIndexCheckpoint } from "./index_checkpoint.js";
import { messageKey, streamKey } from "./keys.js";
import { StreamLog } from "./stream_log.js";
import { bytes, collect, config, errorCode, tempDir, text } from "./test_helpers.js";
import type { IterateOptions, Operation } from "./types.js";

let dir: ReturnType<typeof tempDir>;
let log: StreamLog;

beforeEach(async () => {
  dir = tempDir();
  log = await StreamLog.open(dir.path);
});

afterEach(async () => {
  await log.close();
  dir.remove();
});

async function reopen(): Promise<void> {
  await log.close();
  log = await StreamLog.open(dir.path);
}

const put = (subject: string, payload = subject, timestampMs = 1000) => ({
  subject,
  payload: bytes(payload),
  timestampMs,
});

async function seqsOf(stream: string, filter?: string): Promise<number[]> {
  return (await collect(log.iterate(stream, { filter }))).map((m) => m.seq);
}

describe("streams", () => {
  it("creates, lists, updates and deletes streams", async () => {
    await log.createStream(config("b"));
    await log.createStream(config("a", { maxMsgsPerSubject: 5 }));
    expect(log.streamNames()).toEqual(["a", "b"]);
    expect(log.streamConfig("a")).toEqual(config("a", { maxMsgsPerSubject: 5 }));
    expect(log.streamConfig("zz")).toBeUndefined();
    expect(log.state("a")).toEqual({ firstSeq: 1, lastSeq: 0, messages: 0, bytes: 0, subjects: 0 });

    await log.updateStream(config("a", { maxMsgsPerSubject: 2, maxAgeMs: 10 }));
    expect(log.streamConfig("a")?.maxAgeMs).toBe(10);
    await log.deleteStream("b");
    expect(log.streamNames()).toEqual(["a"]);
    expect(await errorCode(() => log.state("b"))).toBe("STREAM_NOT_FOUND");
    await reopen();
    expect(log.streamNames()).toEqual(["a"]);
    expect(log.streamConfig("a")).toEqual(config("a", { maxMsgsPerSubject: 2, maxAgeMs: 10 }));
  });

  it("treats an identical create as a no-op and a different one as STREAM_EXISTS", async () => {
    await log.createStream(config("s", { maxMsgsPerSubject: 3 }));
    await log.append("s", put("k"));
    await log.createStream(config("s", { maxMsgsPerSubject: 3 }));
    expect(log.state("s").messages).toBe(1);
    expect(await errorCode(() => log.createStream(config("s", { maxMsgsPerSubject: 4 })))).toBe(
      "STREAM_EXISTS",
    );
    expect(log.streamConfig("s")?.maxMsgsPerSubject).toBe(3);
  });

  it.each([
    ["empty name", config("")],
    ["bad name char", config("a.b")],
    ["name too long", config("x".repeat(513))],
    ["history 0", config("s", { maxMsgsPerSubject: 0 })],
    ["history 65", config("s", { maxMsgsPerSubject: 65 })],
    ["negative age", config("s", { maxAgeMs: -1 })],
    ["fractional bytes", config("s", { maxBytes: 1.5 })],
    ["zero msgs", config("s", { maxMsgs: 0 })],
    ["msg size -2", config("s", { maxMsgSize: -2 })],
    ["discard", config("s", { discard: "drop" as "old" })],
    ["NaN", config("s", { maxMsgs: Number.NaN })],
  ])("rejects %s with INVALID_CONFIG", async (_what, cfg) => {
    expect(await errorCode(() => log.createStream(cfg))).toBe("INVALID_CONFIG");
    expect(log.streamNames()).toEqual([]);
    await log.createStream(config("ok"));
  });

  it("accepts the largest name and history", async () => {
    await log.createStream(config("x".repeat(256), { maxMsgsPerSubject: 64 }));
    expect(log.streamNames()).toHaveLength(1);
  });

  it("fails on missing streams with STREAM_NOT_FOUND", async () => {
    expect(await errorCode(() => log.append("none", put("a")))).toBe("STREAM_NOT_FOUND");
    expect(await errorCode(() => log.updateStream(config("none")))).toBe("STREAM_NOT_FOUND");
    expect(await errorCode(() => log.deleteStream("none"))).toBe("STREAM_NOT_FOUND");
    expect(await errorCode(() => log.purge("none"))).toBe("STREAM_NOT_FOUND");
    expect(await errorCode(() => log.expire("none", 1))).toBe("STREAM_NOT_FOUND");
    expect(await errorCode(() => log.getBySeq("none", 1))).toBe("STREAM_NOT_FOUND");
    expect(await errorCode(() => log.lastBySubject("none", "a"))).toBe("STREAM_NOT_FOUND");
    expect(await errorCode(() => collect(log.iterate("none")))).toBe("STREAM_NOT_FOUND");
    expect(await errorCode(() => log.subjects("none"))).toBe("STREAM_NOT_FOUND");
  });

  it("deleting a stream removes all its data, also on disk", async () => {
    await log.createStream(config("s"));
    for (let i = 0; i < 10; i++) await log.append("s", put(`k${i}`));
    await log.deleteStream("s", { sync: true });
    await log.createStream(config("s"));
    expect(log.state("s")).toEqual({ firstSeq: 1, lastSeq: 0, messages: 0, bytes: 0, subjects: 0 });
    expect(await log.getBySeq("s", 1)).toBeNull();
    await log.close();
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir.path, {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    const keys = await db.keys().all();
    await db.close();
    const messageKeys = keys.filter((k) => text(k)?.startsWith("log/m/"));
    expect(messageKeys).toEqual([]);
    log = await StreamLog.open(dir.path);
    expect(log.state("s").lastSeq).toBe(0);
  });
});

describe("append and reads", () => {
  beforeEach(async () => {
    await log.createStream(config("s"));
  });

  it("assigns seqs from 1 and reads them back by seq and subject", async () => {
    expect(await log.append("s", put("a.1", "x", 5))).toBe(1);
    expect(await log.append("s", { ...put("a.2", ""), operation: "DEL" })).toBe(2);
    expect(await log.append("s", put("a.1", "yy", 7))).toBe(3);
    expect(await log.getBySeq("s", 1)).toEqual({
      stream: "s",
      seq: 1,
      subject: "a.1",
      payload: bytes("x"),
      operation: "PUT",
      timestampMs: 5,
    });
    expect((await log.getBySeq("s", 2))?.operation).toBe("DEL");
    expect(await log.getBySeq("s", 4)).toBeNull();
    expect(await log.getBySeq("s", 0)).toBeNull();
    expect(text((await log.lastBySubject("s", "a.1"))?.payload)).toBe("yy");
    expect(await log.lastBySubject("s", "a.3")).toBeNull();
    expect(log.state("s")).toEqual({ firstSeq: 1, lastSeq: 3, messages: 3, bytes: 3, subjects: 2 });
    expect(log.subjectInfo("s", "a.1")).toEqual({
      subject: "a.1",
      lastSeq: 3,
      operation: "PUT",
      messages: 2,
    });
    expect(log.subjectInfo("s", "a.2")?.operation).toBe("DEL");
    expect(log.subjectInfo("s", "nope")).toBeUndefined();
    expect(log.seqsOfSubject("s", "a.1")).toEqual([1, 3]);
    expect(log.seqsOfSubject("s", "nope")).toEqual([]);
  });

  it("rejects bad input with typed errors and stays usable", async () => {
    for (const subject of ["", "a..b", "a.", ".a", "a.*", ">", "a.>", "a b"]) {
      expect(await errorCode(() => log.append("s", put(subject)))).toBe("INVALID_SUBJECT");
    }
    expect(
      await errorCode(() =>
        log.append("s", { ...put("a"), payload: "x" as unknown as Uint8Array }),
      ),
    ).toBe("INVALID_ARGUMENT");
    expect(await errorCode(() => log.append("s", { ...put("a"), timestampMs: -1 }))).toBe(
      "INVALID_ARGUMENT",
    );
    expect(
      await errorCode(() => log.append("s", { ...put("a"), operation: "NOPE" as "PUT" })),
    ).toBe("INVALID_ARGUMENT");
    expect(await errorCode(() => log.getBySeq("s", 1.5))).toBe("INVALID_ARGUMENT");
    expect(await errorCode(() => log.lastBySubject("s", "a.*"))).toBe("INVALID_SUBJECT");
    expect(await errorCode(() => log.subjects("s", "a..b"))).toBe("INVALID_SUBJECT");
    expect(await errorCode(() => collect(log.iterate("s", { filter: "a.>.b" })))).toBe(
      "INVALID_SUBJECT",
    );
    expect(log.state("s").lastSeq).toBe(0);
    expect(await log.append("s", put("a"))).toBe(1);
  });

  it("enforces maxMsgSize and the hard limit with MESSAGE_TOO_LARGE", async () => {
    await log.createStream(config("small", { maxMsgSize: 4 }));
    expect(await log.append("small", put("a", "1234"))).toBe(1);
    expect(await errorCode(() => log.append("small", put("a", "12345")))).toBe("MESSAGE_TOO_LARGE");
    await log.close();
    log = await StreamLog.open(dir.path, { maxMessageSizeBytes: 8 });
    expect(await errorCode(() => log.append("s", put("a", "123456789")))).toBe("MESSAGE_TOO_LARGE");
    expect(await log.append("s", put("a", "12345678"))).toBe(1);
    expect(log.state("small").lastSeq).toBe(1);
  });

  it("iterates with fromSeq, toSeq and wildcard filters", async () => {
    const subjects = ["a.x", "a.y", "b.x", "a.x.1", "a.y", "c"];
    for (const s of subjects) await log.append("s", put(s));
    expect(await seqsOf("s")).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await seqsOf("s", "a.*")).toEqual([1, 2, 5]);
    expect(await seqsOf("s", "a.>")).toEqual([1, 2, 4, 5]);
    expect(await seqsOf("s", "*.x")).toEqual([1, 3]);
    expect(await seqsOf("s", "a.y")).toEqual([2, 5]);
    expect(await seqsOf("s", "zz")).toEqual([]);
    const range = await collect(log.iterate("s", { fromSeq: 2, toSeq: 5, filter: ">" }));
    expect(range.map((m) => m.seq)).toEqual([2, 3, 4, 5]);
    const literal = await collect(log.iterate("s", { fromSeq: 3, filter: "a.y" }));
    expect(literal.map((m) => m.seq)).toEqual([5]);
    expect((await collect(log.iterate("s", { fromSeq: 7 }))).length).toBe(0);
  });

  it("iterates and counts the last message per subject as of toSeq, markers optional", async () => {
    // a: 1 3 6(DEL) 8; b: 2 5; c.x: 4 7(PURGE)
    const subjects = ["a", "b", "a", "c.x", "b", "a", "c.x", "a"];
    for (const [i, s] of subjects.entries()) {
      const operation: Operation = i === 5 ? "DEL" : i === 6 ? "PURGE" : "PUT";
      await log.append("s", { ...put(s), operation });
    }
    const last = async (o: IterateOptions) => {
      const seqs = (await collect(log.iterate("s", { ...o, lastPerSubject: true }))).map(
        (m) => m.seq,
      );
      expect(log.count("s", { ...o, lastPerSubject: true })).toBe(seqs.length);
      return seqs;
    };
    expect(await last({})).toEqual([5, 7, 8]);
    expect(await last({ toSeq: 7 })).toEqual([5, 6, 7]);
    expect(await last({ toSeq: 7, putsOnly: true })).toEqual([5]);
    expect(await last({ toSeq: 4 })).toEqual([2, 3, 4]);
    expect(await last({ toSeq: 4, fromSeq: 3 })).toEqual([3, 4]);
    expect(await last({ toSeq: 5, filter: "a" })).toEqual([3]);
    expect(await last({ toSeq: 7, filter: "a" })).toEqual([6]);
    expect(await last({ toSeq: 7, filter: "c.>" })).toEqual([7]);
    expect(await last({ toSeq: 7, filter: "*" })).toEqual([5, 6]);
    expect(log.count("s", { toSeq: 7, filter: "a" })).toBe(3);
    expect(log.count("s", { toSeq: 7, filter: "a", putsOnly: true })).toBe(2);
    expect(log.count("s", { fromSeq: 3, filter: ">" })).toBe(6);
  });

  it("iterates across chunks and sparse seqs", async () => {
    const b = log.batch();
    for (let i = 0; i < 1000; i++) b.append("s", put(i % 10 === 0 ? "ten" : `k.${i}`));
    await b.commit();
    await log.purge("s", { subject: "k.>" });
    const tens = await collect(log.iterate("s", { filter: "ten" }));
    expect(tens.map((m) => m.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i * 10 + 1));
    expect(await seqsOf("s", "*")).toEqual(tens.map((m) => m.seq));
    expect(await seqsOf("s", "k.*")).toEqual([]);
  });

  it("keeps iterating while messages are removed, skipping what is gone", async () => {
    const b = log.batch();
    for (let i = 0; i < 600; i++) b.append("s", put(`k.${i % 7}`));
    await b.commit();
    const seen: number[] = [];
    for await (const m of log.iterate("s")) {
      seen.push(m.seq);
      if (m.seq === 10) await log.purge("s", { subject: "k.3" });
      if (m.seq === 300) await log.purge("s", { subject: "k.>", keep: 1 });
    }
    expect(seen.slice(0, 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(seen.filter((s) => s > 10 && s <= 300).every((s) => (s - 1) % 7 !== 3)).toBe(true);
    expect(seen.filter((s) => s > 300)).toEqual([594, 595, 596, 597, 598, 600]);
    const early: number[] = [];
    for await (const m of log.iterate("s")) {
      early.push(m.seq);
      await log.deleteStream("s");
    }
    expect(early).toHaveLength(1);
  });

  it("answers payload sizes and the bytes of every stream from memory, also after a reopen", async () => {
    await log.createStream(config("a", { maxMsgsPerSubject: 1 }));
    await log.createStream(config("b"));
    const s1 = await log.append("a", put("k", "12345"));
    await log.append("b", put("k", "123"));
    expect(log.payloadSize("a", s1)).toBe(5);
    expect(log.storedBytes()).toBe(8);
    await log.append("a", put("k", "1")); // trims s1 (one message per subject)
    expect(log.payloadSize("a", s1)).toBeUndefined();
    expect(log.storedBytes()).toBe(4);
    await reopen();
    expect(log.storedBytes()).toBe(4);
    expect(log.payloadSize("a", s1 + 1)).toBe(1);
  });

  it("lists subjects sorted, with a filter", async () => {
    for (const s of ["b.2", "a.1", "b.1", "a.1", "c"]) await log.append("s", put(s));
    await log.append("s", { ...put("c", ""), operation: "PURGE" });
    expect(log.subjects("s")).toEqual([
      { subject: "a.1", lastSeq: 4, operation: "PUT", messages: 2 },
      { subject: "b.1", lastSeq: 3, operation: "PUT", messages: 1 },
      { subject: "b.2", lastSeq: 1, operation: "PUT", messages: 1 },
      { subject: "c", lastSeq: 6, operation: "PURGE", messages: 2 },
    ]);
    expect(log.subjects("s", "b.*").map((i) => i.subject)).toEqual(["b.1", "b.2"]);
    expect(log.subjects("s", "c").map((i) => i.subject)).toEqual(["c"]);
    expect(log.subjects("s", "d")).toEqual([]);
  });
});

describe("limits", () => {
  it("keeps the newest maxMsgsPerSubject messages of each subject", async () => {
    await log.createStream(config("h", { maxMsgsPerSubject: 2 }));
    for (let i = 1; i <= 5; i++) await log.append("h", put("k", `v${i}`));
    await log.append("h", put("other"));
    expect(log.seqsOfSubject("h", "k")).toEqual([4, 5]);
    expect(log.state("h")).toEqual({ firstSeq: 4, lastSeq: 6, messages: 3, bytes: 9, subjects: 2 });
    expect(await log.getBySeq("h", 3)).toBeNull();
    await reopen();
    expect(log.seqsOfSubject("h", "k")).toEqual([4, 5]);
    await log.updateStream(config("h", { maxMsgsPerSubject: 1 }));
    expect(log.seqsOfSubject("h", "k")).toEqual([5]);
  });

  it("discard=new rejects with STREAM_FULL and changes nothing", async () => {
    await log.createStream(config("n", { maxMsgs: 2, discard: "new" }));
    await log.append("n", put("a"));
    await log.append("n", put("b"));
    expect(await errorCode(() => log.append("n", put("c")))).toBe("STREAM_FULL");
    expect(log.state("n")).toEqual({ firstSeq: 1, lastSeq: 2, messages: 2, bytes: 2, subjects: 2 });

    await log.createStream(config("nb", { maxBytes: 10, discard: "new", maxMsgsPerSubject: 1 }));
    await log.append("nb", put("a", "12345"));
    await log.append("nb", put("b", "12345"));
    expect(await errorCode(() => log.append("nb", put("c", "1")))).toBe("STREAM_FULL");
    // An overwrite that replaces the subject's only message fits after the history trim.
    expect(await log.append("nb", put("a", "54321"))).toBe(3);
    expect(log.state("nb")).toMatchObject({ messages: 2, bytes: 10 });
    expect(await errorCode(() => log.append("nb", put("a", "123456")))).toBe("STREAM_FULL");
  });

  it("discard=old drops the oldest messages to meet maxMsgs and maxBytes", async () => {
    await log.createStream(config("o", { maxMsgs: 3 }));
    for (let i = 0; i < 5; i++) await log.append("o", put(`k${i}`));
    expect(await seqsOf("o")).toEqual([3, 4, 5]);
    await log.createStream(config("ob", { maxBytes: 6 }));
    await log.append("ob", put("a", "12"));
    await log.append("ob", put("b", "34"));
    await log.append("ob", put("c", "56"));
    await log.append("ob", put("d", "7890"));
    expect(await seqsOf("ob")).toEqual([3, 4]);
    expect(log.state("ob").bytes).toBe(6);
    expect(await errorCode(() => log.append("ob", put("e", "1234567")))).toBe("STREAM_FULL");
    expect(await seqsOf("ob")).toEqual([3, 4]);
    await log.updateStream(config("ob", { maxMsgs: 1 }));
    expect(await seqsOf("ob")).toEqual([4]);
  });
});

describe("purge", () => {
  beforeEach(async () => {
    await log.createStream(config("p"));
    for (const s of ["a.1", "a.2", "a.1", "b", "a.1", "b"]) await log.append("p", put(s));
  });

  it("purges one subject, optionally keeping the newest N", async () => {
    expect(await log.purge("p", { subject: "a.1", keep: 1 })).toBe(2);
    expect(log.seqsOfSubject("p", "a.1")).toEqual([5]);
    expect(await log.purge("p", { subject: "b" })).toBe(2);
    expect(await seqsOf("p")).toEqual([2, 5]);
    expect(await log.purge("p", { subject: "zz" })).toBe(0);
  });

  it("purges by wildcard filter and every subject with keep", async () => {
    expect(await log.purge("p", { subject: "a.*" })).toBe(4);
    expect(await seqsOf("p")).toEqual([4, 6]);
    expect(await log.purge("p", { keep: 1 })).toBe(1);
    expect(await seqsOf("p")).toEqual([6]);
  });

  it("purges the whole stream; lastSeq never goes back", async () => {
    expect(await log.purge("p")).toBe(6);
    expect(log.state("p")).toEqual({ firstSeq: 7, lastSeq: 6, messages: 0, bytes: 0, subjects: 0 });
    expect(await log.purge("p")).toBe(0);
    await reopen();
    expect(log.state("p")).toEqual({ firstSeq: 7, lastSeq: 6, messages: 0, bytes: 0, subjects: 0 });
    expect(await log.append("p", put("a"))).toBe(7);
    expect(await seqsOf("p")).toEqual([7]);
  });

  it("rejects bad purge options", async () => {
    expect(await errorCode(() => log.purge("p", { keep: -1 }))).toBe("INVALID_ARGUMENT");
    expect(await errorCode(() => log.purge("p", { subject: "a..b" }))).toBe("INVALID_SUBJECT");
    expect(log.state("p").messages).toBe(6);
  });

  it("removes single messages", async () => {
    expect(await log.removeMessage("p", 3)).toBe(true);
    expect(await log.removeMessage("p", 3)).toBe(false);
    expect(log.seqsOfSubject("p", "a.1")).toEqual([1, 5]);
  });
});

describe("expire", () => {
  it("removes messages older than maxAge at the time the caller passes", async () => {
    await log.createStream(config("e", { maxAgeMs: 100 }));
    await log.append("e", put("a", "x", 1000));
    await log.append("e", put("b", "x", 1050));
    await log.append("e", put("c", "x", 1100));
    expect(await log.expire("e", 1149)).toEqual([
      { seq: 1, subject: "a", operation: "PUT", timestampMs: 1000 },
    ]);
    expect(await log.expire("e", 1149)).toEqual([]);
    expect((await log.expire("e", 1200)).map((m) => m.seq)).toEqual([2, 3]);
    expect(log.state("e")).toMatchObject({ firstSeq: 4, lastSeq: 3, messages: 0 });
  });

  it("finds every expired message when timestamps went backwards", async () => {
    await log.createStream(config("e", { maxAgeMs: 10 }));
    await log.append("e", put("a", "x", 500));
    await log.append("e", put("b", "x", 100));
    await log.append("e", put("c", "x", 50));
    expect((await log.expire("e", 115)).map((m) => m.seq)).toEqual([2, 3]);
  });

  it("keeps everything when maxAge is 0", async () => {
    await log.createStream(config("e"));
    await log.append("e", put("a", "x", 0));
    expect(await log.expire("e", Number.MAX_SAFE_INTEGER)).toEqual([]);
    expect(await errorCode(() => log.expire("e", Number.NaN))).toBe("INVALID_ARGUMENT");
  });
});

describe("batches and meta", () => {
  it("stages mutations visibly and commits them as one write with meta", async () => {
    await log.createStream(config("s", { maxMsgsPerSubject: 1 }));
    const writesBefore = log.writeCount;
    const b = log.batch();
    expect(b.append("s", put("k", "1"))).toBe(1);
    expect(b.append("s", put("k", "2"))).toBe(2);
    b.putMeta("applied", bytes("7"));
    expect(log.seqsOfSubject("s", "k")).toEqual([2]);
    expect(text((await log.getBySeq("s", 2))?.payload)).toBe("2");
    expect(text(await log.getMeta("applied"))).toBe("7");
    expect(() => b.append("s", put("a..b"))).toThrow(KvError);
    await b.commit({ sync: true });
    expect(log.writeCount).toBe(writesBefore + 1);
    await reopen();
    expect(text((await log.getBySeq("s", 2))?.payload)).toBe("2");
    expect(await log.getBySeq("s", 1)).toBeNull();
    expect(text(await log.getMeta("applied"))).toBe("7");
    await log.writeMeta({ applied: null, other: bytes("x") });
    expect(await log.getMeta("applied")).toBeNull();
    await reopen();
    expect(await log.getMeta("applied")).toBeNull();
    expect(text(await log.getMeta("other"))).toBe("x");
  });

  it("writes meta with a one-shot mutation and not when it fails", async () => {
    await log.createStream(config("s", { maxMsgs: 1, discard: "new" }), {
      meta: { applied: bytes("1") },
    });
    await log.append("s", put("a"), { sync: true, meta: { applied: bytes("2") } });
    expect(
      await errorCode(() => log.append("s", put("b"), { meta: { applied: bytes("3") } })),
    ).toBe("STREAM_FULL");
    expect(await errorCode(() => log.append("s", put("b"), { meta: { "": bytes("3") } }))).toBe(
      "INVALID_ARGUMENT",
    );
    await reopen();
    expect(text(await log.getMeta("applied"))).toBe("2");
    expect(log.state("s").lastSeq).toBe(1);
  });

  it("groups commits issued while a write is in flight into one LevelDB write", async () => {
    await log.createStream(config("s"));
    const writesBefore = log.writeCount;
    const commits: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      const b = log.batch();
      b.append("s", put(`k${i}`));
      commits.push(b.commit({ sync: true }));
    }
    await Promise.all(commits);
    expect(log.writeCount - writesBefore).toBeLessThan(20);
    expect(log.state("s").messages).toBe(20);
    await reopen();
    expect(await seqsOf("s")).toHaveLength(20);
  });

  it("allows one open batch at a time", () => {
    log.batch();
    expect(() => log.batch()).toThrow(/already open/);
  });
});

describe("durability and integrity", () => {
  async function fill(): Promise<void> {
    await log.createStream(config("s", { maxMsgsPerSubject: 3, maxAgeMs: 1000 }));
    await log.createStream(config("t", { discard: "new", maxMsgs: 50 }));
    for (let i = 0; i < 40; i++) {
      await log.append(i % 2 ? "s" : "t", put(`k.${i % 5}`, `v${i}`, 1000 + i));
    }
    await log.purge("t", { subject: "k.1" });
    await log.expire("s", 2010);
    await log.writeMeta({ applied: bytes("40") });
  }

  it("reopening restores exactly the state before close", async () => {
    await fill();
    const before = {
      names: log.streamNames(),
      s: log.state("s"),
      t: log.state("t"),
      subjects: log.subjects("t"),
      messages: await collect(log.iterate("s")),
      digest: await log.digest(),
    };
    await reopen();
    expect({
      names: log.streamNames(),
      s: log.state("s"),
      t: log.state("t"),
      subjects: log.subjects("t"),
      messages: await collect(log.iterate("s")),
      digest: await log.digest(),
    }).toEqual(before);
  });

  it("gives equal digests for equal histories and different ones otherwise", async () => {
    await fill();
    const other = tempDir();
    const first = log;
    try {
      log = await StreamLog.open(other.path);
      await fill();
      expect(await log.digest()).toBe(await first.digest());
      await log.append("t", put("z"));
      expect(await log.digest()).not.toBe(await first.digest());
    } finally {
      await log.close();
      log = first;
      other.remove();
    }
  });

  it("shares a ClassicLevel with other keys and leaves it open", async () => {
    await log.close();
    const db = new ClassicLevel<Uint8Array | string, Uint8Array>(dir.path, {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    await db.put("raft/x", bytes("keep"), { keyEncoding: "utf8", sync: true });
    log = await StreamLog.open(db);
    await log.createStream(config("s"));
    await log.append("s", put("a"));
    const digest = await log.digest();
    await log.close();
    expect(db.status).toBe("open");
    expect(text(await db.get("raft/x", { keyEncoding: "utf8" }))).toBe("keep");
    log = await StreamLog.open(db);
    expect(await log.digest()).toBe(digest);
    await log.close();
    await db.close();
    log = await StreamLog.open(dir.path);
  });

  const VIEW = { keyEncoding: "view", valueEncoding: "view" } as const;

  async function flipByte(key: Uint8Array, at: (length: number) => number): Promise<void> {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir.path, {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    const value = (await db.get(key))!;
    const copy = value.slice();
    const i = at(copy.length);
    copy[i] = copy[i]! ^ 0x10;
    await db.put(key, copy, { sync: true });
    await db.close();
  }

  async function openError(): Promise<KvError> {
    try {
      log = await StreamLog.open(dir.path);
    } catch (err) {
      log = undefined as unknown as StreamLog;
      if (err instanceof KvError) return err;
      throw err;
    }
    throw new Error("open succeeded");
  }

  it.each([
    ["payload", (n: number) => n - 8],
    ["first byte", () => 0],
    ["checksum", (n: number) => n - 1],
    ["checksum tag", (n: number) => n - 5],
  ])(
    "detects a flipped message byte (%s) on read, and at an open after a crash",
    async (_w, at) => {
      await log.createStream(config("s"));
      for (let i = 0; i < 3; i++) await log.append("s", put(`k${i}`, "payload-bytes"));
      await log.close();
      await flipByte(messageKey(1, 2), at);
      // After a clean close the indexes come from the checkpoint: the record is checked when read.
      const opened = await StreamLog.open(dir.path);
      expect(opened.opened.index.from).toBe("checkpoint");
      const readError = await opened.getBySeq("s", 2).catch((err: unknown) => err as KvError);
      expect(readError).toMatchObject({ code: "CORRUPT_RECORD" });
      expect((readError as KvError).message).toContain('stream "s" seq 2');
      expect((await opened.getBySeq("s", 3))?.subject).toBe("k2");
      await opened.close();
      // After a crash there is no checkpoint, and the open's full scan refuses the log.
      const db = new ClassicLevel<Uint8Array, Uint8Array>(dir.path, VIEW);
      expect(await deleteIndexCheckpoint(db as never)).toBe(true);
      await db.close();
      const err = await openError();
      expect(err.code).toBe("CORRUPT_RECORD");
      expect(err.message).toContain('stream "s" seq 2');
      log = { close: async () => undefined } as StreamLog;
    },
  );

  it("detects a corrupted stream record at open", async () => {
    await log.createStream(config("s"));
    await log.close();
    await flipByte(streamKey("s"), () => 3);
    const err = await openError();
    expect(err.code).toBe("CORRUPT_RECORD");
    expect(err.message).toContain('stream "s"');
    log = { close: async () => undefined } as StreamLog;
  });

  it("detects corruption on read and keeps serving other records", async () => {
    await log.close();
    const db = new ClassicLevel<Uint8Array | string, Uint8Array>(dir.path, {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    log = await StreamLog.open(db);
    await log.createStream(config("s"));
    await log.append("s", put("a", "first"));
    await log.append("s", put("b", "second"));
    await log.writeMeta({ m: bytes("meta") });
    for (const key of [messageKey(1, 1), new TextEncoder().encode("log/x/m")]) {
      const value = ((await db.get(key, { valueEncoding: "view" })) as Uint8Array).slice();
      value[value.length - 7] = value[value.length - 7]! ^ 1;
      await db.put(key, value, { valueEncoding: "view" });
    }
    expect(await errorCode(() => log.getBySeq("s", 1))).toBe("CORRUPT_RECORD");
    expect(await errorCode(() => log.lastBySubject("s", "a"))).toBe("CORRUPT_RECORD");
    expect(await errorCode(() => collect(log.iterate("s")))).toBe("CORRUPT_RECORD");
    expect(await errorCode(() => log.getMeta("m"))).toBe("CORRUPT_RECORD");
    expect(await errorCode(() => log.digest())).toBe("CORRUPT_RECORD");
    expect(text((await log.getBySeq("s", 2))?.payload)).toBe("second");
    expect(await log.append("s", put("c"))).toBe(3);
    await log.close();
    await db.close();
    const err = await openError();
    expect(err.code).toBe("CORRUPT_RECORD");
    log = { close: async () => undefined } as StreamLog;
  });
});
