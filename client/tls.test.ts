/**
 * TLS on the client port, end to end: real `streamkv server` processes started with
 * `--tls-cert`/`--tls-key` (and `--tls-client-ca`), the SDK over real wss:// sockets on
 * 127.0.0.1, and certificates made by openssl at test time (test_support/certs.ts).
 * A wrong CA, an expired server certificate, and a missing or foreign client certificate
 * are refused with CONNECTION_CLOSED naming the reason, within the connect timeout,
 * while the node keeps serving a good client.
 */
import { get } from "node:https";
import { connect as connectTcp } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  clientTlsArgs,
  makeCa,
  makeCert,
  makeExpiredCert,
  removeDir,
  runCli,
  type ServerProcess,
  startServer,
  type TestCert,
  tempDir,
  waitFor,
  wssUrl as wss,
} from "../test_support/index.js";
import { connect, type KvConnection, KvError } from "./index.js";

const dir = tempDir("streamkv-client-tls-");
let node: TestCert;
let expired: TestCert;
let client: TestCert;
let foreignClient: TestCert;
let evilCa: TestCert["ca"];
let tlsNode: ServerProcess;
let expiredNode: ServerProcess;
let mutualNode: ServerProcess;
const started: ServerProcess[] = [];

async function start(
  cert: TestCert,
  clientCa?: string,
  extra: string[] = [],
): Promise<ServerProcess> {
  const s = await startServer({ args: [...clientTlsArgs(cert, clientCa), ...extra] });
  started.push(s);
  return s;
}

beforeAll(async () => {
  makeCa(dir, "ca");
  makeCa(dir, "evilca");
  node = makeCert(dir, "ca", "n1");
  expired = makeExpiredCert(dir, "ca", "old");
  client = makeCert(dir, "ca", "app");
  foreignClient = makeCert(dir, "evilca", "intruder");
  evilCa = foreignClient.ca;
  [tlsNode, expiredNode, mutualNode] = await Promise.all([
    start(node),
    // No good client ever gets through to it, so a short hello timeout is safe here.
    start(expired, undefined, ["--client-hello-timeout-ms", "1000"]),
    start(node, client.caPath),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  for (const s of started) removeDir(s.dataDir);
  removeDir(dir);
});

/** GET over https with `ca` trusted; resolves with the status and body. */
function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { ca, timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

/** The KvError `connect` fails with (it must fail). */
async function refusal(options: Parameters<typeof connect>[0]): Promise<KvError> {
  const began = Date.now();
  try {
    const nc = await connect({ timeoutMs: 1500, ...options });
    await nc.close();
  } catch (err) {
    expect(err).toBeInstanceOf(KvError);
    // Bounded by the connect timeout (plus the last attempt's own), never a hang.
    expect(Date.now() - began).toBeLessThan(5000);
    return err as KvError;
  }
  throw new Error("connect should have failed");
}

/** A put and a get on a fresh bucket: the connection really works. */
async function roundTrip(nc: KvConnection, bucket: string): Promise<void> {
  const kv = await nc.createKeyValue({ bucket });
  const rev = await kv.putString("k", "over tls");
  const e = await kv.get("k");
  expect(e?.revision).toBe(rev);
  expect(new TextDecoder().decode(e?.value)).toBe("over tls");
}

describe("TLS on the client port", () => {
  it("the SDK with the right CA puts and gets over wss://; /healthz and /readyz over https://", async () => {
    const nc = await connect({ servers: [wss(tlsNode)], tls: { ca: node.ca } });
    try {
      await roundTrip(nc, "tls1");
    } finally {
      await nc.close();
    }
    const base = `https://127.0.0.1:${tlsNode.clientPort}`;
    expect(await httpsGet(`${base}/healthz`, node.ca)).toEqual({ status: 200, body: "ok\n" });
    await waitFor(
      async () => (await httpsGet(`${base}/readyz`, node.ca)).status === 200,
      15_000,
      "readyz over https",
    );
    // The PEM as a string works as well as the bytes.
    const text = await connect({ servers: wss(tlsNode), tls: { ca: node.ca.toString("utf8") } });
    await text.close();
  });

  it("refuses a server certificate of another CA or none trusted, and keeps serving a good client", async () => {
    const good = await connect({ servers: [wss(tlsNode)], tls: { ca: node.ca } });
    try {
      const other = await refusal({ servers: [wss(tlsNode)], tls: { ca: evilCa } });
      expect(other.code).toBe("CONNECTION_CLOSED");
      expect(other.message).toMatch(/certificate/);
      const roots = await refusal({ servers: [wss(tlsNode)] });
      expect(roots.code).toBe("CONNECTION_CLOSED");
      expect(roots.message).toMatch(/certificate/);
      // Plain WebSocket to the TLS port gets no further than the handshake either.
      expect((await refusal({ servers: [`ws://127.0.0.1:${tlsNode.clientPort}`] })).code).toBe(
        "CONNECTION_CLOSED",
      );
      await roundTrip(good, "tls2");
    } finally {
      await good.close();
    }
  });

  it("refuses an expired server certificate", async () => {
    const err = await refusal({ servers: [wss(expiredNode)], tls: { ca: expired.ca } });
    expect(err.code).toBe("CONNECTION_CLOSED");
    expect(err.message).toMatch(/expired/);
  });

  it("closes a connection that never finishes its TLS handshake, after the hello timeout", async () => {
    const socket = connectTcp(expiredNode.clientPort, "127.0.0.1");
    let closed = false;
    socket.on("error", () => {});
    socket.on("close", () => {
      closed = true;
    });
    // Node's own default would keep it for 120 s.
    await waitFor(() => closed, 6000, "the silent socket closed");
  });

  it("mutual TLS: no client certificate or one of another CA is refused, the right one works", async () => {
    const url = wss(mutualNode);
    const good = await connect({
      servers: [url],
      tls: { ca: node.ca, cert: client.cert, key: client.key },
    });
    try {
      await roundTrip(good, "mtls");
      const none = await refusal({ servers: [url], tls: { ca: node.ca } });
      expect(none.code).toBe("CONNECTION_CLOSED");
      // TLS 1.3: the alert ("certificate required") may arrive after the client sent its
      // upgrade request, then the SDK sees only the hang-up; the node logs the reason.
      const foreign = await refusal({
        servers: [url],
        tls: { ca: node.ca, cert: foreignClient.cert, key: foreignClient.key },
      });
      expect(foreign.code).toBe("CONNECTION_CLOSED");
      await waitFor(
        () => /client TLS handshake refused/.test(mutualNode.stderr()),
        5000,
        "the node logs the refused handshakes",
      );
      // The good session was served throughout.
      const kv = await good.keyValue("mtls");
      expect(new TextDecoder().decode((await kv.get("k"))?.value)).toBe("over tls");
    } finally {
      await good.close();
    }
  });

  it("refuses to start on bad TLS flags, with one line and exit 2", async () => {
    const data = tempDir();
    try {
      const cases: [string[], RegExp][] = [
        [["--tls-cert", node.certPath], /needs --tls-cert and --tls-key together/],
        [["--tls-cert", node.certPath, "--tls-key", `${dir}/none.key`], /--tls-key .*ENOENT/],
        [["--tls-cert", node.keyPath, "--tls-key", node.keyPath], /not a PEM certificate/],
        [["--tls-client-ca", node.caPath], /--tls-client-ca needs --tls-cert/],
      ];
      for (const [args, message] of cases) {
        const r = await runCli(["server", "--data", data, "--client-port", "0", ...args]);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(message);
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
      }
    } finally {
      removeDir(data);
    }
  });
});
