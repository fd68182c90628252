import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isAlive as alive } from "../../test_support/index.js";
import { etcdArgs, startEtcd } from "./etcd.js";
import { natsConfig, startNats } from "./nats.js";
import { findBinary, ReferenceMissingError } from "./process.js";

describe("reference server configs", () => {
  it("nats listens on loopback only and routes to every node", () => {
    const conf = natsConfig({
      name: "nats1",
      clientPort: 4001,
      monitorPort: 4002,
      storeDir: "/tmp/x",
      cluster: { routePort: 4003, routePorts: [4003, 4013] },
    });
    expect(conf).toContain('listen: "127.0.0.1:4001"');
    expect(conf).toContain('http: "127.0.0.1:4002"');
    expect(conf).toContain('listen: "127.0.0.1:4003"');
    expect(conf).toContain('"nats-route://127.0.0.1:4013"');
    expect(conf).not.toMatch(/0\.0\.0\.0/);
    expect(natsConfig({ name: "a", clientPort: 1, monitorPort: 2, storeDir: "/d" })).not.toContain(
      "cluster",
    );
  });

  it("etcd binds loopback URLs and never disables fsync", () => {
    const args = etcdArgs({
      name: "etcd1",
      dataDir: "/tmp/e",
      clientPort: 5001,
      peerPort: 5002,
      initialCluster: "etcd1=http://127.0.0.1:5002",
      clusterToken: "t",
    });
    const at = (flag: string) => args[args.indexOf(flag) + 1];
    expect(at("--listen-client-urls")).toBe("http://127.0.0.1:5001");
    expect(at("--listen-peer-urls")).toBe("http://127.0.0.1:5002");
    expect(args.join(" ")).not.toContain("unsafe-no-fsync");
  });

  it("finds no binary that does not exist, and the env var overrides $PATH", () => {
    expect(findBinary("streamkv-no-such-binary")).toBeUndefined();
    const before = process.env.STREAMKV_TEST_BIN;
    try {
      process.env.STREAMKV_TEST_BIN = "/nonexistent/sh";
      expect(findBinary("sh", "STREAMKV_TEST_BIN")).toBeUndefined();
      process.env.STREAMKV_TEST_BIN = process.execPath;
      expect(findBinary("sh", "STREAMKV_TEST_BIN")).toBe(process.execPath);
    } finally {
      if (before === undefined) delete process.env.STREAMKV_TEST_BIN;
      else process.env.STREAMKV_TEST_BIN = before;
    }
  });
});

describe("reference servers", () => {
  // Each branch asserts behaviour: with the binary, a server starts, answers and is
  // gone (PID and data dir) after stop(); without it, start fails with the install hint.
  it("starts and stops one nats-server", async () => {
    if (!findBinary("nats-server", "NATS_SERVER_BIN")) {
      await expect(startNats()).rejects.toBeInstanceOf(ReferenceMissingError);
      return;
    }
    const ref = await startNats({ size: 1 });
    const node = ref.nodes[0]!;
    const res = await fetch(`http://127.0.0.1:${node.monitorPort}/jsz`);
    expect(res.status).toBe(200);
    expect(alive(node.proc.pid)).toBe(true);
    await ref.stop();
    expect(alive(node.proc.pid)).toBe(false);
    expect(existsSync(ref.dataDir)).toBe(false);
  });

  it("starts, restarts and stops one etcd and finds its leader", async () => {
    if (!findBinary("etcd", "ETCD_BIN")) {
      await expect(startEtcd()).rejects.toBeInstanceOf(ReferenceMissingError);
      return;
    }
    const ref = await startEtcd({ size: 1 });
    const node = ref.nodes[0]!;
    expect(await ref.leaderIndex()).toBe(0);
    expect(alive(node.proc.pid)).toBe(true);
    // restart: a new process on the same data dir, healthy again, the old one gone.
    const first = node.proc.pid;
    await ref.restart(0);
    expect(node.proc.pid).not.toBe(first);
    expect(alive(first)).toBe(false);
    expect(await ref.leaderIndex()).toBe(0);
    await ref.stop();
    expect(alive(node.proc.pid)).toBe(false);
    expect(existsSync(ref.dataDir)).toBe(false);
  });
});
