/**
 * The server process: help and config errors, HTTP endpoints, bad input on the client
 * port, request-id dedupe on the wire, identity checks, graceful shutdown, defaults.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connect } from "../client/index.js";
import { decodeServerFrame, encodeClientFrame, type WireObject } from "../proto/index.js";
import {
  binPath,
  removeDir,
  repoRoot,
  runCli,
  type ServerProcess,
  startServer,
  tempDir,
  waitFor,
} from "../test_support/index.js";

/** A raw protocol connection: send frames, read decoded answers, see the close. */
class RawClient {
  readonly frames: WireObject[] = [];
  closeCode: number | undefined;
  private readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.on("close", (code) => {
        this.closeCode = code;
        resolve(code);
      });
    });
    this.ws.on("message", (data) => this.frames.push(decodeServerFrame(data as Buffer)));
  }

  send(frame: WireObject | Uint8Array | string): void {
    this.ws.send(
      typeof frame === "string" || frame instanceof Uint8Array ? frame : encodeClientFrame(frame),
    );
  }

  async hello(): Promise<void> {
    await this.opened;
    this.send({ id: 1, hello: { protocol_version: 1 } });
    await this.answer(1);
  }

  async answer(id: number, timeoutMs = 5000): Promise<WireObject> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const f = this.frames.find((x) => x.id === id);
      if (f) return f;
      if (this.closeCode !== undefined) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no answer to frame ${id}`);
  }

  async closedWithin(timeoutMs = 5000): Promise<number> {
    return Promise.race([
      this.closed,
      new Promise<number>((_, reject) =>
        setTimeout(() => reject(new Error("not closed")), timeoutMs),
      ),
    ]);
  }

  close(): void {
    this.ws.terminate();
  }
}

describe("streamkv server", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
  });

  afterAll(async () => {
    await server?.stop();
    removeDir(server.dataDir);
  });

  it("serves /healthz, /readyz, /v1/status and /metrics", async () => {
    const base = `http://127.0.0.1:${server.clientPort}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    // Ready once the one-voter Raft group has elected itself and applied its commit.
    await waitFor(
      async () => (await fetch(`${base}/readyz`)).status === 200,
      10_000,
      "/readyz 200",
    );
    const nc = await connect({ servers: server.url });
    const kv = await nc.createKeyValue({ bucket: "http" });
    await kv.putString("a", "1");
    await nc.close();
    const status = (await (await fetch(`${base}/v1/status`)).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ id: "n1", role: "leader", leader: "n1", replicated: true });
    expect(status.appliedIndex).toBeGreaterThanOrEqual(2);
    expect(status.commitIndex).toBe(status.appliedIndex);
    expect(status.peers).toEqual([
      {
        id: "n1",
        address: `127.0.0.1:${server.peerPort}`,
        matchIndex: status.appliedIndex,
        voter: true,
        clientUrl: `ws://127.0.0.1:${server.clientPort}`,
      },
    ]);
    expect(status.buckets).toContainEqual(expect.objectContaining({ bucket: "http", values: 1 }));
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain("streamkv_kv_ops_total");
    expect(metrics).toContain("streamkv_raft_applied_index");
    expect(metrics).toContain("streamkv_forwards_in_flight 0");
    expect(metrics).toContain("streamkv_forwards_serving 0");
    expect(metrics).toContain("# TYPE streamkv_forwards_sent_total counter");
    expect(metrics).toContain("# TYPE streamkv_forwards_received_total counter");
    expect(metrics).toContain("streamkv_process_cpu_user_seconds_total");
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it("counts writes by operation in /metrics and shows the build", async () => {
    const nc = await connect({ servers: server.url });
    const kv = await nc.createKeyValue({ bucket: "ops" });
    const r1 = await kv.putString("k", "1");
    await kv.update("k", new TextEncoder().encode("2"), r1);
    await kv.create("c", new TextEncoder().encode("1"));
    await expect(kv.create("c", new TextEncoder().encode("again"))).rejects.toMatchObject({
      code: "KEY_EXISTS",
    });
    await kv.delete("k");
    await kv.purge("c");
    await nc.close();
    const metrics = await (await fetch(`http://127.0.0.1:${server.clientPort}/metrics`)).text();
    const count = (op: string, result: string) =>
      Number(
        new RegExp(
          `^streamkv_kv_ops_total\\{bucket="[^"]*",op="${op}",result="${result}"\\} (\\d+)$`,
          "m",
        ).exec(metrics)?.[1] ?? 0,
      );
    for (const op of ["put", "update", "delete", "purge"])
      expect(count(op, "ok")).toBeGreaterThanOrEqual(1);
    expect(count("create", "ok")).toBeGreaterThanOrEqual(1);
    expect(count("create", "KEY_EXISTS")).toBeGreaterThanOrEqual(1);
    expect(metrics).not.toMatch(/streamkv_kv_ops_total\{[^}]*op="write"/);
    const { version } = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
    expect(metrics).toContain(
      `streamkv_build_info{version="${version}",node_version="${process.version}"} 1`,
    );
  });

  it.each([
    ["a text frame", "hello", "MALFORMED_FRAME"],
    ["an undecodable frame", new Uint8Array([0x12, 0x05, 0x01]), "MALFORMED_FRAME"],
    ["an unknown message", new Uint8Array([0x08, 0x05, 0xfa, 0x06, 0x00]), "UNKNOWN_MESSAGE"],
    ["an oversized frame", new Uint8Array(1024 * 1024 + 64 * 1024 + 1), "FRAME_TOO_LARGE"],
  ])("answers %s with an error, closes, and keeps serving others", async (_name, frame, code) => {
    const bystander = await connect({ servers: server.url });
    const kv = await bystander.createKeyValue({ bucket: "bystander" });
    const bad = new RawClient(server.url);
    await bad.hello();
    bad.send(frame as string | Uint8Array);
    await bad.closedWithin();
    const err = bad.frames.find((f) => f.error);
    expect(err?.error.code).toBe(code);
    expect(await kv.putString("still", "alive")).toBeGreaterThan(0);
    await bystander.close();
  });

  it("closes a connection whose frame is far above the limit", async () => {
    const bad = new RawClient(server.url);
    await bad.hello();
    bad.send(new Uint8Array(4 * 1024 * 1024));
    expect(await bad.closedWithin()).toBe(1009);
    const nc = await connect({ servers: server.url });
    expect((await nc.clusterStatus()).id).toBe("n1");
    await nc.close();
  });

  it("refuses requests before the hello and unknown protocol versions", async () => {
    const early = new RawClient(server.url);
    await early.opened;
    early.send({ id: 5, ping: {} });
    await early.closedWithin();
    expect(early.frames[0]?.error.code).toBe("UNAUTHORIZED");
    const old = new RawClient(server.url);
    await old.opened;
    old.send({ id: 1, hello: { protocol_version: 99 } });
    await old.closedWithin();
    expect(old.frames[0]?.error.message).toMatch(/protocol version 99/);
  });

  it("applies a write retried with the same request id once", async () => {
    const nc = await connect({ servers: server.url });
    const kv = await nc.createKeyValue({ bucket: "dedupe", history: 10 });
    await nc.close();
    const raw = new RawClient(server.url);
    await raw.hello();
    const write = {
      bucket: "dedupe",
      key: "k",
      op: 1,
      value: new Uint8Array([1]),
      request_id: "r-1",
    };
    raw.send({ id: 2, write });
    raw.send({ id: 3, write });
    const a = await raw.answer(2);
    const b = await raw.answer(3);
    expect(a.write_result.revision).toBe(b.write_result.revision);
    raw.close();
    const again = await connect({ servers: server.url });
    const h = await (await again.keyValue("dedupe")).history("k");
    expect(h.length).toBe(1);
    await again.close();
    expect(kv.bucket).toBe("dedupe");
  });

  it("answers many requests in flight on one connection by id", async () => {
    const raw = new RawClient(server.url);
    await raw.hello();
    raw.send({ id: 10, bucket_create: { config: { bucket: "many" }, request_id: "mk" } });
    await raw.answer(10);
    for (let i = 0; i < 50; i++) {
      raw.send({
        id: 100 + i,
        write: {
          bucket: "many",
          key: `k${i}`,
          op: 1,
          value: new Uint8Array([i]),
          request_id: `m${i}`,
        },
      });
    }
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => raw.answer(100 + i)));
    expect(new Set(answers.map((a) => a.write_result.revision)).size).toBe(50);
    raw.close();
  });
});

describe("streamkv server process", () => {
  it("prints its flags with --help", async () => {
    const r = await runCli(["server", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--client-port");
    expect(r.stdout).toContain("(default 7421)");
  });

  it("exits non-zero with a clear one-line message on config errors", async () => {
    const cases: [string[], RegExp][] = [
      [["--client-port", "abc"], /--client-port "abc": not a port number/],
      [["--peers", "n1=nohost"], /--peers: "n1=nohost" is not id=host:port/],
      [["--id", "n9", "--peers", "n1=127.0.0.1:7421"], /--id n9 is not in --peers/],
    ];
    const dirs = cases.map(() => tempDir());
    const results = await Promise.all(
      cases.map(([args], i) => runCli(["server", "--data", dirs[i]!, ...args])),
    );
    dirs.forEach(removeDir);
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(cases[i]![1]);
    });
  });

  it("refuses a data dir that belongs to another node id", async () => {
    const first = await startServer();
    await first.stop();
    const r = await runCli([
      "server",
      "--data",
      first.dataDir,
      "--id",
      "other",
      "--client-port",
      "0",
      "--peer-port",
      "0",
    ]);
    removeDir(first.dataDir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/belongs to node "n1"/);
  });

  it("refuses a data dir in use by a running node", async () => {
    const first = await startServer();
    try {
      const r = await runCli([
        "server",
        "--data",
        first.dataDir,
        "--client-port",
        "0",
        "--peer-port",
        "0",
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/in use by another process|cannot start/);
    } finally {
      await first.stop();
      removeDir(first.dataDir);
    }
  });

  it("exits with a clear message when its port is taken", async () => {
    const first = await startServer();
    const dir = tempDir();
    try {
      const r = await runCli([
        "server",
        "--data",
        dir,
        "--client-port",
        String(first.clientPort),
        "--peer-port",
        "0",
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/cannot listen on 127.0.0.1: .*EADDRINUSE/);
    } finally {
      await first.stop();
      removeDir(first.dataDir);
      removeDir(dir);
    }
  });

  it("finishes in-flight writes and exits 0 quickly on SIGTERM", async () => {
    const server = await startServer();
    const nc = await connect({ servers: server.url, timeoutMs: 5000 });
    const kv = await nc.createKeyValue({ bucket: "term" });
    const writes = Array.from({ length: 100 }, (_, i) => kv.put(`k${i}`, new Uint8Array([i])));
    await writes[0];
    const started = Date.now();
    server.proc.kill("SIGTERM");
    const code = await server.exited;
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    await nc.close();
    const settled = await Promise.allSettled(writes);
    const acked = settled.filter((s) => s.status === "fulfilled").length;
    // Every acknowledged write is there after a restart.
    const again = await startServer({ dataDir: server.dataDir });
    const nc2 = await connect({ servers: again.url });
    const st = await (await nc2.keyValue("term")).status();
    expect(st.values).toBeGreaterThanOrEqual(acked);
    await nc2.close();
    expect(await again.stop("SIGINT")).toBe(0);
    removeDir(server.dataDir);
  });

  it("runs on the embedded defaults (npm start): ./data, ports 7420 and 7421", async () => {
    const cwd = tempDir();
    const server = await startServer({ bare: true, cwd });
    try {
      expect(server.clientPort).toBe(7420);
      expect(server.peerPort).toBe(7421);
      const r = await runCli(["kv", "ls", "--json"]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual([]);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    const ls = spawn("ls", [cwd]);
    let out = "";
    ls.stdout.on("data", (d) => {
      out += d;
    });
    await new Promise((r) => ls.on("exit", r));
    expect(out).toContain("data");
    removeDir(cwd);
  });

  it("has a bin that runs from any directory", () => {
    expect(binPath.endsWith("bin/streamkv.js")).toBe(true);
  });
});
