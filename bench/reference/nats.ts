/**
 * NATS JetStream reference servers for the benchmarks: one node, or a three-node
 * JetStream cluster with routes on loopback, each with its store in a fresh temp dir.
 *
 * Durability: nats-server 2.9 acks a JetStream write once it is in the OS page cache
 * and fsyncs every 2 minutes; it has no `sync_interval`/`sync: always` option (2.10
 * added it; 2.9 rejects the field as unknown), so its figures are for a store that is
 * not fsynced per write. `NATS_DURABILITY_NOTE` says so wherever figures are printed.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, freePorts, removeDir, tempDir, waitFor } from "../../test_support/index.js";
import {
  failOnExit,
  findBinary,
  ReferenceMissingError,
  type RefProcess,
  spawnTracked,
} from "./process.js";

export const NATS_INSTALL_HINT =
  "install it with `apt-get install -y nats-server`, or set NATS_SERVER_BIN";

export const NATS_DURABILITY_NOTE = "NATS: not fsynced per write";

export interface NatsNode {
  readonly index: number;
  /** `server_name`, which JetStream reports as a stream's cluster leader. */
  readonly name: string;
  readonly clientPort: number;
  readonly monitorPort: number;
  /** `127.0.0.1:<clientPort>`, as the nats client takes it. */
  readonly url: string;
  readonly proc: RefProcess;
}

export interface NatsReference {
  readonly version: string;
  readonly nodes: NatsNode[];
  readonly dataDir: string;
  /** Stops every server (SIGTERM, then SIGKILL) and removes the data dir. */
  stop(): Promise<void>;
}

export interface NatsStartOptions {
  /** 1 (default) or more; more than one forms a JetStream cluster. */
  size?: number;
  startTimeoutMs?: number;
}

/** The config file of node `i`; pure, so a test can read it. */
export function natsConfig(opts: {
  name: string;
  clientPort: number;
  monitorPort: number;
  storeDir: string;
  /** This node's route port and every node's route port; absent for one node. */
  cluster?: { routePort: number; routePorts: number[] };
}): string {
  const lines = [
    `server_name: ${JSON.stringify(opts.name)}`,
    `listen: "127.0.0.1:${opts.clientPort}"`,
    `http: "127.0.0.1:${opts.monitorPort}"`,
    "jetstream {",
    `  store_dir: ${JSON.stringify(opts.storeDir)}`,
    "}",
  ];
  if (opts.cluster) {
    const routes = opts.cluster.routePorts.map((p) => `"nats-route://127.0.0.1:${p}"`);
    lines.push(
      "cluster {",
      '  name: "streamkv-bench"',
      `  listen: "127.0.0.1:${opts.cluster.routePort}"`,
      `  routes: [${routes.join(", ")}]`,
      "}",
    );
  }
  return `${lines.join("\n")}\n`;
}

async function healthy(monitorPort: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz`, {
      signal: AbortSignal.timeout(1000),
    });
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Starts `size` nats-servers with JetStream and waits until each answers `/healthz`
 * (for a cluster that includes being current with the JetStream meta leader).
 * Throws ReferenceMissingError when the binary is not installed.
 */
export async function startNats(options: NatsStartOptions = {}): Promise<NatsReference> {
  const binary = findBinary("nats-server", "NATS_SERVER_BIN");
  if (!binary) throw new ReferenceMissingError("nats-server", NATS_INSTALL_HINT);
  const size = options.size ?? 1;
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const dataDir = tempDir("streamkv-bench-nats-");
  const nodes: NatsNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.proc.stop()));
    removeDir(dataDir);
  };
  try {
    const ports = await freePorts(size * 3, freePort);
    const routePorts = Array.from({ length: size }, (_, i) => ports[3 * i + 2]!);
    for (let i = 0; i < size; i++) {
      const name = `nats${i + 1}`;
      const dir = join(dataDir, name);
      mkdirSync(dir, { recursive: true });
      const clientPort = ports[3 * i]!;
      const monitorPort = ports[3 * i + 1]!;
      const conf = join(dir, "server.conf");
      writeFileSync(
        conf,
        natsConfig({
          name,
          clientPort,
          monitorPort,
          storeDir: join(dir, "jetstream"),
          ...(size > 1 ? { cluster: { routePort: routePorts[i]!, routePorts } } : {}),
        }),
      );
      const proc = spawnTracked(name, binary, ["-c", conf]);
      nodes.push({ index: i, name, clientPort, monitorPort, url: `127.0.0.1:${clientPort}`, proc });
    }
    await Promise.all(
      nodes.map((n) =>
        Promise.race([
          waitFor(() => healthy(n.monitorPort), startTimeoutMs, `${n.name} /healthz`, 50),
          failOnExit(n.proc),
        ]),
      ),
    );
    const version = await natsVersion(nodes[0]!.monitorPort);
    return { version, nodes, dataDir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function natsVersion(monitorPort: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${monitorPort}/varz`, {
      signal: AbortSignal.timeout(1000),
    });
    const varz = (await res.json()) as { version?: string };
    return varz.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
