/**
 * connect() against servers that cannot take a client: refused everywhere fails at once
 * (not after the timeout), naming every server; a peer port says what it is; a server
 * without a scheme is refused with the URL to use. Reconnecting later is unchanged.
 */
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { freePorts, removeDir, runCli, startServer } from "../test_support/index.js";
import { connect, KvError } from "./index.js";

async function errorOf(p: Promise<unknown>): Promise<KvError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KvError);
    return err as KvError;
  }
  throw new Error("expected a KvError");
}

describe("connect", () => {
  it("fails at once with CONNECTION_CLOSED naming every server when each refuses", async () => {
    const ports = await freePorts(2);
    const urls = ports.map((p) => `ws://127.0.0.1:${p}`);
    const started = Date.now();
    const err = await errorOf(connect({ servers: urls, timeoutMs: 20_000 }));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(err.code).toBe("CONNECTION_CLOSED");
    for (const url of urls)
      expect(err.message).toContain(`cannot connect to ${url}: connection refused`);
  });

  it("still waits for a server that accepts TCP but has not answered yet", async () => {
    const [refusing] = await freePorts(1);
    const held: Socket[] = [];
    const silent: Server = createTcpServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const started = Date.now();
      const err = await errorOf(
        connect({
          servers: [`ws://127.0.0.1:${refusing}`, `ws://127.0.0.1:${port}`],
          timeoutMs: 1500,
        }),
      );
      expect(err.code).toBe("CONNECTION_CLOSED");
      expect(err.message).toMatch(/within 1500 ms/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("moves past a refusing server to a live one, and is told when it reached a peer port", async () => {
    const server = await startServer();
    try {
      const [refusing] = await freePorts(1);
      const nc = await connect({
        servers: [`ws://127.0.0.1:${refusing}`, server.url],
        timeoutMs: 10_000,
      });
      expect((await nc.clusterStatus()).id).toBe("n1");
      await nc.close();

      const started = Date.now();
      const peer = `ws://127.0.0.1:${server.peerPort}`;
      const err = await errorOf(connect({ servers: [peer], timeoutMs: 20_000 }));
      expect(Date.now() - started).toBeLessThan(3000);
      expect(err.code).toBe("CONNECTION_CLOSED");
      expect(err.message).toContain(
        `${peer}: this is the peer port of a streamkv node; clients use the client port, default 7420`,
      );
      const http = await fetch(`http://127.0.0.1:${server.peerPort}/`);
      expect(http.status).toBe(426);
      expect(await http.text()).toContain("this is the peer port of a streamkv node");
      const cli = await runCli(["kv", "ls", "--server", peer]);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toMatch(/^streamkv: CONNECTION_CLOSED: .*this is the peer port/);
    } finally {
      await server.stop();
      removeDir(server.dataDir);
    }
  });

  it("refuses a server without a scheme with the URL to use", async () => {
    for (const bare of ["127.0.0.1:7420", "localhost:7420", "[::1]:7420"]) {
      const err = await errorOf(connect({ servers: [bare] }));
      expect(err.code).toBe("INVALID_ARGUMENT");
      expect(err.message).toContain(`has no scheme: use ws://${bare}`);
    }
  });
});
