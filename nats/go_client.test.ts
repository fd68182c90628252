/**
 * The Go client (nats.go 1.22 from Debian, built offline) calling every method of its
 * KeyValueManager and KeyValue (nats/conformance/go/main.go) against Debian's
 * nats-server, a streamkv node and a three-node streamkv cluster (writes on one node,
 * reads and watches on another), in one test: the program's check lines on streamkv
 * must equal those on nats-server, so a difference shows as a diff of named checks.
 *
 * Needs `golang-go`, `golang-github-nats-io-go-nats-dev` and `nats-server` (apt-get);
 * without them the test is skipped with that hint, unless CI is set (then it fails).
 */
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsReference, startNats } from "../bench/reference/nats.js";
import { findBinary } from "../bench/reference/process.js";
import {
  freePort,
  removeDir,
  runCommand,
  type ServerProcess,
  startCluster,
  startServer,
  tempDir,
  waitFor,
} from "../test_support/index.js";

const GOPATH = "/usr/share/gocode";
const NATS_GO = join(GOPATH, "src/github.com/nats-io/nats.go");
const go = findBinary("go", "STREAMKV_GO");
const natsServer = findBinary("nats-server", "NATS_SERVER_BIN");
const ciValue = process.env.CI ?? "";
const inCi = ciValue !== "" && ciValue !== "0" && ciValue.toLowerCase() !== "false";
const missing = [
  ...(go === undefined ? ["golang-go"] : []),
  ...(existsSync(NATS_GO) ? [] : ["golang-github-nats-io-go-nats-dev"]),
  ...(natsServer === undefined ? ["nats-server"] : []),
];
const skip = missing.length > 0 && !inCi;
if (skip) {
  console.warn(
    `nats/go_client.test.ts skipped: install them with \`apt-get install -y ${missing.join(" ")}\` (CI is not set)`,
  );
}

const programDir = new URL("./conformance/go/", import.meta.url).pathname;
/** Go's build cache, kept across runs (the program builds in about a second from it). */
const goCache = join(tmpdir(), "streamkv-go-build-cache");

let binary = "";

/** Runs the program; its lines, and its exit code. */
async function conformance(w: string, r: string, bucket: string) {
  const res = await runCommand(binary, ["-w", w, "-r", r, "-bucket", bucket], {
    timeoutMs: 90_000,
  });
  const lines = res.stdout.split("\n").filter((l) => l !== "");
  return { lines, code: res.code, stderr: res.stderr };
}

async function isReady(clientPort: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${clientPort}/readyz`, {
      signal: AbortSignal.timeout(1000),
    });
    return res.status === 200;
  } catch {
    return false;
  }
}

describe.skipIf(skip)("nats.go 1.22 KeyValue against nats-server and streamkv", () => {
  let buildDir = "";
  let nats: NatsReference | undefined;
  let one: ServerProcess | undefined;
  let cluster: ServerProcess[] = [];
  /** nats-server's lines: what every streamkv run must print too. */
  let reference: string[] = [];

  beforeAll(async () => {
    expect(missing, `install them: apt-get install -y ${missing.join(" ")}`).toEqual([]);
    buildDir = tempDir("streamkv-go-conformance-");
    mkdirSync(goCache, { recursive: true });
    binary = join(buildDir, "conformance");
    const built = await runCommand(go!, ["build", "-o", binary, "."], {
      cwd: programDir,
      env: { GO111MODULE: "off", GOPATH, GOCACHE: goCache },
      timeoutMs: 120_000,
    });
    expect(built.code, `go build: ${built.stderr}`).toBe(0);
    [nats, one] = await Promise.all([startNats(), startServer({ natsPort: await freePort() })]);
  }, 150_000);

  afterAll(async () => {
    await Promise.all([nats?.stop(), one?.stop(), ...cluster.map((n) => n.stop())]);
    for (const s of [one, ...cluster]) if (s) removeDir(s.dataDir);
    if (buildDir !== "") removeDir(buildDir);
  });

  it("passes every check against nats-server (the checks are right about NATS)", async () => {
    const url = nats!.nodes[0]!.url;
    const res = await conformance(url, url, "gocfg");
    reference = res.lines;
    expect(res.lines.filter((l) => !l.startsWith("PASS "))).toEqual([]);
    expect(res.lines.length).toBeGreaterThan(25);
    expect(res.code).toBe(0);
  }, 100_000);

  it("prints the same lines against one streamkv node", async () => {
    const url = `127.0.0.1:${one!.natsPort}`;
    const res = await conformance(url, url, "gocfg");
    expect(res.lines).toEqual(reference);
    expect(res.code).toBe(0);
  }, 100_000);

  it("prints the same lines against a three-node cluster, writes and reads on different nodes", async () => {
    cluster = (await startCluster(["n1", "n2", "n3"], { nats: true })).nodes;
    // The program's first request is a bucket create: wait until a leader serves it.
    await waitFor(
      async () => (await Promise.all(cluster.map((n) => isReady(n.clientPort)))).every(Boolean),
      30_000,
      "every node /readyz",
      100,
    );
    const res = await conformance(
      `127.0.0.1:${cluster[0]!.natsPort}`,
      `127.0.0.1:${cluster[2]!.natsPort}`,
      "gocfg",
    );
    expect(res.lines).toEqual(reference);
    expect(res.code).toBe(0);
  }, 150_000);
});
