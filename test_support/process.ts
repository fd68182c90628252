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
import { freePort } from "./ports.js";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
export const binPath = join(repoRoot, "bin", "streamkv.js");

export function tempDir(prefix = "streamkv-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface ServerProcess {
  proc: ChildProcess;
  clientPort: number;
  peerPort: number;
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
  cwd?: string;
  /** Pass no --data/--client-port/--peer-port at all (embedded defaults). */
  bare?: boolean;
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
      ];
  const proc = spawn(process.execPath, [binPath, "server", ...args, ...(options.args ?? [])], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, STREAMKV_LOG_LEVEL: "warn", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d) => {
    out += d.toString();
  });
  proc.stderr!.on("data", (d) => {
    err += d.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    proc.on("exit", (code, signal) => resolve(code ?? signal ?? -1));
  });
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const ports = await new Promise<{ client: number; peer: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`server did not start within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    const check = () => {
      const m = /streamkv listening client=(\d+) peer=(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ client: Number(m[1]), peer: Number(m[2]) });
      }
    };
    proc.stdout!.on("data", check);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening: ${err}`));
    });
  });
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
    url: `ws://127.0.0.1:${ports.client}`,
    dataDir,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop,
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/streamkv.js <args>` to completion. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string | Uint8Array; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [binPath, ...args], {
      cwd: repoRoot,
      env: { ...process.env, STREAMKV_URL: "", ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    let err = "";
    proc.stdout.on("data", (d: Buffer) => out.push(d));
    proc.stderr.on("data", (d) => {
      err += d.toString();
    });
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`streamkv ${args.join(" ")} did not finish: ${err}`));
    }, options.timeoutMs ?? 20_000);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: err });
    });
    if (options.stdin !== undefined) proc.stdin.end(options.stdin);
    else proc.stdin.end();
  });
}

export interface TestCluster {
  nodes: ServerProcess[];
  peerPorts: number[];
  /** The `--peers` value the nodes were started with. */
  peers: string;
}

/** Starts one `streamkv server` per id on loopback, each with every other as a peer. */
export async function startCluster(ids: readonly string[]): Promise<TestCluster> {
  const peerPorts = await Promise.all(ids.map(() => freePort()));
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${peerPorts[i]}`).join(",");
  const nodes = await Promise.all(
    ids.map((id, i) =>
      startServer({
        dataDir: tempDir(),
        peerPort: peerPorts[i]!,
        args: ["--id", id, "--peers", peers],
      }),
    ),
  );
  return { nodes, peerPorts, peers };
}
