/**
 * The server's configuration: `streamkv server` flags, each also an env var
 * `STREAMKV_*` (DESIGN.md section 7). Flags win over env vars, env vars over the
 * embedded defaults. Every bad value is a `ConfigError` with a message that names the
 * flag, so `streamkv server` can print one line and exit non-zero.
 */
import { createHash } from "node:crypto";
import { accessSync, constants, mkdirSync, readFileSync, rmdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { isLogLevel, LOG_LEVELS, type LogLevel } from "./log.js";
import {
  isClientUrl,
  isValidNodeId,
  MAX_CLIENT_URL_LENGTH,
  parsePeerAddress,
} from "./peer_address.js";

export interface PeerAddress {
  id: string;
  host: string;
  port: number;
}

export interface ServerConfig {
  /** This node's id; must be one of `peers` when peers are given. */
  id: string;
  /** Directory of the node's LevelDB. */
  dataDir: string;
  /**
   * The topmost directory of `dataDir`'s path that parsing the config created (absent
   * if `dataDir` existed): a start that fails removes it again, and nothing else.
   */
  createdDataDir?: string;
  /** Interface both listeners bind to. */
  host: string;
  /** 0 = let the OS choose (tests). */
  clientPort: number;
  peerPort: number;
  /** The NATS client protocol port (nats/); 0 = off (the default). */
  natsPort: number;
  /** The initial cluster; just this node when `--peers` is omitted. */
  peers: PeerAddress[];
  /**
   * The cluster this node belongs to: `--cluster-id`, else derived from the initial
   * peers (`deriveClusterId`). Stored in the data dir and sent in the peer hello.
   */
  clusterId: string;
  /**
   * `--join`: this node joins a running cluster (`streamkv cluster add` on it) instead
   * of bootstrapping one from `--peers`; its Raft group starts empty and it waits, not
   * campaigning, until the leader makes it a learner. Needs `--cluster-id`.
   */
  join: boolean;
  /** One shared token clients must present in their hello when set (node/auth.ts). */
  token: string | undefined;
  /** `--token-file`: the shared token read from a file (trailing newline ignored). */
  tokenFile: string;
  /** `--tokens-file`: named tokens with permissions (node/auth.ts); re-read on SIGHUP. */
  tokensFile: string;
  /** TLS on the client port (node/tls_files.ts): this node's PEM certificate and key. */
  tlsCert: string;
  tlsKey: string;
  /** Mutual TLS on the client port: the PEM CA every client certificate must chain to. */
  tlsClientCa: string;
  /** `--metrics-listen host:port`: serve /metrics and /v1/status there, without a token. */
  metricsListen: string;
  advertiseClientUrl: string;
  /** Lines below this level are not written (node/log.ts). */
  logLevel: LogLevel;
  /** Largest accepted WebSocket frame on either port. */
  maxFrameBytes: number;
  /** How long shutdown waits for in-flight writes before closing anyway. */
  shutdownTimeoutMs: number;
  /** Most concurrent client connections. */
  maxConnections: number;
  /** Entries a watch may have queued on the node before it is ended with SLOW_CONSUMER. */
  watchMaxPending: number;
  /** Applied entries between two compactions of the Raft log (half of it is kept as a tail). */
  snapshotEntries: number;
  /** Bytes per second the background scrub reads of LevelDB's tables (node/scrub.ts); 0 = off. */
  scrubBytesPerSecond: number;
  /** File holding the cluster secret peers prove in their hello ("" = none; peer_auth.ts). */
  peerSecretFile: string;
  /** Mutual TLS on the peer port: this node's certificate, key and the CA both sides trust. */
  peerTlsCert: string;
  peerTlsKey: string;
  peerTlsCa: string;
  /** Comma-separated names a peer certificate must carry one of ("" = any the CA signed). */
  peerTlsAllowedNames: string;
  // --- client-port limits (CLIENT_LIMIT_OPTIONS) ---
  /** One connection's outbound byte budget (unflushed frames + answers of requests in flight). */
  clientMaxBufferedBytes: number;
  /** Every connection's bytes together; beyond it new requests get OVERLOADED. */
  nodeMaxBufferedBytes: number;
  /** A connection held at its budget this long without reading is closed. */
  clientWriteDeadlineMs: number;
  /** A connection without a hello this long after opening is closed. */
  clientHelloTimeoutMs: number;
  /** WebSocket ping interval; two missed pongs close the connection. */
  clientPingIntervalMs: number;
  /** WebSocket connections per remote address that have not said hello yet. */
  maxPreHelloPerAddress: number;
  /** HTTP: time to receive a request's headers. */
  httpHeadersTimeoutMs: number;
  /** HTTP: time to receive a whole request. */
  httpRequestTimeoutMs: number;
  /** Buckets the node may hold (decided at apply, with the leader's value). */
  maxBuckets: number;
  /** Value bytes every bucket together may hold (decided at apply, with the leader's value). */
  maxStoredBytes: number;
  /**
   * A deliberately broken build, for the test suites that show their checkers catch one
   * (`STREAMKV_UNSAFE_TEST_FAULT`, no flag, not in --help); undefined in every real use.
   */
  unsafeTestFault?: UnsafeTestFault;
}

/**
 * The planted bugs of node/replica.ts a test may switch on in a real server process
 * (env `STREAMKV_UNSAFE_TEST_FAULT`): never set outside a test.
 */
export const UNSAFE_TEST_FAULTS = {
  /** create/update decided on the leader before proposing, then proposed as a plain put. */
  "cas-at-proposer": { casAtProposer: true },
  /** kvapi applies a retried request id again. */
  "skip-dedupe": { skipDedupe: true },
} as const;

export type UnsafeTestFault = keyof typeof UNSAFE_TEST_FAULTS;

export const UNSAFE_TEST_FAULT_ENV = "STREAMKV_UNSAFE_TEST_FAULT";

/** The test fault `env` asks for (absent or "" = none); an unknown name is a ConfigError. */
function unsafeTestFaultOf(
  env: Readonly<Record<string, string | undefined>>,
): UnsafeTestFault | undefined {
  const v = env[UNSAFE_TEST_FAULT_ENV];
  if (v === undefined || v === "") return undefined;
  if (Object.hasOwn(UNSAFE_TEST_FAULTS, v)) return v as UnsafeTestFault;
  throw new ConfigError(
    `${UNSAFE_TEST_FAULT_ENV} ${JSON.stringify(v)}: not a test fault (${Object.keys(UNSAFE_TEST_FAULTS).join(", ")}); unset it: it exists only for the test suites`,
  );
}

/** The shared token in `path` (one line; surrounding whitespace ignored). */
function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`--token-file ${path}: cannot read: ${(err as Error).message}`);
  }
  const token = text.trim();
  if (token === "" || /\s/.test(token)) {
    throw new ConfigError(`--token-file ${path}: must hold one token on one line`);
  }
  return token;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

interface Option {
  flag: string;
  env: string;
  key: keyof ServerConfig;
  /** `int` is at least 1, `count` at least 0. */
  kind: "string" | "port" | "int" | "count" | "peers" | "bool";
  defaultValue: string;
  help: string;
}

/** 1 MiB of value plus room for the key, bucket name and framing. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024 + 64 * 1024;

/** Client-port limits: memory per connection and per node, timeouts, pre-hello caps. */
const CLIENT_LIMIT_OPTIONS: readonly Option[] = [
  {
    flag: "--client-max-buffered-bytes",
    env: "STREAMKV_CLIENT_MAX_BUFFERED_BYTES",
    key: "clientMaxBufferedBytes",
    kind: "int",
    defaultValue: String(32 * 1024 * 1024),
    help: "outbound byte budget of one client connection (unflushed frames + answers in flight); at it the connection stops being read and its watches end SLOW_CONSUMER; at least 2 x --max-frame-bytes",
  },
  {
    flag: "--node-max-buffered-bytes",
    env: "STREAMKV_NODE_MAX_BUFFERED_BYTES",
    key: "nodeMaxBufferedBytes",
    kind: "int",
    defaultValue: String(512 * 1024 * 1024),
    help: "outbound bytes all client connections together may hold; beyond it new requests get OVERLOADED",
  },
  {
    flag: "--client-write-deadline-ms",
    env: "STREAMKV_CLIENT_WRITE_DEADLINE_MS",
    key: "clientWriteDeadlineMs",
    kind: "int",
    defaultValue: "10000",
    help: "a client connection held at its byte budget this long without reading is closed",
  },
  {
    flag: "--client-hello-timeout-ms",
    env: "STREAMKV_CLIENT_HELLO_TIMEOUT_MS",
    key: "clientHelloTimeoutMs",
    kind: "int",
    defaultValue: "5000",
    help: "a client connection that sends no hello this long after opening is closed",
  },
  {
    flag: "--client-ping-interval-ms",
    env: "STREAMKV_CLIENT_PING_INTERVAL_MS",
    key: "clientPingIntervalMs",
    kind: "int",
    defaultValue: "20000",
    help: "WebSocket ping interval on the client port; two missed pongs in a row close the connection",
  },
  {
    flag: "--max-pre-hello-per-address",
    env: "STREAMKV_MAX_PRE_HELLO_PER_ADDRESS",
    key: "maxPreHelloPerAddress",
    kind: "int",
    defaultValue: "16",
    help: "client WebSocket connections from one remote address that have not sent a hello yet",
  },
  {
    flag: "--http-headers-timeout-ms",
    env: "STREAMKV_HTTP_HEADERS_TIMEOUT_MS",
    key: "httpHeadersTimeoutMs",
    kind: "int",
    defaultValue: "10000",
    help: "client port: time to receive an HTTP request's headers",
  },
  {
    flag: "--http-request-timeout-ms",
    env: "STREAMKV_HTTP_REQUEST_TIMEOUT_MS",
    key: "httpRequestTimeoutMs",
    kind: "int",
    defaultValue: "30000",
    help: "client port: time to receive a whole HTTP request",
  },
  {
    flag: "--max-buckets",
    env: "STREAMKV_MAX_BUCKETS",
    key: "maxBuckets",
    kind: "int",
    defaultValue: "10000",
    help: "buckets the node may hold; creating one more is QUOTA_EXCEEDED (the leader's value is applied on every replica)",
  },
  {
    flag: "--max-stored-bytes",
    env: "STREAMKV_MAX_STORED_BYTES",
    key: "maxStoredBytes",
    kind: "int",
    defaultValue: String(256 * 1024 ** 3),
    help: "value bytes all buckets together may hold; a write beyond is QUOTA_EXCEEDED, deletes and purges still pass (the leader's value is applied on every replica)",
  },
];

export const SERVER_OPTIONS: readonly Option[] = [
  {
    flag: "--id",
    env: "STREAMKV_ID",
    key: "id",
    kind: "string",
    defaultValue: "n1",
    help: "node id",
  },
  {
    flag: "--data",
    env: "STREAMKV_DATA",
    key: "dataDir",
    kind: "string",
    defaultValue: "./data",
    help: "data directory (LevelDB); created if missing",
  },
  {
    flag: "--host",
    env: "STREAMKV_HOST",
    key: "host",
    kind: "string",
    defaultValue: "127.0.0.1",
    help: "interface to listen on (0.0.0.0 for all)",
  },
  {
    flag: "--client-port",
    env: "STREAMKV_CLIENT_PORT",
    key: "clientPort",
    kind: "port",
    defaultValue: "7420",
    help: "client WebSocket + HTTP port (0 = any free port)",
  },
  {
    flag: "--peer-port",
    env: "STREAMKV_PEER_PORT",
    key: "peerPort",
    kind: "port",
    defaultValue: "7421",
    help: "peer WebSocket port (0 = any free port)",
  },
  {
    flag: "--nats-port",
    env: "STREAMKV_NATS_PORT",
    key: "natsPort",
    kind: "port",
    defaultValue: "0",
    help: 'NATS client protocol port for existing NATS KV clients (README "NATS port"; 0 = off, 4222 in the examples)',
  },
  {
    flag: "--peers",
    env: "STREAMKV_PEERS",
    key: "peers",
    kind: "peers",
    defaultValue: "",
    help: "initial cluster, id=host:port,... of peer ports (omitted = single node)",
  },
  {
    flag: "--cluster-id",
    env: "STREAMKV_CLUSTER_ID",
    key: "clusterId",
    kind: "string",
    defaultValue: "",
    help: "cluster identity (empty = derived from --peers); keeps a data dir valid after peer addresses change",
  },
  {
    flag: "--join",
    env: "STREAMKV_JOIN",
    key: "join",
    kind: "bool",
    defaultValue: "false",
    help: "join a running cluster (then `streamkv cluster add <id>=<host:port>`) instead of bootstrapping one; needs --cluster-id, and --peers naming the members and this node",
  },
  {
    flag: "--token",
    env: "STREAMKV_TOKEN",
    key: "token",
    kind: "string",
    defaultValue: "",
    help: "shared token clients must send (empty = none); prefer --token-file or the env, which ps does not show",
  },
  {
    flag: "--token-file",
    env: "STREAMKV_TOKEN_FILE",
    key: "tokenFile",
    kind: "string",
    defaultValue: "",
    help: "read the shared token from this file",
  },
  {
    flag: "--tokens-file",
    env: "STREAMKV_TOKENS_FILE",
    key: "tokensFile",
    kind: "string",
    defaultValue: "",
    help: "named tokens with read/write/admin permissions (JSON, hashed; see README Security); re-read on SIGHUP",
  },
  {
    flag: "--tls-cert",
    env: "STREAMKV_TLS_CERT",
    key: "tlsCert",
    kind: "string",
    defaultValue: "",
    help: "PEM certificate (chain) of this node: the client port serves wss:// and https:// (TLS 1.2+; with --tls-key)",
  },
  {
    flag: "--tls-key",
    env: "STREAMKV_TLS_KEY",
    key: "tlsKey",
    kind: "string",
    defaultValue: "",
    help: "PEM private key of --tls-cert",
  },
  {
    flag: "--tls-client-ca",
    env: "STREAMKV_TLS_CLIENT_CA",
    key: "tlsClientCa",
    kind: "string",
    defaultValue: "",
    help: "PEM CA of client certificates: mutual TLS, every client must present a certificate it signed (needs --tls-cert)",
  },
  {
    flag: "--metrics-listen",
    env: "STREAMKV_METRICS_LISTEN",
    key: "metricsListen",
    kind: "string",
    defaultValue: "",
    help: "host:port to serve /metrics and /v1/status on without a token, plain HTTP also with --tls-cert (empty = on the client port, admin token needed when tokens are set)",
  },
  {
    flag: "--advertise-client-url",
    env: "STREAMKV_ADVERTISE_CLIENT_URL",
    key: "advertiseClientUrl",
    kind: "string",
    defaultValue: "",
    help: "the URL clients reach this node at, told to the other members for `cluster status --all` (empty = ws:// or wss:// of --host and the client port; the host name when --host is 0.0.0.0 or ::)",
  },
  {
    flag: "--log-level",
    env: "STREAMKV_LOG_LEVEL",
    key: "logLevel",
    kind: "string",
    defaultValue: "info",
    help: "debug, info, warn or error: JSON lines on stderr at this level and above",
  },
  {
    flag: "--max-frame-bytes",
    env: "STREAMKV_MAX_FRAME_BYTES",
    key: "maxFrameBytes",
    kind: "int",
    defaultValue: String(DEFAULT_MAX_FRAME_BYTES),
    help: "largest WebSocket frame accepted on either port",
  },
  {
    flag: "--shutdown-timeout-ms",
    env: "STREAMKV_SHUTDOWN_TIMEOUT_MS",
    key: "shutdownTimeoutMs",
    kind: "int",
    defaultValue: "5000",
    help: "how long shutdown waits for in-flight requests",
  },
  {
    flag: "--max-connections",
    env: "STREAMKV_MAX_CONNECTIONS",
    key: "maxConnections",
    kind: "int",
    defaultValue: "10000",
    help: "most concurrent client connections",
  },
  {
    flag: "--watch-max-pending",
    env: "STREAMKV_WATCH_MAX_PENDING",
    key: "watchMaxPending",
    kind: "int",
    defaultValue: "4096",
    help: "entries a watch may fall behind before SLOW_CONSUMER (the client resumes)",
  },
  {
    flag: "--snapshot-entries",
    env: "STREAMKV_SNAPSHOT_ENTRIES",
    key: "snapshotEntries",
    kind: "int",
    defaultValue: "10000",
    help: "compact the Raft log after this many applied entries, keeping half as a tail for slow followers (older ones get a snapshot)",
  },
  {
    flag: "--scrub-bytes-per-second",
    env: "STREAMKV_SCRUB_BYTES_PER_SECOND",
    key: "scrubBytesPerSecond",
    kind: "count",
    defaultValue: String(16 * 1024 * 1024),
    help: 'read rate of the background scrub, which verifies every block of every LevelDB table again and again and stops the node on damage (README "A member with corrupted data"; 0 = off)',
  },
  {
    flag: "--peer-secret-file",
    env: "STREAMKV_PEER_SECRET_FILE",
    key: "peerSecretFile",
    kind: "string",
    defaultValue: "",
    help: "file with the cluster secret (at least 16 bytes, same on every member) that peers prove by HMAC in their hello; never sent",
  },
  {
    flag: "--peer-tls-cert",
    env: "STREAMKV_PEER_TLS_CERT",
    key: "peerTlsCert",
    kind: "string",
    defaultValue: "",
    help: "PEM certificate of this node for mutual TLS on the peer port (with --peer-tls-key and --peer-tls-ca)",
  },
  {
    flag: "--peer-tls-key",
    env: "STREAMKV_PEER_TLS_KEY",
    key: "peerTlsKey",
    kind: "string",
    defaultValue: "",
    help: "PEM private key of --peer-tls-cert",
  },
  {
    flag: "--peer-tls-ca",
    env: "STREAMKV_PEER_TLS_CA",
    key: "peerTlsCa",
    kind: "string",
    defaultValue: "",
    help: "PEM CA that must have signed every peer's certificate (checked both ways)",
  },
  {
    flag: "--peer-tls-allowed-names",
    env: "STREAMKV_PEER_TLS_ALLOWED_NAMES",
    key: "peerTlsAllowedNames",
    kind: "string",
    defaultValue: "",
    help: "comma-separated names (CN or SAN) a peer certificate must carry one of (empty = any the CA signed)",
  },
  ...CLIENT_LIMIT_OPTIONS,
];

export function serverUsage(): string {
  const lines = [
    "usage: streamkv server [flags]",
    "",
    "Starts a streamkv node. Every flag is also an environment variable.",
    "",
  ];
  for (const o of SERVER_OPTIONS) {
    const arg = o.kind === "peers" ? "list" : o.kind === "string" ? "value" : "n";
    const left = o.kind === "bool" ? `  ${o.flag}` : `  ${o.flag} <${arg}>`;
    const def = o.defaultValue === "" ? "" : ` (default ${o.defaultValue})`;
    // At least two spaces between a flag and its help, also for long flags.
    const column = left.length < 36 ? left.padEnd(36) : `${left} `;
    lines.push(`${column} ${o.help}${def}  [${o.env}]`);
  }
  lines.push(`${"  --help".padEnd(30)} show this help`);
  return lines.join("\n");
}

/**
 * Reads flags (`--name value` or `--name=value`) and env vars into a checked config.
 * Creates the data directory if missing and checks it is writable.
 */
export function parseServerConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ServerConfig {
  const raw = new Map<string, string>();
  for (const o of SERVER_OPTIONS) {
    const v = env[o.env];
    if (v !== undefined && v !== "") raw.set(o.flag, v);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const option = SERVER_OPTIONS.find((o) => o.flag === flag);
    if (!option) {
      throw new ConfigError(`unknown argument ${JSON.stringify(arg)} (see streamkv server --help)`);
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (option.kind === "bool") value = "true";
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || (eq < 0 && value.startsWith("--"))) {
      throw new ConfigError(`${flag} needs a value`);
    }
    raw.set(flag, value);
  }
  const get = (o: Option) => raw.get(o.flag) ?? o.defaultValue;
  const config: Partial<ServerConfig> = {};
  const out = config as Record<string, unknown>;
  for (const o of SERVER_OPTIONS) {
    const value = get(o);
    switch (o.kind) {
      case "string":
        out[o.key] = value;
        break;
      case "port":
        out[o.key] = parsePort(value, o.flag);
        break;
      case "int":
        out[o.key] = parsePositiveInt(value, o.flag);
        break;
      case "count":
        out[o.key] = parseCount(value, o.flag);
        break;
      case "peers":
        out[o.key] = parsePeers(value);
        break;
      case "bool":
        if (!/^(true|false|1|0)$/.test(value)) {
          throw new ConfigError(`${o.flag} ${JSON.stringify(value)}: use true or false`);
        }
        out[o.key] = value === "true" || value === "1";
        break;
    }
  }
  const c = config as ServerConfig;
  c.token = c.token === "" ? undefined : c.token;
  const credentialFlags = [
    c.token !== undefined && "--token",
    c.tokenFile !== "" && "--token-file",
    c.tokensFile !== "" && "--tokens-file",
  ].filter((f) => f !== false);
  if (credentialFlags.length > 1) {
    throw new ConfigError(`${credentialFlags.join(" and ")}: give one way of checking clients`);
  }
  if (c.tokenFile !== "") c.token = readTokenFile(c.tokenFile);
  if (c.tokensFile !== "") c.tokensFile = resolve(c.tokensFile);
  if (c.metricsListen !== "") {
    const a = parsePeerAddress(c.metricsListen);
    if ("error" in a) {
      throw new ConfigError(
        `--metrics-listen ${JSON.stringify(c.metricsListen)}: ${a.error} (e.g. 127.0.0.1:9420)`,
      );
    }
  }
  if (!isLogLevel(c.logLevel)) {
    throw new ConfigError(
      `--log-level ${JSON.stringify(c.logLevel)}: use one of ${LOG_LEVELS.join(", ")}`,
    );
  }
  if (c.advertiseClientUrl !== "" && !isClientUrl(c.advertiseClientUrl)) {
    throw new ConfigError(
      `--advertise-client-url ${JSON.stringify(c.advertiseClientUrl)}: use ws://host:port or wss://host:port, at most ${MAX_CLIENT_URL_LENGTH} characters`,
    );
  }
  if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(c.id)) {
    throw new ConfigError(`--id ${JSON.stringify(c.id)}: use 1..64 of a-z A-Z 0-9 _ . -`);
  }
  if (c.host === "") throw new ConfigError("--host must not be empty");
  if (c.maxFrameBytes < 1024 || c.maxFrameBytes > 64 * 1024 * 1024) {
    throw new ConfigError(`--max-frame-bytes ${c.maxFrameBytes}: must be 1024..67108864`);
  }
  if (c.clientMaxBufferedBytes < 2 * c.maxFrameBytes) {
    throw new ConfigError(
      `--client-max-buffered-bytes ${c.clientMaxBufferedBytes}: must be at least 2 x --max-frame-bytes (${2 * c.maxFrameBytes})`,
    );
  }
  if (c.clientPort !== 0 && c.clientPort === c.peerPort) {
    throw new ConfigError(`--client-port and --peer-port are both ${c.clientPort}: use two ports`);
  }
  if (c.natsPort !== 0 && (c.natsPort === c.clientPort || c.natsPort === c.peerPort)) {
    throw new ConfigError(
      `--nats-port ${c.natsPort} is also the ${c.natsPort === c.clientPort ? "client" : "peer"} port: use another port`,
    );
  }
  if (c.peers.length === 0) {
    c.peers = [{ id: c.id, host: c.host, port: c.peerPort }];
  } else if (!c.peers.some((p) => p.id === c.id)) {
    throw new ConfigError(
      `--id ${c.id} is not in --peers (${c.peers.map((p) => p.id).join(", ")}): a node must be one of its cluster's peers`,
    );
  }
  if (c.join && c.clusterId === "") {
    throw new ConfigError(
      "--join needs --cluster-id: the id of the cluster to join (streamkv cluster status shows it)",
    );
  }
  if (c.join && c.peers.length < 2) {
    throw new ConfigError(
      "--join needs --peers with the cluster's members and this node (id=host:port,...)",
    );
  }
  if (c.clusterId === "") c.clusterId = deriveClusterId(c.peers);
  else if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(c.clusterId)) {
    throw new ConfigError(
      `--cluster-id ${JSON.stringify(c.clusterId)}: use 1..64 of a-z A-Z 0-9 _ . -`,
    );
  }
  const fault = unsafeTestFaultOf(env);
  if (fault !== undefined) c.unsafeTestFault = fault;
  c.dataDir = resolve(c.dataDir);
  const created = checkDataDir(c.dataDir);
  if (created !== undefined) c.createdDataDir = created;
  return c;
}

/**
 * A cluster's identity from its initial members: the same on every member (each is
 * started with the same `--peers`), different for another cluster even when it reuses
 * the node ids (the addresses differ). A lone node's identity is its id alone, so it
 * may move to another port.
 */
export function deriveClusterId(peers: readonly PeerAddress[]): string {
  const text =
    peers.length === 1
      ? `standalone:${peers[0]!.id}`
      : peers
          .map((p) => `${p.id}=${p.host}:${p.port}`)
          .sort()
          .join(",");
  return `c-${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
}

function parsePort(value: string, flag: string): number {
  if (!/^\d+$/.test(value))
    throw new ConfigError(`${flag} ${JSON.stringify(value)}: not a port number`);
  const n = Number(value);
  if (n > 65535) throw new ConfigError(`${flag} ${value}: a port is 0..65535`);
  return n;
}

function parsePositiveInt(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) {
    throw new ConfigError(`${flag} ${JSON.stringify(value)}: not a positive integer`);
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ConfigError(`${flag} ${value}: not a positive integer`);
  }
  return n;
}

function parseCount(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new ConfigError(`${flag} ${JSON.stringify(value)}: not a whole number`);
  }
  return n;
}

/** `id=host:port,id=host:port`; ids unique. */
export function parsePeers(value: string): PeerAddress[] {
  if (value.trim() === "") return [];
  const peers: PeerAddress[] = [];
  for (const part of value.split(",")) {
    const text = part.trim();
    const eq = text.indexOf("=");
    const id = text.slice(0, eq);
    const address = parsePeerAddress(text.slice(eq + 1));
    if (eq < 0 || !isValidNodeId(id) || ("error" in address && !address.badPort)) {
      throw new ConfigError(
        `--peers: ${JSON.stringify(part)} is not id=host:port (e.g. n1=10.0.0.1:7421,n2=10.0.0.2:7421)`,
      );
    }
    if ("error" in address)
      throw new ConfigError(`--peers: ${JSON.stringify(part)} ${address.error}`);
    if (peers.some((p) => p.id === id)) throw new ConfigError(`--peers: id ${id} appears twice`);
    peers.push({ id, host: address.host, port: address.port });
  }
  return peers;
}

/** Returns the topmost directory it created, if it created any. */
function checkDataDir(dir: string): string | undefined {
  const created = makeDirs(dir);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    throw new ConfigError(`--data ${dir}: ${(err as Error).message}`);
  }
  if (!isDir) throw new ConfigError(`--data ${dir}: not a directory`);
  try {
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch {
    throw new ConfigError(`--data ${dir}: not readable and writable by this user`);
  }
  return created;
}

/**
 * Creates `dir` and its missing parents one level at a time, owner only (the data is
 * the cluster's: configuration, secrets); returns the topmost one it created. Not
 * mkdirSync's recursive mode: where the parent exists but refuses new entries (procfs)
 * it takes ENOENT as "make the parent first" and loops forever at 100% CPU. Here each
 * level is tried once, so the loop is bounded by the path's depth.
 */
function makeDirs(dir: string): string | undefined {
  const missing: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    try {
      statSync(at);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") {
        throw new ConfigError(
          `--data ${dir}: cannot create the directory: ${(err as Error).message}`,
        );
      }
    }
    missing.unshift(at);
    if (dirname(at) === at) break;
  }
  const made: string[] = [];
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: 0o700 });
      made.push(d);
    } catch (err) {
      // Made meanwhile by someone else: theirs, not ours to remove.
      if ((err as NodeJS.ErrnoException).code === "EEXIST") continue;
      // Empty and ours: whatever this call made goes again, deepest first.
      for (const m of made.reverse()) rmdirSync(m);
      throw new ConfigError(
        `--data ${dir}: cannot create the directory ${d}: ${(err as Error).message}`,
      );
    }
  }
  return made[0];
}
