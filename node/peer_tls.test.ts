/**
 * Mutual TLS on the peer port with certificates made by openssl at test time: two
 * nodes of one CA talk; a node whose certificate another CA signed, or whose certificate
 * expired, is refused both ways.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, tempDir, waitFor } from "../test_support/index.js";
import { silentLogger } from "./log.js";
import { NodeMetrics } from "./metrics.js";
import type { PeerTls } from "./peer_auth.js";
import { PeerTransport } from "./peer_transport.js";

const open: PeerTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

function ssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}

function makeCa(dir: string, name: string): void {
  ssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
  ]);
}

function makeCert(dir: string, ca: string, name: string): PeerTls {
  ssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${name}`,
  ]);
  const ext = join(dir, `${name}.ext`);
  execFileSync("sh", ["-c", `printf 'subjectAltName=IP:127.0.0.1,DNS:${name}\\n' > ${ext}`]);
  ssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-extfile",
    ext,
  ]);
  return {
    cert: readFileSync(join(dir, `${name}.pem`)),
    key: readFileSync(join(dir, `${name}.key`)),
    ca: readFileSync(join(dir, "ca.pem")),
    allowedNames: undefined,
  };
}

/** A certificate of the good CA that expired in 2020 (`openssl ca` sets past dates). */
function makeExpired(dir: string, name: string): PeerTls {
  ssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${name}`,
  ]);
  execFileSync("sh", ["-c", "mkdir -p db && touch db/index.txt && echo 01 > db/serial"], {
    cwd: dir,
  });
  const cnf = [
    "[ca]",
    "default_ca = d",
    "[d]",
    "database = db/index.txt",
    "serial = db/serial",
    "new_certs_dir = db",
    "default_md = sha256",
    "policy = p",
    "x509_extensions = ext",
    "[p]",
    "commonName = supplied",
    "[ext]",
    `subjectAltName = IP:127.0.0.1,DNS:${name}`,
    "",
  ].join("\n");
  execFileSync("sh", ["-c", `cat > ca.cnf`], { cwd: dir, input: cnf });
  ssl(dir, [
    "ca",
    "-batch",
    "-config",
    "ca.cnf",
    "-cert",
    "ca.pem",
    "-keyfile",
    "ca.key",
    "-in",
    `${name}.csr`,
    "-out",
    `${name}.pem`,
    "-startdate",
    "20200101000000Z",
    "-enddate",
    "20200102000000Z",
  ]);
  return {
    cert: readFileSync(join(dir, `${name}.pem`)),
    key: readFileSync(join(dir, `${name}.key`)),
    ca: readFileSync(join(dir, "ca.pem")),
    allowedNames: undefined,
  };
}

function metrics(): NodeMetrics {
  return new NodeMetrics(() => ({
    id: "x",
    role: "unknown",
    term: 0,
    leader: "",
    commitIndex: 0,
    appliedIndex: 0,
    peers: [],
    buckets: [],
    replicated: false,
  }));
}

describe("peer mutual TLS", () => {
  it("nodes of one CA talk; another CA's or an expired certificate is refused both ways", async () => {
    const dir = tempDir();
    makeCa(dir, "ca");
    makeCa(dir, "evilca");
    const tlsA = makeCert(dir, "ca", "a");
    const tlsB = makeCert(dir, "ca", "b");
    const tlsC = { ...makeCert(dir, "evilca", "c"), ca: readFileSync(join(dir, "ca.pem")) };
    const tlsD = makeExpired(dir, "d");
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const peers = ["a", "b", "c", "d"].map((id, i) => ({ id, host: "127.0.0.1", port: ports[i]! }));
    const got: Record<string, number[]> = { a: [], b: [], c: [], d: [] };
    const make = (id: string, tls: PeerTls, i: number) => {
      const t = new PeerTransport({
        id,
        clusterId: "",
        host: "127.0.0.1",
        port: ports[i]!,
        peers,
        maxFrameBytes: 65536,
        onMessage: (_from, data) => got[id]!.push(data[0]!),
        metrics: metrics(),
        log: silentLogger,
        tls,
        reconnectDelayMs: 20,
        reconnectDelayMaxMs: 100,
      });
      open.push(t);
      return t;
    };
    const a = make("a", tlsA, 0);
    const b = make("b", tlsB, 1);
    const c = make("c", tlsC, 2);
    const d = make("d", tlsD, 3);
    await Promise.all([a.listen(), b.listen(), c.listen(), d.listen()]);
    a.send("b", new Uint8Array([1]));
    await waitFor(() => got.b!.includes(1), 10_000, "a -> b over mutual TLS");
    c.send("b", new Uint8Array([2]));
    a.send("c", new Uint8Array([3]));
    d.send("b", new Uint8Array([5]));
    a.send("d", new Uint8Array([6]));
    a.send("b", new Uint8Array([4]));
    await waitFor(() => got.b!.includes(4), 10_000, "a -> b again");
    expect(got.b).not.toContain(2);
    expect(got.c).not.toContain(3);
    expect(got.b).not.toContain(5);
    expect(got.d).not.toContain(6);
  }, 30_000);
});
