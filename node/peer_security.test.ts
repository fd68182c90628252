/**
 * Attacks on the peer port of a real `streamkv server` process: a stranger without the
 * secret or with a wrong one hears only UNAUTHORIZED; a stranger on an unauthenticated
 * lone node cannot get a forged forward or a term 2^53-1 heartbeat applied, the node
 * keeps serving and restarts, and no peers.json is written from a hello.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connect } from "../client/index.js";
import { messageType, peerSchema } from "../proto/index.js";
import { emptyMessage, encodeMessage } from "../raft/index.js";
import {
  freePort,
  type ServerProcess,
  startServer,
  tempDir,
  waitFor,
} from "../test_support/index.js";
import { deriveClusterId } from "./config.js";
import { newNonce, peerProof } from "./peer_auth.js";

const PeerFrame = messageType(peerSchema, "streamkv.peer.PeerFrame");
const running: ServerProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop("SIGKILL")));
});

interface Stranger {
  ws: WebSocket;
  frames: Record<string, unknown>[];
  closed: Promise<void>;
}

/** Dials `port` as node `from`, doing the handshake with `secret` (or none). */
async function stranger(
  port: number,
  clusterId: string,
  from: string,
  secret?: Buffer,
  clientUrl = "",
) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const frames: Record<string, unknown>[] = [];
  const closed = new Promise<void>((r) => ws.once("close", () => r()));
  ws.on("error", () => {});
  const nonce = newNonce();
  ws.on("message", (d) => {
    const f = PeerFrame.toObject(PeerFrame.decode(d as Buffer), { oneofs: true }) as Record<
      string,
      unknown
    >;
    frames.push(f);
    if (f.body === "challenge") {
      const c = f.challenge as { nonce: Uint8Array };
      const h = {
        clusterId,
        dialer: from,
        acceptor: "n1",
        dialerNonce: nonce,
        acceptorNonce: c.nonce,
      };
      ws.send(
        PeerFrame.encode({
          auth: { proof: secret ? peerProof(secret, "dialer", h) : new Uint8Array(0) },
        }).finish(),
      );
    }
  });
  await new Promise((r) => ws.once("open", r));
  ws.send(
    PeerFrame.encode({
      hello: {
        protocol_version: 2,
        from,
        to: "n1",
        cluster_id: clusterId,
        nonce,
        client_url: clientUrl,
      },
    }).finish(),
  );
  return { ws, frames, closed } satisfies Stranger;
}

async function status(node: ServerProcess): Promise<{ term: number; role: string }> {
  const r = await fetch(`http://127.0.0.1:${node.clientPort}/v1/status`);
  return (await r.json()) as { term: number; role: string };
}

describe("peer port attacks (real process)", () => {
  it("a stranger without the secret, or with a wrong one, hears only UNAUTHORIZED", async () => {
    const dir = tempDir();
    const secretFile = join(tempDir(), "secret");
    writeFileSync(secretFile, "the right cluster secret, 32 b\n", { mode: 0o600 });
    const node = await startServer({ dataDir: dir, args: ["--peer-secret-file", secretFile] });
    running.push(node);
    const clusterId = deriveClusterId([{ id: "n1", host: "127.0.0.1", port: 0 }]);
    for (const secret of [undefined, Buffer.from("a wrong secret of enough bytes")]) {
      const s = await stranger(node.peerPort, clusterId, "n2", secret);
      await s.closed;
      const errors = s.frames.filter((f) => f.body === "error");
      expect(errors).toHaveLength(1);
      const e = errors[0]!.error as { code: string; message: string };
      expect(e.code).toBe("UNAUTHORIZED");
      expect(e.message).not.toMatch(/n1|c-[0-9a-f]/);
    }
    expect(existsSync(join(dir, "peers.json"))).toBe(false);
    await waitFor(() => /did not prove the cluster secret/.test(node.stderr()), 5000, "a log line");
  });

  it("a stranger on an unauthenticated lone node cannot get a forward or a huge term in", async () => {
    const dir = tempDir();
    const node = await startServer({ dataDir: dir });
    running.push(node);
    await waitFor(async () => (await status(node)).role === "leader", 10_000, "a leader");
    const before = await status(node);
    const clusterId = deriveClusterId([{ id: "n1", host: "127.0.0.1", port: 0 }]);
    const s = await stranger(node.peerPort, clusterId, "n2");
    await waitFor(() => s.frames.some((f) => f.body === "challenge"), 5000, "a challenge");
    const hb = emptyMessage("MsgHeartbeat", "n2", "n1", Number.MAX_SAFE_INTEGER);
    s.ws.send(PeerFrame.encode({ raft: encodeMessage(hb) }).finish());
    const app = emptyMessage("MsgApp", "n2", "n1", before.term + 1);
    s.ws.send(PeerFrame.encode({ raft: encodeMessage(app) }).finish());
    s.ws.send(
      PeerFrame.encode({
        forward_request: { id: 1, session: "x", command: new Uint8Array([1, 2, 3]) },
      }).finish(),
    );
    await waitFor(
      async () => {
        const m = await (await fetch(`http://127.0.0.1:${node.clientPort}/metrics`)).text();
        return /streamkv_peer_messages_dropped_total\{reason="not_member"\} 3/.test(m);
      },
      5000,
      "three dropped messages",
    );
    const after = await status(node);
    expect(after.role).toBe("leader");
    expect(after.term).toBe(before.term);
    expect(existsSync(join(dir, "peers.json"))).toBe(false);
    s.ws.terminate();
    expect(await node.stop("SIGTERM")).toBe(0);
    running.splice(0);
    const again = await startServer({ dataDir: dir });
    running.push(again);
    await waitFor(async () => (await status(again)).role === "leader", 10_000, "a leader again");
  });

  it("warns at start that the peer port is unauthenticated", async () => {
    const node = await startServer({ dataDir: tempDir() });
    running.push(node);
    await waitFor(() => /peer port is unauthenticated/.test(node.stderr()), 5000, "the warning");
  });

  it("holds the cap on sockets before the handshake (16) and closes silent ones", async () => {
    const node = await startServer({ dataDir: tempDir() });
    running.push(node);
    const sockets: WebSocket[] = [];
    const closedAt: number[] = [];
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${node.peerPort}/`);
      ws.on("error", () => {});
      ws.on("close", () => closedAt.push(Date.now() - started));
      sockets.push(ws);
    }
    // Four over the cap are closed at once, the other sixteen at the 5 s hello timeout.
    await waitFor(() => closedAt.length >= 4, 3000, "the sockets over the cap closed");
    expect(closedAt.length).toBeLessThan(20);
    await waitFor(() => closedAt.length === 20, 10_000, "the silent sockets closed");
    expect(Math.max(...closedAt)).toBeGreaterThanOrEqual(4000);
    const m = await (await fetch(`http://127.0.0.1:${node.clientPort}/metrics`)).text();
    expect(m).toMatch(/streamkv_peer_sockets_refused_total\{reason="pending_cap"\} 4/);
    expect(m).toMatch(/streamkv_peer_sockets_refused_total\{reason="hello_timeout"\} 16/);
  }, 20_000);

  it("holds the cap on inbound sockets (64) and logs a flood of refusals at a bounded rate", async () => {
    const node = await startServer({ dataDir: tempDir() });
    running.push(node);
    const clusterId = deriveClusterId([{ id: "n1", host: "127.0.0.1", port: 0 }]);
    const accepted: Stranger[] = [];
    for (let i = 0; i < 64; i++) {
      const s = await stranger(node.peerPort, clusterId, "n2");
      await waitFor(() => s.frames.some((f) => f.body === "challenge"), 5000, "a challenge");
      accepted.push(s);
    }
    // 100 more: every one refused at once, counted, and logged at most 10 times.
    const closed: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${node.peerPort}/`);
      ws.on("error", () => {});
      closed.push(new Promise<void>((r) => ws.once("close", () => r())));
    }
    await Promise.all(closed);
    const m = await (await fetch(`http://127.0.0.1:${node.clientPort}/metrics`)).text();
    expect(m).toMatch(/streamkv_peer_sockets_refused_total\{reason="socket_cap"\} 100/);
    const lines = node
      .stderr()
      .split("\n")
      .filter((l) => l.includes("inbound peer socket refused"));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(10);
    // The 64 accepted links are still open, and a client is served throughout.
    expect(accepted.every((s) => s.ws.readyState === WebSocket.OPEN)).toBe(true);
    const nc = await connect({ servers: node.url, timeoutMs: 5000 });
    try {
      const kv = await nc.createKeyValue({ bucket: "alive" });
      expect(await kv.putString("k", "v")).toBe(1);
    } finally {
      await nc.close();
    }
    for (const s of accepted) s.ws.terminate();
  }, 30_000);

  it("a member's frame beyond the 2^52 bound is dropped; the node keeps its term and restarts", async () => {
    const dir = tempDir();
    const peerPort = await freePort();
    const unused = await freePort();
    // n2 is a member (in --peers) that never runs; the test speaks as n2.
    const peers = `n1=127.0.0.1:${peerPort},n2=127.0.0.1:${unused}`;
    const node = await startServer({
      dataDir: dir,
      peerPort,
      args: ["--id", "n1", "--peers", peers],
    });
    running.push(node);
    const clusterId = deriveClusterId([
      { id: "n1", host: "127.0.0.1", port: peerPort },
      { id: "n2", host: "127.0.0.1", port: unused },
    ]);
    const s = await stranger(node.peerPort, clusterId, "n2");
    await waitFor(() => s.frames.some((f) => f.body === "challenge"), 5000, "a challenge");
    const before = await status(node);
    const huge = encodeMessage(emptyMessage("MsgHeartbeat", "n2", "n1", Number.MAX_SAFE_INTEGER));
    s.ws.send(PeerFrame.encode({ raft: huge }).finish());
    await waitFor(
      () => /bad raft message dropped.*exceeds 2\^52/.test(node.stderr()),
      5000,
      "the drop",
    );
    const after = await status(node);
    expect(after.term).toBeLessThan(2 ** 52);
    expect(after.term).toBeGreaterThanOrEqual(before.term);
    s.ws.terminate();
    expect(await node.stop("SIGTERM")).toBe(0);
    running.splice(0);
    const again = await startServer({
      dataDir: dir,
      peerPort,
      args: ["--id", "n1", "--peers", peers],
    });
    running.push(again);
    expect((await status(again)).term).toBeLessThan(2 ** 52);
  }, 30_000);

  it("keeps a member's announced client URL only if it is a bounded ws(s) URL", async () => {
    const peerPort = await freePort();
    const unused = await freePort();
    const peers = `n1=127.0.0.1:${peerPort},n2=127.0.0.1:${unused}`;
    const node = await startServer({ peerPort, args: ["--id", "n1", "--peers", peers] });
    running.push(node);
    const clusterId = deriveClusterId([
      { id: "n1", host: "127.0.0.1", port: peerPort },
      { id: "n2", host: "127.0.0.1", port: unused },
    ]);
    const urlOfN2 = async () =>
      (
        (await status(node)) as unknown as { peers: { id: string; clientUrl: string }[] }
      ).peers.find((p) => p.id === "n2")?.clientUrl;
    const received = async () => {
      const m = await (await fetch(`http://127.0.0.1:${node.clientPort}/metrics`)).text();
      return Number(
        /peer_messages_total\{direction="in",result="received"\} (\d+)/.exec(m)?.[1] ?? 0,
      );
    };
    for (const bad of [
      "javascript:alert(1)",
      `ws://${"h".repeat(600)}:1`,
      "ws://a b:1",
      "http://x:1",
    ]) {
      const s = await stranger(node.peerPort, clusterId, "n2", undefined, bad);
      await waitFor(() => s.frames.some((f) => f.body === "challenge"), 5000, "a challenge");
      // A harmless old-term heartbeat after the auth: once it is counted, the auth was read.
      const before = await received();
      s.ws.send(
        PeerFrame.encode({
          raft: encodeMessage(emptyMessage("MsgHeartbeat", "n2", "n1", 0)),
        }).finish(),
      );
      await waitFor(async () => (await received()) > before, 5000, "the handshake done");
      expect(await urlOfN2()).toBe("");
      s.ws.terminate();
    }
    // A good one after the bad ones: proof that the hellos were taken, and only it kept.
    const s = await stranger(node.peerPort, clusterId, "n2", undefined, "wss://kv2.example:7420");
    await waitFor(async () => (await urlOfN2()) === "wss://kv2.example:7420", 5000, "the URL");
    s.ws.terminate();
    // A stranger (not a member) is never recorded.
    const x = await stranger(node.peerPort, clusterId, "x9", undefined, "ws://evil:1");
    await waitFor(() => x.frames.some((f) => f.body === "challenge"), 5000, "a challenge");
    x.ws.terminate();
    const all = (await status(node)) as unknown as { peers: { id: string }[] };
    expect(all.peers.map((p) => p.id).sort()).toEqual(["n1", "n2"]);
  }, 30_000);

  it("a 3-node cluster with the secret elects, replicates and forwards", async () => {
    const secretFile = join(tempDir(), "secret");
    writeFileSync(secretFile, "a cluster secret shared by all three\n", { mode: 0o600 });
    const ids = ["n1", "n2", "n3"];
    const ports = await Promise.all(ids.map(() => freePort()));
    const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(",");
    const nodes = await Promise.all(
      ids.map((id, i) =>
        startServer({
          peerPort: ports[i]!,
          args: ["--id", id, "--peers", peers, "--peer-secret-file", secretFile],
        }),
      ),
    );
    running.push(...nodes);
    let leader = -1;
    await waitFor(
      async () => {
        const all = await Promise.all(nodes.map((n) => status(n)));
        leader = all.findIndex((x) => x.role === "leader");
        return leader >= 0;
      },
      15_000,
      "a leader",
    );
    const follower = nodes[(leader + 1) % 3]!;
    const other = nodes[(leader + 2) % 3]!;
    const c1 = await connect({ servers: follower.url, timeoutMs: 5000 });
    const c2 = await connect({ servers: other.url, timeoutMs: 5000 });
    try {
      await c1.createKeyValue({ bucket: "s" });
      const rev = await (await c1.keyValue("s")).putString("k", "v");
      const got = await (await c2.keyValue("s")).get("k");
      expect(got?.revision).toBe(rev);
    } finally {
      await c1.close();
      await c2.close();
    }
    for (const n of nodes) expect(n.stderr()).not.toMatch(/peer refused|unauthenticated/);
  }, 30_000);
});
