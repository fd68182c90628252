/**
 * Entry point of the `streamkv` command (DESIGN.md section 7): `server` starts a node,
 * `kv` and `cluster` talk to one through the client SDK. Errors print one line on
 * stderr, `streamkv: CODE: message`; exit code 1 for a failed operation, 2 for bad
 * usage (code USAGE).
 */
import { readFileSync } from "node:fs";
import { isKvError } from "../proto/index.js";
import { CliFailure, UsageError } from "./args.js";
import type { Io } from "./common.js";

const USAGE = `usage: streamkv <command> ...

commands:
  server     start a node (streamkv server --help)
  kv         buckets and keys: add put get create update del purge ls keys history watch
             status info compact rm
  cluster    cluster status [--all], transfer, add, remove
  snapshot   backups: save (through a node), status, restore (seed a new cluster)
  token      tokens with permissions for a server's --tokens-file
  verify     check every checksum of a node's data files (--data DIR), tables included
  dev-cluster  a local cluster of three nodes on loopback (npm run cluster)

streamkv <command> --help for details. Common flags: -s/--server ws://host:port
(env STREAMKV_URL), -j/--json. streamkv --version prints the version.`;

/** `streamkv <version>`, from the package.json beside cli/ (and beside dist/). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  return `streamkv ${String(pkg.version)}`;
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
        throw new UsageError(
          "missing command: server, kv, cluster, snapshot, token, verify, dev-cluster (see streamkv --help)",
        );
      case "--help":
      case "-h":
      case "help":
        io.stdout.write(`${USAGE}\n`);
        return 0;
      case "--version":
      case "-V":
      case "version":
        io.stdout.write(`${version()}\n`);
        return 0;
      case "server": {
        const { runServer } = await import("../node/index.js");
        return await runServer(rest, io);
      }
      // Loaded when asked for, so --version and --help need not load the SDK.
      case "kv": {
        const { runKv } = await import("./kv.js");
        await runKv(rest, io);
        return 0;
      }
      case "cluster": {
        const { runCluster } = await import("./cluster.js");
        await runCluster(rest, io);
        return 0;
      }
      case "snapshot": {
        const { runSnapshot } = await import("./snapshot.js");
        await runSnapshot(rest, io);
        return 0;
      }
      case "verify": {
        const { runVerify } = await import("./verify.js");
        await runVerify(rest, io);
        return 0;
      }
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
      io.stderr.write(`streamkv: USAGE: ${err.message}\n`);
      return 2;
    }
    if (isKvError(err) || err instanceof CliFailure) {
      io.stderr.write(`streamkv: ${err.code}: ${oneLine(err.message)}\n`);
      return 1;
    }
    // A bug: the stack goes on the following lines, the first one still has a code.
    const stack = (err as Error)?.stack ?? String(err);
    io.stderr.write(`streamkv: INTERNAL: unexpected error: ${stack}\n`);
    return 1;
  }
}

function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, " ");
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
    process.stderr.write(`streamkv: INTERNAL: ${String(err)}\n`);
    process.exit(1);
  });
}
