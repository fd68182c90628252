/**
 * The whole client API against every node of a three-node cluster, each through a
 * connection to that node alone: writes on followers are forwarded to the leader and
 * answer exactly as on the leader (revisions, CAS errors with their details), reads
 * are linearizable on every node, watches on one node see writes made through others.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Entry, type KvConnection } from "../client/index.js";
import { LocalCluster } from "./harness/cluster.js";
import { codeOf, str, take, text } from "./harness/util.js";

let cluster: LocalCluster;
const conns: KvConnection[] = [];

beforeAll(async () => {
  cluster = await LocalCluster.start();
  for (const url of cluster.urls) conns.push(await connect({ servers: url, timeoutMs: 5000 }));
});

afterAll(async () => {
  await Promise.all(conns.map((c) => c.close()));
  await cluster?.destroy();
});

describe("client API on every node of a three-node cluster", () => {
  it("serves every call on leader and followers alike", async () => {
    const leader = await cluster.waitForLeader();
    for (const [i, nc] of conns.entries()) {
      const role = i === leader ? "leader" : "follower";
      const bucket = `api${i}`;
      const kv = await nc.createKeyValue({ bucket, history: 5 });
      // identical config: no-op; different config: BUCKET_EXISTS (decided on the leader)
      await nc.createKeyValue({ bucket, history: 5 });
      expect(await codeOf(nc.createKeyValue({ bucket, history: 2 })), role).toBe("BUCKET_EXISTS");
      expect((await nc.keyValue(bucket)).bucket).toBe(bucket);
      expect(await codeOf(nc.keyValue("missing"))).toBe("BUCKET_NOT_FOUND");

      // a watch on the next node sees writes made through this one
      const other = conns[(i + 1) % conns.length]!;
      const w = await (await other.keyValue(bucket)).watch("a.>", {});
      const wit = w[Symbol.asyncIterator]();
      expect(await take(wit, 1)).toEqual([null]);

      const r1 = await kv.put("a.b", text("1"));
      expect(r1, role).toBe(1);
      expect(await kv.putString("a.c", "2")).toBe(2);
      expect(await kv.create("a.d", text("3"))).toBe(3);
      const exists = await kv.create("a.d", text("x")).catch((e) => e);
      expect(exists.code).toBe("KEY_EXISTS");
      expect(exists.details.currentRevision).toBe(3);
      expect(await kv.update("a.b", text("4"), 1)).toBe(4);
      const wrong = await kv.update("a.b", text("x"), 1).catch((e) => e);
      expect(wrong.code, role).toBe("WRONG_LAST_REVISION");
      expect(wrong.details.currentRevision).toBe(4);
      expect(await codeOf(kv.put("bad..key", text("x")))).toBe("INVALID_KEY");

      // linearizable reads on this node see its own forwarded writes at once
      expect(str((await kv.get("a.b"))!.value)).toBe("4");
      expect((await kv.getRevision("a.b", 1))?.revision).toBe(1);
      expect(await kv.getRevision("a.b", 2)).toBeNull();
      expect(await kv.delete("a.c")).toBe(5);
      expect(await kv.get("a.c")).toBeNull();
      expect(await kv.purge("a.d")).toBe(6);
      expect(await kv.keys()).toEqual(["a.b"]);
      const listed: string[] = [];
      for await (const k of kv.listKeys("a.*")) listed.push(k);
      expect(listed).toEqual(["a.b"]);
      expect((await kv.history("a.b")).map((e) => e.revision)).toEqual([1, 4]);
      expect((await kv.history("a.d")).map((e) => e.operation)).toEqual(["PURGE"]);
      // purgeDeletes with 0 age removes the DEL and PURGE markers
      expect(await kv.purgeDeletes({ olderThanMs: 0 })).toBeGreaterThanOrEqual(1);
      const st = await kv.status();
      expect(st.bucket).toBe(bucket);
      expect(st.history).toBe(5);

      const seen = (await take(wit, 6)) as Entry[];
      expect(seen.map((e) => e.revision)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(seen.map((e) => e.operation)).toEqual(["PUT", "PUT", "PUT", "PUT", "DEL", "PURGE"]);
      w.stop();

      const all = await kv.watchAll({ includeHistory: true });
      const initial = await take(all[Symbol.asyncIterator](), 3);
      expect(initial.at(-1)).toBeNull();
      all.stop();

      // stale reads are served locally: once applied here they agree
      await cluster.waitForApplied(i, (await cluster.status(leader))!.commitIndex);
      expect(str((await kv.get("a.b", { stale: true }))!.value)).toBe("4");
    }
    const names = (await conns[1]!.listBuckets()).map((b) => b.bucket);
    expect(names).toEqual(["api0", "api1", "api2"]);
    for (const [i, nc] of conns.entries()) await nc.deleteKeyValue(`api${i}`);
    expect(await codeOf(conns[0]!.deleteKeyValue("api0"))).toBe("BUCKET_NOT_FOUND");
    expect(await conns[2]!.listBuckets()).toEqual([]);
  });
});
