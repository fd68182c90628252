/**
 * RaftKvService in-process as a lone node (a one-voter Raft group): the keys pager
 * resumes after the previous page's last key, and a watch's initial-done revision is
 * kvapi's boundary B even while writes are being applied.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KvError } from "../proto/index.js";
import { removeDir, tempDir } from "../test_support/index.js";
import type { Entry } from "./kv_service.js";
import { silentLogger } from "./log.js";
import { RaftKvService } from "./raft_service.js";

const bytes = (s: string) => new TextEncoder().encode(s);

let dir: string;
let svc: RaftKvService;
let seq = 0;

beforeEach(async () => {
  dir = tempDir("streamkv-raftsvc-");
  svc = await RaftKvService.open({
    id: "n1",
    dataDir: dir,
    peers: [{ id: "n1", host: "127.0.0.1", port: 0 }],
    log: silentLogger,
    send: () => {},
    onFatal: (err) => {
      throw err;
    },
    tickMs: 10,
  });
  await svc.createBucket({ bucket: "b" }, `create-${seq++}`);
});

afterEach(async () => {
  await svc.close();
  removeDir(dir);
});

const put = (key: string, value = "v") =>
  svc.write({ bucket: "b", key, op: "put", value: bytes(value), requestId: `r-${seq++}` });

describe("RaftKvService", () => {
  it("pages keys after the last one seen, filtered, without repeats", async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `k.${String(i).padStart(2, "0")}`);
    for (const k of keys) await put(k);
    await put("other.x");
    await svc.write({
      bucket: "b",
      key: "k.03",
      op: "delete",
      value: new Uint8Array(0),
      requestId: `r-${seq++}`,
    });
    const seen: string[] = [];
    let after = "";
    for (let page = 0; page < 20; page++) {
      const p = await svc.keysPage("b", "k.>", after, 7, { stale: false });
      expect(p.keys.length).toBeLessThanOrEqual(7);
      seen.push(...p.keys);
      if (p.done) break;
      after = p.keys[p.keys.length - 1]!;
    }
    expect(seen).toEqual(keys.filter((k) => k !== "k.03"));
    // A page that starts after a key that no longer exists still continues after it.
    const p = await svc.keysPage("b", ">", "k.03", 2, { stale: true });
    expect(p).toEqual({ keys: ["k.04", "k.05"], done: false });
  });

  it("ends a page of long keys at its byte bound, whatever the count limit", async () => {
    const keys = Array.from(
      { length: 300 },
      (_, i) => `long.${String(i).padStart(3, "0")}.${"x".repeat(991)}`,
    );
    for (const k of keys) await put(k);
    const first = await svc.keysPage("b", "long.>", "", 10_000, { stale: false });
    // 256 KiB of keys of 1000 bytes: a page of 263 keys, far below the frame limit.
    expect(first.done).toBe(false);
    expect(first.keys.length).toBe(Math.ceil((256 * 1024) / keys[0]!.length));
    const rest = await svc.keysPage("b", "long.>", first.keys.at(-1)!, 10_000, { stale: false });
    expect([...first.keys, ...rest.keys]).toEqual(keys);
    expect(rest.done).toBe(true);
  });

  it("reports kvapi's boundary as the initial-done revision, also during writes", async () => {
    for (let i = 0; i < 5; i++) await put(`a${i}`);
    for (let round = 0; round < 5; round++) {
      // Writes in flight while the watch starts: the boundary must split them exactly.
      const writes = Array.from({ length: 20 }, (_, i) => put(`w${round}.${i}`));
      const w = await svc.watch("b", ">", { includeHistory: true });
      const initial: Entry[] = [];
      const live: Entry[] = [];
      let initDone = false;
      await Promise.all(writes);
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const r = await w.next();
        if (r.done) break;
        if (r.value === null) initDone = true;
        else (initDone ? live : initial).push(r.value);
        if (initDone && initial.length + live.length >= 5 + 21 * round + 20) break;
      }
      w.stop();
      expect(initDone).toBe(true);
      const b = w.initRevision;
      expect(initial.every((e) => e.revision <= b)).toBe(true);
      expect(live.every((e) => e.revision > b)).toBe(true);
      // Nothing is missing between the two parts.
      expect(initial.length === 0 ? 0 : initial[initial.length - 1]!.revision).toBe(b);
      await put(`sep${round}`);
    }
  });

  it("starts an updatesOnly watch at the boundary", async () => {
    await put("x");
    await put("y");
    const w = await svc.watch("b", ">", { updatesOnly: true });
    expect(w.initRevision).toBe(2);
    const first = await w.next();
    expect(first.value).toBeNull();
    await put("z");
    const next = await w.next();
    expect(next.value?.revision).toBe(3);
    w.stop();
  });

  it("refuses a watch of a missing bucket with a typed error", async () => {
    const err = await svc.watch("nope", ">", {}).catch((e) => e);
    expect(err).toBeInstanceOf(KvError);
  });
});
