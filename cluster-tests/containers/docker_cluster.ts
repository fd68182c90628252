/**
 * A streamkv cluster in Docker, started with testcontainers: one container per node
 * on a private network made for the run, peers found by network alias (n1:7421...),
 * each client port published on a fixed host port (probed free) so a container
 * started again after kill -9 is at the same URL. The test reaches the nodes only
 * through those published ports on 127.0.0.1.
 *
 * Nemeses: kill -9 (`docker kill -s KILL`) and `docker start`; partitions by iptables
 * inside a container's network namespace (nsenter from the host, root), dropping
 * traffic with the other containers' addresses on the run's network; with `fakeClock`,
 * a node's wall clock stepped or skewed at run time (fake_clock.ts, libfaketime).
 */
import {
  GenericContainer,
  Network,
  type StartedNetwork,
  type StartedTestContainer,
  Wait,
} from "testcontainers";
import type { NodeStatus } from "../../proto/index.js";
import { freePorts, waitFor } from "../../test_support/index.js";
import type { ChaosCluster } from "../harness/chaos.js";
import { IptablesCut, prefixExec } from "../nemesis/iptables.js";
import { docker, IMAGE } from "./docker.js";
import { type ClockSetting, FakeClockFiles } from "./fake_clock.js";

/** How the nodes' containers are made (again, for `replace`). */
interface ContainerSpec {
  network: StartedNetwork;
  size: number;
  ports: number[];
  env: Record<string, string>;
  dataTmpfsMb: number | undefined;
  clocks: FakeClockFiles | undefined;
}

const CLIENT_PORT = 7420;
const PEER_PORT = 7421;

export class DockerCluster implements ChaosCluster {
  readonly ids: string[];
  readonly urls: string[];
  private readonly cuts: IptablesCut[];
  private readonly down = new Set<number>();
  private readonly paused = new Set<number>();

  private constructor(
    private readonly network: StartedNetwork,
    private readonly containers: StartedTestContainer[],
    private readonly hostPorts: number[],
    private readonly spec: ContainerSpec,
  ) {
    this.ids = containers.map((_, i) => `n${i + 1}`);
    this.urls = hostPorts.map((p) => `ws://127.0.0.1:${p}`);
    this.cuts = containers.map(
      (_, i) =>
        new IptablesCut(
          prefixExec(async () => ["nsenter", `--net=/proc/${await this.pid(i)}/ns/net`]),
        ),
    );
  }

  /**
   * `dataTmpfsMb`: each node's /data a tmpfs of that size instead of a volume (a disk
   * that fills up; its contents die with the container, so no restart of those).
   * `fakeClock`: every node under libfaketime, its clock at real time until `setClock`.
   */
  static async start(
    size = 3,
    env: Record<string, string> = {},
    dataTmpfsMb?: number,
    fakeClock = false,
  ): Promise<DockerCluster> {
    const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    const clocks = fakeClock ? new FakeClockFiles(ids) : undefined;
    const network = await new Network().start();
    const ports = await freePorts(size);
    const spec = { network, size, ports, env, dataTmpfsMb, clocks };
    const started = await Promise.allSettled(
      Array.from({ length: size }, (_, i) => DockerCluster.startContainer(spec, i)),
    );
    const containers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      await Promise.all(containers.map((c) => c.stop({ removeVolumes: true })));
      await network.stop();
      clocks?.remove();
      throw (failed as PromiseRejectedResult).reason;
    }
    return new DockerCluster(network, containers, ports, spec);
  }

  private static startContainer(spec: ContainerSpec, i: number): Promise<StartedTestContainer> {
    const ids = Array.from({ length: spec.size }, (_, k) => `n${k + 1}`);
    const peers = ids.map((id) => `${id}=${id}:${PEER_PORT}`).join(",");
    const id = ids[i]!;
    return (
      new GenericContainer(IMAGE)
        .withBindMounts(spec.clocks?.containerOptions(id).bindMounts ?? [])
        .withNetwork(spec.network)
        .withNetworkAliases(id)
        .withHostname(id)
        .withEnvironment({
          STREAMKV_ID: id,
          STREAMKV_PEERS: peers,
          STREAMKV_ADVERTISE_CLIENT_URL: `ws://127.0.0.1:${spec.ports[i]}`,
          STREAMKV_LOG_LEVEL: "warn",
          ...spec.clocks?.containerOptions(id).env,
          ...spec.env,
        })
        .withExposedPorts({ container: CLIENT_PORT, host: spec.ports[i]! })
        .withTmpFs(
          spec.dataTmpfsMb === undefined
            ? {}
            : { "/data": `rw,size=${spec.dataTmpfsMb}m,uid=10001,gid=10001,mode=0700` },
        )
        // A log line, not a port probe: testcontainers' port check runs a shell
        // inside the container, and the local base image has none.
        .withWaitStrategy(Wait.forLogMessage(/streamkv listening/))
        .withStartupTimeout(30_000)
        .start()
    );
  }

  /**
   * Replaces node `i`'s container by a new one with an empty /data (the old one is
   * removed with its volume: a wiped member), the same name, address and ports, and
   * `env` added (e.g. STREAMKV_JOIN); resolves once it listens.
   */
  async replace(i: number, env: Record<string, string>): Promise<void> {
    await docker(["rm", "--force", "--volumes", this.containerId(i)], 30_000);
    this.down.add(i);
    this.cuts[i]!.reset();
    this.containers[i] = await DockerCluster.startContainer(
      { ...this.spec, env: { ...this.spec.env, ...env } },
      i,
    );
    this.down.delete(i);
  }

  /** The host path of node `i`'s /data volume (root reads and writes it while the node is stopped). */
  async dataPath(i: number): Promise<string> {
    const path = await docker([
      "inspect",
      "-f",
      '{{range .Mounts}}{{if eq .Destination "/data"}}{{.Source}}{{end}}{{end}}',
      this.containerId(i),
    ]);
    if (path === "") throw new Error(`${this.ids[i]} has no /data volume`);
    return path;
  }

  containerId(i: number): string {
    return this.containers[i]!.getId();
  }

  private async pid(i: number): Promise<number> {
    const pid = Number(await docker(["inspect", "-f", "{{.State.Pid}}", this.containerId(i)]));
    if (!(pid > 0)) throw new Error(`${this.ids[i]} is not running`);
    return pid;
  }

  /** Container `i`'s address on the run's network (asked each time: a restart may change it). */
  private async address(i: number): Promise<string> {
    const net = this.network.getName();
    return docker([
      "inspect",
      "-f",
      `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`,
      this.containerId(i),
    ]);
  }

  async isolate(i: number, direction: "both" | "in" | "out" = "both"): Promise<void> {
    const others = this.ids.map((_, k) => k).filter((k) => k !== i && !this.down.has(k));
    await this.cuts[i]!.drop(await Promise.all(others.map((k) => this.address(k))), direction);
  }

  async cutBetween(a: number, b: number): Promise<void> {
    await this.cuts[a]!.drop([await this.address(b)]);
    await this.cuts[b]!.drop([await this.address(a)]);
  }

  /** `docker pause` (the cgroup freezer): the process stops, its sockets stay open. */
  async pause(i: number): Promise<void> {
    // The freezer can time out on a loaded machine ("unable to freeze"); the engine leaves
    // the container running then, so asking again is safe. At most three times.
    for (let attempt = 1; ; attempt++) {
      try {
        await docker(["pause", this.containerId(i)]);
        break;
      } catch (err) {
        if (attempt >= 3 || !/unable to freeze/i.test(String(err))) throw err;
        const state = await docker(["inspect", "-f", "{{.State.Status}}", this.containerId(i)]);
        if (state === "paused") break;
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
    this.paused.add(i);
  }

  async unpause(i: number): Promise<void> {
    await docker(["unpause", this.containerId(i)]);
    this.paused.delete(i);
  }

  async heal(): Promise<void> {
    for (const [i, cut] of this.cuts.entries()) if (!this.down.has(i)) await cut.heal();
  }

  async kill(i: number): Promise<void> {
    await docker(["kill", "--signal", "KILL", this.containerId(i)]);
    await this.waitForExit(i);
  }

  /** `docker stop`: SIGTERM to the server (PID 1), which must exit 0 before Docker's 20 s. */
  async stop(i: number): Promise<void> {
    await docker(["stop", "--time", "20", this.containerId(i)], 40_000);
    await this.waitForExit(i);
    const code = await docker(["inspect", "-f", "{{.State.ExitCode}}", this.containerId(i)]);
    if (code !== "0") throw new Error(`${this.ids[i]} exited ${code} on SIGTERM, not 0`);
  }

  private async waitForExit(i: number): Promise<void> {
    await waitFor(
      async () =>
        (await docker(["inspect", "-f", "{{.State.Running}}", this.containerId(i)])) === "false",
      10_000,
      `${this.ids[i]} to die`,
      100,
    );
    this.down.add(i);
    // Its network namespace is gone with it; a new one comes with the restart.
    this.cuts[i]!.reset();
  }

  async restart(i: number): Promise<void> {
    await docker(["start", this.containerId(i)]);
    this.down.delete(i);
  }

  /**
   * Sets node `i`'s wall clock (a cluster started with `fakeClock`), returning once the
   * node's HTTP Date header shows it (libfaketime reads its file at most once a second).
   */
  async setClock(i: number, setting: ClockSetting): Promise<void> {
    if (this.spec.clocks === undefined)
      throw new Error("start the cluster with fakeClock to set clocks");
    const before = await this.clockOffsetMs(i);
    this.spec.clocks.write(this.ids[i]!, setting);
    const rate = setting.rate ?? 1;
    const wantMs = setting.offsetS * 1000;
    await waitFor(
      async () => {
        const at = await this.clockOffsetMs(i).catch(() => undefined);
        if (at === undefined) return false;
        // The header has whole seconds; the request itself takes some.
        if (rate === 1) return Math.abs(at - wantMs) <= 3000;
        // A rate steps the clock by (rate - 1) x uptime first (fake_clock.ts).
        return (rate - 1) * (at - wantMs) > 1500 && Math.abs(at - before) > 1500;
      },
      15_000,
      `${this.ids[i]}'s clock at ${JSON.stringify(setting)}`,
      200,
    );
  }

  /** Node `i`'s wall clock minus the host's, from its HTTP Date header (whole seconds). */
  async clockOffsetMs(i: number): Promise<number> {
    const sentMs = Date.now();
    const res = await fetch(`http://127.0.0.1:${this.hostPorts[i]}/healthz`, {
      signal: AbortSignal.timeout(2000),
    });
    await res.arrayBuffer();
    const date = res.headers.get("date");
    const nodeMs = date === null ? Number.NaN : Date.parse(date);
    if (!Number.isFinite(nodeMs)) throw new Error(`${this.ids[i]} sent no Date header`);
    return nodeMs + 500 - (sentMs + Date.now()) / 2;
  }

  async status(i: number): Promise<NodeStatus | undefined> {
    if (this.down.has(i)) return undefined;
    try {
      const res = await fetch(`http://127.0.0.1:${this.hostPorts[i]}/v1/status`, {
        signal: AbortSignal.timeout(1000),
      });
      return res.ok ? ((await res.json()) as NodeStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stops and removes the containers (their volumes too) and the network. */
  async destroy(): Promise<void> {
    // A paused container would not stop.
    for (const i of this.paused) await this.unpause(i).catch(() => undefined);
    await Promise.allSettled(
      this.containers.map((c) => c.stop({ timeout: 1000, removeVolumes: true })),
    );
    await this.network.stop().catch(() => undefined);
    this.spec.clocks?.remove();
  }
}
