/**
 * Network partitions by iptables inside one node's network namespace: a chain of our
 * own (STREAMKV-NEMESIS) hooked into INPUT and OUTPUT, so cutting a node off is
 * appending DROP rules for its peers' addresses and healing is flushing that chain;
 * nothing else of the namespace's rules is touched.
 *
 * The same class serves processes in `ip netns` namespaces and Docker containers:
 * only the command prefix that enters the namespace differs (`ip netns exec NAME`,
 * `nsenter --net=/proc/PID/ns/net`). Both need root.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
const CHAIN = "STREAMKV-NEMESIS";

/** Runs a command in a network namespace; resolves with its stdout. */
export type NamespaceExec = (argv: string[]) => Promise<string>;

/** A NamespaceExec that prefixes `argv` with `prefix` (e.g. ["ip", "netns", "exec", ns]). */
export function prefixExec(prefix: () => string[] | Promise<string[]>): NamespaceExec {
  return async (argv) => {
    const [cmd, ...args] = [...(await prefix()), ...argv];
    const { stdout } = await run(cmd!, args, { timeout: 10_000 });
    return stdout;
  };
}

export class IptablesCut {
  private hooked = false;

  constructor(private readonly exec: NamespaceExec) {}

  /** Drops traffic from (`in`), to (`out`) or both ways with these addresses. */
  async drop(addresses: readonly string[], direction: "both" | "in" | "out" = "both") {
    await this.hook();
    for (const address of addresses) {
      if (direction !== "out") await this.iptables(["-A", CHAIN, "-s", address, "-j", "DROP"]);
      if (direction !== "in") await this.iptables(["-A", CHAIN, "-d", address, "-j", "DROP"]);
    }
  }

  /** Removes every cut made here. */
  async heal(): Promise<void> {
    if (this.hooked) await this.iptables(["-F", CHAIN]);
  }

  /** Forgets the hook (the namespace was replaced: a restarted container). */
  reset(): void {
    this.hooked = false;
  }

  private async hook(): Promise<void> {
    if (this.hooked) return;
    const exists = await this.iptables(["-L", CHAIN, "-n"]).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await this.iptables(["-N", CHAIN]);
      await this.iptables(["-I", "INPUT", "-j", CHAIN]);
      await this.iptables(["-I", "OUTPUT", "-j", CHAIN]);
    }
    this.hooked = true;
  }

  private iptables(args: string[]): Promise<string> {
    // -w: wait for the xtables lock instead of failing when another namespace's
    // iptables holds it.
    return this.exec(["iptables", "-w", "5", ...args]);
  }
}
