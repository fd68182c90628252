/**
 * A streamkv node: the client port (ws + HTTP), the peer port, and the KV service,
 * with an orderly stop. `startNode` is what `streamkv server` runs; tests start nodes
 * the same way, in a child process.
 */
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type NatsAuth, NatsServer } from "../nats/index.js";
import { isLoopbackHost, KvError, type NodeStatus } from "../proto/index.js";
import { loadAddressBook, mergePeers, rememberPeer } from "./address_book.js";
import {
  Authenticator,
  authorize,
  mayRead,
  mayWrite,
  type Principal,
  scopedRequestId,
} from "./auth.js";
import { ClientServer } from "./client_server.js";
import { systemClock } from "./clock.js";
import type { PeerAddress, ServerConfig } from "./config.js";
import { ConfigError, UNSAFE_TEST_FAULT_ENV, UNSAFE_TEST_FAULTS } from "./config.js";
import { diskFullError, isDiskFull, resumeThresholdBytes, withCauses } from "./disk_full.js";
import { diskUsageOf, fileSystemRoom } from "./disk_usage.js";
import type { KvService } from "./kv_service.js";
import { type Logger, withFields } from "./log.js";
import { NodeMetrics } from "./metrics.js";
import { MetricsServer } from "./metrics_server.js";
import { bracketedHost, parsePeerAddress } from "./peer_address.js";
import { loadPeerSecurity } from "./peer_auth.js";
import { PeerTransport } from "./peer_transport.js";
import { RaftKvService, type RaftServiceOptions } from "./raft_service.js";
import { rateLimitedLogger } from "./rate_limited_log.js";
import { Scrubber } from "./scrub.js";
import { ServiceSlot } from "./service_slot.js";
import { loadClientTls } from "./tls_files.js";
import { STREAMKV_VERSION } from "./version.js";

export interface RunningNode {
  readonly clientPort: number;
  readonly peerPort: number;
  /** The NATS port (`--nats-port`); 0 when it is off. */
  readonly natsPort: number;
  readonly service: KvService;
  /** Stops accepting, finishes in-flight requests, closes the database. Idempotent. */
  stop(reason: string): Promise<void>;
  /**
   * Re-reads `--tokens-file` (SIGHUP): sessions take their token's new permissions or
   * end if it was revoked. A file that does not parse keeps the previous tokens.
   */
  reloadCredentials(): void;
  /** Resolves when the node stopped (by `stop` or a fatal error); true if cleanly. */
  readonly stopped: Promise<boolean>;
}

interface Identity {
  id: string;
  created: string;
  /** Absent in data dirs written before cluster ids existed (adopted on start). */
  clusterId?: string;
}

/**
 * The data directory remembers which node and which cluster it belongs to: a node
 * started on it with another id, or with `--peers` of another cluster, refuses, rather
 * than serving (and later replicating, or voting with) someone else's state.
 */
export function checkIdentity(dataDir: string, id: string, clusterId: string): void {
  const path = join(dataDir, "node.json");
  let existing: Identity | undefined;
  try {
    existing = JSON.parse(readFileSync(path, "utf8")) as Identity;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new ConfigError(`--data ${dataDir}: cannot read node.json: ${(err as Error).message}`);
    }
  }
  if (existing !== undefined) {
    if (existing.id !== id) {
      throw new ConfigError(
        `--data ${dataDir} belongs to node ${JSON.stringify(existing.id)}, not ${JSON.stringify(id)}: start with --id ${existing.id} or use another data directory`,
      );
    }
    if (existing.clusterId !== undefined && existing.clusterId !== clusterId) {
      throw new ConfigError(
        `--data ${dataDir} belongs to cluster ${existing.clusterId}, but --peers describe cluster ${clusterId}: start with this cluster's --peers, use another data directory, or pass --cluster-id ${existing.clusterId} if only the peers' addresses changed`,
      );
    }
    if (existing.clusterId !== undefined) return;
  }
  const identity: Identity = {
    id,
    created: existing?.created ?? new Date().toISOString(),
    clusterId,
  };
  writeDurably(path, `${JSON.stringify(identity)}\n`, existing === undefined);
}

/** Writes `path` whole and fsynced (via a temporary file and a rename when replacing). */
function writeDurably(path: string, text: string, create: boolean): void {
  const target = create ? path : `${path}.tmp`;
  const fd = openSync(target, create ? "wx" : "w");
  try {
    writeSync(fd, text);
    // Durable before the node serves anything from this directory.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (!create) renameSync(target, path);
  const dir = openSync(join(path, ".."), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** How clients prove who they are: a tokens file, one shared token, or open (a dev node). */
function authenticatorOf(config: ServerConfig): Authenticator {
  try {
    if (config.tokensFile !== "") return Authenticator.fromFile(config.tokensFile);
    if (config.token !== undefined) return Authenticator.sharedToken(config.token);
    return Authenticator.openAccess();
  } catch (err) {
    if (err instanceof KvError) throw new ConfigError(err.message);
    throw err;
  }
}

/** The node's token checks as the NATS port asks for them (CONNECT's auth_token). */
function natsAuthOf(auth: Authenticator): NatsAuth {
  return {
    required: !auth.open,
    authenticate: (token) => auth.authenticate(token),
    authorize: (p, request) => authorize(p as Principal, request),
    scopeRequestId: (p, id) => scopedRequestId(p as Principal, id),
    mayList: (p, bucket) => mayRead(p as Principal, bucket) || mayWrite(p as Principal, bucket),
  };
}

/** `--advertise-client-url`, or ws(s):// of --host (the host name for a wildcard) and the port. */
function advertisedClientUrl(config: ServerConfig, port: number, tls: boolean): string {
  if (config.advertiseClientUrl !== "") return config.advertiseClientUrl;
  const wildcard = config.host === "0.0.0.0" || config.host === "::" || config.host === "[::]";
  const host = wildcard ? hostname() : config.host;
  return `${tls ? "wss" : "ws"}://${bracketedHost(host)}:${port}`;
}

export async function startNode(config: ServerConfig, log: Logger): Promise<RunningNode> {
  const attempt = { holdsData: false };
  try {
    return await openNode(config, log, attempt);
  } catch (err) {
    removeCreatedDataDir(config, attempt.holdsData, log);
    throw err;
  }
}

/**
 * Whether a node that failed to start keeps state someone may rely on: a bucket (a
 * client may have written before the start failed), or, in a cluster, a term or a log
 * entry (a vote or an acknowledged append that counted for a quorum).
 */
function holdsData(status: NodeStatus, clusterSize: number): boolean {
  if (status.buckets.length > 0) return true;
  const own = status.peers.find((p) => p.id === status.id);
  return clusterSize > 1 && (status.term > 0 || (own?.matchIndex ?? 0) > 0);
}

/**
 * A failed start leaves no data dir behind that it created itself: never one that
 * existed before it, nor one that came to hold data meanwhile.
 */
function removeCreatedDataDir(config: ServerConfig, holdsData: boolean, log: Logger): void {
  const created = config.createdDataDir;
  if (created === undefined) return;
  if (holdsData) {
    log.warn("the start failed; the data directory it created holds data and is kept", {
      dataDir: config.dataDir,
    });
    return;
  }
  rmSync(created, { recursive: true, force: true });
}

async function openNode(
  config: ServerConfig,
  baseLog: Logger,
  attempt: { holdsData: boolean },
): Promise<RunningNode> {
  let service: RaftKvService;
  // Every line says where this node stood in Raft when it was written (once it has a
  // Raft state: the lines before the service opened carry the node id only).
  const log = withFields(baseLog, () => {
    const opened = service as RaftKvService | undefined;
    return opened === undefined ? {} : opened.termAndRole();
  });
  // Every file and directory the node creates is its owner's alone (0600 / 0700).
  process.umask(0o077);
  const mode = statSync(config.dataDir).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    log.warn("the data directory is readable by others: chmod 700 it", {
      dataDir: config.dataDir,
      mode: `0${mode.toString(8)}`,
    });
  }
  checkIdentity(config.dataDir, config.id, config.clusterId);
  const auth = authenticatorOf(config);
  const security = loadPeerSecurity(config);
  const clientTls = loadClientTls(config);
  for (const warning of security.warnings) log.warn(warning);
  let resolveStopped: (clean: boolean) => void = () => {};
  const stopped = new Promise<boolean>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping: Promise<void> | undefined;
  let stopFn: ((reason: string) => Promise<void>) | undefined;
  let fatal = false;
  let peers: PeerTransport | undefined;
  // Members added at runtime are not in --peers; their addresses were kept here, each
  // from a committed membership change (never from a hello).
  const knownPeers = mergePeers(config.peers, loadAddressBook(config.dataDir));
  // What the service was told of addresses, told again to a service reopened after the
  // disk filled up (bounded by the members and the nodes being added).
  const addresses = new Map<string, string>();
  const clientUrls = new Map<string, string>();
  const setAddress = (id: string, address: string) => {
    addresses.set(id, address);
    service?.setAddress(id, address);
  };
  const setClientUrl = (id: string, url: string) => {
    clientUrls.set(id, url);
    service?.setClientUrl(id, url);
  };
  const dialPeer = (peer: PeerAddress) => {
    peers?.addPeer(peer);
    setAddress(peer.id, `${peer.host}:${peer.port}`);
  };
  const recordMember = (peer: PeerAddress) => {
    const configured = config.peers.find((p) => p.id === peer.id);
    if (configured && configured.host === peer.host && configured.port === peer.port) return;
    // Recorded before the apply that carries it is reported, so a restart still knows it.
    rememberPeer(config.dataDir, peer);
    log.info("peer address recorded from a committed membership change", {
      peer: peer.id,
      address: `${peer.host}:${peer.port}`,
    });
    dialPeer(peer);
  };
  const onFatal = (err: unknown) => {
    if (isDiskFull(err) && stopFn !== undefined && !fatal) {
      haltUntilRoom(err);
      return;
    }
    log.error("fatal error, stopping", { error: String(err) });
    fatal = true;
    if (stopFn) void stopFn("fatal error");
    else resolveStopped(false);
  };
  // Built before the service, which reports to it as it works; the closures read the
  // service only at a scrape, once the ports listen.
  let scrubber: Scrubber | undefined;
  const metrics = new NodeMetrics(
    () => service.status(),
    () => service.forwarding(),
    {
      replica: () => service.replicaView(),
      diskUsage: diskUsageOf(config.dataDir),
      scrub: () => scrubber?.stats,
    },
  );
  const fault = config.unsafeTestFault;
  if (fault !== undefined) {
    log.error(
      `this node runs a deliberately broken build for tests (${UNSAFE_TEST_FAULT_ENV}=${fault}): it can lose or corrupt data; never use it for anything but a checker test`,
      { unsafeTestFault: fault },
    );
  }
  const serviceOptions: RaftServiceOptions = {
    id: config.id,
    ...(fault === undefined ? {} : { unsafe: { ...UNSAFE_TEST_FAULTS[fault] } }),
    dataDir: config.dataDir,
    peers: config.peers,
    join: config.join,
    clusterId: config.clusterId,
    onPeerAddress: dialPeer,
    onMemberAddress: recordMember,
    log,
    send: (to, data) => peers?.send(to, data),
    sendForward: (to, frame) => peers?.sendForward(to, frame) ?? false,
    snapshotEntries: config.snapshotEntries,
    limits: { maxBuckets: config.maxBuckets, maxStoredBytes: config.maxStoredBytes },
    observer: metrics.observer,
    onFatal,
  };
  try {
    service = await RaftKvService.open(serviceOptions);
  } catch (err) {
    // classic-level: LEVEL_DATABASE_NOT_OPEN caused by LEVEL_LOCKED (another process).
    const e = err as Error & { code?: unknown; cause?: Error & { code?: unknown } };
    if (e.code === "LEVEL_LOCKED" || e.cause?.code === "LEVEL_LOCKED") {
      const msg = `${e.message ?? String(err)} ${e.cause?.message ?? ""}`;
      throw new ConfigError(
        `--data ${config.dataDir}: the database is in use by another process (${msg.trim()})`,
      );
    }
    throw err;
  }
  for (const p of knownPeers) setAddress(p.id, `${p.host}:${p.port}`);
  // What the ports hold for the life of the process: the service, or DISK_FULL while halted.
  const slot = new ServiceSlot(service);
  // The ports strangers reach: their warnings (refusals, bad frames, timeouts) are rate
  // limited, so a flood of bad sockets cannot fill the disk with log lines.
  const edgeLog = rateLimitedLogger(log, systemClock);
  const client = new ClientServer({
    service: slot,
    serverId: config.id,
    maxFrameBytes: config.maxFrameBytes,
    auth,
    metrics,
    log: edgeLog,
    host: config.host,
    port: config.clientPort,
    maxConnections: config.maxConnections,
    watchMaxPending: config.watchMaxPending,
    opsOnClientPort: config.metricsListen === "",
    maxBufferedBytes: config.clientMaxBufferedBytes,
    nodeMaxBufferedBytes: config.nodeMaxBufferedBytes,
    writeDeadlineMs: config.clientWriteDeadlineMs,
    helloTimeoutMs: config.clientHelloTimeoutMs,
    pingIntervalMs: config.clientPingIntervalMs,
    maxPreHelloPerAddress: config.maxPreHelloPerAddress,
    httpHeadersTimeoutMs: config.httpHeadersTimeoutMs,
    httpRequestTimeoutMs: config.httpRequestTimeoutMs,
    ...(clientTls ? { tls: clientTls } : {}),
    onFatal,
  });
  const nats =
    config.natsPort === 0
      ? undefined
      : new NatsServer({
          backend: slot,
          auth: natsAuthOf(auth),
          log: edgeLog,
          serverId: config.id,
          streamkvVersion: STREAMKV_VERSION,
          host: config.host,
          port: config.natsPort,
          // One NATS message (headers and payload) travels in one frame of the client port.
          maxPayloadBytes: config.maxFrameBytes,
          maxOutboundBytes: config.clientMaxBufferedBytes,
          maxConnections: config.maxConnections,
          watchMaxPending: config.watchMaxPending,
        });
  const ops =
    config.metricsListen === ""
      ? undefined
      : new MetricsServer({ service: slot, metrics, log }, () => client.connectionCount);
  peers = new PeerTransport({
    id: config.id,
    clusterId: config.clusterId,
    host: config.host,
    port: config.peerPort,
    peers: knownPeers,
    maxFrameBytes: config.maxFrameBytes,
    metrics,
    log: edgeLog,
    ...(security.secret ? { secret: security.secret } : {}),
    ...(security.tls ? { tls: security.tls } : {}),
    isMember: (id) => service.isPeerMember(id),
    clientUrl: () => ownClientUrl,
    onPeerClientUrl: setClientUrl,
    onMessage: (from, data) => service.receive(from, data),
    onForward: (from, frame) => service.receiveForward(from, frame),
  });
  let clientPort: number;
  let peerPort: number;
  let natsPort = 0;
  let ownClientUrl = "";
  try {
    clientPort = await client.listen();
    ownClientUrl = advertisedClientUrl(config, clientPort, clientTls !== undefined);
    setClientUrl(config.id, ownClientUrl);
    peerPort = await peers.listen();
    if (nats) natsPort = await nats.listen();
    if (ops) {
      // parseServerConfig checked it with the same rule.
      const at = parsePeerAddress(config.metricsListen) as { host: string; port: number };
      const host = at.host.replace(/^\[|\]$/g, "");
      await ops.listen(host, at.port);
      // It stays plain HTTP with TLS on the client port: a scraper's private address.
      if (!isLoopbackHost(host)) {
        log.warn(
          "--metrics-listen serves /metrics and /v1/status in plain HTTP without a token: keep it on a monitoring network",
          { metricsListen: config.metricsListen },
        );
      }
    }
    setAddress(config.id, `${config.host}:${peerPort}`);
  } catch (err) {
    client.stopAccepting();
    attempt.holdsData = holdsData(service.status(), config.peers.length);
    await nats?.close();
    await ops?.close();
    await peers?.close();
    await service.close();
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE" || e.code === "EACCES" || e.code === "EADDRNOTAVAIL") {
      throw new ConfigError(`cannot listen on ${config.host}: ${e.message}`);
    }
    throw err;
  }

  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info("stopping", { reason });
      await scrubber?.stop();
      client.stopAccepting();
      const left = await client.inFlight.drain(config.shutdownTimeoutMs);
      if (left > 0) log.warn("in-flight requests did not finish before shutdown", { left });
      client.closeSessions("SHUTTING_DOWN", `node ${config.id} is shutting down`);
      client.closeAllConnections();
      await nats?.close();
      wakeHalted();
      await halting;
      if (!slot.halted) {
        try {
          const to = await service.transferLeadershipAway(2000);
          if (to) log.info("leadership transferred", { to });
        } catch (err) {
          log.warn("leadership transfer failed", { error: String(err) });
        }
      }
      await ops?.close();
      await peers?.close();
      await service.close();
      log.info("stopped");
      resolveStopped(!fatal);
    })();
    return stopping;
  };
  stopFn = stop;

  // A full data directory halts the node instead of stopping it (disk_full.ts): every
  // request answers DISK_FULL, the stores close, and they open again once there is room.
  let halting: Promise<void> | undefined;
  let filledWhileHalted = false;
  let wakeHalted = () => {};
  const haltUntilRoom = (err: unknown) => {
    if (halting) {
      filledWhileHalted = true;
      return;
    }
    if (stopping) {
      log.warn("the data directory filled up while stopping", { error: String(err) });
      return;
    }
    const error = diskFullError(config.id);
    log.error("data directory full: stopped serving until space is freed", {
      dataDir: config.dataDir,
      error: withCauses(err),
    });
    slot.haltWith(error);
    metrics.diskFull.set(1);
    halting = (async () => {
      await service
        .close()
        .catch((e: unknown) =>
          log.warn("closing the stores of a full disk failed", { error: String(e) }),
        );
      // Clients reconnect: to another node if they know one; here, to DISK_FULL answers.
      client.closeSessions("DISK_FULL", error.message);
      try {
        await reopenWhenRoom();
      } catch (e) {
        // Not a full disk: the stores cannot be opened, as at a start that fails.
        onFatal(e);
      }
    })();
    const halted = halting;
    // A halt on damaged data may have chained itself behind this one meanwhile.
    halted
      .finally(() => {
        if (halting === halted) halting = undefined;
      })
      .catch(() => {}); // a rejection reaches stop(), which awaits `halting`
  };
  const reopenWhenRoom = async () => {
    let waitMs = 1000;
    let lastNotice = 0;
    for (;;) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        wakeHalted = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (stopping) return;
      let room = 0;
      let needed = 0;
      try {
        const fs = fileSystemRoom(config.dataDir);
        room = fs.availableBytes;
        needed = resumeThresholdBytes(fs.sizeBytes);
      } catch (err) {
        log.warn("cannot measure the data directory's room", { error: String(err) });
      }
      if (room < needed) {
        if (Date.now() - lastNotice >= 60_000) {
          lastNotice = Date.now();
          log.warn("data directory still full", { availableBytes: room, neededBytes: needed });
        }
        continue;
      }
      filledWhileHalted = false;
      let reopened: RaftKvService;
      try {
        reopened = await RaftKvService.open(serviceOptions);
      } catch (err) {
        if (!isDiskFull(err)) throw err;
        log.warn("reopening the stores failed: no room yet", { error: String(err) });
        waitMs = Math.min(waitMs * 2, 30_000);
        continue;
      }
      if (stopping || filledWhileHalted) {
        await reopened.close().catch(() => {});
        if (stopping) return;
        waitMs = Math.min(waitMs * 2, 30_000);
        continue;
      }
      for (const [id, address] of addresses) reopened.setAddress(id, address);
      for (const [id, url] of clientUrls) reopened.setClientUrl(id, url);
      service = reopened;
      slot.resume(reopened);
      metrics.diskFull.set(0);
      log.info("space freed: serving again", { availableBytes: room });
      return;
    }
  };

  // Damage found while running (node/scrub.ts, which wrote the CORRUPT marker a restart
  // refuses on): Raft stops at once, so this node votes, acks and sends nothing more, and
  // every request answers CORRUPT_RECORD. The process stays up, as with a full disk, so
  // the metrics say why (a restart could not help); SIGTERM then exits 1.
  const haltCorrupt = (err: KvError) => {
    if (stopping || fatal) return;
    fatal = true;
    log.error(
      'stored data is damaged: stopped serving and voting; reset this member (README, "A member with corrupted data")',
      { error: err.message },
    );
    slot.haltWith(err);
    metrics.dataCorrupt.set(1);
    wakeHalted();
    const closing = halting ?? Promise.resolve();
    halting = (async () => {
      await closing;
      await service
        .close()
        .catch((e: unknown) =>
          log.warn("closing the stores of damaged data failed", { error: String(e) }),
        );
      client.closeSessions("CORRUPT_RECORD", err.message);
    })();
    const halted = halting;
    halted
      .finally(() => {
        if (halting === halted) halting = undefined;
      })
      .catch(() => {}); // a rejection reaches stop(), which awaits `halting`
  };
  if (config.scrubBytesPerSecond > 0) {
    scrubber = new Scrubber({
      dbDir: join(config.dataDir, "db"),
      bytesPerSecond: config.scrubBytesPerSecond,
      log,
      onDamage: haltCorrupt,
    });
  }

  log.info("started", {
    clientPort,
    peerPort,
    ...(nats ? { natsPort } : {}),
    dataDir: config.dataDir,
    peers: config.peers.map((p) => p.id),
    clusterId: config.clusterId,
    replicated: true,
    clients: auth.open
      ? "open (no token: anyone who reaches the client port)"
      : config.tokensFile !== ""
        ? `tokens file (${auth.tokenCount} tokens)`
        : "shared token",
    clientTls: !clientTls ? "off" : clientTls.clientCa ? "mutual" : "on",
    scrubBytesPerSecond: config.scrubBytesPerSecond,
  });
  if (auth.open && !isLoopbackHost(config.host)) {
    log.warn(
      "the client port is open to anyone who reaches it: set --tokens-file or --token-file",
      {
        host: config.host,
      },
    );
  }
  if (!clientTls && !auth.open && !isLoopbackHost(config.host)) {
    log.warn(
      "clients send their tokens in clear text to this address: set --tls-cert and --tls-key",
      { host: config.host },
    );
  }
  const reloadCredentials = () => {
    if (config.tokensFile === "") {
      log.info("SIGHUP: no --tokens-file to reload");
      return;
    }
    try {
      auth.replaceWith(Authenticator.fromFile(config.tokensFile));
    } catch (err) {
      log.error("tokens file not reloaded; the previous tokens stay in force", {
        error: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    client.reauthenticateSessions();
    log.info("tokens reloaded", { tokens: auth.tokenCount });
  };
  return { clientPort, peerPort, natsPort, service: slot, stop, stopped, reloadCredentials };
}
