/**
 * The NATS port of a real `streamkv server` process, spoken to over raw TCP: INFO,
 * CONNECT options, PING/PONG, +OK, core request/reply and queue groups, no-responders,
 * and every bound on hostile input (garbage, half lines, oversized payloads, too many
 * subscriptions, a client that never reads, no CONNECT in time), each ending that
 * connection with `-ERR` while the node keeps serving others.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { type Socket, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { connect, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  freePort,
  removeDir,
  type ServerProcess,
  startServer,
  tempDir,
  waitFor,
} from "../test_support/index.js";

/** A raw NATS connection that records everything it receives. */
class Raw {
  data = "";
  closed = false;
  bytes = 0;
  constructor(readonly socket: Socket) {
    socket.on("data", (d: Buffer) => {
      this.bytes += d.length;
      // Keep the text small: a flood test receives megabytes.
      if (this.data.length < 1_000_000) this.data += d.toString("latin1");
    });
    socket.on("close", () => {
      this.closed = true;
    });
    socket.on("error", () => {});
  }
  static async open(port: number, expectInfo = true): Promise<Raw> {
    const socket = tcpConnect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const raw = new Raw(socket);
    if (expectInfo) await raw.until(/^INFO .*\r\n/);
    return raw;
  }
  send(text: string | Buffer): void {
    this.socket.write(text);
  }
  async until(re: RegExp, timeoutMs = 10_000): Promise<void> {
    await waitFor(
      () => re.test(this.data),
      timeoutMs,
      `${re} in ${JSON.stringify(this.data.slice(-300))}`,
    );
  }
  async untilClosed(timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, "the server to close the connection");
  }
  count(text: string): number {
    return this.data.split(text).length - 1;
  }
  info(): Record<string, unknown> {
    return JSON.parse(/^INFO (.*)\r\n/.exec(this.data)![1]!);
  }
  close(): void {
    this.socket.destroy();
  }
}

async function connected(port: number, options: Record<string, unknown> = {}): Promise<Raw> {
  const raw = await Raw.open(port);
  raw.send(
    `CONNECT ${JSON.stringify({ headers: true, no_responders: true, ...options })}\r\nPING\r\n`,
  );
  await raw.until(/PONG\r\n/);
  return raw;
}

/** The node still serves a new client (a PING answered). */
async function stillServes(port: number): Promise<void> {
  const other = await connected(port);
  other.close();
}

const MAX_PAYLOAD = 65_536;
const MAX_OUTBOUND = 2 * MAX_PAYLOAD;

describe("the NATS port (no tokens)", () => {
  let server: ServerProcess;
  const open: Raw[] = [];
  const raw = async (opts?: Record<string, unknown>) => {
    const r =
      opts === undefined ? await Raw.open(server.natsPort) : await connected(server.natsPort, opts);
    open.push(r);
    return r;
  };

  beforeAll(async () => {
    server = await startServer({
      natsPort: await freePort(),
      args: [
        "--max-frame-bytes",
        String(MAX_PAYLOAD),
        "--client-max-buffered-bytes",
        String(MAX_OUTBOUND),
      ],
    });
  });
  afterAll(async () => {
    for (const r of open) r.close();
    await server?.stop();
    if (server) removeDir(server.dataDir);
  });

  it("is announced on stdout and sends INFO first", async () => {
    expect(server.natsPort).toBeGreaterThan(0);
    const r = await raw();
    expect(r.info()).toMatchObject({
      server_id: "n1",
      version: expect.stringMatching(/^2\.\d+\.\d+$/),
      proto: 1,
      headers: true,
      jetstream: true,
      max_payload: MAX_PAYLOAD,
    });
    expect(r.info().auth_required).toBeUndefined();
  });

  it("answers PING, and +OK to each operation when verbose", async () => {
    const r = await raw({ verbose: true });
    r.send("SUB a.b 1\r\nPUB a.b 2\r\nhi\r\nUNSUB 1\r\n");
    await r.until(/PONG\r\n\+OK\r\n\+OK\r\nMSG a\.b 1 2\r\nhi\r\n\+OK\r\n$/);
  });

  it("routes core request/reply between clients, one member per queue group", async () => {
    const a = await raw();
    const b = await raw();
    const requester = await raw();
    a.send("SUB svc.echo workers 1\r\n");
    a.send("PING\r\n");
    b.send("SUB svc.echo workers 7\r\nPING\r\n");
    await a.until(/PONG\r\n/);
    await b.until(/PONG\r\n/);
    requester.send("SUB _INBOX.r.* 3\r\nPUB svc.echo _INBOX.r.1 4\r\nping\r\n");
    await waitFor(() => /MSG svc\.echo/.test(a.data + b.data), 10_000, "one worker to get it");
    // Exactly one of the two queue members got the request.
    expect((a.data + b.data).match(/MSG svc\.echo \d _INBOX\.r\.1 4\r\nping/g)).toHaveLength(1);
    const worker = /MSG svc\.echo/.test(a.data) ? a : b;
    worker.send("PUB _INBOX.r.1 4\r\npong\r\n");
    await requester.until(/MSG _INBOX\.r\.1 3 4\r\npong\r\n/);
  });

  it("answers a request nobody listens to with a 503 no-responders status", async () => {
    const r = await raw({});
    r.send("SUB _INBOX.n.* 9\r\nPUB nobody.here _INBOX.n.1 0\r\n\r\n");
    await r.until(/HMSG _INBOX\.n\.1 9 \d+ \d+\r\nNATS\/1\.0 503\r\n\r\n\r\n/);
  });

  it("answers an unsupported JetStream request with a JetStream error that says so", async () => {
    const r = await raw();
    const body = JSON.stringify({ name: "ORDERS", subjects: ["orders.>"] });
    r.send(
      `SUB _INBOX.j.* 1\r\nPUB $JS.API.STREAM.CREATE.ORDERS _INBOX.j.1 ${body.length}\r\n${body}\r\n`,
    );
    await r.until(/"err_code":10052/);
    expect(r.data).toContain("streamkv serves KV buckets only");
    r.send("PUB $JS.API.ACCOUNT.PURGE.x _INBOX.j.2 0\r\n\r\n");
    await r.until(/MSG _INBOX\.j\.2 [\s\S]*"err_code":10003/);
  });

  it("closes on garbage with -ERR, serving others meanwhile", async () => {
    const r = await raw();
    r.send("HELLO THERE\r\n");
    await r.until(/-ERR 'Unknown Protocol Operation'\r\n/);
    await r.untilClosed();
    await stillServes(server.natsPort);
  });

  it("closes on a payload over max_payload before reading it", async () => {
    const r = await raw({});
    r.send(`PUB big ${MAX_PAYLOAD + 1}\r\n`);
    await r.until(/-ERR 'Maximum Payload Violation'\r\n/);
    await r.untilClosed();
    await stillServes(server.natsPort);
  });

  it("closes on a control line that never ends, at the limit", async () => {
    const r = await raw({});
    // Half a line, then more of it, never a CRLF: refused once past 4096 bytes.
    r.send("PUB ");
    r.send("a".repeat(5000));
    await r.until(/-ERR 'Maximum Control Line Exceeded'\r\n/);
    await r.untilClosed();
    await stillServes(server.natsPort);
  });

  it("closes a connection that sends no CONNECT in time", async () => {
    const r = await raw();
    r.send("PIN");
    await r.until(/-ERR 'Authentication Timeout'\r\n/, 15_000);
    await r.untilClosed();
  }, 20_000);

  it("closes at the subscription limit", async () => {
    const r = await raw({});
    const subs = Array.from({ length: 4097 }, (_, i) => `SUB s.${i} ${i}\r\n`).join("");
    r.send(subs);
    await r.until(/-ERR 'Maximum Subscriptions Exceeded'\r\n/);
    await r.untilClosed();
    await stillServes(server.natsPort);
  });

  it("closes a client that never reads (slow consumer) and keeps serving the others", async () => {
    const reader = await raw({});
    reader.send("SUB flood 1\r\nPING\r\n");
    await reader.until(/PONG\r\n[\s\S]*PONG\r\n/);
    // From now on it reads nothing: the kernel's buffers fill, then the node's.
    reader.socket.pause();
    const publisher = await raw({});
    const chunk = `PUB flood ${MAX_PAYLOAD - 1024}\r\n${"x".repeat(MAX_PAYLOAD - 1024)}\r\n`;
    // At most 64 MiB: loopback buffers are a few MiB, the node holds 128 KiB.
    for (let i = 0; i < 1024 && !reader.closed; i++) {
      publisher.send(chunk);
      if (i % 16 === 15) {
        const pongs = publisher.count("PONG");
        publisher.send("PING\r\n");
        await waitFor(() => publisher.count("PONG") > pongs, 10_000, "the publisher's PONG");
      }
    }
    reader.socket.resume();
    await reader.untilClosed();
    expect(reader.bytes).toBeLessThan(1024 * chunk.length);
    await stillServes(server.natsPort);
    expect(publisher.closed, server.stderr()).toBe(false);
  }, 60_000);
});

describe("the JetStream API on the NATS port, raw", () => {
  let server: ServerProcess;
  let nc: NatsConnection;
  const json = (m: Msg) => m.json<Record<string, unknown>>();
  const api = async (subject: string, body?: unknown) =>
    json(
      await nc.request(subject, body === undefined ? "" : JSON.stringify(body), { timeout: 5000 }),
    );

  beforeAll(async () => {
    server = await startServer({
      natsPort: await freePort(),
      args: [
        "--max-frame-bytes",
        String(MAX_PAYLOAD),
        "--client-max-buffered-bytes",
        String(MAX_OUTBOUND),
      ],
    });
    nc = await connect({ servers: `127.0.0.1:${server.natsPort}` });
    const created = await api("$JS.API.STREAM.CREATE.KV_raw", {
      name: "KV_raw",
      subjects: ["$KV.raw.>"],
      max_msgs_per_subject: 3,
      max_age: 0,
      discard: "new",
      num_replicas: 1,
    });
    expect(created.error).toBeUndefined();
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    if (server) removeDir(server.dataDir);
  });

  it("answers a PubAck, or the JetStream error of a failed compare-and-set", async () => {
    expect(json(await nc.request("$KV.raw.k", "v1"))).toEqual({ stream: "KV_raw", seq: 1 });
    const h = headers();
    h.set("Nats-Expected-Last-Subject-Sequence", "7");
    expect(json(await nc.request("$KV.raw.k", "v2", { headers: h, timeout: 5000 }))).toEqual({
      error: { code: 400, err_code: 10071, description: "wrong last sequence: 1" },
    });
    const ttl = headers();
    ttl.set("Nats-TTL", "10s");
    expect(
      (
        json(await nc.request("$KV.raw.k", "v3", { headers: ttl, timeout: 5000 })).error as {
          err_code: number;
        }
      ).err_code,
    ).toBe(10166);
  });

  it("applies a write retried with the same Nats-Msg-Id once", async () => {
    const h = headers();
    h.set("Nats-Msg-Id", "once-1");
    const first = json(await nc.request("$KV.raw.once", "x", { headers: h, timeout: 5000 }));
    const again = json(await nc.request("$KV.raw.once", "x", { headers: h, timeout: 5000 }));
    expect(again.seq).toBe(first.seq);
  });

  it("DIRECT.GET: the message with its Nats-* headers, 404 when missing", async () => {
    const m = await nc.request("$JS.API.DIRECT.GET.KV_raw.$KV.raw.k", "");
    expect(m.headers?.get("Nats-Stream")).toBe("KV_raw");
    expect(m.headers?.get("Nats-Subject")).toBe("$KV.raw.k");
    expect(m.headers?.get("Nats-Sequence")).toBe("1");
    expect(Number.isNaN(Date.parse(m.headers?.get("Nats-Time-Stamp") ?? ""))).toBe(false);
    expect(m.string()).toBe("v1");
    const bySeq = await nc.request("$JS.API.DIRECT.GET.KV_raw", JSON.stringify({ seq: 1 }));
    expect(bySeq.string()).toBe("v1");
    const missing = await nc.request("$JS.API.DIRECT.GET.KV_raw.$KV.raw.nope", "");
    expect(missing.headers?.code).toBe(404);
    const bad = await nc.request(
      "$JS.API.DIRECT.GET.KV_raw",
      JSON.stringify({ multi_last: ["x"] }),
    );
    expect(bad.headers?.code).toBe(408);
  });

  it("STREAM.MSG.GET: base64 data, 10037 when missing", async () => {
    const got = await api("$JS.API.STREAM.MSG.GET.KV_raw", { last_by_subj: "$KV.raw.k" });
    const message = got.message as { data: string; seq: number; subject: string };
    expect(Buffer.from(message.data, "base64").toString()).toBe("v1");
    expect(message.subject).toBe("$KV.raw.k");
    const missing = await api("$JS.API.STREAM.MSG.GET.KV_raw", { seq: 999 });
    expect((missing.error as { err_code: number }).err_code).toBe(10037);
  });

  it("refuses stream settings streamkv has no equivalent for, by name", async () => {
    const r = await api("$JS.API.STREAM.CREATE.KV_mirror", {
      name: "KV_mirror",
      subjects: ["$KV.mirror.>"],
      mirror: { name: "KV_other" },
      compression: "s2",
    });
    expect(r.error).toMatchObject({ err_code: 10052 });
    expect(String((r.error as { description: string }).description)).toMatch(/mirror, compression/);
    const missing = await api("$JS.API.STREAM.INFO.KV_absent");
    expect(missing.error).toEqual({ code: 404, err_code: 10059, description: "stream not found" });
  });

  it("CONSUMER.CREATE / INFO / DELETE of an ephemeral push consumer", async () => {
    const created = await api("$JS.API.CONSUMER.CREATE.KV_raw", {
      stream_name: "KV_raw",
      config: {
        deliver_subject: "_INBOX.c1",
        deliver_policy: "last_per_subject",
        ack_policy: "none",
      },
    });
    expect(created.num_pending).toBe(2);
    const name = created.name as string;
    const info = await api(`$JS.API.CONSUMER.INFO.KV_raw.${name}`);
    expect(info.num_pending).toBe(2);
    expect(await api(`$JS.API.CONSUMER.DELETE.KV_raw.${name}`)).toMatchObject({ success: true });
    const gone = await api(`$JS.API.CONSUMER.INFO.KV_raw.${name}`);
    expect((gone.error as { err_code: number }).err_code).toBe(10014);
    const durable = await api("$JS.API.CONSUMER.CREATE.KV_raw", {
      config: { durable_name: "d", deliver_subject: "_INBOX.c2" },
    });
    expect((durable.error as { err_code: number }).err_code).toBe(10012);
  });

  it("delivers to the deliver subject once subscribed, with $JS.ACK replies and idle heartbeats", async () => {
    const seq = json(await nc.request("$KV.raw.hb", "v1", { timeout: 5000 })).seq as number;
    const created = await api("$JS.API.CONSUMER.CREATE.KV_raw", {
      config: {
        deliver_subject: "_INBOX.hb",
        deliver_policy: "all",
        filter_subject: "$KV.raw.hb",
        idle_heartbeat: 300_000_000,
      },
    });
    expect(created.num_pending).toBe(1);
    const got: Msg[] = [];
    const sub = nc.subscribe("_INBOX.hb", {
      callback: (_err, m) => {
        got.push(m);
      },
    });
    try {
      await waitFor(() => got.some((m) => m.headers?.code === 100), 10_000, "an idle heartbeat");
      const data = got[0]!;
      expect(data.subject).toBe("$KV.raw.hb");
      expect(data.string()).toBe("v1");
      // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>
      const ack = data.reply!.split(".");
      expect(ack.slice(0, 4)).toEqual(["$JS", "ACK", "KV_raw", created.name]);
      expect(ack.slice(4, 7)).toEqual(["1", String(seq), "1"]);
      expect(ack[8]).toBe("0");
      const hb = got.find((m) => m.headers?.code === 100)!;
      expect(hb.headers?.description).toBe("Idle Heartbeat");
      expect(hb.headers?.get("Nats-Last-Stream")).toBe(String(seq));
      expect(hb.headers?.get("Nats-Last-Consumer")).toBe("1");
    } finally {
      sub.unsubscribe();
    }
  });

  it("bounds the initial values a consumer holds to count them (bytes)", async () => {
    // Three values of 60 KiB: more than the 128 KiB the node allows one consumer.
    for (const k of ["big.1", "big.2", "big.3"]) {
      expect(json(await nc.request(`$KV.raw.${k}`, "x".repeat(60 * 1024))).seq).toBeGreaterThan(0);
    }
    const r = await api("$JS.API.CONSUMER.CREATE.KV_raw", {
      config: {
        deliver_subject: "_INBOX.big",
        deliver_policy: "all",
        filter_subject: "$KV.raw.big.>",
      },
    });
    expect(r.error).toMatchObject({ err_code: 10012 });
    expect(String((r.error as { description: string }).description)).toMatch(/headers_only/);
    // Without the values (what keys() asks for) the same consumer fits.
    const meta = await api("$JS.API.CONSUMER.CREATE.KV_raw", {
      config: {
        deliver_subject: "_INBOX.big2",
        deliver_policy: "all",
        filter_subject: "$KV.raw.big.>",
        headers_only: true,
      },
    });
    expect(meta.num_pending).toBe(3);
  });

  it("bounds the filter subjects of one consumer", async () => {
    const filters = (n: number) => Array.from({ length: n }, (_, i) => `$KV.raw.f${i}`);
    const ok = await api("$JS.API.CONSUMER.CREATE.KV_raw", {
      config: { deliver_subject: "_INBOX.f1", filter_subjects: filters(256) },
    });
    expect(ok.error).toBeUndefined();
    const tooMany = await api("$JS.API.CONSUMER.CREATE.KV_raw", {
      config: { deliver_subject: "_INBOX.f2", filter_subjects: filters(257) },
    });
    expect(tooMany.error).toMatchObject({ err_code: 10012 });
    await api(`$JS.API.CONSUMER.DELETE.KV_raw.${ok.name as string}`);
  });

  it("bounds the consumers of one connection", async () => {
    const own = await connect({ servers: `127.0.0.1:${server.natsPort}` });
    try {
      const create = async (i: number) =>
        (
          await own.request(
            "$JS.API.CONSUMER.CREATE.KV_raw",
            JSON.stringify({
              config: { deliver_subject: `_INBOX.many.${i}`, deliver_policy: "new" },
            }),
          )
        ).json<Record<string, unknown>>();
      for (let i = 0; i < 64; i++) expect((await create(i)).error).toBeUndefined();
      expect((await create(64)).error).toMatchObject({ err_code: 10026 });
    } finally {
      await own.close();
    }
  });

  it("serves a pipeline of writes beyond the in-flight bound, in order", async () => {
    const r = await connected(server.natsPort);
    const n = 300;
    r.send(
      `SUB _INBOX.p.* 1\r\n${Array.from({ length: n }, (_, i) => `PUB $KV.raw.p _INBOX.p.${i} ${String(i).length}\r\n${i}\r\n`).join("")}`,
    );
    await waitFor(() => r.count('"stream":"KV_raw"') === n, 20_000, `${n} PubAcks`);
    const seqs = [
      ...r.data.matchAll(/MSG _INBOX\.p\.(\d+) 1 \d+\r\n\{"stream":"KV_raw","seq":(\d+)\}/g),
    ].map((m) => [Number(m[1]), Number(m[2])]);
    // Written in the order sent: a higher request number has a higher revision.
    const byRequest = [...seqs].sort((a, b) => a[0]! - b[0]!).map((x) => x[1]!);
    expect(byRequest).toEqual([...byRequest].sort((a, b) => a - b));
    r.close();
  });
});

describe("the NATS port with tokens", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ natsPort: await freePort(), env: { STREAMKV_TOKEN: "s3cret" } });
  });
  afterAll(async () => {
    await server?.stop();
    if (server) removeDir(server.dataDir);
  });

  it("says auth_required and refuses a CONNECT without the token", async () => {
    const r = await Raw.open(server.natsPort);
    expect(r.info().auth_required).toBe(true);
    r.send('CONNECT {"auth_token":"wrong"}\r\nPING\r\n');
    await r.until(/-ERR 'Authorization Violation'\r\n/);
    await r.untilClosed();
  });

  it("refuses anything before CONNECT", async () => {
    const r = await Raw.open(server.natsPort);
    r.send("PING\r\n");
    await r.until(/-ERR 'Authorization Violation'\r\n/);
    await r.untilClosed();
  });

  it("serves a CONNECT with the token", async () => {
    const r = await connected(server.natsPort, { auth_token: "s3cret" });
    r.close();
  });
});

describe("the NATS port with a tokens file: permissions as on the client port", () => {
  let server: ServerProcess;
  const dir = tempDir();
  const sha = (t: string) => createHash("sha256").update(t).digest("hex");
  beforeAll(async () => {
    const tokensFile = join(dir, "tokens.json");
    const tokens = [
      { name: "root", sha256: sha("root-token"), admin: true, read: ["*"], write: ["*"] },
      { name: "reader", sha256: sha("reader-token"), read: ["*"] },
    ];
    writeFileSync(tokensFile, JSON.stringify({ tokens }), { mode: 0o600 });
    server = await startServer({ natsPort: await freePort(), args: ["--tokens-file", tokensFile] });
  });
  afterAll(async () => {
    await server?.stop();
    if (server) removeDir(server.dataDir);
    removeDir(dir);
  });

  it("refuses a write of a read-only token with a permissions violation, serves its reads", async () => {
    const root = await connect({ servers: `127.0.0.1:${server.natsPort}`, token: "root-token" });
    try {
      const created = (
        await root.request(
          "$JS.API.STREAM.CREATE.KV_perm",
          JSON.stringify({ name: "KV_perm", subjects: ["$KV.perm.>"] }),
          { timeout: 5000 },
        )
      ).json<Record<string, unknown>>();
      expect(created.error).toBeUndefined();
      await root.request("$KV.perm.k", "v", { timeout: 5000 });
    } finally {
      await root.close();
    }
    const r = await connected(server.natsPort, { auth_token: "reader-token" });
    r.send("SUB _INBOX.q.* 1\r\nPUB $KV.perm.k _INBOX.q.1 1\r\nx\r\n");
    await r.until(/-ERR 'Permissions Violation for Publish to "\$KV\.perm\.k"'\r\n/);
    r.send("PUB $JS.API.DIRECT.GET.KV_perm.$KV.perm.k _INBOX.q.2 0\r\n\r\n");
    await r.until(/HMSG _INBOX\.q\.2 1 \d+ \d+\r\nNATS\/1\.0\r\n[\s\S]*Nats-Sequence: 1\r\n/);
    r.send("PUB $JS.API.STREAM.DELETE.KV_perm _INBOX.q.3 0\r\n\r\n");
    await r.until(/Permissions Violation for Publish to "\$JS\.API\.STREAM\.DELETE\.KV_perm"/);
    // A batched direct get is a read; a purge (purgeDeletes) needs admin, as on the client port.
    const batch = JSON.stringify({ seq: 1, batch: 5 });
    r.send(`PUB $JS.API.DIRECT.GET.KV_perm _INBOX.q.4 ${batch.length}\r\n${batch}\r\n`);
    await r.until(/HMSG _INBOX\.q\.4 1 \d+ \d+\r\nNATS\/1\.0 204 EOB\r\n/);
    const purge = JSON.stringify({ filter: "$KV.perm.k" });
    r.send(`PUB $JS.API.STREAM.PURGE.KV_perm _INBOX.q.5 ${purge.length}\r\n${purge}\r\n`);
    await r.until(/Permissions Violation for Publish to "\$JS\.API\.STREAM\.PURGE\.KV_perm"/);
    expect(r.closed).toBe(false);
    r.close();
  });
});

describe("the NATS port at --max-connections", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ natsPort: await freePort(), args: ["--max-connections", "3"] });
  });
  afterAll(async () => {
    await server?.stop();
    if (server) removeDir(server.dataDir);
  });

  it("refuses one more with -ERR, serves the others, and takes a new one once one left", async () => {
    const held = [
      await connected(server.natsPort),
      await connected(server.natsPort),
      await connected(server.natsPort),
    ];
    const refused = await Raw.open(server.natsPort, false);
    await refused.until(/^-ERR 'maximum connections exceeded'\r\n$/);
    await refused.untilClosed();
    held[0]!.send("PING\r\n");
    await waitFor(() => held[0]!.count("PONG\r\n") === 2, 10_000, "a second PONG");
    held[2]!.close();
    await waitFor(
      async () => {
        const r = await Raw.open(server.natsPort, false);
        await r.until(/^(INFO |-ERR )/);
        r.close();
        return r.data.startsWith("INFO ");
      },
      10_000,
      "a connection to be taken again",
      50,
    );
    for (const r of held) r.close();
  });
});
