/**
 * Batched DIRECT.GET (nats-server 2.11's `batch`, `max_bytes`, `next_by_subj` and
 * `multi_last`, ADR-31) on a real `streamkv server` process, asked over a plain NATS
 * connection: Debian's nats-server is 2.9, which has none of them, and @nats-io's
 * client refuses them below 2.11 (streamkv announces 2.10), so the answers are checked
 * against ADR-31's shapes here, not against a reference server.
 */
import { connect, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, removeDir, type ServerProcess, startServer } from "../test_support/index.js";

const API = "$JS.API.DIRECT.GET.KV_dg";

/**
 * Every message answering one request, up to and including a status, or the first one
 * with `single` (an answer without a batch has no end-of-batch); bounded by time.
 */
async function ask(
  nc: NatsConnection,
  body: unknown,
  timeoutMs = 10_000,
  single = false,
): Promise<Msg[]> {
  const inbox = `_INBOX.dg.${Math.random().toString(36).slice(2)}`;
  const sub = nc.subscribe(inbox, { max: 5000 });
  const out: Msg[] = [];
  const done = (async () => {
    for await (const m of sub) {
      out.push(m);
      if (single || (m.headers?.code !== undefined && m.headers.code !== 0)) break;
    }
  })();
  nc.publish(API, JSON.stringify(body), { reply: inbox });
  const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutMs));
  const res = await Promise.race([done, timer]);
  sub.unsubscribe();
  if (res === "timeout") throw new Error(`no end after ${out.length} messages`);
  return out;
}

const hdr = (m: Msg, name: string) => m.headers?.get(name) ?? "";
const statusOf = (m: Msg) => `${m.headers?.code} ${m.headers?.description}`;
const keyOf = (m: Msg) => hdr(m, "Nats-Subject").replace("$KV.dg.", "");

describe("DIRECT.GET batches and multi_last on a streamkv node", () => {
  let server: ServerProcess;
  let nc: NatsConnection;
  const revs: Record<string, number[]> = {};

  beforeAll(async () => {
    server = await startServer({ natsPort: await freePort() });
    nc = await connect({ servers: `127.0.0.1:${server.natsPort}` });
    const created = await nc.request(
      "$JS.API.STREAM.CREATE.KV_dg",
      JSON.stringify({ name: "KV_dg", subjects: ["$KV.dg.>"], max_msgs_per_subject: 10 }),
      { timeout: 20_000 },
    );
    expect(created.json<{ error?: unknown }>().error).toBeUndefined();
    const put = async (key: string, value: string, extra?: Record<string, string>) => {
      const h = headers();
      for (const [k, v] of Object.entries(extra ?? {})) h.set(k, v);
      const ack = await nc.request(`$KV.dg.${key}`, value, { timeout: 10_000, headers: h });
      const seq = ack.json<{ seq: number }>().seq;
      (revs[key] ??= []).push(seq);
    };
    await put("a.1", "one");
    await put("a.2", "two");
    await put("b.1", "bee");
    await put("a.1", "uno");
    await put("a.2", "", { "KV-Operation": "DEL" });
    await put("b.1", "bee2");
  });

  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    if (server) removeDir(server.dataDir);
  });

  it("batch from a sequence, one filter: in order, pending counting down, then EOB", async () => {
    const got = await ask(nc, { seq: revs["a.1"]![0]!, next_by_subj: "$KV.dg.a.*", batch: 10 });
    const msgs = got.slice(0, -1);
    expect(msgs.map(keyOf)).toEqual(["a.1", "a.2", "a.1", "a.2"]);
    expect(msgs.map((m) => Number(hdr(m, "Nats-Sequence")))).toEqual([
      revs["a.1"]![0],
      revs["a.2"]![0],
      revs["a.1"]![1],
      revs["a.2"]![1],
    ]);
    expect(msgs.map((m) => hdr(m, "Nats-Num-Pending"))).toEqual(["3", "2", "1", "0"]);
    expect(msgs.map((m) => hdr(m, "Nats-Last-Sequence"))).toEqual([
      "0",
      ...msgs.slice(0, -1).map((m) => hdr(m, "Nats-Sequence")),
    ]);
    expect(hdr(msgs[3]!, "KV-Operation")).toBe("DEL");
    expect(new TextDecoder().decode(msgs[2]!.data)).toBe("uno");
    const eob = got[got.length - 1]!;
    expect(statusOf(eob)).toBe("204 EOB");
    expect(hdr(eob, "Nats-Num-Pending")).toBe("0");
    expect(hdr(eob, "Nats-Last-Sequence")).toBe(String(revs["a.2"]![1]));
  });

  it("batch and max_bytes end early; the pending count says what is left", async () => {
    const two = await ask(nc, { seq: 1, batch: 2 });
    expect(two.map((m) => m.headers?.code ?? 0)).toEqual([0, 0, 204]);
    expect(hdr(two[2]!, "Nats-Num-Pending")).toBe("4");
    const next = Number(hdr(two[2]!, "Nats-Last-Sequence")) + 1;
    const rest = await ask(nc, { seq: next, batch: 100 });
    expect(rest.length - 1).toBe(4);
    // "one" (3 bytes) fits, "two" would pass 4 bytes: one message, then EOB.
    const small = await ask(nc, { seq: 1, max_bytes: 4 });
    expect(small.map((m) => m.headers?.code ?? 0)).toEqual([0, 204]);
    expect(hdr(small[1]!, "Nats-Num-Pending")).toBe("5");
  });

  it("next_by_subj without batch: the first match from seq, as one message", async () => {
    const got = await ask(
      nc,
      { seq: revs["b.1"]![0]! + 1, next_by_subj: "$KV.dg.b.1" },
      10_000,
      true,
    );
    expect(got).toHaveLength(1);
    expect(hdr(got[0]!, "Nats-Sequence")).toBe(String(revs["b.1"]![1]));
    expect(hdr(got[0]!, "Nats-Num-Pending")).toBe("");
    const none = await ask(nc, { seq: 1, next_by_subj: "$KV.dg.zz" });
    expect(none.map(statusOf)).toEqual(["404 Message Not Found"]);
  });

  it("multi_last: the latest of each matching key, markers too, in revision order", async () => {
    const got = await ask(nc, { multi_last: ["$KV.dg.a.*", "$KV.dg.b.1"] });
    const msgs = got.slice(0, -1);
    expect(msgs.map((m) => `${keyOf(m)}@${hdr(m, "Nats-Sequence")}`)).toEqual([
      `a.1@${revs["a.1"]![1]}`,
      `a.2@${revs["a.2"]![1]}`,
      `b.1@${revs["b.1"]![1]}`,
    ]);
    expect(msgs.map((m) => hdr(m, "Nats-Num-Pending"))).toEqual(["2", "1", "0"]);
    const eob = got[got.length - 1]!;
    expect(statusOf(eob)).toBe("204 EOB");
    expect(Number(hdr(eob, "Nats-UpTo-Sequence"))).toBeGreaterThanOrEqual(revs["b.1"]![1]!);
  });

  it("multi_last with up_to_seq: the keys as they were at that revision", async () => {
    const upTo = revs["b.1"]![0]!;
    const got = await ask(nc, { multi_last: ["$KV.dg.>"], up_to_seq: upTo });
    const msgs = got.slice(0, -1);
    expect(msgs.map((m) => `${keyOf(m)}=${new TextDecoder().decode(m.data)}`)).toEqual([
      "a.1=one",
      "a.2=two",
      "b.1=bee",
    ]);
    expect(hdr(got[got.length - 1]!, "Nats-UpTo-Sequence")).toBe(String(upTo));
  });

  it("refuses what it does not serve with 408, naming it", async () => {
    for (const body of [
      { seq: 1, batch: 0 },
      { seq: -1, batch: 2 },
      { seq: 1, batch: 2, last_by_subj: "$KV.dg.a.1" },
      { multi_last: [] },
      { multi_last: ["$KV.other.>"] },
      { seq: 1, batch: 2, surprise: true },
    ]) {
      expect((await ask(nc, body)).map(statusOf), JSON.stringify(body)).toEqual([
        "408 Bad Request",
      ]);
    }
    expect(
      (await ask(nc, { seq: 1, batch: 2, start_time: "2026-01-01T00:00:00Z" })).map(statusOf),
    ).toEqual(["408 streamkv does not serve start_time or up_to_time"]);
  });

  it("bounds: at most 1024 entries an answer, and 413 beyond 1024 keys in a multi_last", async () => {
    // 1030 keys, pipelined (each publish answered with a PubAck).
    const acks = await Promise.all(
      Array.from({ length: 1030 }, (_, i) =>
        nc.request(`$KV.dg.many.${i}`, "x", { timeout: 20_000 }),
      ),
    );
    expect(acks.every((a) => a.json<{ seq?: number }>().seq !== undefined)).toBe(true);
    const got = await ask(nc, { seq: 1, batch: 5000, next_by_subj: "$KV.dg.many.*" }, 20_000);
    expect(got).toHaveLength(1025);
    expect(statusOf(got[1024]!)).toBe("204 EOB");
    expect(hdr(got[1024]!, "Nats-Num-Pending")).toBe("6");
    expect((await ask(nc, { multi_last: ["$KV.dg.many.*"] }, 20_000)).map(statusOf)).toEqual([
      "413 Too Many Results",
    ]);
    // And the node serves on.
    expect((await ask(nc, { multi_last: ["$KV.dg.b.1"] })).length).toBe(2);
  }, 60_000);
});
