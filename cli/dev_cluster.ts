/**
 * `streamkv dev-cluster` (`npm run cluster`): a local cluster of real `streamkv server`
 * processes on loopback, for trying things out. Node i (1-based) listens on client port
 * base + 2(i-1) and peer port base + 2(i-1) + 1, data in <data>/n<i>. Ctrl-C stops them
 * all gracefully.
 */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { flagHelp, parseArgs, UsageError } from "./args.js";
import type { Io } from "./common.js";

const FLAGS = [
  { name: "nodes", type: "int", min: 1, default: 3, help: "how many nodes (1, 3 or 5)" },
  { name: "data", type: "string", default: "./data-cluster", help: "parent of the data dirs" },
  { name: "base-port", type: "int", min: 1, default: 7420, help: "first client port" },
] as const;

export async function runDevCluster(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(argv, FLAGS, io.env);
  if (parsed.help) {
    io.stdout.write(`usage: streamkv dev-cluster [flags]\n\nflags:\n${flagHelp(FLAGS)}\n`);
    return 0;
  }
  const nodes = Number(parsed.flags.get("nodes"));
  if (![1, 3, 5].includes(nodes)) throw new UsageError("--nodes must be 1, 3 or 5");
  const base = Number(parsed.flags.get("base-port"));
  if (base + nodes * 2 > 65535) throw new UsageError("--base-port is too high");
  const dataRoot = resolve(String(parsed.flags.get("data")));
  const ids = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${base + 2 * i + 1}`).join(",");
  const bin = fileURLToPath(new URL("../bin/streamkv.js", import.meta.url));
  const children = ids.map((id, i) => {
    const args = [
      bin,
      "server",
      "--id",
      id,
      "--data",
      join(dataRoot, id),
      "--client-port",
      String(base + 2 * i),
      "--peer-port",
      String(base + 2 * i + 1),
      "--peers",
      peers,
    ];
    // Own process group: a terminal's Ctrl-C reaches only this parent, which then stops
    // each node once (a node takes a second signal as "exit now").
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    child.stdout.on("data", (d) => io.stdout.write(`[${id}] ${d}`));
    child.stderr.on("data", (d) => io.stderr.write(`[${id}] ${d}`));
    return child;
  });
  io.stdout.write(
    `dev cluster: ${ids.map((id, i) => `${id} ws://127.0.0.1:${base + 2 * i}`).join(", ")}\n` +
      `(any node takes any request; Ctrl-C stops all three)\n`,
  );
  const exits = children.map(
    (c) => new Promise<number>((r) => c.on("exit", (code) => r(code ?? 1))),
  );
  void io.interrupted().then(() => {
    for (const c of children) c.kill("SIGTERM");
  });
  const codes = await Promise.all(exits);
  return codes.every((c) => c === 0) ? 0 : 1;
}
