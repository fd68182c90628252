/**
 * Three (or more) real `streamkv server` processes, each on its own host of a
 * NetnsLab: the ChaosCluster of the partition tests in `npm test`. Processes are
 * tracked by PID (`ip netns exec` execs the server, so the PID is the server's);
 * `destroy()` SIGKILLs what still runs and removes the data directories.
 */
import type { NodeStatus } from "../../proto/index.js";
import { removeDir, type ServerProcess, startServer, tempDir } from "../../test_support/index.js";
import type { ChaosCluster } from "../harness/chaos.js";
import type { NetnsLab } from "./netns.js";

const CLIENT_PORT = 7420;
const PEER_PORT = 7421;

export class NetnsCluster implements ChaosCluster {
  readonly ids: string[];
  readonly urls: string[];
  private readonly procs: (ServerProcess | undefined)[];
  private readonly dataDirs: string[];
  private readonly peersFlag: string;

  private constructor(private readonly lab: NetnsLab) {
    this.ids = lab.hosts.map((_, i) => `n${i + 1}`);
    this.urls = lab.hosts.map((h) => `ws://${h.address}:${CLIENT_PORT}`);
    this.procs = lab.hosts.map(() => undefined);
    this.dataDirs = lab.hosts.map(() => tempDir("streamkv-netns-"));
    this.peersFlag = lab.hosts.map((h, i) => `${this.ids[i]}=${h.address}:${PEER_PORT}`).join(",");
  }

  static async start(lab: NetnsLab): Promise<NetnsCluster> {
    const cluster = new NetnsCluster(lab);
    try {
      await Promise.all(lab.hosts.map((_, i) => cluster.restart(i)));
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  async restart(i: number): Promise<void> {
    if (this.procs[i]) throw new Error(`${this.ids[i]} is already running`);
    const host = this.lab.hosts[i]!;
    this.procs[i] = await startServer({
      wrap: this.lab.wrap(i),
      dataDir: this.dataDirs[i]!,
      clientPort: CLIENT_PORT,
      peerPort: PEER_PORT,
      args: ["--id", this.ids[i]!, "--host", host.address, "--peers", this.peersFlag],
    });
  }

  async kill(i: number): Promise<void> {
    await this.end(i, "SIGKILL");
  }

  async stop(i: number): Promise<void> {
    const code = await this.end(i, "SIGTERM");
    if (code !== 0) throw new Error(`${this.ids[i]} exited ${code} on SIGTERM, not 0`);
  }

  private async end(i: number, signal: NodeJS.Signals): Promise<number | string> {
    const proc = this.procs[i];
    if (!proc) throw new Error(`${this.ids[i]} is not running`);
    this.procs[i] = undefined;
    return proc.stop(signal, signal === "SIGKILL" ? 5000 : 20_000);
  }

  isolate(i: number, direction: "both" | "in" | "out" = "both"): Promise<void> {
    return this.lab.isolate(i, direction);
  }

  heal(): Promise<void> {
    return this.lab.healAll();
  }

  async status(i: number): Promise<NodeStatus | undefined> {
    if (!this.procs[i]) return undefined;
    try {
      const res = await fetch(`http://${this.lab.hosts[i]!.address}:${CLIENT_PORT}/v1/status`, {
        signal: AbortSignal.timeout(1000),
      });
      return res.ok ? ((await res.json()) as NodeStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The PID of node `i`'s server, undefined while it is down. */
  pid(i: number): number | undefined {
    return this.procs[i]?.proc.pid;
  }

  async destroy(): Promise<void> {
    await Promise.all(this.procs.map((_, i) => (this.procs[i] ? this.kill(i) : undefined)));
    for (const dir of this.dataDirs) removeDir(dir);
  }
}
