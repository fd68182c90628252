import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeCa, makeCert, removeDir, tempDir } from "../test_support/index.js";
import { ConfigError, parsePeers, parseServerConfig, serverUsage } from "./config.js";
import { loadPeerSecurity } from "./peer_auth.js";
import { loadClientTls } from "./tls_files.js";

const dir = tempDir();
afterAll(() => removeDir(dir));

function parse(argv: string[], env: Record<string, string> = {}) {
  return parseServerConfig(["--data", join(dir, "d"), ...argv], env);
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  return "no error";
}

describe("server config", () => {
  it("has the embedded defaults of DESIGN.md section 7", () => {
    const c = parseServerConfig([], {});
    expect(c).toMatchObject({ id: "n1", clientPort: 7420, peerPort: 7421, host: "127.0.0.1" });
    expect(c.dataDir).toBe(join(process.cwd(), "data"));
    expect(c.peers).toEqual([{ id: "n1", host: "127.0.0.1", port: 7421 }]);
    removeDir(c.dataDir);
  });

  it("reads env vars and lets flags win", () => {
    const c = parse(["--client-port=9000"], {
      STREAMKV_CLIENT_PORT: "8000",
      STREAMKV_PEER_PORT: "8001",
      STREAMKV_ID: "x",
    });
    expect(c).toMatchObject({ clientPort: 9000, peerPort: 8001, id: "x" });
  });

  it("has the NATS port off by default, on with --nats-port or its env var, never on another port of the node", () => {
    expect(parse([]).natsPort).toBe(0);
    expect(parse(["--nats-port", "4222"]).natsPort).toBe(4222);
    expect(parse([], { STREAMKV_NATS_PORT: "4223" }).natsPort).toBe(4223);
    expect(errorOf(() => parse(["--nats-port", "99999"]))).toMatch(/--nats-port 99999: a port/);
    expect(
      errorOf(() => parse(["--nats-port", "7000", "--client-port", "7000", "--peer-port", "7001"])),
    ).toMatch(/--nats-port 7000 is also the client port/);
    expect(errorOf(() => parse(["--nats-port", "7421"]))).toMatch(/also the peer port/);
    expect(serverUsage()).toContain("--nats-port <n>");
  });

  it("parses peers and requires the node's id among them", () => {
    expect(parsePeers("a=10.0.0.1:7421, b=host-b:7421")).toEqual([
      { id: "a", host: "10.0.0.1", port: 7421 },
      { id: "b", host: "host-b", port: 7421 },
    ]);
    const c = parse(["--id", "b", "--peers", "a=h1:1,b=h2:2"]);
    expect(c.peers.map((p) => p.id)).toEqual(["a", "b"]);
    expect(errorOf(() => parse(["--id", "c", "--peers", "a=h1:1,b=h2:2"]))).toMatch(
      /--id c is not in --peers/,
    );
  });

  it("takes --join as a bare flag, and needs --cluster-id and peers with it", () => {
    expect(parse([]).join).toBe(false);
    const c = parse(["--id", "d", "--peers", "a=h1:1,d=h4:4", "--join", "--cluster-id", "c-1"]);
    expect(c.join).toBe(true);
    expect(c.clusterId).toBe("c-1");
    expect(parse(["--join=false"]).join).toBe(false);
    expect(errorOf(() => parse(["--id", "d", "--peers", "a=h1:1,d=h4:4", "--join"]))).toMatch(
      /--join needs --cluster-id/,
    );
    expect(errorOf(() => parse(["--join", "--cluster-id", "c-1"]))).toMatch(/--join needs --peers/);
    expect(errorOf(() => parse(["--join=maybe"]))).toMatch(/--join "maybe"/);
  });

  it("rejects bad values with a message naming the flag", () => {
    expect(errorOf(() => parse(["--client-port", "abc"]))).toMatch(/--client-port "abc"/);
    expect(errorOf(() => parse(["--peer-port", "70000"]))).toMatch(/--peer-port 70000/);
    expect(errorOf(() => parse(["--peers", "a=h1"]))).toMatch(
      /--peers: "a=h1" is not id=host:port/,
    );
    expect(errorOf(() => parse(["--peers", "a=h:1,a=h:2", "--id", "a"]))).toMatch(/twice/);
    expect(errorOf(() => parse(["--peers", "a=h:0", "--id", "a"]))).toMatch(/real port/);
    expect(errorOf(() => parse(["--bogus", "1"]))).toMatch(/unknown argument "--bogus"/);
    expect(errorOf(() => parse(["--id"]))).toMatch(/--id needs a value/);
    expect(errorOf(() => parse(["--id", "a b"]))).toMatch(/--id "a b"/);
    expect(errorOf(() => parse(["--max-frame-bytes", "10"]))).toMatch(/--max-frame-bytes/);
    expect(errorOf(() => parse(["--client-port", "9000", "--peer-port", "9000"]))).toMatch(
      /both 9000/,
    );
  });

  it("scrubs at 16 MiB/s by default, at --scrub-bytes-per-second or its env var, 0 = off", () => {
    expect(parse([]).scrubBytesPerSecond).toBe(16 * 1024 * 1024);
    expect(parse(["--scrub-bytes-per-second", "0"]).scrubBytesPerSecond).toBe(0);
    expect(parse([], { STREAMKV_SCRUB_BYTES_PER_SECOND: "1048576" }).scrubBytesPerSecond).toBe(
      1048576,
    );
    for (const bad of ["-1", "1.5", "16MiB", "9007199254740993"]) {
      expect(errorOf(() => parse([`--scrub-bytes-per-second=${bad}`]))).toBe(
        `--scrub-bytes-per-second ${JSON.stringify(bad)}: not a whole number`,
      );
    }
  });

  it("rejects a data dir that is not a directory", () => {
    const file = join(dir, "file");
    writeFileSync(file, "x");
    expect(errorOf(() => parseServerConfig(["--data", file], {}))).toMatch(/--data .*file/);
    expect(errorOf(() => parseServerConfig(["--data", join(file, "sub")], {}))).toMatch(
      /cannot create/,
    );
  });

  it("lists every flag with its default and env var in --help", () => {
    const help = serverUsage();
    for (const flag of ["--id", "--data", "--client-port", "--peer-port", "--host", "--peers"]) {
      expect(help).toContain(flag);
    }
    expect(help).toContain("(default 7420)");
    expect(help).toContain("(default ./data)");
    expect(help).toContain("STREAMKV_PEERS");
    const flagLines = help.split("\n").filter((l) => /^ {2}--/.test(l));
    const flags = flagLines.map((l) => l.trim().split(/\s/)[0]);
    expect(new Set(flags).size, "each flag on one line").toBe(flags.length);
  });

  it("takes a test fault from STREAMKV_UNSAFE_TEST_FAULT only, rejects unknown ones, hides it from --help", () => {
    expect(parse([]).unsafeTestFault).toBeUndefined();
    expect(parse([], { STREAMKV_UNSAFE_TEST_FAULT: "" }).unsafeTestFault).toBeUndefined();
    expect(parse([], { STREAMKV_UNSAFE_TEST_FAULT: "cas-at-proposer" }).unsafeTestFault).toBe(
      "cas-at-proposer",
    );
    expect(parse([], { STREAMKV_UNSAFE_TEST_FAULT: "skip-dedupe" }).unsafeTestFault).toBe(
      "skip-dedupe",
    );
    expect(errorOf(() => parse([], { STREAMKV_UNSAFE_TEST_FAULT: "fsync-off" }))).toBe(
      'STREAMKV_UNSAFE_TEST_FAULT "fsync-off": not a test fault (cas-at-proposer, skip-dedupe); unset it: it exists only for the test suites',
    );
    expect(errorOf(() => parse(["--unsafe-test-fault", "cas-at-proposer"]))).toMatch(
      /unknown argument/,
    );
    expect(serverUsage()).not.toMatch(/UNSAFE|unsafe/);
  });
});

// TLS files are read and checked at start (node/tls_files.ts), made by openssl here.
makeCa(dir, "ca");
const node = makeCert(dir, "ca", "n1");
const other = makeCert(dir, "ca", "n2");
const garbage = join(dir, "garbage.pem");
writeFileSync(garbage, "this is not a certificate\n");
const missing = join(dir, "missing.pem");

function clientTls(args: string[]) {
  return loadClientTls(parse(args));
}

describe("client port TLS files", () => {
  it("is off without flags, on with a certificate and key, mutual with a client CA", () => {
    expect(clientTls([])).toBeUndefined();
    const on = clientTls(["--tls-cert", node.certPath, "--tls-key", node.keyPath]);
    expect(on?.cert.equals(node.cert)).toBe(true);
    expect(on?.clientCa).toBeUndefined();
    const mutual = clientTls([
      "--tls-cert",
      node.certPath,
      "--tls-key",
      node.keyPath,
      "--tls-client-ca",
      node.caPath,
    ]);
    expect(mutual?.clientCa?.equals(node.ca)).toBe(true);
  });

  it("names what is missing, unreadable, not PEM, or not the certificate's key", () => {
    expect(errorOf(() => clientTls(["--tls-cert", node.certPath]))).toBe(
      "TLS on the client port needs --tls-cert and --tls-key together (missing --tls-key)",
    );
    expect(errorOf(() => clientTls(["--tls-key", node.keyPath]))).toMatch(/missing --tls-cert/);
    expect(errorOf(() => clientTls(["--tls-client-ca", node.caPath]))).toMatch(
      /^--tls-client-ca needs --tls-cert and --tls-key/,
    );
    expect(errorOf(() => clientTls(["--tls-cert", missing, "--tls-key", node.keyPath]))).toMatch(
      /^--tls-cert .*missing\.pem: ENOENT/,
    );
    expect(errorOf(() => clientTls(["--tls-cert", garbage, "--tls-key", node.keyPath]))).toMatch(
      /^--tls-cert .*garbage\.pem: not a PEM certificate/,
    );
    expect(errorOf(() => clientTls(["--tls-cert", node.certPath, "--tls-key", garbage]))).toMatch(
      /^--tls-key .*garbage\.pem: not a PEM private key/,
    );
    // A certificate where the key belongs, and the key of another certificate.
    expect(
      errorOf(() => clientTls(["--tls-cert", node.certPath, "--tls-key", node.certPath])),
    ).toMatch(/^--tls-key .*: not a PEM private key/);
    expect(
      errorOf(() => clientTls(["--tls-cert", node.certPath, "--tls-key", other.keyPath])),
    ).toMatch(/^--tls-key is not the private key of --tls-cert/);
    const args = ["--tls-cert", node.certPath, "--tls-key", node.keyPath, "--tls-client-ca"];
    expect(errorOf(() => clientTls([...args, garbage]))).toMatch(
      /^--tls-client-ca .*: not a PEM certificate/,
    );
  });
});

describe("peer port TLS files (the same checks)", () => {
  const peer = (args: string[]) => loadPeerSecurity(parse(args));

  it("needs all three files, each readable PEM, and a matching key", () => {
    expect(errorOf(() => peer(["--peer-tls-cert", node.certPath]))).toBe(
      "mutual TLS on the peer port needs --peer-tls-cert, --peer-tls-key and --peer-tls-ca together (missing --peer-tls-key, --peer-tls-ca)",
    );
    const all = (cert: string, key: string, ca: string) => [
      "--peer-tls-cert",
      cert,
      "--peer-tls-key",
      key,
      "--peer-tls-ca",
      ca,
    ];
    expect(peer(all(node.certPath, node.keyPath, node.caPath)).tls?.ca.equals(node.ca)).toBe(true);
    expect(errorOf(() => peer(all(node.certPath, node.keyPath, garbage)))).toMatch(
      /^--peer-tls-ca .*: not a PEM certificate/,
    );
    expect(errorOf(() => peer(all(node.certPath, other.keyPath, node.caPath)))).toMatch(
      /^--peer-tls-key is not the private key of --peer-tls-cert/,
    );
  });
});
