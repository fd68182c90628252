/**
 * Mutual TLS on the peer port with certificates made by openssl at test time: two
 * nodes of one CA talk; a node whose certificate another CA signed, or whose certificate
 * expired, is refused both ways.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  freePort,
  makeCa,
  makeCert,
  makeExpiredCert,
  type TestCert,
  tempDir,
  waitFor,
} from "../test_support/index.js";
import { silentLogger } from "./log.js";
import { NodeMetrics } from "./metrics.js";
import type { PeerTls } from "./peer_auth.js";
import { PeerTransport } from "./peer_transport.js";

const open: PeerTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

/** A certificate of the test CA in the shape the peer transport takes. */
function peerTls(c: TestCert): PeerTls {
  return { cert: c.cert, key: c.key, ca: c.ca, allowedNames: undefined };
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
    const tlsA = peerTls(makeCert(dir, "ca", "a"));
    const tlsB = peerTls(makeCert(dir, "ca", "b"));
    // Signed by another CA, though it trusts the good one.
    const tlsC = { ...peerTls(makeCert(dir, "evilca", "c")), ca: tlsA.ca };
    const tlsD = peerTls(makeExpiredCert(dir, "ca", "d"));
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
