/**
 * Child processes of reference servers (nats-server, etcd), tracked by PID: `stop()`
 * sends SIGTERM then SIGKILL, and every process still running when this process exits
 * (normally, on an uncaught error, or on SIGINT/SIGTERM) is SIGKILLed, so a failed
 * benchmark never leaves a server behind holding ports or a temp dir.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** A reference system's binary is not installed; `hint` says how to install it. */
export class ReferenceMissingError extends Error {
  override readonly name = "ReferenceMissingError";
  constructor(
    readonly binary: string,
    readonly hint: string,
  ) {
    super(`${binary} not found (${hint})`);
  }
}

/**
 * The path of `name`: `$<envVar>` when set (and only it, so setting it to nothing
 * executable simulates a missing binary), else the first executable `name` on $PATH,
 * /usr/sbin or /usr/local/sbin (Debian puts nats-server in /usr/sbin, which a non-root
 * $PATH may lack); undefined when there is none.
 */
export function findBinary(name: string, envVar?: string): string | undefined {
  const fromEnv = envVar ? process.env[envVar] : undefined;
  const dirs = (process.env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  const candidates = fromEnv
    ? [fromEnv]
    : [...dirs, "/usr/sbin", "/usr/local/sbin"].map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here; try the next place
    }
  }
  return undefined;
}

export interface RefProcess {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** stdout and stderr so far (the last 64 KiB). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process ended. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once it exited. */
  stop(timeoutMs?: number): Promise<number | string>;
}

const running = new Set<RefProcess>();
/** PIDs started elsewhere (streamkv servers) that must not outlive this process either. */
const otherPids = new Set<number>();
let hooksInstalled = false;

function killAllNow(): void {
  for (const pid of [...[...running].map((p) => p.pid), ...otherPids]) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  running.clear();
  otherPids.clear();
}

/**
 * SIGKILLs `pid` if this process exits (or gets SIGINT/SIGTERM) before `release()`
 * is called: for children another helper started, whose own cleanup runs only on an
 * orderly path.
 */
export function killOnExit(pid: number): () => void {
  installExitHooks();
  otherPids.add(pid);
  return () => {
    otherPids.delete(pid);
  };
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAllNow);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      killAllNow();
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  }
}

const outputBytesMax = 64 * 1024;

/** Spawns `binary args` (no shell) and tracks it until it exits. */
export function spawnTracked(name: string, binary: string, args: string[]): RefProcess {
  installExitHooks();
  const proc = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  if (proc.pid === undefined) throw new Error(`${name}: could not spawn ${binary}`);
  let out = "";
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > outputBytesMax) out = out.slice(-outputBytesMax);
  };
  proc.stdout!.on("data", keep);
  proc.stderr!.on("data", keep);
  const exited = new Promise<number | string>((resolve) => {
    proc.on("exit", (code, signal) => resolve(code ?? signal ?? -1));
    proc.on("error", (err) => {
      out += `\nspawn error: ${err.message}`;
      resolve(-1);
    });
  });
  const ref: RefProcess = {
    name,
    pid: proc.pid,
    proc,
    output: () => out,
    exited,
    async stop(timeoutMs = 5000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  running.add(ref);
  void exited.then(() => running.delete(ref));
  return ref;
}

/**
 * Rejects (with the process's output) when `p` exits: race it against a readiness wait so
 * a server that dies during start fails fast. Only pass it to `Promise.race`, which
 * handles its later rejection when the server is stopped.
 */
export function failOnExit(p: RefProcess): Promise<never> {
  return p.exited.then((code) => {
    throw new Error(`${p.name} exited (${code}) during start:\n${p.output().slice(-2000)}`);
  });
}
