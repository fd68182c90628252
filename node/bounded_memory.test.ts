/**
 * Memory and sockets stay bounded on the client port (issue 9, "Bounded memory"): each
 * attack measured on the old node (a paused reader with 600 watches and one 1 MiB put,
 * 300 pipelined gets of a 1 MiB value, 16 pipelined history calls over 64 x 1 MiB
 * revisions, 4500 pipelined watches, silent sockets at the connection cap) is run against
 * a real server process over real sockets. The server's RSS (/proc/<pid>/status VmRSS) is
 * sampled throughout; its growth must stay within the configured budget plus a margin,
 * and a well-behaved client on another connection is served throughout.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, type KvConnection } from "../client/index.js";
import {
  RawClient,
  RssSampler,
  removeDir,
  rssBytes,
  type ServerProcess,
  startServer,
  waitFor,
} from "../test_support/index.js";

const MiB = 1024 * 1024;
/** The per-connection budget the servers here run with. */
const BUDGET = 8 * MiB;
/**
 * Room for what is not the attack's frames: the 1 MiB writes going through Raft and
 * LevelDB, ws receive buffers, the allocator's and GC's slack. Before the fix each
 * attack grew RSS by 300 MiB to 1 GiB.
 */
const MARGIN = 56 * MiB;

const LIMIT_ARGS = [
  "--client-max-buffered-bytes",
  String(BUDGET),
  "--client-write-deadline-ms",
  "3000",
];

async function connectionCount(server: ServerProcess): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${server.clientPort}/v1/status`);
  return ((await res.json()) as { connections: number }).connections;
}

/** Gets `key` every 50 ms until `stop`; every call must answer within 2 s. Returns how many. */
async function keepServing(nc: KvConnection, bucket: string, stop: () => boolean) {
  const kv = await nc.keyValue(bucket);
  let served = 0;
  const deadline = Date.now() + 30_000;
  while (!stop() && Date.now() < deadline) {
    const started = Date.now();
    await kv.put("good", new TextEncoder().encode(String(served)), { timeoutMs: 2000 });
    const e = await kv.get("good", { timeoutMs: 2000 });
    expect(e?.value.length).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(2000);
    served++;
    await new Promise((r) => setTimeout(r, 50));
  }
  return served;
}

describe("bounded memory on the client port", { timeout: 90_000 }, () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function start(args: string[] = LIMIT_ARGS): Promise<ServerProcess> {
    const server = await startServer({ args });
    cleanup.push(async () => {
      await server.stop("SIGKILL");
      removeDir(server.dataDir);
    });
    return server;
  }

  async function client(server: ServerProcess): Promise<KvConnection> {
    const nc = await connect({ servers: [server.url], timeoutMs: 10_000 });
    cleanup.push(() => nc.close());
    return nc;
  }

  function raw(server: ServerProcess, localAddress?: string): RawClient {
    const c = new RawClient(server.url, localAddress);
    cleanup.push(() => c.kill());
    return c;
  }

  /** A raw client with 600 updatesOnly watches on bucket "b", each acked and past its null. */
  async function watchingAttacker(
    server: ServerProcess,
    watch: (i: number) => Record<string, unknown>,
  ): Promise<RawClient> {
    const attacker = raw(server);
    await attacker.hello();
    for (let i = 0; i < 600; i++) {
      attacker.send({ id: 10 + i, watch: { bucket: "b", updates_only: true, ...watch(i) } });
    }
    // Each watch is acked, then sends its init-done marker (updatesOnly).
    await waitFor(() => attacker.frames.length >= 1 + 1200, 20_000, "600 watches started");
    return attacker;
  }

  it("600 watches of a paused reader and one 1 MiB put: RSS within the budget", async () => {
    const server = await start();
    const good = await client(server);
    await good.createKeyValue({ bucket: "b" });
    const attacker = await watchingAttacker(server, () => ({ filter: "k", credit: 1000 }));
    attacker.pauseReading();
    const base = rssBytes(server.proc.pid!);
    const sampler = new RssSampler(server.proc.pid!);
    const kv = await good.keyValue("b");
    await kv.put("k", new Uint8Array(MiB).fill(7));
    let stop = false;
    const serving = keepServing(good, "b", () => stop);
    // The attacker never reads: the write deadline closes it.
    await waitFor(async () => (await connectionCount(server)) === 1, 20_000, "attacker closed");
    stop = true;
    expect(await serving).toBeGreaterThan(0);
    const growth = sampler.stop() - base;
    console.log(`watches: RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    expect(growth).toBeLessThan(BUDGET + MARGIN);
  });

  it("600 watches asking progress every 50 ms from a paused reader: one unflushed frame each", async () => {
    const server = await start();
    const good = await client(server);
    await good.createKeyValue({ bucket: "b" });
    const attacker = await watchingAttacker(server, (i) => ({
      filter: `k.${i}`,
      progress_interval_ms: 1,
    }));
    // The interval was clamped to 50 ms: progress comes, but not 1000 times a second.
    const before = attacker.frames.length;
    await new Promise((r) => setTimeout(r, 500));
    const perWatchPerSecond = (attacker.frames.length - before) / 600 / 0.5;
    expect(perWatchPerSecond).toBeGreaterThan(2);
    expect(perWatchPerSecond).toBeLessThan(25);
    attacker.pauseReading();
    const base = rssBytes(server.proc.pid!);
    const sampler = new RssSampler(server.proc.pid!);
    let stop = false;
    const serving = keepServing(good, "b", () => stop);
    // 5 s of 12,000 progress frames a second if nothing held them back.
    await new Promise((r) => setTimeout(r, 5000));
    stop = true;
    expect(await serving).toBeGreaterThan(0);
    const growth = sampler.stop() - base;
    console.log(`progress watches: RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    expect(growth).toBeLessThan(MARGIN);
  });

  it("300 pipelined gets of a 1 MiB value from a paused reader: RSS within the budget", async () => {
    const server = await start();
    const good = await client(server);
    const kv = await good.createKeyValue({ bucket: "b" });
    await kv.put("big", new Uint8Array(MiB).fill(1));
    const attacker = raw(server);
    await attacker.hello();
    attacker.pauseReading();
    const base = rssBytes(server.proc.pid!);
    const sampler = new RssSampler(server.proc.pid!);
    for (let i = 0; i < 300; i++) attacker.send({ id: 10 + i, get: { bucket: "b", key: "big" } });
    let stop = false;
    const serving = keepServing(good, "b", () => stop);
    await waitFor(async () => (await connectionCount(server)) === 1, 20_000, "attacker closed");
    stop = true;
    expect(await serving).toBeGreaterThan(0);
    const growth = sampler.stop() - base;
    console.log(`gets: RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    expect(growth).toBeLessThan(BUDGET + MARGIN);
  });

  it("16 pipelined history calls over 64 x 1 MiB revisions: RSS within the budget", async () => {
    const server = await start();
    const good = await client(server);
    const kv = await good.createKeyValue({ bucket: "h", history: 64 });
    for (let i = 0; i < 64; i++) await kv.put("k", new Uint8Array(MiB).fill(i));
    // A reader that reads gets every page, one frame each.
    const entries = await kv.history("k", { timeoutMs: 20_000 });
    expect(entries.map((e) => e.value[0])).toEqual([...Array(64).keys()]);
    const attacker = raw(server);
    await attacker.hello();
    attacker.pauseReading();
    const base = rssBytes(server.proc.pid!);
    const sampler = new RssSampler(server.proc.pid!);
    for (let i = 0; i < 16; i++) {
      attacker.send({ id: 10 + i, history: { bucket: "h", key: "k", after_revision: 0 } });
    }
    let stop = false;
    const serving = keepServing(good, "h", () => stop);
    await waitFor(async () => (await connectionCount(server)) === 1, 20_000, "attacker closed");
    stop = true;
    expect(await serving).toBeGreaterThan(0);
    const growth = sampler.stop() - base;
    console.log(`history: RSS growth ${(growth / MiB).toFixed(1)} MiB`);
    expect(growth).toBeLessThan(BUDGET + MARGIN);
  });

  it("the node-wide budget answers OVERLOADED; the SDK backs off and is served after", async () => {
    const server = await start([
      "--client-max-buffered-bytes",
      String(4 * MiB),
      "--node-max-buffered-bytes",
      String(6 * MiB),
      "--client-write-deadline-ms",
      "3000",
    ]);
    const good = await client(server);
    const kv = await good.createKeyValue({ bucket: "b" });
    await kv.put("big", new Uint8Array(MiB).fill(1));
    const attackers = [raw(server), raw(server)];
    for (const a of attackers) {
      await a.hello();
      a.pauseReading();
      for (let i = 0; i < 50; i++) a.send({ id: 10 + i, get: { bucket: "b", key: "big" } });
    }
    const probe = raw(server);
    await probe.hello();
    let overloaded = false;
    for (let i = 0; i < 100 && !overloaded; i++) {
      probe.send({ id: 100 + i, ping: {} });
      await waitFor(() => probe.frames.some((f) => f.id === 100 + i), 5000, "probe answer");
      overloaded = probe.frames.some((f) => f.id === 100 + i && f.error?.code === "OVERLOADED");
      if (!overloaded) await new Promise((r) => setTimeout(r, 20));
    }
    expect(overloaded).toBe(true);
    const buffered = async () => {
      const m = await (await fetch(`http://127.0.0.1:${server.clientPort}/metrics`)).text();
      return Number(/^streamkv_client_buffered_bytes (\d+)/m.exec(m)?.[1] ?? -1);
    };
    // The gauge shows the held bytes at the node budget...
    expect(await buffered()).toBeGreaterThanOrEqual(6 * MiB);
    // The SDK retries OVERLOADED with backoff; once the write deadline cut the attackers
    // off it is served.
    const e = await kv.get("big", { timeoutMs: 15_000 });
    expect(e?.value.length).toBe(MiB);
    await waitFor(async () => (await connectionCount(server)) === 2, 20_000, "attackers closed");
    // ...and everything is given back once the attackers are gone.
    await waitFor(async () => (await buffered()) === 0, 5000, "buffered bytes back to 0");
  });

  it("the watch cap holds exactly under pipelining", async () => {
    const server = await start();
    const good = await client(server);
    await good.createKeyValue({ bucket: "b" });
    const attacker = raw(server);
    await attacker.hello();
    for (let i = 0; i < 4500; i++) {
      attacker.send({ id: 10 + i, watch: { bucket: "b", filter: ">", updates_only: true } });
    }
    const firstAnswer = (id: number) => attacker.frames.find((f) => f.id === id);
    await waitFor(
      () => {
        const ids = new Set(attacker.frames.map((f) => f.id));
        return ids.size >= 4501;
      },
      30_000,
      "every watch answered",
    );
    let acks = 0;
    let refused = 0;
    for (let i = 0; i < 4500; i++) {
      const f = firstAnswer(10 + i);
      if (f?.ack) acks++;
      else if (f?.error?.code === "INVALID_ARGUMENT") refused++;
    }
    expect(acks).toBe(4096);
    expect(refused).toBe(404);
  });

  it("closes silent sockets after the hello timeout; /healthz and /readyz answer at the cap", async () => {
    const server = await start([
      "--max-connections",
      "50",
      "--client-hello-timeout-ms",
      "1500",
      "--max-pre-hello-per-address",
      "16",
    ]);
    const readyz = `http://127.0.0.1:${server.clientPort}/readyz`;
    await waitFor(async () => (await fetch(readyz)).status === 200, 10_000, "node ready");
    // 4 loopback addresses x 16 pre-hello sockets: the cap of 50 is reached.
    const silent: RawClient[] = [];
    for (let a = 2; a <= 5; a++) {
      for (let i = 0; i < 16; i++) silent.push(raw(server, `127.0.0.${a}`));
    }
    const outcomes = await Promise.allSettled(silent.map((s) => s.opened));
    const open = outcomes.filter((o) => o.status === "fulfilled").length;
    expect(open).toBe(50);
    // More than 16 from one address are refused before the cap even matters.
    const extra = raw(server, "127.0.0.2");
    await expect(extra.opened).rejects.toThrow();
    for (const path of ["/healthz", "/readyz"]) {
      const res = await fetch(`http://127.0.0.1:${server.clientPort}${path}`);
      expect(res.status).toBe(200);
    }
    const started = Date.now();
    await waitFor(() => silent.every((s) => s.closed), 10_000, "silent sockets closed");
    expect(Date.now() - started).toBeLessThan(5000);
    const good = await client(server);
    expect((await good.clusterStatus()).id).toBeTruthy();
  });

  it("closes a connection that stops answering pings", async () => {
    const server = await start(["--client-ping-interval-ms", "300"]);
    const reader = raw(server);
    await reader.hello();
    const silent = raw(server);
    await silent.hello();
    silent.pauseReading();
    await waitFor(async () => (await connectionCount(server)) === 1, 10_000, "silent closed");
    expect(reader.closed).toBe(false);
  });
});

describe("data directory permissions", { timeout: 30_000 }, () => {
  it("creates the data dir 0700 and its files 0600", async () => {
    const { statSync, readdirSync } = await import("node:fs");
    const { join } = await import("node:path");
    const parent = (await import("../test_support/index.js")).tempDir();
    const dataDir = join(parent, "data");
    const server = await startServer({ dataDir });
    try {
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(statSync(join(dataDir, "node.json")).mode & 0o777).toBe(0o600);
      for (const f of readdirSync(join(dataDir, "db"))) {
        const st = statSync(join(dataDir, "db", f));
        if (st.isFile()) expect(st.mode & 0o077).toBe(0);
      }
    } finally {
      await server.stop("SIGKILL");
      removeDir(parent);
    }
  });
});

describe("an existing data dir readable by others", { timeout: 30_000 }, () => {
  it("is used, with a warning that says to chmod it", async () => {
    const { chmodSync, mkdirSync } = await import("node:fs");
    const { join } = await import("node:path");
    const parent = (await import("../test_support/index.js")).tempDir();
    const dataDir = join(parent, "data");
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    const server = await startServer({ dataDir });
    try {
      await waitFor(
        () => /readable by others: chmod 700 it/.test(server.stderr()),
        5000,
        "the warning",
      );
      expect(server.stderr()).toContain('"mode":"0755"');
    } finally {
      await server.stop("SIGKILL");
      removeDir(parent);
    }
  });
});

describe("node quotas", { timeout: 30_000 }, () => {
  it("refuses a bucket beyond --max-buckets and a write beyond --max-stored-bytes", async () => {
    const server = await startServer({
      args: ["--max-buckets", "2", "--max-stored-bytes", String(3 * 1024)],
    });
    const nc = await connect({ servers: [server.url], timeoutMs: 10_000 });
    try {
      const a = await nc.createKeyValue({ bucket: "a" });
      await nc.createKeyValue({ bucket: "b" });
      await expect(nc.createKeyValue({ bucket: "c" })).rejects.toMatchObject({
        code: "QUOTA_EXCEEDED",
      });
      await a.put("k1", new Uint8Array(2048));
      await expect(a.put("k2", new Uint8Array(2048))).rejects.toMatchObject({
        code: "QUOTA_EXCEEDED",
      });
      // Markers still pass, and an overwrite that frees as much as it adds too.
      await a.delete("k2");
      await a.put("k1", new Uint8Array(2048));
      await nc.deleteKeyValue("b");
      await nc.createKeyValue({ bucket: "c" });
    } finally {
      await nc.close();
      await server.stop("SIGKILL");
      removeDir(server.dataDir);
    }
  });
});
