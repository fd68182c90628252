/**
 * Runs `node bin/streamkv.js ...` as a real child process: a server (`startServer`,
 * `startCluster`) or one CLI command (`runCli`). Used by tests and benches, never by
 * product code (layers.test.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, freePorts } from "./ports.js";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
export const binPath = join(repoRoot, "bin", "streamkv.js");

export function tempDir(prefix = "streamkv-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** What a child has printed so far, stdout and stderr apart. */
export interface Output {
  stdout(): string;
  stderr(): string;
}

export function collectOutput(proc: ChildProcess): Output {
  let out = "";
  let err = "";
  proc.stdout?.on("data", (d) => {
    out += d.toString();
  });
  proc.stderr?.on("data", (d) => {
    err += d.toString();
  });
  return { stdout: () => out, stderr: () => err };
}

/** Whether a process with this PID exists (signal 0: nothing is sent). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves with the exit code, or the signal name when a signal ended the child. */
export function exitOf(proc: ChildProcess): Promise<number | string> {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return Promise.resolve(proc.exitCode ?? proc.signalCode ?? -1);
  }
  return new Promise((resolve) => proc.on("exit", (code, signal) => resolve(code ?? signal ?? -1)));
}

export interface CommandResult {
  /** The exit code or signal name; "timeout" when it was SIGKILLed after `timeoutMs`. */
  code: number | string;
  stdout: string;
  stderr: string;
}

/** Runs `command args` to completion (SIGKILL after `timeoutMs`, default 20 s). */
export async function runCommand(
  command: string,
  args: string[],
  options: {
    env?: Record<string, string>;
    cwd?: string;
    stdin?: string | Uint8Array;
    timeoutMs?: number;
  } = {},
): Promise<CommandResult> {
  const proc = spawn(command, args, {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
    stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  const output = collectOutput(proc);
  const exit = exitOf(proc);
  if (options.stdin !== undefined) proc.stdin!.end(options.stdin);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, options.timeoutMs ?? 20_000);
  const code = await exit;
  clearTimeout(timer);
  return { code: timedOut ? "timeout" : code, stdout: output.stdout(), stderr: output.stderr() };
}

export interface ServerProcess {
  proc: ChildProcess;
  clientPort: number;
  peerPort: number;
  /** The NATS port (`--nats-port`), 0 when the server runs without one. */
  natsPort: number;
  url: string;
  dataDir: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process ended. */
  exited: Promise<number | string>;
  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  env?: Record<string, string>;
  clientPort?: number;
  peerPort?: number;
  /** Passed as `--nats-port` (default: none, the port is off). */
  natsPort?: number;
  cwd?: string;
  /** A command that runs the server, e.g. ["ip", "netns", "exec", ns] (default none). */
  wrap?: string[];
  /** Pass no --data/--client-port/--peer-port at all (embedded defaults). */
  bare?: boolean;
  /** Node's own flags, before the script (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  startTimeoutMs?: number;
}

export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? tempDir();
  const args = options.bare
    ? []
    : [
        "--data",
        dataDir,
        "--client-port",
        String(options.clientPort ?? 0),
        "--peer-port",
        String(options.peerPort ?? 0),
        ...(options.natsPort === undefined ? [] : ["--nats-port", String(options.natsPort)]),
      ];
  const argv = [
    process.execPath,
    ...(options.nodeArgs ?? []),
    binPath,
    "server",
    ...args,
    ...(options.args ?? []),
  ];
  const [command, ...rest] = [...(options.wrap ?? []), ...argv];
  const proc = spawn(command!, rest, {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, STREAMKV_LOG_LEVEL: "warn", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = collectOutput(proc);
  const exited = exitOf(proc);
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const ports = await new Promise<{ client: number; peer: number; nats: number }>(
    (resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill("SIGKILL");
        reject(new Error(`server did not start within ${timeoutMs} ms: ${output.stderr()}`));
      }, timeoutMs);
      const check = () => {
        const m = /streamkv listening client=(\d+) peer=(\d+)(?: nats=(\d+))?/.exec(
          output.stdout(),
        );
        if (m) {
          clearTimeout(timer);
          resolve({ client: Number(m[1]), peer: Number(m[2]), nats: Number(m[3] ?? 0) });
        }
      };
      proc.stdout!.on("data", check);
      exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`server exited (${code}) before listening: ${output.stderr()}`));
      });
    },
  );
  const stop = async (signal: NodeJS.Signals = "SIGTERM", stopTimeoutMs = 10_000) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), stopTimeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return {
    proc,
    clientPort: ports.client,
    peerPort: ports.peer,
    natsPort: ports.nats,
    url: `ws://127.0.0.1:${ports.client}`,
    dataDir,
    stdout: output.stdout,
    stderr: output.stderr,
    exited,
    stop,
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/streamkv.js <args>` to completion; rejects if it takes over `timeoutMs`. */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string | Uint8Array; timeoutMs?: number } = {},
): Promise<CliResult> {
  const r = await runCommand(process.execPath, [binPath, ...args], {
    env: { STREAMKV_URL: "", ...options.env },
    stdin: options.stdin ?? "",
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  if (r.code === "timeout")
    throw new Error(`streamkv ${args.join(" ")} did not finish: ${r.stderr}`);
  return { code: typeof r.code === "number" ? r.code : -1, stdout: r.stdout, stderr: r.stderr };
}

export interface TestCluster {
  nodes: ServerProcess[];
  peerPorts: number[];
  /** The `--peers` value the nodes were started with. */
  peers: string;
}

/**
 * Starts one `streamkv server` per id on loopback, each with every other as a peer;
 * with `nats`, each also with a NATS port (`natsPort` of each node).
 */
export async function startCluster(
  ids: readonly string[],
  options: { nats?: boolean } = {},
): Promise<TestCluster> {
  // The peer ports are probed free first (every node must know them all before any
  // starts); another process may take one in between (they are ephemeral-range ports).
  // Then the whole cluster starts again on fresh ports, its started nodes stopped.
  for (let attempt = 1; ; attempt++) {
    const peerPorts = await Promise.all(ids.map(() => freePort()));
    const peers = ids.map((id, i) => `${id}=127.0.0.1:${peerPorts[i]}`).join(",");
    const dataDirs = ids.map(() => tempDir());
    const natsPorts = options.nats ? await freePorts(ids.length) : [];
    const started = await Promise.allSettled(
      ids.map((id, i) =>
        startServer({
          dataDir: dataDirs[i]!,
          peerPort: peerPorts[i]!,
          ...(options.nats ? { natsPort: natsPorts[i]! } : {}),
          args: ["--id", id, "--peers", peers],
        }),
      ),
    );
    const nodes = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    if (nodes.length === ids.length) return { nodes, peerPorts, peers };
    await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
    for (const dir of dataDirs) removeDir(dir);
    const failure = started.find((r) => r.status === "rejected") as PromiseRejectedResult;
    if (attempt >= 3 || !String(failure.reason).includes("EADDRINUSE")) throw failure.reason;
  }
}
