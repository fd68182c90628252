/**
 * STREAM.PURGE on a real `streamkv server` process, asked over a plain NATS connection:
 * the shapes KV clients' purgeDeletes send (one key's subject, keep 0 or 1) are served,
 * a key whose latest entry is a value is left alone, and every other shape is refused
 * with nats-server's bad-request error (10003). The clients' own purgeDeletes run in
 * nats/kv_client.test.ts and nats/go_client.test.ts, against nats-server too.
 */
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, removeDir, type ServerProcess, startServer } from "../test_support/index.js";

interface PurgeAnswer {
  type: string;
  success?: boolean;
  purged?: number;
  error?: { code: number; err_code: number; description: string };
}

describe("STREAM.PURGE on a streamkv node", () => {
  let server: ServerProcess;
  let nc: NatsConnection;

  const purge = async (body: unknown): Promise<PurgeAnswer> =>
    (
      await nc.request(
        "$JS.API.STREAM.PURGE.KV_sp",
        body === undefined ? "" : JSON.stringify(body),
        {
          timeout: 10_000,
        },
      )
    ).json<PurgeAnswer>();
  const write = async (key: string, value: string, op?: "DEL" | "PURGE") => {
    const h = headers();
    if (op) h.set("KV-Operation", op);
    const ack = await nc.request(`$KV.sp.${key}`, value, { timeout: 10_000, headers: h });
    return ack.json<{ seq: number }>().seq;
  };
  const lastOf = async (key: string) => {
    const m = await nc.request(`$JS.API.DIRECT.GET.KV_sp.$KV.sp.${key}`, "", { timeout: 10_000 });
    return m.headers?.code === 404
      ? "none"
      : `${m.headers?.get("KV-Operation") || "PUT"}:${new TextDecoder().decode(m.data)}`;
  };
  const historyLength = async (key: string) => {
    const m = await nc.request(
      "$JS.API.DIRECT.GET.KV_sp",
      JSON.stringify({ seq: 1, next_by_subj: `$KV.sp.${key}`, batch: 100 }),
      { timeout: 10_000 },
    );
    // The first answer's pending count is the rest of the key's history.
    return m.headers?.code === 404 ? 0 : Number(m.headers?.get("Nats-Num-Pending")) + 1;
  };

  beforeAll(async () => {
    server = await startServer({ natsPort: await freePort() });
    nc = await connect({ servers: `127.0.0.1:${server.natsPort}` });
    const created = await nc.request(
      "$JS.API.STREAM.CREATE.KV_sp",
      JSON.stringify({ name: "KV_sp", subjects: ["$KV.sp.>"], max_msgs_per_subject: 10 }),
      { timeout: 20_000 },
    );
    expect(created.json<PurgeAnswer>().error).toBeUndefined();
  });

  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    if (server) removeDir(server.dataDir);
  });

  it("keep 1 on a deleted key drops its history before the marker; again, nothing", async () => {
    await write("d", "1");
    await write("d", "2");
    await write("d", "", "DEL");
    expect(await historyLength("d")).toBe(3);
    const first = await purge({ filter: "$KV.sp.d", keep: 1 });
    expect(first).toMatchObject({ type: "io.nats.jetstream.api.v1.stream_purge_response" });
    expect(first.success).toBe(true);
    expect(first.purged).toBe(2);
    expect(await historyLength("d")).toBe(1);
    expect(await lastOf("d")).toBe("DEL:");
    expect((await purge({ filter: "$KV.sp.d", keep: 1 })).purged).toBe(0);
  });

  it("keep 0 on a deleted key removes it entirely; a live key is left alone", async () => {
    await write("live", "v1");
    await write("live", "v2");
    await write("gone", "x");
    await write("gone", "", "PURGE");
    const r = await purge({ filter: "$KV.sp.gone" });
    expect(r.success).toBe(true);
    expect(r.purged).toBeGreaterThanOrEqual(1);
    expect(await lastOf("gone")).toBe("none");
    expect(await purge({ filter: "$KV.sp.live", keep: 0 })).toMatchObject({
      success: true,
      purged: 0,
    });
    expect(await lastOf("live")).toBe("PUT:v2");
    expect(await historyLength("live")).toBe(2);
    expect(await purge({ filter: "$KV.sp.never" })).toMatchObject({ success: true, purged: 0 });
  });

  it("refuses every other shape with 10003, and an unknown stream with 10059", async () => {
    for (const body of [
      undefined,
      {},
      { filter: "$KV.sp.>" },
      { filter: "$KV.sp.d", keep: 2 },
      { filter: "$KV.sp.d", seq: 5 },
      { filter: "$KV.sp.d", seq: 5, keep: 1 },
      { filter: "$KV.other.d" },
      { filter: "$KV.sp.d", surprise: 1 },
    ]) {
      expect((await purge(body)).error?.err_code, JSON.stringify(body)).toBe(10003);
    }
    const missing = await nc.request(
      "$JS.API.STREAM.PURGE.KV_nope",
      JSON.stringify({ filter: "$KV.nope.k" }),
      {
        timeout: 10_000,
      },
    );
    expect(missing.json<PurgeAnswer>().error?.err_code).toBe(10059);
  });
});
