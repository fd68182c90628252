/**
 * `streamkv snapshot save|status|restore`: backups of the whole store, like `etcdctl
 * snapshot save` and `etcdutl snapshot status|restore`. `save` pulls a node's frozen image
 * chunk by chunk into a file (node/backup_file.ts); `status` reads one back and checks
 * it; `restore` seeds a member of a new cluster from one (node/backup_restore.ts).
 */
import { connect } from "../client/index.js";
import {
  type BackupDescription,
  BackupFileWriter,
  ConfigError,
  describeBackup,
  restoreBackup,
} from "../node/index.js";
import { type FlagSpec, flagHelp, parseArgs, UsageError } from "./args.js";
import { COMMON_FLAGS, connectOptions, type Io, wantPositionals } from "./common.js";

const USAGE = `usage: streamkv snapshot <command> [flags]

commands:
  save <file>      a point-in-time image of every bucket, taken through any --server
                   (needs an admin token when the node has tokens), into <file>
  status <file>    what a backup holds: header, buckets with key and entry counts, size;
                   checks every checksum
  restore <file>   seed the data directory of one member of a NEW cluster (--data, --id,
                   --peers); restore every member from the same file, then start them

streamkv snapshot <command> --help for details.`;

const JSON_FLAG: FlagSpec = {
  name: "json",
  type: "bool",
  short: "j",
  help: "print JSON for scripts",
};

const SAVE_FLAGS: readonly FlagSpec[] = [
  ...COMMON_FLAGS,
  {
    name: "chunk-bytes",
    type: "int",
    min: 1024,
    default: 256 * 1024,
    help: "image bytes asked for per request (the node sends at most half its frame limit)",
  },
];

const STATUS_FLAGS: readonly FlagSpec[] = [JSON_FLAG];

const RESTORE_FLAGS: readonly FlagSpec[] = [
  { name: "data", type: "string", help: "data directory of the new member (absent or empty)" },
  { name: "id", type: "string", help: "node id of the new member (one of --peers)" },
  {
    name: "peers",
    type: "string",
    help: "the new cluster, id=host:port,... of peer ports, as every member will be started with (omitted = single node)",
  },
  {
    name: "cluster-id",
    type: "string",
    help: "cluster identity, as the members will be started with (empty = derived from --peers)",
  },
  JSON_FLAG,
];

const HELP = {
  save: `usage: streamkv snapshot save <file> [flags]

Saves a point-in-time image of every bucket, at one Raft applied index, from the
contacted node into <file>. The node first confirms with the leader (ReadIndex) that it
has applied every write acknowledged before the request, then freezes its state; the
image is streamed in chunks (never held whole on either side) with a SHA-256 the node
computes and this command checks. It is written to <file>.tmp, fsynced, then renamed.
Needs an admin token when the node has tokens.`,
  status: `usage: streamkv snapshot status <file> [flags]

Reads a backup file and prints its header (format, cluster, members, Raft index and
term, time, version), each bucket with its keys, entries, value bytes and last revision,
the file and image size and the SHA-256. Every checksum is checked (exit 1 if any fails).`,
  restore: `usage: streamkv snapshot restore <file> --data <dir> --id <id> [--peers <list>] [flags]

Seeds <dir> as the data directory of member <id> of a NEW cluster with the buckets,
keys, histories and revisions of the backup. Restore every member from the same file,
each with its own --id and --data and the same --peers, then start each one with
streamkv server and those flags. <dir> must be absent or empty; the file must check out
whole (else nothing is written).`,
};

export async function runSnapshot(argv: readonly string[], io: Io): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    throw new UsageError("missing command: save, status, restore (see streamkv snapshot --help)");
  }
  if (name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${USAGE}\n`);
    return;
  }
  if (name !== "save" && name !== "status" && name !== "restore") {
    throw new UsageError(`unknown command "snapshot ${name}" (see streamkv snapshot --help)`);
  }
  const specs = { save: SAVE_FLAGS, status: STATUS_FLAGS, restore: RESTORE_FLAGS }[name];
  const parsed = parseArgs(rest, specs, io.env);
  if (parsed.help) {
    io.stdout.write(`${HELP[name]}\n\nflags:\n${flagHelp(specs)}\n`);
    return;
  }
  const [file] = wantPositionals(parsed, 1, 1, `streamkv snapshot ${name} <file>`);
  const json = parsed.flags.get("json") === true;
  if (name === "save") return save(file!, parsed.flags, io, json, parsed);
  if (name === "status") return status(file!, io, json);
  return restore(file!, parsed.flags, io, json);
}

async function save(
  file: string,
  flags: Map<string, string | number | boolean>,
  io: Io,
  json: boolean,
  parsed: Parameters<typeof connectOptions>[0],
): Promise<void> {
  const started = performance.now();
  const nc = await connect(connectOptions(parsed));
  try {
    const image = await nc.openSnapshot({ chunkBytes: Number(flags.get("chunk-bytes")) });
    let writer: BackupFileWriter | undefined;
    try {
      writer = await BackupFileWriter.create(file, image.header);
      let digest: Uint8Array | undefined;
      for await (const chunk of image) {
        await writer.writeChunk(chunk.data);
        if (chunk.done) digest = chunk.imageSha256;
      }
      const { bytes, sha256 } = await writer.finish(digest ?? new Uint8Array(0));
      const h = image.header;
      const seconds = (performance.now() - started) / 1000;
      if (json) {
        io.stdout.write(
          `${JSON.stringify({ file, bytes, sha256, seconds, server: nc.serverId, header: h })}\n`,
        );
      } else {
        io.stdout.write(
          `saved ${file}: raft index ${h.raftIndex} (term ${h.raftTerm}) from ${h.nodeId}, ${h.buckets.length} buckets, ${bytes} bytes, sha256 ${sha256}, ${seconds.toFixed(2)} s\n`,
        );
      }
    } catch (err) {
      await writer?.abort();
      throw err;
    } finally {
      await image.close().catch(() => {});
    }
  } finally {
    await nc.close();
  }
}

async function status(file: string, io: Io, json: boolean): Promise<void> {
  const d = await describeBackup(file);
  if (json) {
    io.stdout.write(`${JSON.stringify(d)}\n`);
    return;
  }
  io.stdout.write(describe(d));
}

function describe(d: BackupDescription): string {
  const h = d.header;
  const lines = [
    `file              ${d.file}`,
    `format            ${h.formatVersion}`,
    `cluster           ${h.clusterId || "(none)"}`,
    `taken on          ${h.nodeId}`,
    `voters            ${h.voters.join(", ") || "(none)"}`,
    `learners          ${h.learners.join(", ") || "(none)"}`,
    `raft index        ${h.raftIndex}`,
    `raft term         ${h.raftTerm}`,
    `time              ${new Date(h.createdMs).toISOString()}`,
    `streamkv version  ${h.streamkvVersion}`,
    `file bytes        ${d.fileBytes}`,
    `image bytes       ${d.imageBytes} in ${d.chunks} chunks`,
    `sha256            ${d.sha256}`,
    `checksum          ok`,
    `buckets           ${d.buckets.length}`,
  ];
  const rows = [
    ["BUCKET", "KEYS", "ENTRIES", "VALUE BYTES", "LAST REVISION"],
    ...d.buckets.map((b) => [
      b.bucket,
      `${b.keys}`,
      `${b.messages}`,
      `${b.valueBytes}`,
      `${b.lastRevision}`,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "),
  );
  return `${[...lines, "", ...table].join("\n")}\n`;
}

async function restore(
  file: string,
  flags: Map<string, string | number | boolean>,
  io: Io,
  json: boolean,
): Promise<void> {
  const dataDir = String(flags.get("data") ?? "");
  const id = String(flags.get("id") ?? "");
  if (dataDir === "" || id === "") {
    throw new UsageError(
      "restore needs --data <dir> and --id <id> (see streamkv snapshot restore --help)",
    );
  }
  let r: Awaited<ReturnType<typeof restoreBackup>>;
  try {
    r = await restoreBackup({
      file,
      dataDir,
      id,
      peers: String(flags.get("peers") ?? ""),
      clusterId: String(flags.get("cluster-id") ?? ""),
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  if (json) {
    io.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  io.stdout.write(
    `restored ${file} into ${r.dataDir} as ${id} of cluster ${r.clusterId} (voters ${r.voters.join(", ")}): raft index ${r.header.raftIndex}, ${r.header.buckets.length} buckets, ${r.imageBytes} image bytes; start it with streamkv server --id ${id} --data ${dataDir}${flags.get("peers") ? " --peers <the same list>" : ""}\n`,
  );
}
