/**
 * Tokens with permissions through a real `streamkv server` and the real SDK and CLI
 * (issue 9): the permission matrix on the wire, FORBIDDEN vs UNAUTHORIZED, HTTP
 * endpoints behind an admin token, `--metrics-listen`, audit lines, a SIGHUP reload
 * that revokes a token in use, and `--token-file` on both sides.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type KvConnection } from "../client/index.js";
import {
  freePort,
  removeDir,
  runCli,
  type ServerProcess,
  startServer,
  tempDir,
  waitFor,
} from "../test_support/index.js";
import { newToken, sha256Hex } from "./auth.js";

const root = newToken();
const reader = newToken();
const writer = newToken();
const dir = tempDir("streamkv-auth-");
const tokensFile = join(dir, "tokens.json");

function writeTokens(entries: object[]): void {
  writeFileSync(tokensFile, JSON.stringify({ tokens: entries }), { mode: 0o600 });
}

const rootEntry = { name: "root", sha256: sha256Hex(root), admin: true, read: ["*"], write: ["*"] };
const readerEntry = { name: "reader", sha256: sha256Hex(reader), read: ["app*"] };
const writerEntry = { name: "writer", sha256: sha256Hex(writer), write: ["app"] };

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

let server: ServerProcess;
let metricsPort: number;
const conns: KvConnection[] = [];

async function as(token: string | undefined): Promise<KvConnection> {
  const nc = await connect({
    servers: server.url,
    timeoutMs: 3000,
    reconnectDelayMaxMs: 200,
    ...(token ? { token } : {}),
  });
  conns.push(nc);
  return nc;
}

beforeAll(async () => {
  writeTokens([rootEntry, readerEntry, writerEntry]);
  metricsPort = await freePort();
  server = await startServer({
    dataDir: join(dir, "data"),
    args: ["--tokens-file", tokensFile, "--metrics-listen", `127.0.0.1:${metricsPort}`],
    env: { STREAMKV_LOG_LEVEL: "info" },
  });
  const nc = await as(root);
  for (const bucket of ["app", "other"]) {
    const kv = await nc.createKeyValue({ bucket });
    await kv.putString("k", `in ${bucket}`);
  }
});

afterAll(async () => {
  await Promise.all(conns.map((c) => c.close().catch(() => {})));
  await server?.stop();
  removeDir(dir);
});

describe("tokens with permissions on a real server", () => {
  it("refuses a hello without a known token with UNAUTHORIZED", async () => {
    expect(await codeOf(as(undefined))).toBe("UNAUTHORIZED");
    expect(await codeOf(as(`${reader}x`))).toBe("UNAUTHORIZED");
  });

  it("lets a reader read its buckets and nothing more", async () => {
    const nc = await as(reader);
    const app = await nc.keyValue("app");
    expect(new TextDecoder().decode((await app.get("k"))!.value)).toBe("in app");
    expect(await app.keys()).toEqual(["k"]);
    expect((await app.history("k")).length).toBe(1);
    const w = await app.watch();
    const first = await w[Symbol.asyncIterator]().next();
    expect(first.value).toMatchObject({ key: "k" });
    w.stop();
    expect(await codeOf(app.putString("k", "x"))).toBe("FORBIDDEN");
    expect(await codeOf(app.delete("k"))).toBe("FORBIDDEN");
    expect(await codeOf(nc.keyValue("other"))).toBe("FORBIDDEN");
    expect(await codeOf(nc.deleteKeyValue("app"))).toBe("FORBIDDEN");
    expect(await codeOf(nc.createKeyValue({ bucket: "mine" }))).toBe("FORBIDDEN");
    expect(await codeOf(nc.transferLeadership("n2"))).toBe("FORBIDDEN");
    expect((await nc.listBuckets()).map((b) => b.bucket)).toEqual(["app"]);
    const status = await nc.clusterStatus();
    expect(status.clusterId).toBe("");
    expect(status.peers.every((p) => p.address === "")).toBe(true);
    // The connection survives refusals: it is still served.
    expect(await app.get("k")).not.toBeNull();
  });

  it("lets a writer write app without reading it", async () => {
    const nc = await as(writer);
    const app = await nc.keyValue("app");
    expect(await app.putString("w", "v")).toBeGreaterThan(0);
    expect(await codeOf(app.get("w"))).toBe("FORBIDDEN");
    expect(await codeOf(nc.keyValue("other"))).toBe("FORBIDDEN");
    expect(await codeOf(nc.deleteKeyValue("app"))).toBe("FORBIDDEN");
  });

  it("logs an audit line with the principal for admin operations, never a token", async () => {
    const nc = await as(root);
    await nc.createKeyValue({ bucket: "scratch" });
    await nc.deleteKeyValue("scratch");
    await waitFor(() => /"msg":"audit".*"op":"bucket_delete"/.test(server.stderr()), 5000);
    const audit = server
      .stderr()
      .split("\n")
      .filter((l) => l.includes('"msg":"audit"'));
    expect(audit.some((l) => l.includes('"principal":"root"'))).toBe(true);
    const forbidden = server
      .stderr()
      .split("\n")
      .filter((l) => l.includes("request forbidden"));
    expect(forbidden.some((l) => l.includes('"principal":"reader"'))).toBe(true);
    for (const t of [root, reader, writer]) expect(server.stderr()).not.toContain(t);
  });
});

describe("HTTP endpoints", () => {
  const get = (port: number, path: string, token?: string) =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });

  it("keeps /healthz and /readyz open and /v1/status, /metrics off the client port", async () => {
    expect((await get(server.clientPort, "/healthz")).status).toBe(200);
    expect((await get(server.clientPort, "/readyz")).status).toBe(200);
    // --metrics-listen moved them: the client port does not serve them at all.
    expect((await get(server.clientPort, "/metrics", root)).status).toBe(404);
    const status = await get(metricsPort, "/v1/status");
    expect(status.status).toBe(200);
    expect(((await status.json()) as { id: string }).id).toBe("n1");
    const metrics = await (await get(metricsPort, "/metrics")).text();
    expect(metrics).toMatch(/^streamkv_auth_failures_total\{port="client"\} [1-9]/m);
  });

  it("needs an admin token for /v1/status and /metrics on the client port otherwise", async () => {
    const tokenFile = join(dir, "shared.token");
    writeFileSync(tokenFile, `${root}\n`, { mode: 0o600 });
    const shared = await startServer({
      dataDir: join(dir, "shared"),
      args: ["--token-file", tokenFile],
    });
    try {
      for (const path of ["/v1/status", "/metrics"]) {
        const refused = await get(shared.clientPort, path);
        expect(refused.status).toBe(401);
        expect(refused.headers.get("www-authenticate")).toBe("Bearer");
        expect((await get(shared.clientPort, path, reader)).status).toBe(401);
        expect((await get(shared.clientPort, path, root)).status).toBe(200);
      }
      expect((await get(shared.clientPort, "/healthz")).status).toBe(200);
      // The CLI reads its token from a file too.
      const cli = await runCli([
        "kv",
        "add",
        "viacli",
        "--server",
        shared.url,
        "--token-file",
        tokenFile,
      ]);
      expect(cli.stderr).toBe("");
      expect(cli.code).toBe(0);
      const refused = await runCli(["kv", "ls", "--server", shared.url]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/UNAUTHORIZED/);
    } finally {
      await shared.stop();
    }
  });
});

describe("SIGHUP reloads the tokens file", () => {
  it("revokes a token in use at once and keeps the old tokens when the file is bad", async () => {
    const nc = await as(reader);
    const app = await nc.keyValue("app");
    expect(await app.get("k")).not.toBeNull();

    writeFileSync(tokensFile, "{ not json");
    server.proc.kill("SIGHUP");
    await waitFor(() => server.stderr().includes("tokens file not reloaded"), 5000);
    expect(await app.get("k")).not.toBeNull();

    writeTokens([rootEntry, writerEntry]);
    server.proc.kill("SIGHUP");
    await waitFor(() => server.stderr().includes('"msg":"tokens reloaded"'), 5000);
    // The session was ended; the SDK's reconnect is refused, and so is the call.
    await waitFor(
      async () => (await codeOf(app.get("k", { timeoutMs: 1000 }))) === "UNAUTHORIZED",
      10_000,
    );
    expect(await codeOf(as(reader))).toBe("UNAUTHORIZED");
    const w = await as(writer);
    expect(await (await w.keyValue("app")).putString("after", "reload")).toBeGreaterThan(0);
  });
});

describe("failed hellos back off", () => {
  it("each wrong token from one address waits longer for its refusal; others are not slowed", async () => {
    const { RawClient } = await import("../test_support/index.js");
    const refusedAfter = async (token: string, localAddress: string) => {
      const c = new RawClient(server.url, localAddress);
      await c.opened;
      const started = Date.now();
      c.send({ id: 1, hello: { protocol_version: 1, token } });
      await waitFor(() => c.frames.some((f) => f.id === 1), 5000, "the hello answer");
      const ms = Date.now() - started;
      c.kill();
      return { ms, code: c.frames.find((f) => f.id === 1)?.error?.code };
    };
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await refusedAfter(`wrong-${i}`, "127.0.0.7");
      expect(r.code).toBe("UNAUTHORIZED");
      waits.push(r.ms);
    }
    // 100, 200, 400, 800, 1600 ms (timers fire no earlier than asked).
    for (const [i, min] of [100, 200, 400, 800, 1600].entries()) {
      expect(waits[i]).toBeGreaterThanOrEqual(min - 5);
    }
    // Another address starts from the bottom, and a right token is served at once.
    expect((await refusedAfter("wrong", "127.0.0.8")).ms).toBeLessThan(1000);
    const ok = await connect({ servers: server.url, token: writer, timeoutMs: 3000 });
    conns.push(ok);
    expect((await ok.clusterStatus()).id).toBeTruthy();
  }, 30_000);
});
