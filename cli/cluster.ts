/** `streamkv cluster ...`: the cluster as seen by the contacted node. */
import { flagHelp, parseArgs, UsageError } from "./args.js";
import { COMMON_FLAGS, type Io, open, wantPositionals } from "./common.js";

const USAGE = `usage: streamkv cluster <command> [flags]

commands:
  status     the contacted node's view: role, term, leader, indexes, peers
  add        add a node (not available yet)
  remove     remove a node (not available yet)
  transfer   move leadership (not available yet)

flags:
${flagHelp(COMMON_FLAGS)}`;

export async function runCluster(argv: readonly string[], io: Io): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${USAGE}\n`);
    return;
  }
  if (name === "add" || name === "remove" || name === "transfer") {
    throw new UsageError(
      `cluster ${name} is not available yet: membership changes are not on the client protocol yet`,
    );
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
