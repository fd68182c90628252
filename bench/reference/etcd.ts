/**
 * etcd reference servers for the benchmarks: one node, or a three-node cluster with
 * peer URLs on loopback, each with its data dir in a fresh temp dir.
 *
 * Durability: etcd fsyncs its WAL before it acknowledges a write (the default; we never
 * pass `--unsafe-no-fsync`), like streamkv.
 */
import { join } from "node:path";
import { freePort, freePorts, removeDir, tempDir, waitFor } from "../../test_support/index.js";
import {
  failOnExit,
  findBinary,
  ReferenceMissingError,
  type RefProcess,
  spawnTracked,
} from "./process.js";

export const ETCD_INSTALL_HINT =
  "install it with `apt-get install -y etcd-server`, or set ETCD_BIN";

export interface EtcdNode {
  readonly index: number;
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** `http://127.0.0.1:<clientPort>`, as the etcd3 client takes it. */
  readonly url: string;
  /** The running process; replaced by `restart`. */
  proc: RefProcess;
}

export interface EtcdReference {
  readonly version: string;
  readonly nodes: EtcdNode[];
  readonly dataDir: string;
  /** Index of the node that is the Raft leader now (asks each node's status). */
  leaderIndex(): Promise<number>;
  /**
   * Stops node `i` (SIGTERM, then SIGKILL) and starts it again with the same flags and
   * data dir; resolves once its `/health` is true again.
   */
  restart(i: number, timeoutMs?: number): Promise<void>;
  /** Stops every server (SIGTERM, then SIGKILL) and removes the data dir. */
  stop(): Promise<void>;
}

export interface EtcdStartOptions {
  /** 1 (default) or more. */
  size?: number;
  startTimeoutMs?: number;
}

/** The flags of node `i`; pure, so a test can read them. */
export function etcdArgs(opts: {
  name: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
  /** name=peerURL of every member, this one included. */
  initialCluster: string;
  clusterToken: string;
}): string[] {
  const client = `http://127.0.0.1:${opts.clientPort}`;
  const peer = `http://127.0.0.1:${opts.peerPort}`;
  return [
    "--name",
    opts.name,
    "--data-dir",
    opts.dataDir,
    "--listen-client-urls",
    client,
    "--advertise-client-urls",
    client,
    "--listen-peer-urls",
    peer,
    "--initial-advertise-peer-urls",
    peer,
    "--initial-cluster",
    opts.initialCluster,
    "--initial-cluster-state",
    "new",
    "--initial-cluster-token",
    opts.clusterToken,
    "--logger",
    "zap",
    "--log-level",
    "warn",
  ];
}

async function healthy(clientPort: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${clientPort}/health`, {
      signal: AbortSignal.timeout(1000),
    });
    if (res.status !== 200) return false;
    return ((await res.json()) as { health?: string }).health === "true";
  } catch {
    return false;
  }
}

/** `/v3/maintenance/status` through etcd's JSON gateway: this member's id and the leader's. */
async function memberStatus(
  clientPort: number,
): Promise<{ memberId: string; leader: string; version: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${clientPort}/v3/maintenance/status`, {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(1000),
    });
    const s = (await res.json()) as {
      header?: { member_id?: string };
      leader?: string;
      version?: string;
    };
    if (!s.header?.member_id || !s.leader) return undefined;
    return { memberId: s.header.member_id, leader: s.leader, version: s.version ?? "unknown" };
  } catch {
    return undefined;
  }
}

/**
 * Starts `size` etcd members and waits until each reports `/health` true (which needs
 * a leader). Throws ReferenceMissingError when the binary is not installed.
 */
export async function startEtcd(options: EtcdStartOptions = {}): Promise<EtcdReference> {
  const binary = findBinary("etcd", "ETCD_BIN");
  if (!binary) throw new ReferenceMissingError("etcd", ETCD_INSTALL_HINT);
  const size = options.size ?? 1;
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const dataDir = tempDir("streamkv-bench-etcd-");
  const nodes: EtcdNode[] = [];
  const argsOf: string[][] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.proc.stop()));
    removeDir(dataDir);
  };
  try {
    const ports = await freePorts(size * 2, freePort);
    const names = Array.from({ length: size }, (_, i) => `etcd${i + 1}`);
    const initialCluster = names
      .map((name, i) => `${name}=http://127.0.0.1:${ports[2 * i + 1]!}`)
      .join(",");
    const clusterToken = `streamkv-bench-${process.pid}-${Date.now()}`;
    for (let i = 0; i < size; i++) {
      const clientPort = ports[2 * i]!;
      const peerPort = ports[2 * i + 1]!;
      const args = etcdArgs({
        name: names[i]!,
        dataDir: join(dataDir, names[i]!),
        clientPort,
        peerPort,
        initialCluster,
        clusterToken,
      });
      argsOf.push(args);
      const proc = spawnTracked(names[i]!, binary, args);
      nodes.push({
        index: i,
        name: names[i]!,
        clientPort,
        peerPort,
        url: `http://127.0.0.1:${clientPort}`,
        proc,
      });
    }
    await Promise.all(
      nodes.map((n) =>
        Promise.race([
          waitFor(() => healthy(n.clientPort), startTimeoutMs, `${n.name} /health`, 50),
          failOnExit(n.proc),
        ]),
      ),
    );
    const leaderIndex = async () => {
      let found = -1;
      await waitFor(
        async () => {
          const all = await Promise.all(nodes.map((n) => memberStatus(n.clientPort)));
          found = all.findIndex((s) => s !== undefined && s.memberId === s.leader);
          return found >= 0;
        },
        startTimeoutMs,
        "an etcd leader",
        50,
      );
      return found;
    };
    const restart = async (i: number, timeoutMs = startTimeoutMs) => {
      const n = nodes[i]!;
      await n.proc.stop();
      // etcd ignores the --initial-cluster flags once its data dir holds a member.
      n.proc = spawnTracked(n.name, binary, argsOf[i]!);
      await Promise.race([
        waitFor(() => healthy(n.clientPort), timeoutMs, `${n.name} /health after restart`, 20),
        failOnExit(n.proc),
      ]);
    };
    const version = (await memberStatus(nodes[0]!.clientPort))?.version ?? "unknown";
    return { version, nodes, dataDir, leaderIndex, restart, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
