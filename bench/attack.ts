/**
 * `npm run bench -- attack`: a well-behaved client's latency, and the node's peak RSS,
 * with no attack and under each attack of issue 9 (the ones that once grew a node by
 * hundreds of MiB, locked clients out, or reached Raft from a stranger). Each scenario
 * runs on a fresh real `streamkv server` process with its default flags; the good client
 * is the SDK on its own connection, alternating a put and a get of 100 bytes, one in
 * flight, for `--seconds` (default 5) while the attack runs beside it.
 *
 * Printed per scenario: ops done by the good client, p50/p99/max latency, its errors,
 * and the server's RSS before the attack and at its peak during it (sampled every 20 ms
 * from /proc/<pid>/status). Every attack is bounded in count and time.
 */
import WebSocket from "ws";
import { connect, type KvConnection } from "../client/index.js";
import { deriveClusterId, newNonce } from "../node/index.js";
import { messageType, peerSchema } from "../proto/index.js";
import { emptyMessage, encodeMessage } from "../raft/index.js";
import {
  RawClient,
  RssSampler,
  removeDir,
  rssBytes,
  type ServerProcess,
  seededRandom,
  startServer,
  waitFor,
} from "../test_support/index.js";
import { intFlag, percentile } from "./_measure.js";

const MiB = 1024 * 1024;
const PeerFrame = messageType(peerSchema, "streamkv.peer.PeerFrame");

interface Scenario {
  name: string;
  /** What the attacker does, as the table says it. */
  what: string;
  /** Before the clock starts: data the attack needs. */
  setup?: (good: KvConnection, server: ServerProcess) => Promise<void>;
  /** Runs until `stopped()`; must stop soon after. */
  attack?: (server: ServerProcess, stopped: () => boolean) => Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens `n` raw clients that said hello; the caller kills them. */
async function helloed(server: ServerProcess, n: number): Promise<RawClient[]> {
  const out: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = new RawClient(server.url);
    await c.hello();
    out.push(c);
  }
  return out;
}

/** Kills the attacker's clients once the phase ends. */
async function holdUntil(stopped: () => boolean, clients: RawClient[]): Promise<void> {
  while (!stopped()) await sleep(50);
  for (const c of clients) c.kill();
}

const scenarios: Scenario[] = [
  { name: "none", what: "no attack (the reference)" },
  {
    name: "watch-flood",
    what: "600 watches on one key, reader paused, then a 1 MiB put",
    setup: async (good) => {
      await good.createKeyValue({ bucket: "w" });
    },
    attack: async (server, stopped) => {
      const [a] = await helloed(server, 1);
      for (let i = 0; i < 600; i++) {
        a!.send({
          id: 10 + i,
          watch: { bucket: "w", filter: "k", updates_only: true, credit: 1000 },
        });
      }
      await waitFor(() => a!.frames.length >= 1201 || a!.closed, 20_000, "watches started");
      a!.pauseReading();
      const nc = await connect({ servers: server.url, timeoutMs: 10_000 });
      await (await nc.keyValue("w")).put("k", new Uint8Array(MiB).fill(7));
      await nc.close();
      await holdUntil(stopped, [a!]);
    },
  },
  {
    name: "pipelined-gets",
    what: "300 pipelined gets of a 1 MiB value, reader paused",
    setup: async (good) => {
      const kv = await good.createKeyValue({ bucket: "g" });
      await kv.put("big", new Uint8Array(MiB).fill(1));
    },
    attack: async (server, stopped) => {
      const [a] = await helloed(server, 1);
      a!.pauseReading();
      for (let i = 0; i < 300; i++) a!.send({ id: 10 + i, get: { bucket: "g", key: "big" } });
      await holdUntil(stopped, [a!]);
    },
  },
  {
    name: "pipelined-history",
    what: "16 pipelined history calls over 64 x 1 MiB revisions, reader paused",
    setup: async (good) => {
      const kv = await good.createKeyValue({ bucket: "h", history: 64 });
      for (let i = 0; i < 64; i++) await kv.put("k", new Uint8Array(MiB).fill(i));
    },
    attack: async (server, stopped) => {
      const [a] = await helloed(server, 1);
      a!.pauseReading();
      for (let i = 0; i < 16; i++) {
        a!.send({ id: 10 + i, history: { bucket: "h", key: "k", after_revision: 0 } });
      }
      await holdUntil(stopped, [a!]);
    },
  },
  {
    name: "watch-cap",
    what: "4500 pipelined watches on one connection (cap 4096)",
    setup: async (good) => {
      await good.createKeyValue({ bucket: "c" });
    },
    attack: async (server, stopped) => {
      const [a] = await helloed(server, 1);
      for (let i = 0; i < 4500; i++) {
        a!.send({ id: 10 + i, watch: { bucket: "c", filter: ">", updates_only: true } });
      }
      await holdUntil(stopped, [a!]);
    },
  },
  {
    name: "silent-sockets",
    what: "sockets that never say hello, 16 from each of 8 loopback addresses, reopened as closed",
    attack: async (server, stopped) => {
      const byAddress = new Map<number, RawClient[]>();
      let opened = 0;
      while (!stopped() && opened < 5000) {
        for (let a = 2; a <= 9; a++) {
          const live = (byAddress.get(a) ?? []).filter((c) => !c.closed);
          while (live.length < 16 && opened < 5000) {
            const c = new RawClient(server.url, `127.0.0.${a}`);
            c.opened.catch(() => {});
            live.push(c);
            opened++;
          }
          byAddress.set(a, live);
        }
        await sleep(100);
      }
      for (const list of byAddress.values()) for (const c of list) c.kill();
    },
  },
  {
    name: "garbage-frames",
    what: "connections sending random bytes as frames, one after another (at most 3000)",
    attack: async (server, stopped) => {
      const rnd = seededRandom(7);
      for (let i = 0; i < 3000 && !stopped(); i++) {
        const c = new RawClient(server.url);
        try {
          await c.opened;
        } catch {
          continue;
        }
        const bytes = new Uint8Array(1 + Math.floor(rnd() * 512)).map(() =>
          Math.floor(rnd() * 256),
        );
        c.sendBytes(bytes);
        await waitFor(() => c.closed || c.frames.length > 0, 2000, "an answer").catch(() => {});
        c.kill();
      }
    },
  },
  {
    name: "wrong-tokens",
    what: "hellos with wrong tokens on a node with --token, one after another (at most 3000)",
    attack: async (server, stopped) => {
      for (let i = 0; i < 3000 && !stopped(); i++) {
        const c = new RawClient(server.url);
        try {
          await c.opened;
          c.send({ id: 1, hello: { protocol_version: 1, token: `guess-${i}` } });
          await waitFor(() => c.closed || c.frames.length > 0, 2000, "a refusal").catch(() => {});
        } catch {}
        c.kill();
      }
    },
  },
  {
    name: "peer-stranger",
    what: "a stranger on the peer port: hello, term 2^53-1 heartbeat, AppendEntries, forward (at most 2000 rounds)",
    attack: async (server, stopped) => {
      const clusterId = deriveClusterId([{ id: "n1", host: "127.0.0.1", port: 0 }]);
      for (let i = 0; i < 2000 && !stopped(); i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${server.peerPort}/`);
        ws.on("error", () => {});
        const closed = new Promise<void>((r) => ws.once("close", () => r()));
        const challenged = new Promise<void>((r) =>
          ws.on("message", (d) => {
            const f = PeerFrame.toObject(PeerFrame.decode(d as Buffer), { oneofs: true });
            if ((f as { body?: string }).body === "challenge") {
              ws.send(PeerFrame.encode({ auth: { proof: new Uint8Array(0) } }).finish());
              r();
            }
          }),
        );
        try {
          await new Promise<void>((resolve, reject) => {
            ws.once("open", () => resolve());
            ws.once("error", reject);
          });
        } catch {
          continue;
        }
        const from = `x${i}`;
        ws.send(
          PeerFrame.encode({
            hello: {
              protocol_version: 2,
              from,
              to: "n1",
              cluster_id: clusterId,
              nonce: newNonce(),
            },
          }).finish(),
        );
        await Promise.race([challenged, closed, sleep(1000)]);
        const hb = emptyMessage("MsgHeartbeat", from, "n1", Number.MAX_SAFE_INTEGER);
        const app = emptyMessage("MsgApp", from, "n1", 1_000_000);
        for (const m of [hb, app]) ws.send(PeerFrame.encode({ raft: encodeMessage(m) }).finish());
        ws.send(
          PeerFrame.encode({
            forward_request: { id: 1, session: "x", command: new Uint8Array([1, 2, 3]) },
          }).finish(),
        );
        ws.terminate();
      }
    },
  },
];

/** The good client: put, get, put, get... one in flight, until `stopped()`. */
async function goodClient(nc: KvConnection, stopped: () => boolean) {
  const kv = await nc.keyValue("good");
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  const value = new Uint8Array(100).fill(5);
  for (let i = 0; !stopped() && i < 1_000_000; i++) {
    const started = performance.now();
    try {
      if (i % 2 === 0) await kv.put(`k.${i % 50}`, value, { timeoutMs: 5000 });
      else await kv.get(`k.${(i - 1) % 50}`, { timeoutMs: 5000 });
    } catch (err) {
      const code = (err as { code?: string }).code ?? "other";
      errors.set(code, (errors.get(code) ?? 0) + 1);
    }
    latencies.push(performance.now() - started);
  }
  latencies.sort((a, b) => a - b);
  return { latencies, errors };
}

export async function run(args: string[]): Promise<void> {
  const seconds = intFlag(args, "seconds", 5);
  const only = args
    .find((a) => a.startsWith("--only="))
    ?.split("=")[1]
    ?.split(",");
  console.log(
    `good client: put/get of 100 B, one in flight, ${seconds} s per scenario; fresh node each (default flags)`,
  );
  console.log(
    "| attack | what | good ops | p50 ms | p99 ms | max ms | good errors | RSS before MiB | peak RSS MiB |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const s of scenarios) {
    if (only && !only.includes(s.name)) continue;
    const server = await startServer({
      ...(s.name === "wrong-tokens" ? { env: { STREAMKV_TOKEN: "the-right-token" } } : {}),
    });
    let nc: KvConnection | undefined;
    try {
      const token = s.name === "wrong-tokens" ? { token: "the-right-token" } : {};
      nc = await connect({ servers: server.url, timeoutMs: 10_000, ...token });
      await nc.createKeyValue({ bucket: "good" });
      await s.setup?.(nc, server);
      const before = rssBytes(server.proc.pid!);
      const sampler = new RssSampler(server.proc.pid!);
      let stop = false;
      const timer = setTimeout(() => {
        stop = true;
      }, seconds * 1000);
      const stopped = () => stop;
      const [good] = await Promise.all([
        goodClient(nc, stopped),
        s.attack?.(server, stopped).catch((err) => {
          console.error(`attack ${s.name} failed: ${String(err)}`);
        }),
      ]);
      clearTimeout(timer);
      const peak = sampler.stop();
      const l = good.latencies;
      const errs = [...good.errors].map(([c, n]) => `${c} x${n}`).join(", ") || "none";
      console.log(
        `| ${s.name} | ${s.what} | ${l.length} | ${percentile(l, 50).toFixed(2)} | ${percentile(l, 99).toFixed(2)} | ${l[l.length - 1]!.toFixed(1)} | ${errs} | ${(before / MiB).toFixed(0)} | ${(peak / MiB).toFixed(0)} |`,
      );
    } finally {
      await nc?.close().catch(() => {});
      await server.stop("SIGKILL");
      removeDir(server.dataDir);
    }
  }
}
