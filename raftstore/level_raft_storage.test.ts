import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ClassicLevel } from "classic-level";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verifyLevelDbFiles } from "../log/index.js";
import { raftlogSchema as descriptor, isKvError, messageType } from "../proto/index.js";
import {
  applyConfChange,
  type Entry,
  EntryType,
  MemoryRaftLog,
  type PersistRequest,
  type SnapshotMeta,
} from "../raft/index.js";
import { raftStorageContract } from "../raft/storage_contract.js";
import { encodeValue, entryBody, LevelRaftStorage } from "./level_raft_storage.js";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "raft-storage-"));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

raftStorageContract("LevelRaftStorage (own database)", async (options) => {
  const path = join(await tempDir(), "db");
  let storage = await LevelRaftStorage.open(path, options);
  return {
    get storage() {
      return storage;
    },
    reopen: async () => {
      await storage.close();
      storage = await LevelRaftStorage.open(path, options);
      return storage;
    },
    cleanup: async () => {
      await storage.close();
    },
  };
});

raftStorageContract("LevelRaftStorage (shared database, custom prefix)", async (options) => {
  const db = new ClassicLevel<string, string>(join(await tempDir(), "db"));
  await db.put("s!stream", "belongs to the stream log");
  await db.put("raft!", "a neighbour of the raft prefix");
  let storage = await LevelRaftStorage.open(db, { ...options, prefix: "raft/" });
  return {
    get storage() {
      return storage;
    },
    reopen: async () => {
      await storage.close();
      storage = await LevelRaftStorage.open(db, { ...options, prefix: "raft/" });
      return storage;
    },
    cleanup: async () => {
      await storage.close();
      expect(await db.get("s!stream")).toBe("belongs to the stream log");
      await db.close();
    },
  };
});

const enc = new TextEncoder();
const ent = (index: number, term: number, text = `e${index}`): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: enc.encode(text),
});
const conf = { voters: ["a", "b", "c"], learners: [] };

function entryKey(index: number, prefix = "r!"): Buffer {
  const key = Buffer.alloc(prefix.length + 9);
  key.write(prefix, 0);
  key[prefix.length] = 0x65;
  key.writeUInt32BE(Math.floor(index / 2 ** 32), prefix.length + 1);
  key.writeUInt32BE(index % 2 ** 32, prefix.length + 5);
  return key;
}

const raw = { keyEncoding: "buffer", valueEncoding: "buffer" } as const;

describe("LevelRaftStorage", () => {
  let path: string;
  beforeEach(async () => {
    path = join(await tempDir(), "db");
  });

  async function expectCorrupt(open: Promise<unknown>, pattern: RegExp): Promise<void> {
    const err = await open.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isKvError(err, "CORRUPT_RECORD"), String(err)).toBe(true);
    expect(String((err as Error).message)).toMatch(pattern);
  }

  /** Writes 1..5 (term 1, 2 for 4..5) and a hard state, then closes. */
  async function seed(): Promise<void> {
    const s = await LevelRaftStorage.open(path, { initialConf: conf });
    await s.persist({
      entries: [ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 2), ent(5, 2)],
      hardState: { currentTerm: 2, votedFor: "b", commitIndex: 3 },
    });
    await s.close();
  }

  async function withRaw(fn: (db: ClassicLevel<Buffer, Buffer>) => Promise<void>): Promise<void> {
    const db = new ClassicLevel<Buffer, Buffer>(path, raw);
    await db.open();
    try {
      await fn(db);
    } finally {
      await db.close();
    }
  }

  it("reopens with exactly what was synced, and keeps the first initial conf", async () => {
    await seed();
    const s = await LevelRaftStorage.open(path, { initialConf: { voters: ["x"], learners: [] } });
    expect(s.initialState()).toEqual({
      hardState: { currentTerm: 2, votedFor: "b", commitIndex: 3 },
      conf,
    });
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(5);
    expect(s.entries(1, 6).map((e) => [e.index, e.term, Buffer.from(e.data).toString()])).toEqual([
      [1, 1, "e1"],
      [2, 1, "e2"],
      [3, 1, "e3"],
      [4, 2, "e4"],
      [5, 2, "e5"],
    ]);
    await s.close();
  });

  it("writes a commit-index-only update without an fsync, and the next synced batch carries it", async () => {
    const s = await LevelRaftStorage.open(path);
    await s.persist({ hardState: { currentTerm: 3, votedFor: "a", commitIndex: 0 } });
    const base = s.stats().syncs;
    await s.persist({ hardState: { currentTerm: 3, votedFor: "a", commitIndex: 0 }, sync: false });
    await s.persist({ hardState: { currentTerm: 3, votedFor: "a", commitIndex: 0 }, sync: false });
    expect(s.stats().syncs).toBe(base);
    await s.persist({
      entries: [{ index: 1, term: 3, type: EntryType.Normal, data: new Uint8Array([1]) }],
    });
    void s.persist({ hardState: { currentTerm: 3, votedFor: "a", commitIndex: 1 }, sync: false });
    await s.persist({
      entries: [{ index: 2, term: 3, type: EntryType.Normal, data: new Uint8Array([2]) }],
    });
    expect(s.stats().syncs).toBe(base + 2);
    await s.close();
    const again = await LevelRaftStorage.open(path);
    expect(again.initialState().hardState).toEqual({
      currentTerm: 3,
      votedFor: "a",
      commitIndex: 1,
    });
    expect(again.lastIndex()).toBe(2);
    await again.close();
  });

  it("groups concurrent persists into few syncs, and syncs each awaited one", async () => {
    const s = await LevelRaftStorage.open(path);
    const base = s.stats().syncs;
    for (let i = 1; i <= 5; i++) await s.persist({ entries: [ent(i, 1)] });
    expect(s.stats().syncs - base).toBe(5);
    const before = s.stats().syncs;
    const promises: Promise<void>[] = [];
    for (let i = 6; i <= 505; i++) {
      promises.push(
        s.persist({
          entries: [ent(i, 1)],
          hardState: { currentTerm: 1, votedFor: null, commitIndex: i - 1 },
        }),
      );
    }
    await Promise.all(promises);
    const syncs = s.stats().syncs - before;
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThanOrEqual(5);
    expect(s.stats().maxRequestsPerSync).toBeGreaterThanOrEqual(100);
    await s.close();
    const again = await LevelRaftStorage.open(path);
    expect(again.lastIndex()).toBe(505);
    expect(again.initialState().hardState.commitIndex).toBe(504);
    await again.close();
  });

  it("keeps writing while a sync is in flight: later persists go in the next batch", async () => {
    const s = await LevelRaftStorage.open(path);
    const base = s.stats().syncs;
    const first = s.persist({ entries: [ent(1, 1)] });
    // Let the first batch start, then queue more behind it.
    await Promise.resolve();
    await Promise.resolve();
    const rest: Promise<void>[] = [];
    for (let i = 2; i <= 50; i++) rest.push(s.persist({ entries: [ent(i, 1)] }));
    await Promise.all([first, ...rest]);
    expect(s.stats().syncs - base).toBeLessThanOrEqual(3);
    await s.close();
  });

  it("treats a failed write as fatal: pending and later persists reject", async () => {
    const db = new ClassicLevel<string, string>(path);
    const s = await LevelRaftStorage.open(db);
    await s.persist({ entries: [ent(1, 1)] });
    await db.close();
    const a = s.persist({ entries: [ent(2, 1)] });
    const b = s.persist({ entries: [ent(3, 1)] });
    await expect(a).rejects.toMatchObject({ code: "INTERNAL" });
    await expect(b).rejects.toMatchObject({ code: "INTERNAL" });
    await expect(s.persist({ entries: [ent(4, 1)] })).rejects.toMatchObject({ code: "INTERNAL" });
    await s.close();
    const again = await LevelRaftStorage.open(path);
    expect(again.lastIndex()).toBe(1);
    await again.close();
  });

  it("detects a flipped bit in an entry at open", async () => {
    await seed();
    await withRaw(async (db) => {
      const value = Buffer.from(await db.get(entryKey(3)));
      value[value.length - 1]! ^= 0x01;
      await db.put(entryKey(3), value, { sync: true });
    });
    await expectCorrupt(LevelRaftStorage.open(path), /checksum/);
  });

  it("detects a damaged hard state and a missing hard state", async () => {
    await seed();
    await withRaw(async (db) => {
      const key = Buffer.from("r!h");
      const value = Buffer.from(await db.get(key));
      await db.put(key, value.subarray(0, value.length - 1), { sync: true });
    });
    await expectCorrupt(LevelRaftStorage.open(path), /checksum/);
    await withRaw((db) => db.del(Buffer.from("r!h"), { sync: true }));
    await expectCorrupt(LevelRaftStorage.open(path), /hard state record missing/);
  });

  it("detects a missing entry (gap) and a record under the wrong key", async () => {
    await seed();
    await withRaw(async (db) => {
      const moved = await db.get(entryKey(2));
      await db.put(entryKey(3), moved, { sync: true });
    });
    await expectCorrupt(LevelRaftStorage.open(path), /checksum/);
    await withRaw((db) => db.del(entryKey(3), { sync: true }));
    await expectCorrupt(LevelRaftStorage.open(path), /gap/);
  });

  it("detects unsafe integers, unknown keys and undecodable bodies with valid checksums", async () => {
    await seed();
    const big = 2 ** 60;
    await withRaw(async (db) => {
      const key = entryKey(big);
      await db.put(key, encodeValue(key, entryBody(ent(big, 2))), { sync: true });
    });
    await expectCorrupt(LevelRaftStorage.open(path), /not a safe integer/);
    await withRaw(async (db) => {
      await db.del(entryKey(big), { sync: true });
      const key = entryKey(6);
      const Hard = messageType(descriptor, "streamkv.raftlog.HardStateRecord");
      const body = Hard.encode({ current_term: 2 ** 53, commit_index: 0 }).finish();
      await db.put(Buffer.from("r!h"), encodeValue(Buffer.from("r!h"), body), { sync: true });
      await db.put(key, encodeValue(key, entryBody(ent(6, 2))), { sync: true });
    });
    await expectCorrupt(LevelRaftStorage.open(path), /current_term .* not a safe integer/);
    await withRaw(async (db) => {
      const key = Buffer.from("r!h");
      await db.put(key, encodeValue(key, Buffer.from([0xff, 0xff, 0xff])), { sync: true });
    });
    await expectCorrupt(LevelRaftStorage.open(path), /undecodable/);
    await withRaw(async (db) => {
      const key = Buffer.from("r!zz");
      await db.put(key, encodeValue(key, Buffer.alloc(0)), { sync: true });
    });
    await expectCorrupt(LevelRaftStorage.open(path), /./);
  });

  it("detects, with valid checksums, a commit index beyond the log and a ConfChange entry that does not decode (found by records.fuzz.test.ts)", async () => {
    // Both loaded, then stopped the node later, untyped: the core's assertion "commit 51
    // beyond lastIndex", and MALFORMED_FRAME out of the membership fold in new RaftCore.
    await seed();
    const hardKey = Buffer.from("r!h");
    await withRaw(async (db) => {
      const Hard = messageType(descriptor, "streamkv.raftlog.HardStateRecord");
      const body = Hard.encode({ current_term: 2, commit_index: 51 }).finish();
      await db.put(hardKey, encodeValue(hardKey, body), { sync: true });
    });
    await expectCorrupt(LevelRaftStorage.open(path), /commit index 51 beyond the last entry 5/);
    path = join(await tempDir(), "db");
    await seed();
    await withRaw(async (db) => {
      const key = entryKey(6);
      const garbage = { ...ent(6, 2), type: EntryType.ConfChange, data: new Uint8Array([37, 51]) };
      await db.put(key, encodeValue(key, entryBody(garbage)), { sync: true });
    });
    await expectCorrupt(
      LevelRaftStorage.open(path, { applyConfChange }),
      /a ConfChange entry does not decode/,
    );
  });

  it("detects a term that goes down and an entry below the snapshot", async () => {
    await seed();
    await withRaw(async (db) => {
      const key = entryKey(6);
      await db.put(key, encodeValue(key, entryBody(ent(6, 1))), { sync: true });
    });
    await expectCorrupt(LevelRaftStorage.open(path), /term 1 below previous term 2/);
    await withRaw((db) => db.del(entryKey(6), { sync: true }));
    const s = await LevelRaftStorage.open(path);
    await s.compact(3, { index: 3, term: 1, conf });
    await s.close();
    await withRaw(async (db) => {
      const key = entryKey(2);
      await db.put(key, encodeValue(key, entryBody(ent(2, 1))), { sync: true });
    });
    await expectCorrupt(LevelRaftStorage.open(path), /below snapshot/);
  });
});

// ---- crash test: a child persists, is SIGKILLed, and every acknowledged persist must be there ----

const moduleUrl = pathToFileURL(join(import.meta.dirname, "level_raft_storage.ts")).href;

/**
 * The child: opens the storage, issues random persists/compactions (up to 16 in
 * flight) and logs each request *before* making it and an ack after it resolves.
 */
const childSource = `
import { writeSync } from "node:fs";
import { LevelRaftStorage } from ${JSON.stringify(moduleUrl)};
const s = await LevelRaftStorage.open(process.env.RS_PATH, {});
let seed = Number(process.env.RS_SEED);
const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
let term = Math.max(1, s.initialState().hardState.currentTerm, s.term(s.lastIndex()));
// The pipe to the parent is non-blocking: a full pipe answers EAGAIN, so retry
// until the whole line is out (the line must be written before the request is made).
const out = (line) => {
  const b = Buffer.from(line + "\\n");
  for (let off = 0; off < b.length; ) {
    try { off += writeSync(1, b, off); } catch (e) { if (e.code !== "EAGAIN") throw e; }
  }
};
out("ready");
const inflight = [];
const deadline = Date.now() + 5000;
for (let k = 0; k < 20000 && Date.now() < deadline; k++) {
  const first = s.firstIndex(), last = s.lastIndex();
  const roll = rand(100);
  let line, call;
  if (roll < 4 && last >= first) {
    const index = first + rand(last - first + 1);
    const meta = { index, term: s.term(index), conf: { voters: ["a", "b"], learners: [] } };
    line = { k, compact: { index, meta } };
    call = () => s.compact(index, meta);
  } else {
    const req = {};
    if (roll < 6) {
      term++;
      req.snapshot = { index: last + rand(5), term, conf: { voters: ["a"], learners: [] } };
    }
    let start = req.snapshot ? req.snapshot.index + 1 : last + 1;
    if (!req.snapshot && roll < 16 && last >= first) {
      start = last - rand(Math.min(5, last - first + 1)) + 0;
      term++;
    }
    const n = rand(9);
    req.entries = [];
    for (let i = 0; i < n; i++) {
      const size = rand(200);
      req.entries.push({ index: start + i, term, type: 0, data: Buffer.alloc(size, (k + i) & 0xff) });
    }
    if (rand(2)) req.hardState = { currentTerm: term, votedFor: rand(2) ? "n" + rand(3) : null, commitIndex: rand(1000) };
    line = { k, persist: { ...req, entries: req.entries.map((e) => ({ ...e, data: e.data.toString("hex") })) } };
    call = () => s.persist(req);
  }
  out(JSON.stringify(line));
  inflight.push(call().then(() => out("ack " + k)));
  if (inflight.length >= 16) await inflight.shift();
}
await Promise.all(inflight);
await s.close();
out("done");
`;

interface ChildRun {
  lines: string[];
  killed: boolean;
}

function runChild(dbPath: string, seed: number, killAfterMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", childSource],
      {
        cwd: join(import.meta.dirname, ".."),
        env: { ...process.env, RS_PATH: dbPath, RS_SEED: String(seed) },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    let killed = false;
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      if (timer === undefined && stdout.length === 0 && chunk.length > 0) {
        // Start the clock once the child has opened the storage.
        timer = setTimeout(() => {
          killed = child.kill("SIGKILL");
        }, killAfterMs);
      }
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL" && code !== 0) {
        reject(new Error(`crash child exited ${code}: ${stderr}`));
        return;
      }
      resolve({ lines: stdout.split("\n").filter((l) => l.length > 0), killed });
    });
  });
}

interface LoggedRequest {
  k: number;
  persist?: Omit<PersistRequest, "entries"> & {
    entries: { index: number; term: number; type: EntryType; data: string }[];
  };
  compact?: { index: number; meta: SnapshotMeta };
}

function dumpOf(s: {
  initialState: MemoryRaftLog["initialState"];
  snapshotMeta(): SnapshotMeta;
  firstIndex(): number;
  lastIndex(): number;
  entries(lo: number, hi: number): Entry[];
}) {
  return JSON.stringify({
    hs: s.initialState().hardState,
    snap: s.snapshotMeta(),
    first: s.firstIndex(),
    last: s.lastIndex(),
    entries: s
      .entries(s.firstIndex(), s.lastIndex() + 1)
      .map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString("hex")]),
  });
}

describe("LevelRaftStorage crash safety", () => {
  it("keeps every acknowledged persist across SIGKILL at random points (20 rounds)", async () => {
    const dbPath = join(await tempDir(), "db");
    let model = new MemoryRaftLog();
    const master = Number(process.env.RAFT_STORAGE_CRASH_SEED ?? Date.now() % 1_000_000);
    let totalAcked = 0;
    let kills = 0;
    const started = Date.now();
    for (let round = 0; round < 20 && Date.now() - started < 40_000; round++) {
      const seed = master * 100 + round;
      const killAfterMs = (seed * 7919) % 250;
      const run = await runChild(dbPath, seed, killAfterMs);
      if (run.killed) kills++;
      const requests: LoggedRequest[] = [];
      let acked = 0;
      for (const line of run.lines) {
        if (line === "ready" || line === "done") continue;
        if (line.startsWith("ack ")) {
          const k = Number(line.slice(4));
          // Promises resolve in call order.
          expect(k, `seed ${master} round ${round}`).toBe(acked);
          acked++;
          continue;
        }
        requests.push(JSON.parse(line) as LoggedRequest);
      }
      totalAcked += acked;
      // A torn tail is not corruption: LevelDB's own checksums pass the node's check.
      await verifyLevelDbFiles(dbPath);
      // Durable state must be the model after some prefix of at least `acked` requests.
      const reopened = await LevelRaftStorage.open(dbPath);
      const actual = dumpOf(reopened);
      await reopened.close();
      const candidate = model.clone();
      let matched: number | undefined;
      for (let j = 0; j <= requests.length; j++) {
        if (j >= acked && dumpOf(candidate) === actual) {
          matched = j;
          break;
        }
        if (j === requests.length) break;
        const r = requests[j]!;
        if (r.persist) {
          candidate.apply({
            ...r.persist,
            entries: r.persist.entries.map((e) => ({ ...e, data: Buffer.from(e.data, "hex") })),
          });
        } else if (r.compact) {
          candidate.compact(r.compact.index, r.compact.meta);
        }
      }
      expect(
        matched,
        `seed ${master} round ${round}: reopened state is not the state after >= ${acked} of ${requests.length} requests (replay with RAFT_STORAGE_CRASH_SEED=${master})`,
      ).toBeDefined();
      model = candidate;
    }
    // The test is only meaningful if most rounds were cut short and work was acknowledged.
    expect(kills).toBeGreaterThanOrEqual(10);
    expect(totalAcked).toBeGreaterThan(100);
  }, 60_000);
});
