/**
 * `streamkv cluster ...`: the cluster as seen by the contacted node, leadership
 * transfer and single-server membership changes (which must reach the leader).
 */
import { type ClusterStatus, connect, type KvConnection, KvError } from "../client/index.js";
import { flagHelp, type Parsed, parseArgs, UsageError } from "./args.js";
import {
  COMMON_FLAGS,
  connectOptions,
  type Io,
  open,
  serversOf,
  wantPositionals,
} from "./common.js";

const USAGE = `usage: streamkv cluster <command> [flags]

commands:
  status                the contacted node's view: cluster id, role, term, leader, peers
  transfer <id>         move Raft leadership to voter <id>
  add <id>=<host:port>  add a node started with --join (<host:port> is its peer port);
                        it catches up as a learner, then votes
  remove <id>           remove node <id> (the leader too: it hands over first)

transfer, add and remove must reach the leader: each --server is asked in turn.

flags:
${flagHelp(COMMON_FLAGS)}`;

export async function runCluster(argv: readonly string[], io: Io): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${USAGE}\n`);
    return;
  }
  if (name === "transfer" || name === "remove" || name === "add") {
    return runOnLeader(name, rest, io);
  }
  if (name !== "status")
    throw new UsageError(`unknown command "cluster ${name}" (see streamkv cluster --help)`);
  const parsed = parseArgs(rest, COMMON_FLAGS, io.env);
  if (parsed.help) {
    io.stdout.write(
      `usage: streamkv cluster status [flags]\n\nflags:\n${flagHelp(COMMON_FLAGS)}\n`,
    );
    return;
  }
  wantPositionals(parsed, 0, 0, "streamkv cluster status");
  const nc = await open(parsed);
  try {
    const s = await nc.clusterStatus();
    if (parsed.flags.get("json")) {
      io.stdout.write(`${JSON.stringify(s)}\n`);
      return;
    }
    io.stdout.write(
      [
        `node        ${s.id}`,
        `cluster     ${s.clusterId}`,
        `role        ${s.role}`,
        `term        ${s.term}`,
        `leader      ${s.leader || "(none)"}`,
        `commit      ${s.commitIndex}`,
        `applied     ${s.appliedIndex}`,
        `replicated  ${s.replicated ? "yes" : "no (writes applied without Raft)"}`,
        `buckets     ${s.buckets.length === 0 ? "-" : s.buckets.join(", ")}`,
        "peers:",
        ...s.peers.map(
          (p) =>
            `  ${p.id.padEnd(12)} ${p.address.padEnd(22)} match=${p.matchIndex}${p.voter ? "" : " (learner)"}`,
        ),
      ].join("\n") + "\n",
    );
  } finally {
    await nc.close();
  }
}

const LEADER_HELP = {
  add: "usage: streamkv cluster add <id>=<host:port> [flags]\n\nAdds node <id>, already started with --join, whose peer port is <host:port>. It\njoins as a learner and is promoted to voter once it has caught up. After a TIMEOUT\n(raise --timeout for a large state) run it again: it continues where it stopped.",
  transfer: "usage: streamkv cluster transfer <id> [flags]\n\nMoves Raft leadership to voter <id>.",
  remove:
    "usage: streamkv cluster remove <id> [flags]\n\nRemoves node <id> from the cluster (one server at a time). Removing the leader\nhands leadership over first. The removed process keeps running until you stop it.",
};

async function runOnLeader(
  name: "transfer" | "remove" | "add",
  argv: readonly string[],
  io: Io,
): Promise<void> {
  const parsed = parseArgs(argv, COMMON_FLAGS, io.env);
  if (parsed.help) {
    io.stdout.write(
      `${LEADER_HELP[name]}\nOnly the leader can do it: each --server is asked in turn until the leader answers.\n\nflags:\n${flagHelp(COMMON_FLAGS)}\n`,
    );
    return;
  }
  const [arg] = wantPositionals(
    parsed,
    1,
    1,
    `streamkv cluster ${name} ${name === "add" ? "<id>=<host:port>" : "<id>"}`,
  );
  let id = arg!;
  let address = "";
  if (name === "add") {
    const eq = arg!.indexOf("=");
    if (eq <= 0 || eq === arg!.length - 1) {
      throw new UsageError("usage: streamkv cluster add <id>=<host:port> (the node's peer port)");
    }
    id = arg!.slice(0, eq);
    address = arg!.slice(eq + 1);
  }
  const s = await viaLeader(parsed, (nc) =>
    name === "transfer"
      ? nc.transferLeadership(id)
      : name === "remove"
        ? nc.removeServer(id)
        : nc.addServer(id, address),
  );
  if (parsed.flags.get("json")) {
    io.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  const members = s.peers.map((p) => p.id).join(", ");
  if (name === "transfer") io.stdout.write(`leader ${s.leader} (term ${s.term})\n`);
  else if (name === "remove") io.stdout.write(`removed ${id}; members ${members}\n`);
  else io.stdout.write(`added ${id}; members ${members}\n`);
}

/** Asks each server in turn: the leader does the transfer, the others say NOT_LEADER. */
async function viaLeader(
  parsed: Parsed,
  call: (nc: KvConnection) => Promise<ClusterStatus>,
): Promise<ClusterStatus> {
  const servers = serversOf(parsed);
  let last: unknown;
  for (const url of servers) {
    let nc: Awaited<ReturnType<typeof connect>> | undefined;
    try {
      nc = await connect(connectOptions(parsed, [url]));
      return await call(nc);
    } catch (err) {
      last = err;
      const code = err instanceof KvError ? err.code : "";
      // Anything but "not here" or "not reachable" is the answer (a bad id, a timeout).
      if (code !== "NOT_LEADER" && code !== "NO_LEADER" && code !== "CONNECTION_CLOSED") throw err;
    } finally {
      await nc?.close();
    }
  }
  if (last instanceof KvError && last.code === "NOT_LEADER") {
    const leader = last.details.leaderId;
    throw new KvError(
      "NOT_LEADER",
      `none of the given servers leads${leader ? ` (the leader is ${leader})` : ""}; pass the leader's client URL with --server`,
      last.details,
    );
  }
  throw last;
}
