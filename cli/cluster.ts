/**
 * `streamkv cluster ...`: the cluster as seen by the contacted node, leadership
 * transfer and single-server membership changes (which must reach the leader).
 */
import { type ClusterStatus, connect, type KvConnection, KvError } from "../client/index.js";
import { type FlagSpec, flagHelp, type Parsed, parseArgs, UsageError } from "./args.js";
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
  status --all          every member's view, one row each (like etcdctl endpoint
                        status --cluster): the --servers, then the members they name at
                        their announced client URLs; unreachable ones shown, exit 1
  transfer <id>         move Raft leadership to voter <id>
  add <id>=<host:port>  add a node started with --join (<host:port> is its peer port);
                        it catches up as a learner, then votes
  remove <id>           remove node <id> (the leader too: it hands over first)

transfer, add and remove must reach the leader: each --server is asked in turn.

flags:
${flagHelp(COMMON_FLAGS)}`;

const STATUS_FLAGS: readonly FlagSpec[] = [
  ...COMMON_FLAGS,
  {
    name: "all",
    type: "bool",
    short: "a",
    help: "ask every --server on its own: one row per member, unreachable ones shown as such",
  },
];

export async function runCluster(argv: readonly string[], io: Io): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    throw new UsageError(
      "missing command: status, transfer, add, remove (see streamkv cluster --help)",
    );
  }
  if (name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${USAGE}\n`);
    return;
  }
  if (name === "transfer" || name === "remove" || name === "add") {
    return runOnLeader(name, rest, io);
  }
  if (name !== "status")
    throw new UsageError(`unknown command "cluster ${name}" (see streamkv cluster --help)`);
  const parsed = parseArgs(rest, STATUS_FLAGS, io.env);
  if (parsed.help) {
    io.stdout.write(
      `usage: streamkv cluster status [--all] [flags]\n\nflags:\n${flagHelp(STATUS_FLAGS)}\n`,
    );
    return;
  }
  wantPositionals(parsed, 0, 0, "streamkv cluster status [--all]");
  if (parsed.flags.get("all") === true) return statusOfEach(parsed, io);
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

/** What one `--server` answered to `cluster status --all`. */
interface EndpointStatus {
  endpoint: string;
  status?: ClusterStatus;
  error?: { code: string; message: string };
}

/**
 * `cluster status --all`: every member asked on its own connection, side by side, like
 * `etcdctl endpoint status --cluster`. The `--server`s are asked first; then every member
 * their answers name, at the client URL it announced to its peers
 * (`--advertise-client-url`). A member with no known URL is listed as not reached. Exit 1
 * (CONNECTION_CLOSED) when a server did not answer.
 */
async function statusOfEach(parsed: Parsed, io: Io): Promise<void> {
  const ask = (endpoints: string[]) =>
    Promise.all(
      endpoints.map(async (endpoint): Promise<EndpointStatus> => {
        let nc: KvConnection | undefined;
        try {
          nc = await connect(connectOptions(parsed, [endpoint]));
          return { endpoint, status: await nc.clusterStatus() };
        } catch (err) {
          const code = err instanceof KvError ? err.code : "INTERNAL";
          return { endpoint, error: { code, message: (err as Error).message ?? String(err) } };
        } finally {
          await nc?.close();
        }
      }),
    );
  const rows = await ask(serversOf(parsed));
  // The members the answers name and no given server answered as, at their URLs.
  const asked = new Set(rows.map((r) => r.endpoint));
  const answeredIds = new Set(rows.map((r) => r.status?.id).filter((id) => id !== undefined));
  const more = new Map<string, string>();
  for (const r of rows) {
    for (const p of r.status?.peers ?? []) {
      if (!answeredIds.has(p.id) && p.clientUrl !== "" && !asked.has(p.clientUrl)) {
        more.set(p.clientUrl, p.id);
      }
    }
  }
  rows.push(...(await ask([...more.keys()])));
  const answered = new Set(rows.map((r) => r.status?.id).filter((id) => id !== undefined));
  const members = new Set(rows.flatMap((r) => r.status?.peers.map((p) => p.id) ?? []));
  const unreached = [...members].filter((id) => !answered.has(id)).sort();
  if (parsed.flags.get("json")) {
    io.stdout.write(`${JSON.stringify({ endpoints: rows, unreached })}\n`);
  } else {
    const table = [["MEMBER", "ENDPOINT", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED"]];
    for (const { endpoint, status: s, error } of rows) {
      table.push(
        s
          ? [
              s.id,
              endpoint,
              s.role,
              `${s.term}`,
              s.leader || "(none)",
              `${s.commitIndex}`,
              `${s.appliedIndex}`,
            ]
          : ["?", endpoint, `unreachable (${error!.code}: ${error!.message})`],
      );
    }
    // An unreachable row's last cell (the error) spans the columns: it sets no width.
    const widthOf = (i: number) =>
      Math.max(...table.map((r) => (i < r.length - 1 || r.length === 7 ? (r[i] ?? "").length : 0)));
    const widths = table[0]!.map((_, i) => widthOf(i));
    for (const r of table) {
      const cells = r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]!) : c));
      io.stdout.write(`${cells.join("  ")}\n`);
    }
    if (unreached.length > 0) {
      io.stdout.write(
        `not reached: ${unreached.join(", ")} (no client URL known for it and no --server answered as it)\n`,
      );
    }
  }
  const failed = rows.filter((r) => r.error !== undefined);
  if (failed.length > 0) {
    throw new KvError(
      "CONNECTION_CLOSED",
      `${failed.length} of ${rows.length} servers did not answer: ${failed.map((r) => r.endpoint).join(", ")}`,
    );
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
