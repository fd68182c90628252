/**
 * The SDK never sends a token in clear text to another machine: `connect` with a token
 * and a plain ws:// server that is not loopback fails with INSECURE_TRANSPORT before any
 * socket is opened, unless `insecure: true`. openSocket is replaced by a recorder here,
 * so no test ever dials the non-loopback addresses it names; the loopback cases talk to
 * a real node on 127.0.0.1.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { removeDir, type ServerProcess, startServer } from "../test_support/index.js";

const dialed: string[] = [];

vi.mock("./socket.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("./socket.js")>();
  const { KvError: Err } = await import("../proto/index.js");
  return {
    ...real,
    openSocket: (url: string, timeoutMs: number, tls?: Parameters<typeof real.openSocket>[2]) => {
      dialed.push(url);
      if (new URL(url).hostname.startsWith("127.")) return real.openSocket(url, timeoutMs, tls);
      return Promise.reject(new Err("CONNECTION_CLOSED", `${url}: not dialed in tests`));
    },
  };
});

const { connect, KvError } = await import("./index.js");
const { checkTransport, isLoopbackHost } = await import("./transport.js");

let server: ServerProcess;
beforeAll(async () => {
  server = await startServer({ env: { STREAMKV_TOKEN: "s3cret-token" } });
});
afterAll(async () => {
  await server?.stop();
  if (server) removeDir(server.dataDir);
});
beforeEach(() => {
  dialed.length = 0;
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    const nc = await p;
    await (nc as { close(): Promise<void> }).close();
    return "connected";
  } catch (err) {
    expect(err).toBeInstanceOf(KvError);
    return (err as InstanceType<typeof KvError>).code;
  }
}

describe("a token over plain ws://", () => {
  it("knows loopback: 127.0.0.0/8, ::1, localhost (after URL parsing)", () => {
    const host = (u: string) => new URL(u).hostname;
    for (const u of [
      "ws://127.0.0.1:1",
      "ws://127.255.1.2:1",
      "ws://127.1:1",
      "ws://[::1]:1",
      "ws://LOCALHOST:1",
    ]) {
      expect(isLoopbackHost(host(u)), u).toBe(true);
    }
    for (const u of [
      "ws://10.0.0.1:1",
      "ws://128.0.0.1:1",
      "ws://127.0.0.1.example.com:1",
      "ws://localhost.example.com:1",
      "ws://[::2]:1",
      "ws://[::ffff:10.0.0.1]:1",
      "ws://db.internal:1",
    ]) {
      expect(isLoopbackHost(host(u)), u).toBe(false);
    }
  });

  it("is refused to a non-loopback host before any socket is opened", async () => {
    const err = await connect({ servers: ["ws://10.20.30.40:7420"], token: "t" }).catch((e) => e);
    expect(err).toBeInstanceOf(KvError);
    expect(err.code).toBe("INSECURE_TRANSPORT");
    expect(err.message).toMatch(/10\.20\.30\.40:7420.*wss:\/\/.*insecure: true/);
    // One insecure server in the list is enough to refuse the whole connect.
    expect(
      await codeOf(connect({ servers: [server.url, "ws://db.internal:7420"], token: "t" })),
    ).toBe("INSECURE_TRANSPORT");
    expect(dialed).toEqual([]);
    // wss:// or no token: nothing to refuse (checkTransport alone, nothing dialed).
    expect(() =>
      checkTransport(["wss://10.20.30.40:7420"], { servers: [], token: "t" }),
    ).not.toThrow();
    expect(() => checkTransport(["ws://10.20.30.40:7420"], { servers: [] })).not.toThrow();
  });

  it("is allowed with insecure: true (the SDK goes on to dial)", async () => {
    const code = await codeOf(
      connect({ servers: ["ws://10.20.30.40:7420"], token: "t", insecure: true, timeoutMs: 300 }),
    );
    expect(code).toBe("CONNECTION_CLOSED");
    expect(dialed[0]).toBe("ws://10.20.30.40:7420");
  });

  it("is allowed to loopback: a real node with a token", async () => {
    expect(await codeOf(connect({ servers: [server.url], token: "s3cret-token" }))).toBe(
      "connected",
    );
    // The token did travel: a wrong one is refused by the node, not by the SDK.
    expect(await codeOf(connect({ servers: [server.url], token: "wrong" }))).toBe("UNAUTHORIZED");
    expect(dialed.every((u) => u === server.url)).toBe(true);
  });
});

describe("the tls option", () => {
  it("is checked at connect: shapes, cert with key, wss:// only", async () => {
    const bad = async (tls: unknown, servers = ["wss://127.0.0.1:1"]) =>
      codeOf(connect({ servers, tls: tls as never }));
    const pem = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n";
    expect(await bad({ ca: 42 })).toBe("INVALID_ARGUMENT");
    expect(await bad({ ca: [pem, 1] })).toBe("INVALID_ARGUMENT");
    expect(await bad({ ca: "/etc/ssl/ca.pem" })).toBe("INVALID_ARGUMENT");
    expect(await bad({ cert: pem })).toBe("INVALID_ARGUMENT");
    expect(await bad({ key: new TextEncoder().encode(pem) })).toBe("INVALID_ARGUMENT");
    expect(await bad({ ca: pem }, [server.url])).toBe("INVALID_ARGUMENT");
    expect(await bad(null)).toBe("INVALID_ARGUMENT");
    expect(dialed).toEqual([]);
  });

  it("is refused in a browser, where wss:// uses the browser's own certificates", () => {
    const g = globalThis as { document?: unknown };
    g.document = {};
    try {
      expect(() =>
        checkTransport(["wss://example.com"], { servers: [], tls: { ca: "x" } }),
      ).toThrow(/only in Node/);
    } finally {
      delete g.document;
    }
  });
});
