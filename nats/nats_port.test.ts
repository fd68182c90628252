/**
 * The NATS port of a real `streamkv server` process, spoken to over raw TCP: INFO,
 * CONNECT options, PING/PONG, +OK, core request/reply and queue groups, no-responders,
 * and every bound on hostile input (garbage, half lines, oversized payloads, too many
 * subscriptions, a client that never reads, no CONNECT in time), each ending that
 * connection with `-ERR` while the node keeps serving others.
 */
import { type Socket, connect as tcpConnect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  freePort,
  removeDir,
  type ServerProcess,
  startServer,
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
  static async open(port: number): Promise<Raw> {
    const socket = tcpConnect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const raw = new Raw(socket);
    await raw.until(/^INFO .*\r\n/);
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
