/**
 * Entry point of the `streamkv` command (DESIGN.md section 7): `server` starts a node,
 * `kv` and `cluster` talk to one through the client SDK. Errors print one line on
 * stderr; exit code 1 for a failed operation, 2 for bad usage.
 */
import { isKvError } from "../proto/index.js";
import { UsageError } from "./args.js";
import { runCluster } from "./cluster.js";
import type { Io } from "./common.js";
import { CliFailure, runKv } from "./kv.js";

const USAGE = `usage: streamkv <command> ...

commands:
  server     start a node (streamkv server --help)
  kv         buckets and keys: add put get create update del purge ls keys history watch status rm
  cluster    cluster status
  token      tokens with permissions for a server's --tokens-file
  dev-cluster  a local cluster of three nodes on loopback (npm run cluster)

streamkv <command> --help for details. Common flags: --server ws://host:port (env STREAMKV_URL), --json`;

export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "--help":
      case "-h":
      case "help":
        io.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      case "server": {
        const { runServer } = await import("../node/index.js");
        return await runServer(rest, io);
      }
      case "kv":
        await runKv(rest, io);
        return 0;
      case "cluster":
        await runCluster(rest, io);
        return 0;
      case "token": {
        const { runToken } = await import("./token.js");
        await runToken(rest, io);
        return 0;
      }
      case "dev-cluster": {
        const { runDevCluster } = await import("./dev_cluster.js");
        return await runDevCluster(rest, io);
      }
      default:
        throw new UsageError(`unknown command "${command}" (see streamkv --help)`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`streamkv: ${err.message}\n`);
      return 2;
    }
    if (isKvError(err)) {
      io.stderr.write(`streamkv: ${err.code}: ${err.message}\n`);
      return 1;
    }
    if (err instanceof CliFailure) {
      io.stderr.write(`streamkv: ${err.message}\n`);
      return 1;
    }
    io.stderr.write(`streamkv: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    // Handlers are installed only when asked for (kv watch): elsewhere Ctrl-C keeps
    // its default of ending the process at once.
    interrupted: () =>
      new Promise<void>((resolve) => {
        process.once("SIGINT", () => resolve());
        process.once("SIGTERM", () => resolve());
      }),
  };
}

/** Exits once stdout is flushed, so piped output is never cut short. */
function exitAfterFlush(code: number): void {
  process.exitCode = code;
  process.stdout.write("", () => process.exit(code));
}

if (process.argv[1] !== undefined && /streamkv(\.js)?$|cli[/\\]main\.ts$/.test(process.argv[1])) {
  main(process.argv.slice(2), processIo()).then(exitAfterFlush, (err) => {
    process.stderr.write(`streamkv: ${String(err)}\n`);
    process.exit(1);
  });
}
