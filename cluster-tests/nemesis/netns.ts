/**
 * Test hosts in Linux network namespaces (root and iproute2 needed): one namespace
 * per node, each with a veth into a bridge that lives in a hub namespace of its own,
 * plus one veth from the hub to the test's (host) namespace so the test's clients
 * reach every node directly. Peers talk over the bridge; IptablesCut inside a node's
 * namespace cuts it off from its peers while clients still reach it, as in Jepsen.
 *
 * Addresses are in 198.18.0.0/15 (RFC 2544, set aside for test networks), one /24
 * per lab; names carry a per-run prefix so parallel runs never share anything, and
 * `destroy()` deletes the namespaces (their veths go with them).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { IptablesCut, type NamespaceExec, prefixExec } from "./iptables.js";

const run = promisify(execFile);

/** Why this machine cannot run a lab (undefined = it can). */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root (run the tests as root)";
  for (const tool of ["ip", "iptables"]) {
    const found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].some((d) =>
      existsSync(`${d}/${tool}`),
    );
    if (!found) return `${tool} is missing (apt-get install -y iproute2 iptables)`;
  }
  return undefined;
}

export interface LabHost {
  readonly name: string;
  readonly namespace: string;
  readonly address: string;
  readonly exec: NamespaceExec;
  readonly cut: IptablesCut;
}

async function ip(...args: string[]): Promise<void> {
  await run("ip", args, { timeout: 10_000 });
}

export class NetnsLab {
  private readonly namespaces: string[] = [];
  readonly hosts: LabHost[] = [];

  private constructor(
    readonly prefix: string,
    private readonly subnet: string,
  ) {}

  /** Makes `count` hosts h1..hN; on any failure, removes what it made. */
  static async create(count: number): Promise<NetnsLab> {
    const tag = `${process.pid.toString(36)}${Date.now().toString(36).slice(-3)}`.slice(-6);
    // /24s of 198.18.0.0/15 by process id: two labs of one machine differ.
    const third = process.pid % 256;
    const lab = new NetnsLab(`skv${tag}`, `198.${18 + ((process.pid >> 8) % 2)}.${third}`);
    try {
      await lab.build(count);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  private async build(count: number): Promise<void> {
    const hub = `${this.prefix}hub`;
    await this.addNamespace(hub);
    await ip("-n", hub, "link", "add", "br0", "type", "bridge");
    await ip("-n", hub, "link", "set", "br0", "up");
    // The test's own end: a veth from the host namespace into the bridge.
    const hostEnd = `${this.prefix}t`;
    await ip("link", "add", hostEnd, "type", "veth", "peer", "name", "tb", "netns", hub);
    await ip("-n", hub, "link", "set", "tb", "master", "br0", "up");
    await ip("addr", "add", `${this.subnet}.254/24`, "dev", hostEnd);
    await ip("link", "set", hostEnd, "up");
    for (let i = 1; i <= count; i++) {
      const ns = `${this.prefix}h${i}`;
      await this.addNamespace(ns);
      await ip("-n", ns, "link", "set", "lo", "up");
      await ip(
        "-n",
        ns,
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        `p${i}`,
        "netns",
        hub,
      );
      await ip("-n", hub, "link", "set", `p${i}`, "master", "br0", "up");
      const address = `${this.subnet}.${i}`;
      await ip("-n", ns, "addr", "add", `${address}/24`, "dev", "eth0");
      await ip("-n", ns, "link", "set", "eth0", "up");
      const exec = prefixExec(() => ["ip", "netns", "exec", ns]);
      this.hosts.push({ name: `h${i}`, namespace: ns, address, exec, cut: new IptablesCut(exec) });
    }
  }

  private async addNamespace(name: string): Promise<void> {
    await ip("netns", "add", name);
    this.namespaces.push(name);
  }

  /** The command prefix that runs a program on host `i` (0-based). */
  wrap(i: number): string[] {
    return ["ip", "netns", "exec", this.hosts[i]!.namespace];
  }

  /** Cuts host `i` off from every other host (clients in the test still reach it). */
  async isolate(i: number, direction: "both" | "in" | "out" = "both"): Promise<void> {
    const others = this.hosts.filter((_, k) => k !== i).map((h) => h.address);
    await this.hosts[i]!.cut.drop(others, direction);
  }

  async healAll(): Promise<void> {
    for (const h of this.hosts) await h.cut.heal();
  }

  /** Deletes every namespace made (veths go with them). Never throws. */
  async destroy(): Promise<void> {
    for (const ns of this.namespaces.splice(0).reverse()) {
      await ip("netns", "del", ns).catch(() => undefined);
    }
    await ip("link", "del", `${this.prefix}t`).catch(() => undefined);
  }
}
