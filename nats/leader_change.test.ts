/**
 * A NATS KV watch in a three-node cluster while the leader is killed (SIGKILL), writes
 * going on through a follower: the watcher must end up with exactly the entries the
 * bucket holds, in revision order, none lost and none twice. With `@nats-io/kv` on a
 * follower (the node's watch goes on across the election) and on the leader itself
 * (the client reconnects to another node, its ordered consumer misses heartbeats and
 * recreates itself from its last revision); with nats.go 1.22 (Debian, the -watch mode
 * of nats/conformance/go/main.go) on the leader, skipped without Go unless CI is set.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findBinary } from "../bench/reference/process.js";
import {
  removeDir,
  runCommand,
  type ServerProcess,
  startCluster,
  tempDir,
  waitFor,
} from "../test_support/index.js";

const GOPATH = "/usr/share/gocode";
const go = findBinary("go", "STREAMKV_GO");
const haveGo = go !== undefined && existsSync(join(GOPATH, "src/github.com/nats-io/nats.go"));
const ciValue = process.env.CI ?? "";
const inCi = ciValue !== "" && ciValue !== "0" && ciValue.toLowerCase() !== "false";
if (!haveGo && !inCi) {
  console.warn(
    "nats/leader_change.test.ts: the nats.go case skipped: `apt-get install -y golang-go golang-github-nats-io-go-nats-dev` (CI is not set)",
  );
}

/** A watch of `k.>` in bucket `lc`: the revisions it delivered so far. */
interface Watcher {
  readonly seen: number[];
  stop(): Promise<void>;
}

async function natsJsWatcher(servers: string[], conns: NatsConnection[]): Promise<Watcher> {
  // Connects to the first server, reconnects to the next when its node dies.
  const nc = await connect({
    servers,
    noRandomize: true,
    reconnectTimeWait: 200,
    maxReconnectAttempts: -1,
  });
  conns.push(nc);
  expect(`127.0.0.1:${nc.info?.port}`).toBe(servers[0]);
  const watch = await (await new Kvm(nc).open("lc")).watch({ key: "k.>" });
  const seen: number[] = [];
  const watching = (async () => {
    for await (const e of watch) seen.push(e.revision);
  })();
  return {
    seen,
    stop: async () => {
      watch.stop();
      await watching;
    },
  };
}

async function goWatcher(binary: string, servers: string[], procs: ChildProcess[]) {
  const proc = spawn(binary, ["-r", servers.join(","), "-bucket", "lc", "-watch", "k.>"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  procs.push(proc);
  const seen: number[] = [];
  const failures: string[] = [];
  let out = "";
  let ready = false;
  let connectedTo = "";
  proc.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    const lines = out.split("\n");
    out = lines.pop()!;
    for (const line of lines) {
      if (line === "READY") ready = true;
      else if (line.startsWith("CONNECTED ")) connectedTo = line.slice(10);
      else if (line.startsWith("ENTRY ")) seen.push(Number(line.slice(6)));
      else if (line !== "") failures.push(line);
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.on("exit", resolve));
  await waitFor(() => ready || failures.length > 0, 20_000, "the Go watcher's initial values");
  expect(connectedTo).toBe(`nats://${servers[0]}`);
  return {
    seen,
    stop: async () => {
      proc.stdin!.end();
      expect(await exited).toBe(0);
      expect(failures).toEqual([]);
    },
  };
}

interface Status {
  id: string;
  role: string;
  leader: string;
}

async function statusOf(n: ServerProcess): Promise<Status | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${n.clientPort}/v1/status`, {
      signal: AbortSignal.timeout(1000),
    });
    return res.status === 200 ? ((await res.json()) as Status) : undefined;
  } catch {
    return undefined;
  }
}

const IDS = ["n1", "n2", "n3"];

let goBinary = "";
let goBuildDir = "";
afterAll(() => {
  if (goBuildDir !== "") removeDir(goBuildDir);
});

describe.each([
  { client: "@nats-io/kv", on: "a follower", onLeader: false },
  { client: "@nats-io/kv", on: "the leader", onLeader: true },
  { client: "nats.go", on: "the leader", onLeader: true },
])("a $client watch on $on across a leader change", ({ client, onLeader }) => {
  const skip = client === "nats.go" && !haveGo && !inCi;
  let nodes: ServerProcess[] = [];
  const conns: NatsConnection[] = [];
  const procs: ChildProcess[] = [];

  beforeAll(async () => {
    if (skip) return;
    if (client === "nats.go" && goBinary === "") {
      expect(haveGo, "apt-get install -y golang-go golang-github-nats-io-go-nats-dev").toBe(true);
      goBuildDir = tempDir("streamkv-go-watch-");
      const built = await runCommand(go!, ["build", "-o", join(goBuildDir, "w"), "."], {
        cwd: new URL("./conformance/go/", import.meta.url).pathname,
        env: { GO111MODULE: "off", GOPATH, GOCACHE: join(tmpdir(), "streamkv-go-build-cache") },
        timeoutMs: 120_000,
      });
      expect(built.code, `go build: ${built.stderr}`).toBe(0);
      goBinary = join(goBuildDir, "w");
    }
    nodes = (await startCluster(IDS, { nats: true })).nodes;
  }, 150_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) removeDir(n.dataDir);
  });

  it.skipIf(skip)(
    "sees every acknowledged write once, in order, after the leader is killed",
    async () => {
      let leaderId = "";
      await waitFor(
        async () => {
          const all = await Promise.all(nodes.map(statusOf));
          const leaders = all.filter((s) => s?.role === "leader");
          leaderId = leaders[0]?.id ?? "";
          return leaders.length === 1 && all.every((s) => s?.leader === leaderId);
        },
        30_000,
        "one leader every node knows",
        100,
      );
      const leader = nodes[IDS.indexOf(leaderId)]!;
      const [follower, writeNode] = nodes.filter((n) => n !== leader);
      const watchNode = onLeader ? leader : follower!;
      const w = await connect({ servers: `127.0.0.1:${writeNode!.natsPort}` });
      conns.push(w);
      const kv = await new Kvm(w).create("lc", { history: 10 });
      const servers = [`127.0.0.1:${watchNode.natsPort}`, `127.0.0.1:${follower!.natsPort}`];
      const watcher =
        client === "nats.go"
          ? await goWatcher(goBinary, servers, procs)
          : await natsJsWatcher(servers, conns);
      const seen = watcher.seen;

      /** A put retried (bounded) while the cluster elects; a retry may write twice. */
      const put = async (key: string, value: string) => {
        const deadline = Date.now() + 30_000;
        for (;;) {
          try {
            return await kv.put(key, value);
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await new Promise((res) => setTimeout(res, 100));
          }
        }
      };
      for (let i = 0; i < 20; i++) await put(`k.${i % 5}`, `before-${i}`);
      await waitFor(() => seen.length >= 20, 10_000, "the watch to see the first 20 writes");
      await leader.stop("SIGKILL");
      const killedAt = Date.now();
      for (let i = 0; i < 20; i++) await put(`k.${i % 5}`, `after-${i}`);
      const writtenMs = Date.now() - killedAt;

      // The truth: what the bucket holds (history 10 keeps every write of the 5 keys),
      // read through the writer's node (the watcher's may be the dead one).
      const truth: number[] = [];
      for (let k = 0; k < 5; k++) {
        for await (const e of await kv.history({ key: `k.${k}` })) truth.push(e.revision);
      }
      truth.sort((a, b) => a - b);
      expect(truth.length).toBeGreaterThanOrEqual(40);
      // On a follower the node's watch goes on. On the dead leader the consumer went with
      // it: the client recreates its ordered consumer after two missed heartbeats (nats.js
      // 30 s each, nats.go 5 s), as against nats-server, where an R1 consumer dies with
      // its server.
      await waitFor(
        () => seen.length >= truth.length,
        onLeader ? 90_000 : 20_000,
        `the watch to catch up (${truth.length} entries)`,
        100,
      );
      const caughtUpMs = Date.now() - killedAt;
      await watcher.stop();
      const revs = [...seen];
      expect(revs).toEqual(truth);
      expect(new Set(revs).size).toBe(revs.length);
      console.info(
        `leader ${leaderId} killed: 20 writes acknowledged within ${writtenMs} ms, the ${client} watch on ${IDS[nodes.indexOf(watchNode)]} had them all ${caughtUpMs} ms after the kill`,
      );
    },
    150_000,
  );
});
