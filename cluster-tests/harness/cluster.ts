/**
 * A local cluster of real `streamkv server` processes on 127.0.0.1 for the cluster
 * tests and the cluster benchmark: fixed (probed free) ports per node so a restarted
 * node comes back at the same address, kill/pause/resume/restart by node index, and
 * waiting on `/v1/status` for conditions (never sleeping for luck).
 *
 * Every process started here is tracked by PID; `destroy()` SIGKILLs the ones still
 * running (paused ones included) and removes the data directories.
 */

import type { NodeStatus } from "../../proto/index.js";
import {
  freePorts,
  removeDir,
  type ServerProcess,
  startServer,
  tempDir,
  waitFor,
} from "../../test_support/index.js";
import { waitForLeaderAmong } from "./leader.js";

export interface ClusterNode {
  readonly index: number;
  readonly id: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly url: string;
  /** The running process, undefined while the node is down. */
  proc: ServerProcess | undefined;
  paused: boolean;
}

export interface ClusterOptions {
  size?: number;
  /** Extra `streamkv server` flags for every node. */
  args?: string[];
  env?: Record<string, string>;
  /** Node's own flags for every node (test_support StartOptions.nodeArgs). */
  nodeArgs?: string[];
  /** Sent as `Authorization: Bearer` on every HTTP call (nodes run with a tokens file). */
  adminToken?: string;
  /**
   * Runs once the nodes' ports, ids, data dirs and `--peers` are fixed, before any
   * starts: e.g. seeding the data dirs from a backup (`streamkv snapshot restore`).
   */
  prepare?: (nodes: readonly ClusterNode[], peersFlag: string) => Promise<void>;
}

export class LocalCluster {
  readonly peersFlag: string;
  readonly ids: readonly string[];

  private constructor(
    readonly nodes: ClusterNode[],
    private readonly options: ClusterOptions,
  ) {
    this.peersFlag = nodes.map((n) => `${n.id}=127.0.0.1:${n.peerPort}`).join(",");
    this.ids = nodes.map((n) => n.id);
  }

  /** Starts `size` nodes (default 3) and waits until they agree on a leader. */
  static async start(options: ClusterOptions = {}): Promise<LocalCluster> {
    const size = options.size ?? 3;
    const ports = await freePorts(size * 2);
    const nodes: ClusterNode[] = [];
    for (let i = 0; i < size; i++) {
      const clientPort = ports[2 * i]!;
      nodes.push({
        index: i,
        id: `n${i + 1}`,
        clientPort,
        peerPort: ports[2 * i + 1]!,
        dataDir: tempDir("streamkv-cluster-"),
        url: `ws://127.0.0.1:${clientPort}`,
        proc: undefined,
        paused: false,
      });
    }
    const cluster = new LocalCluster(nodes, options);
    try {
      await options.prepare?.(nodes, cluster.peersFlag);
      await Promise.all(nodes.map((n) => cluster.startNode(n.index)));
      await cluster.waitForLeader();
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** Starts (or restarts) node `i` on its ports and data directory. */
  async startNode(i: number, extraArgs: string[] = []): Promise<ServerProcess> {
    const n = this.nodes[i]!;
    if (n.proc) throw new Error(`${n.id} is already running`);
    n.proc = await startServer({
      dataDir: n.dataDir,
      clientPort: n.clientPort,
      peerPort: n.peerPort,
      args: ["--id", n.id, "--peers", this.peersFlag, ...(this.options.args ?? []), ...extraArgs],
      ...(this.options.env ? { env: this.options.env } : {}),
      ...(this.options.nodeArgs ? { nodeArgs: this.options.nodeArgs } : {}),
    });
    n.paused = false;
    return n.proc;
  }

  /** Sends `signal` (default SIGKILL) to node `i` and waits for it to exit. */
  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<number | string> {
    const n = this.nodes[i]!;
    const proc = n.proc;
    if (!proc) throw new Error(`${n.id} is not running`);
    if (n.paused && signal !== "SIGKILL") this.resume(i);
    const code = await proc.stop(signal, 10_000);
    n.proc = undefined;
    n.paused = false;
    return code;
  }

  /** SIGSTOP: the process keeps its sockets but runs nothing (a long GC pause, a VM stall). */
  pause(i: number): void {
    const n = this.nodes[i]!;
    if (!n.proc) throw new Error(`${n.id} is not running`);
    n.proc.proc.kill("SIGSTOP");
    n.paused = true;
  }

  resume(i: number): void {
    const n = this.nodes[i]!;
    if (!n.proc) throw new Error(`${n.id} is not running`);
    n.proc.proc.kill("SIGCONT");
    n.paused = false;
  }

  /** GET on node `i`'s client port; undefined when it does not answer within `timeoutMs`. */
  async http(
    i: number,
    path: string,
    timeoutMs = 1000,
  ): Promise<{ status: number; body: string } | undefined> {
    const n = this.nodes[i]!;
    if (!n.proc || n.paused) return undefined;
    try {
      const token = this.options.adminToken;
      const res = await fetch(`http://127.0.0.1:${n.clientPort}${path}`, {
        signal: AbortSignal.timeout(timeoutMs),
        ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
      });
      return { status: res.status, body: await res.text() };
    } catch {
      return undefined;
    }
  }

  async status(i: number): Promise<NodeStatus | undefined> {
    const r = await this.http(i, "/v1/status");
    if (r?.status !== 200) return undefined;
    return JSON.parse(r.body) as NodeStatus;
  }

  /** Running, unpaused nodes. */
  live(): ClusterNode[] {
    return this.nodes.filter((n) => n.proc && !n.paused);
  }

  /**
   * Waits until every live node names the same leader, a live node that says it leads;
   * returns its index.
   */
  async waitForLeader(timeoutMs = 15_000): Promise<number> {
    return waitForLeaderAmong(
      this,
      this.live().map((n) => n.index),
      timeoutMs,
    );
  }

  /** Waits until node `i` has applied at least `index`. */
  async waitForApplied(i: number, index: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      async () => ((await this.status(i))?.appliedIndex ?? -1) >= index,
      timeoutMs,
      `${this.nodes[i]!.id} applied through ${index}`,
    );
  }

  /** Kills every process still running (by PID, paused ones too) and removes the data. */
  async destroy(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        if (!n.proc) return;
        const proc = n.proc;
        n.proc = undefined;
        await proc.stop("SIGKILL", 5000);
      }),
    );
    for (const n of this.nodes) removeDir(n.dataDir);
  }
}
