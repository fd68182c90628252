/**
 * `streamkv dev-cluster` (`npm run cluster`): a local cluster of real `streamkv server`
 * processes on loopback, for trying things out. Node i (1-based) listens on client port
 * base + 2(i-1) and peer port base + 2(i-1) + 1, data in <data>/n<i>. A node that exits
 * is reported at once (which node, its pid, the code or signal); with `--restart` it is
 * started again after a backoff, a bounded number of times. Ctrl-C stops them all
 * gracefully.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { backoffDelayMs } from "../proto/index.js";
import { flagHelp, parseArgs, UsageError } from "./args.js";
import type { Io } from "./common.js";

const RESTART_DELAY_MS = 500;
const RESTART_DELAY_MAX_MS = 8000;
const MAX_RESTARTS = 10;
const STABLE_AFTER_MS = 30_000;

const FLAGS = [
  { name: "nodes", type: "int", min: 1, default: 3, help: "how many nodes (1, 3 or 5)" },
  { name: "data", type: "string", default: "./data-cluster", help: "parent of the data dirs" },
  { name: "base-port", type: "int", min: 1, default: 7420, help: "first client port" },
  {
    name: "restart",
    type: "bool",
    default: false,
    help: `start a node that exits again, after a backoff (${RESTART_DELAY_MS} ms doubling to ${RESTART_DELAY_MAX_MS / 1000} s, jittered); gives up on a node after ${MAX_RESTARTS} restarts in a row (a node that ran ${STABLE_AFTER_MS / 1000} s counts as recovered)`,
  },
] as const;

interface Member {
  id: string;
  args: string[];
  child: ChildProcess;
  startedAtMs: number;
  /** Restarts since the node last ran for STABLE_AFTER_MS. */
  restarts: number;
  /** Resolves when the node is down for good (no restart follows): its last exit code. */
  done: Promise<number>;
}

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
  const restart = parsed.flags.get("restart") === true;
  const dataRoot = resolve(String(parsed.flags.get("data")));
  const ids = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${base + 2 * i + 1}`).join(",");
  const bin = fileURLToPath(new URL("../bin/streamkv.js", import.meta.url));
  let stopping = false;

  const launch = (id: string, args: string[]): ChildProcess => {
    // Own process group: a terminal's Ctrl-C reaches only this parent, which then stops
    // each node once (a node takes a second signal as "exit now").
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    prefixLines(child.stdout!, `[${id}] `, (line) => io.stdout.write(line));
    prefixLines(child.stderr!, `[${id}] `, (line) => io.stderr.write(line));
    return child;
  };

  const watch = (m: Member, settle: (code: number) => void): void => {
    m.child.once("exit", (code, signal) => {
      const how = signal === null ? `code ${code}` : `signal ${signal}`;
      io.stderr.write(`dev cluster: ${m.id} (pid ${m.child.pid}) exited with ${how}\n`);
      const last = code ?? 1;
      if (stopping || !restart) return settle(last);
      if (Date.now() - m.startedAtMs >= STABLE_AFTER_MS) m.restarts = 0;
      if (m.restarts >= MAX_RESTARTS) {
        io.stderr.write(
          `dev cluster: ${m.id} exited ${MAX_RESTARTS} times in a row; not restarting it\n`,
        );
        return settle(last);
      }
      m.restarts++;
      const delayMs = backoffDelayMs(m.restarts, RESTART_DELAY_MS, RESTART_DELAY_MAX_MS);
      io.stderr.write(
        `dev cluster: restarting ${m.id} in ${delayMs} ms (restart ${m.restarts} of at most ${MAX_RESTARTS})\n`,
      );
      let relaunched = false;
      const timer = setTimeout(() => {
        relaunched = true;
        if (stopping) return settle(last);
        m.child = launch(m.id, m.args);
        m.startedAtMs = Date.now();
        io.stderr.write(`dev cluster: ${m.id} restarted (pid ${m.child.pid})\n`);
        watch(m, settle);
      }, delayMs);
      // Ctrl-C during the backoff: no restart, and nothing left to wait for.
      void interrupted.then(() => {
        if (relaunched) return;
        clearTimeout(timer);
        settle(last);
      });
    });
  };

  const interrupted = io.interrupted().then(() => {
    stopping = true;
  });
  const members: Member[] = ids.map((id, i) => {
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
    const member: Member = {
      id,
      args,
      child: launch(id, args),
      startedAtMs: Date.now(),
      restarts: 0,
      done: Promise.resolve(0),
    };
    member.done = new Promise<number>((settle) => watch(member, settle));
    return member;
  });
  io.stdout.write(
    `dev cluster: ${members.map((m, i) => `${m.id} ws://127.0.0.1:${base + 2 * i} (pid ${m.child.pid})`).join(", ")}\n` +
      `(any node takes any request; Ctrl-C stops all ${nodes}${restart ? "; a node that exits is restarted" : ""})\n`,
  );
  void interrupted.then(() => {
    for (const m of members) {
      if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill("SIGTERM");
    }
  });
  const codes = await Promise.all(members.map((m) => m.done));
  return codes.every((c) => c === 0) ? 0 : 1;
}

/** Writes each complete line of `stream` with `prefix`, so interleaved nodes stay readable. */
function prefixLines(
  stream: NodeJS.ReadableStream,
  prefix: string,
  write: (line: string) => void,
): void {
  let partial = "";
  stream.on("data", (d: Buffer | string) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) write(`${prefix}${line}\n`);
  });
  stream.on("end", () => {
    if (partial !== "") write(`${prefix}${partial}\n`);
    partial = "";
  });
}
