/**
 * `streamkv server`: parses the config, starts the node, prints
 * `streamkv listening client=<port> peer=<port>[ nats=<port>]` on stdout (tests and scripts read
 * it), and stops gracefully on SIGTERM/SIGINT: exit 0 within the shutdown timeout.
 */

import { isKvError } from "../proto/index.js";
import { ConfigError, parseServerConfig, serverUsage } from "./config.js";
import type { Io } from "./io.js";
import { jsonLogger } from "./log.js";
import { startNode } from "./server.js";

export async function runServer(argv: readonly string[], io: Io): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.stdout.write(`${serverUsage()}\n`);
    return 0;
  }
  let config: ReturnType<typeof parseServerConfig>;
  try {
    config = parseServerConfig(argv, io.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr.write(`streamkv server: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = jsonLogger({ node: config.id }, config.logLevel, (line) => io.stderr.write(line));
  let node: Awaited<ReturnType<typeof startNode>>;
  try {
    node = await startNode(config, log);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr.write(`streamkv server: ${err.message}\n`);
      return 2;
    }
    // The code first (CORRUPT_RECORD: a damaged data dir, README "A member with
    // corrupted data"), so an operator or a script can tell the kinds apart.
    const code = isKvError(err) ? `${err.code}: ` : "";
    io.stderr.write(
      `streamkv server: cannot start: ${code}${(err as Error).message ?? String(err)}\n`,
    );
    return 1;
  }
  let signals = 0;
  const onSignal = (signal: string) => {
    signals++;
    if (signals > 1) {
      io.stderr.write(`streamkv server: second ${signal}, exiting now\n`);
      process.exit(1);
    }
    // If shutdown hangs (a stuck disk), do not hang with it.
    setTimeout(() => {
      io.stderr.write("streamkv server: shutdown took too long, exiting\n");
      process.exit(1);
    }, config.shutdownTimeoutMs + 5000).unref();
    void node.stop(signal);
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  // Re-read the tokens file (node/auth.ts): add or revoke tokens without a restart.
  process.on("SIGHUP", () => node.reloadCredentials());
  // Only now: whoever reads this line may signal at once (a SIGTERM that came before the
  // handlers would kill the node instead of stopping it).
  const nats = node.natsPort === 0 ? "" : ` nats=${node.natsPort}`;
  io.stdout.write(`streamkv listening client=${node.clientPort} peer=${node.peerPort}${nats}\n`);
  const clean = await node.stopped;
  return clean ? 0 : 1;
}
