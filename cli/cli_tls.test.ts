/**
 * The CLI over TLS: the real binary against real `streamkv server` processes started with
 * `--tls-cert`/`--tls-key` (one also with `--tls-client-ca`), certificates made by openssl
 * here; bad TLS flags are usage errors (exit 2); a token over plain ws:// to a
 * non-loopback host is refused before connecting (exit 1, INSECURE_TRANSPORT).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  clientTlsArgs,
  makeCa,
  makeCert,
  removeDir,
  runCli,
  type ServerProcess,
  startServer,
  type TestCert,
  tempDir,
  wssUrl as wss,
} from "../test_support/index.js";
import { parseArgs } from "./args.js";
import { COMMON_FLAGS, connectOptions } from "./common.js";

const dir = tempDir("streamkv-cli-tls-");
let node: TestCert;
let client: TestCert;
let tlsNode: ServerProcess;
let mutualNode: ServerProcess;

beforeAll(async () => {
  makeCa(dir, "ca");
  node = makeCert(dir, "ca", "n1");
  client = makeCert(dir, "ca", "cli");
  [tlsNode, mutualNode] = await Promise.all([
    startServer({ args: clientTlsArgs(node) }),
    startServer({ args: clientTlsArgs(node, client.caPath) }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([tlsNode?.stop(), mutualNode?.stop()]);
  for (const s of [tlsNode, mutualNode]) if (s) removeDir(s.dataDir);
  removeDir(dir);
});

describe("streamkv kv over TLS", () => {
  it("works with --tls-ca against a TLS node", async () => {
    const flags = ["--server", wss(tlsNode), "--tls-ca", node.caPath];
    const add = await runCli(["kv", "add", "secure", ...flags]);
    expect(add.code, add.stderr).toBe(0);
    expect((await runCli(["kv", "put", "secure", "k", "v", ...flags])).stdout).toBe("1\n");
    expect((await runCli(["kv", "get", "secure", "k", ...flags])).stdout).toBe("v");
  });

  it("fails with the reason, exit 1, when the node's certificate is not trusted", async () => {
    const r = await runCli(["kv", "ls", "--server", wss(tlsNode), "--timeout", "1500"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^streamkv: CONNECTION_CLOSED: .*certificate/);
  });

  it("mutual TLS: works with --tls-cert and --tls-key, is refused without", async () => {
    const flags = ["--server", wss(mutualNode), "--tls-ca", node.caPath, "--timeout", "1500"];
    const mine = ["--tls-cert", client.certPath, "--tls-key", client.keyPath];
    const ls = await runCli(["kv", "ls", "--json", ...flags, ...mine]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(JSON.parse(ls.stdout)).toEqual([]);
    const without = await runCli(["kv", "ls", ...flags]);
    expect(without.code).toBe(1);
    expect(without.stderr).toMatch(/^streamkv: CONNECTION_CLOSED: /);
  });

  it("snapshot save takes the same TLS flags: a backup over mutual TLS", async () => {
    const out = join(dir, "tls.snap");
    const flags = ["--server", wss(mutualNode), "--tls-ca", node.caPath];
    const mine = ["--tls-cert", client.certPath, "--tls-key", client.keyPath];
    const save = await runCli(["snapshot", "save", out, ...flags, ...mine]);
    expect(save.code, save.stderr).toBe(0);
    expect(save.stdout).toMatch(/^saved .*tls\.snap: raft index \d+/);
    // Nothing was ever written to this node: an empty backup, which a restore takes too.
    const status = await runCli(["snapshot", "status", out, "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ buckets: [], header: { raftIndex: 0 } });
    const restore = await runCli([
      "snapshot",
      "restore",
      out,
      "--data",
      join(dir, "empty-restored"),
      "--id",
      "n1",
    ]);
    expect(restore.code, restore.stderr).toBe(0);
    const without = await runCli(["snapshot", "save", out, ...flags, "--timeout", "1500"]);
    expect(without.code).toBe(1);
    expect(without.stderr).toMatch(/^streamkv: CONNECTION_CLOSED: /);
  });

  it("bad TLS flags are usage errors (exit 2) naming the flag", async () => {
    const notPem = join(dir, "not.pem");
    writeFileSync(notPem, "hello\n");
    const cases: [string[], RegExp][] = [
      [["--tls-ca", join(dir, "missing.pem")], /--tls-ca .*missing\.pem: cannot read/],
      [["--tls-ca", notPem], /--tls-ca .*not\.pem: not a PEM file/],
      [["--tls-cert", client.certPath], /--tls-cert and --tls-key go together/],
      [["--tls-ca"], /--tls-ca needs a value/],
      [["--insecure=maybe"], /--insecure is a switch/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(["kv", "ls", "--server", wss(tlsNode), ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it("refuses a token over plain ws:// to a non-loopback host unless --insecure", async () => {
    // Refused before any socket is opened: 10.20.30.40 is never dialed.
    const r = await runCli(["kv", "ls", "--server", "ws://10.20.30.40:7420", "--token", "t"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^streamkv: INSECURE_TRANSPORT: .*ws:\/\/.*--insecure/);
    // --insecure reaches the SDK as insecure: true (not run: it would dial that host).
    const parsed = parseArgs(["--server", "ws://10.20.30.40:7420", "--insecure"], COMMON_FLAGS);
    expect(connectOptions(parsed).insecure).toBe(true);
    expect(connectOptions(parseArgs([], COMMON_FLAGS)).insecure).toBeUndefined();
  });
});
