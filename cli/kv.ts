/** `streamkv kv ...`: the bucket and key commands, mirroring `nats kv`. */
import type { ConnectionEvent, ConnectOptions, KeyValueStatus } from "../client/index.js";
import { CliFailure, type FlagSpec, flagHelp, type Parsed, parseArgs, UsageError } from "./args.js";
import {
  COMMON_FLAGS,
  confirm,
  entryJson,
  FORCE_FLAG,
  type Io,
  isTerminal,
  open,
  readAll,
  shortValue,
  wantPositionals,
  writeStreamed,
} from "./common.js";

interface Command {
  usage: string;
  help: string;
  flags: readonly FlagSpec[];
  run(parsed: Parsed, io: Io): Promise<void>;
}

const lastFlag: FlagSpec = {
  name: "last",
  type: "int",
  min: 0,
  help: "only if the key's latest revision is this (0 = no entry)",
};

/** `del` and `purge`: a marker write, optionally guarded by --last, asked for unless -f. */
function markerCommand(method: "delete" | "purge", name: string, help: string): Command {
  return {
    usage: `streamkv kv ${name} <bucket> <key> [--last <revision>] [-f]`,
    help,
    flags: [lastFlag, FORCE_FLAG],
    async run(parsed, io) {
      const [bucket, key] = wantPositionals(parsed, 2, 2, this.usage);
      await confirm(
        parsed,
        io,
        method === "delete"
          ? `delete key ${key} of bucket ${bucket}`
          : `purge key ${key} of bucket ${bucket} and all its history`,
      );
      await withConnection(parsed, async (nc) => {
        const kv = await nc.keyValue(bucket!);
        const last = parsed.flags.get("last");
        printRevision(
          parsed,
          io,
          await kv[method](key!, last === undefined ? {} : { last: Number(last) }),
        );
      });
    },
  };
}

const COMMANDS: Record<string, Command> = {
  add: {
    usage: "streamkv kv add <bucket> [flags]",
    help: "create a bucket (no-op if it exists with the same config)",
    flags: [
      { name: "history", type: "int", min: 1, help: "revisions kept per key, 1..64 (default 1)" },
      {
        name: "ttl",
        type: "duration",
        min: 0,
        help: "entries expire after this long: 30s, 1h, 500ms; a plain integer is ms (0 = never)",
      },
      {
        name: "max-value-size",
        type: "int",
        min: -1,
        help: "largest value in bytes (-1 = server max)",
      },
      {
        name: "max-bytes",
        type: "int",
        min: -1,
        help: "largest bucket size in bytes (-1 = unlimited)",
      },
      {
        name: "replicas",
        type: "int",
        min: 0,
        help: "the cluster's voter count, or 0 (default): every bucket is on every voter, any other count is INVALID_CONFIG",
      },
      { name: "description", type: "string", help: "free text" },
    ],
    async run(parsed, io) {
      const [bucket] = wantPositionals(parsed, 1, 1, this.usage);
      const f = parsed.flags;
      const config = { bucket: bucket! } as Parameters<
        Awaited<ReturnType<typeof open>>["createKeyValue"]
      >[0];
      if (f.has("history")) config.history = Number(f.get("history"));
      if (f.has("ttl")) config.ttl = Number(f.get("ttl"));
      if (f.has("max-value-size")) config.maxValueSize = Number(f.get("max-value-size"));
      if (f.has("max-bytes")) config.maxBytes = Number(f.get("max-bytes"));
      if (f.has("replicas")) config.replicas = Number(f.get("replicas"));
      if (f.has("description")) config.description = String(f.get("description"));
      await withConnection(parsed, async (nc) => {
        const kv = await nc.createKeyValue(config);
        printStatus(parsed, io, await kv.status());
      });
    },
  },
  put: {
    usage: "streamkv kv put <bucket> <key> [value]   (value from stdin when omitted)",
    help: "store a value; prints the revision",
    flags: [],
    async run(parsed, io) {
      const [bucket, key, value] = wantPositionals(parsed, 2, 3, this.usage);
      const bytes = await valueArg(value, io);
      await withConnection(parsed, async (nc) => {
        const kv = await nc.keyValue(bucket!);
        printRevision(parsed, io, await kv.put(key!, bytes));
      });
    },
  },
  create: {
    usage: "streamkv kv create <bucket> <key> [value]",
    help: "store a value only if the key has none (else KEY_EXISTS)",
    flags: [],
    async run(parsed, io) {
      const [bucket, key, value] = wantPositionals(parsed, 2, 3, this.usage);
      const bytes = await valueArg(value, io);
      await withConnection(parsed, async (nc) => {
        const kv = await nc.keyValue(bucket!);
        printRevision(parsed, io, await kv.create(key!, bytes));
      });
    },
  },
  update: {
    usage: "streamkv kv update <bucket> <key> [value] --last <revision>",
    help: "store a value only if the key's latest revision is --last",
    flags: [lastFlag],
    async run(parsed, io) {
      const [bucket, key, value] = wantPositionals(parsed, 2, 3, this.usage);
      if (!parsed.flags.has("last")) throw new UsageError("kv update needs --last <revision>");
      const bytes = await valueArg(value, io);
      await withConnection(parsed, async (nc) => {
        const kv = await nc.keyValue(bucket!);
        printRevision(parsed, io, await kv.update(key!, bytes, Number(parsed.flags.get("last"))));
      });
    },
  },
  del: markerCommand("delete", "del", "write a delete marker (history kept)"),
  purge: markerCommand("purge", "purge", "write a purge marker and drop the key's history"),
  get: {
    usage: "streamkv kv get <bucket> <key> [--revision n] [--stale]",
    help: "print the value (raw when piped); KEY_NOT_FOUND if the key has no value",
    flags: [
      { name: "revision", type: "int", min: 1, help: "this revision instead of the latest" },
      { name: "stale", type: "bool", help: "read the node's local state (may be stale)" },
    ],
    async run(parsed, io) {
      const [bucket, key] = wantPositionals(parsed, 2, 2, this.usage);
      await withConnection(parsed, async (nc) => {
        const kv = await nc.keyValue(bucket!);
        const stale = Boolean(parsed.flags.get("stale"));
        const rev = parsed.flags.get("revision");
        const entry =
          rev === undefined
            ? await kv.get(key!, { stale })
            : await kv.getRevision(key!, Number(rev), { stale });
        if (!entry) {
          throw new CliFailure(
            "KEY_NOT_FOUND",
            rev === undefined
              ? `key ${key} has no value in bucket ${bucket}`
              : `key ${key} has no value at revision ${rev} in bucket ${bucket}`,
          );
        }
        if (parsed.flags.get("json")) {
          io.stdout.write(`${JSON.stringify(entryJson(entry))}\n`);
          return;
        }
        io.stdout.write(entry.value);
        // Raw for pipes, but a shell prompt must not land behind the value.
        if (isTerminal(io.stdout) && entry.value.at(-1) !== 0x0a) io.stdout.write("\n");
      });
    },
  },
  ls: {
    usage: "streamkv kv ls",
    help: "list buckets",
    flags: [],
    async run(parsed, io) {
      wantPositionals(parsed, 0, 0, this.usage);
      await withConnection(parsed, async (nc) => {
        const list = await nc.listBuckets();
        if (parsed.flags.get("json")) {
          io.stdout.write(`${JSON.stringify(list)}\n`);
          return;
        }
        if (list.length === 0) {
          io.stdout.write("no buckets\n");
          return;
        }
        io.stdout.write(
          `${"BUCKET".padEnd(24)} ${"VALUES".padStart(8)} ${"BYTES".padStart(10)} HISTORY  TTL(ms)\n`,
        );
        for (const s of list) {
          io.stdout.write(
            `${s.bucket.padEnd(24)} ${String(s.values).padStart(8)} ${String(s.bytes).padStart(10)} ${String(s.history).padStart(7)}  ${s.ttl}\n`,
          );
        }
      });
    },
  },
  keys: {
    usage: "streamkv kv keys <bucket> [filter]",
    help: "list keys that have a value, sorted (filter may use * and >)",
    flags: [{ name: "stale", type: "bool", help: "read the node's local state" }],
    async run(parsed, io) {
      const [bucket, filter] = wantPositionals(parsed, 1, 2, this.usage);
      await withConnection(parsed, async (nc) => {
        const kv = await nc.keyValue(bucket!);
        const stale = Boolean(parsed.flags.get("stale"));
        const keys = kv.listKeys(filter ?? ">", { stale });
        // Streamed page by page in both forms: neither side holds the whole listing.
        await writeStreamed(io, parsed.flags.get("json") ? jsonArray(keys) : lines(keys));
      });
    },
  },
  history: {
    usage: "streamkv kv history <bucket> <key>",
    help: "list the retained revisions of a key, oldest first",
    flags: [],
    async run(parsed, io) {
      const [bucket, key] = wantPositionals(parsed, 2, 2, this.usage);
      await withConnection(parsed, async (nc) => {
        const kv = await nc.keyValue(bucket!);
        const entries = await kv.history(key!);
        if (parsed.flags.get("json")) {
          io.stdout.write(`${JSON.stringify(entries.map(entryJson))}\n`);
          return;
        }
        if (entries.length === 0) {
          io.stdout.write(`no history for ${key}\n`);
          return;
        }
        io.stdout.write(
          `${"REVISION".padStart(8)}  OP     CREATED                   SIZE  VALUE\n`,
        );
        for (const e of entries) {
          io.stdout.write(
            `${String(e.revision).padStart(8)}  ${e.operation.padEnd(5)}  ${e.created.toISOString()}  ${String(e.size).padStart(5)}  ${shortValue(e)}\n`,
          );
        }
      });
    },
  },
  watch: {
    usage: "streamkv kv watch <bucket> [filter] [flags]   (until Ctrl-C)",
    help: "print changes as they happen",
    flags: [
      { name: "history", type: "bool", help: "start with every retained revision" },
      { name: "ignore-deletes", type: "bool", help: "skip delete and purge markers" },
      { name: "meta-only", type: "bool", help: "leave values out" },
      { name: "updates-only", type: "bool", help: "only changes from now on" },
      {
        name: "resume-from",
        type: "int",
        min: 1,
        help: "every retained revision from this one on",
      },
    ],
    async run(parsed, io) {
      const [bucket, filter] = wantPositionals(parsed, 1, 2, this.usage);
      const f = parsed.flags;
      const onEvent = watchEventReporter(io);
      await withConnection(
        parsed,
        async (nc) => {
          const kv = await nc.keyValue(bucket!);
          const resume = f.get("resume-from");
          const w = await kv.watch(filter ?? ">", {
            includeHistory: Boolean(f.get("history")),
            ignoreDeletes: Boolean(f.get("ignore-deletes")),
            metaOnly: Boolean(f.get("meta-only")),
            updatesOnly: Boolean(f.get("updates-only")),
            ...(resume === undefined ? {} : { resumeFromRevision: Number(resume) }),
          });
          void io.interrupted().then(() => w.stop());
          const json = Boolean(f.get("json"));
          for await (const e of w) {
            if (e === null) {
              io.stdout.write(
                json ? `${JSON.stringify({ initDone: true })}\n` : "# initial values done\n",
              );
            } else if (json) {
              io.stdout.write(`${JSON.stringify(entryJson(e))}\n`);
            } else {
              const value = shortValue(e, 200);
              io.stdout.write(
                `[${e.created.toISOString()}] ${e.operation} ${e.bucket} > ${e.key} @${e.revision}${value ? `: ${value}` : ""}\n`,
              );
            }
          }
        },
        { onEvent },
      );
    },
  },
  status: statusCommand("status", "show a bucket's configuration and size"),
  info: statusCommand("info", "the same as status (as in nats kv info)"),
  compact: {
    usage: "streamkv kv compact <bucket> [--older-than <duration>] [-f]",
    help: "drop delete and purge markers (and the revisions they hid) to reclaim space",
    flags: [
      {
        name: "older-than",
        type: "duration",
        min: 0,
        help: "only markers older than this: 30m, 1h, 0 = all (default: the server's, 30m)",
      },
      FORCE_FLAG,
    ],
    async run(parsed, io) {
      const [bucket] = wantPositionals(parsed, 1, 1, this.usage);
      const olderThan = parsed.flags.get("older-than");
      await confirm(parsed, io, `drop the delete and purge markers of bucket ${bucket}`);
      await withConnection(parsed, async (nc) => {
        const kv = await nc.keyValue(bucket!);
        const removed = await kv.purgeDeletes(
          olderThan === undefined ? {} : { olderThanMs: Number(olderThan) },
        );
        // The server counts every entry it removed: markers and the revisions they hid.
        const entries = removed === 1 ? "entry" : "entries";
        if (parsed.flags.get("json")) io.stdout.write(`${JSON.stringify({ removed })}\n`);
        else io.stdout.write(`compacted bucket ${bucket}: ${removed} ${entries} removed\n`);
      });
    },
  },
  rm: {
    usage: "streamkv kv rm <bucket> [-f]",
    help: "delete a bucket and all its data",
    flags: [FORCE_FLAG],
    async run(parsed, io) {
      const [bucket] = wantPositionals(parsed, 1, 1, this.usage);
      await confirm(parsed, io, `delete bucket ${bucket} and all its data`);
      await withConnection(parsed, async (nc) => {
        await nc.deleteKeyValue(bucket!);
        if (parsed.flags.get("json")) io.stdout.write(`${JSON.stringify({ deleted: bucket })}\n`);
        else io.stdout.write(`deleted bucket ${bucket}\n`);
      });
    },
  },
};

/** `status` and its nats-style alias `info`. */
function statusCommand(name: string, help: string): Command {
  return {
    usage: `streamkv kv ${name} <bucket>`,
    help,
    flags: [],
    async run(parsed, io) {
      const [bucket] = wantPositionals(parsed, 1, 1, this.usage);
      await withConnection(parsed, async (nc) => {
        const kv = await nc.keyValue(bucket!);
        printStatus(parsed, io, await kv.status());
      });
    },
  };
}

/**
 * `kv watch` runs for hours: tell the person on stderr when the connection drops, when
 * it is back and where the watch resumed, so a quiet watch is not mistaken for a quiet
 * bucket. One line per outage for the retries, not one per attempt.
 */
function watchEventReporter(io: Io): (event: ConnectionEvent) => void {
  let down = false;
  return (e) => {
    const say = (line: string) => io.stderr.write(`streamkv: watch: ${line}\n`);
    switch (e.type) {
      case "disconnected":
        down = true;
        say(`disconnected from ${e.server} (${e.reason}); reconnecting`);
        break;
      case "reconnecting":
        if (!down) {
          down = true;
          say(`cannot reach ${e.server}; reconnecting`);
        }
        break;
      case "connected":
        if (down) say(`reconnected to ${e.server} (node ${e.serverId})`);
        down = false;
        break;
      case "watch_resumed":
        say(`resumed ${e.bucket} > ${e.filter} from revision ${e.fromRevision} (${e.reason})`);
        break;
      case "watch_catch_up":
        say(
          e.reset
            ? `${e.bucket} > ${e.filter}: revisions ${e.fromRevision}..${e.toRevision} are gone; re-listing every key`
            : `${e.bucket} > ${e.filter}: caught up over revisions ${e.fromRevision}..${e.toRevision} (only the latest entry of each changed key)`,
        );
        break;
      case "failover":
        say(`leaving ${e.server}: ${e.reason}`);
        break;
      case "server_error":
        say(`server error ${e.code}: ${e.message}`);
        break;
    }
  };
}

export function kvUsage(): string {
  const lines = ["usage: streamkv kv <command> [args] [flags]", "", "commands:"];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(9)} ${c.help}`);
  lines.push(
    "",
    "common flags:",
    flagHelp(COMMON_FLAGS),
    "",
    "streamkv kv <command> --help for more",
  );
  return lines.join("\n");
}

export async function runKv(argv: readonly string[], io: Io): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    throw new UsageError(
      `missing command: ${Object.keys(COMMANDS).join(", ")} (see streamkv kv --help)`,
    );
  }
  if (name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${kvUsage()}\n`);
    return;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command "kv ${name}" (see streamkv kv --help)`);
  const specs = [...COMMON_FLAGS, ...command.flags];
  const parsed = parseArgs(rest, specs, io.env);
  if (parsed.help) {
    io.stdout.write(`usage: ${command.usage}\n\n${command.help}\n\nflags:\n${flagHelp(specs)}\n`);
    return;
  }
  await command.run(parsed, io);
}

async function withConnection(
  parsed: Parsed,
  body: (nc: Awaited<ReturnType<typeof open>>) => Promise<void>,
  extra: Partial<ConnectOptions> = {},
): Promise<void> {
  const nc = await open(parsed, extra);
  try {
    await body(nc);
  } finally {
    await nc.close();
  }
}

async function valueArg(arg: string | undefined, io: Io): Promise<Uint8Array> {
  if (arg !== undefined) return new TextEncoder().encode(arg);
  if (io.stdin.isTTY) throw new UsageError("give the value as an argument or on stdin");
  return readAll(io.stdin);
}

function printRevision(parsed: Parsed, io: Io, revision: number): void {
  if (parsed.flags.get("json")) io.stdout.write(`${JSON.stringify({ revision })}\n`);
  else io.stdout.write(`${revision}\n`);
}

function printStatus(parsed: Parsed, io: Io, s: KeyValueStatus): void {
  if (parsed.flags.get("json")) {
    io.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ["bucket", s.bucket],
    ["description", s.description],
    ["values", String(s.values)],
    ["bytes", String(s.bytes)],
    ["history", String(s.history)],
    ["ttl (ms)", s.ttl === 0 ? "0 (forever)" : String(s.ttl)],
    [
      "max value size",
      s.maxValueSize < 0 ? `server max (${s.valueLimitBytes})` : String(s.maxValueSize),
    ],
    ["max bytes", s.maxBytes < 0 ? "unlimited" : String(s.maxBytes)],
    ["replicas", String(s.replicas)],
    [
      "revisions",
      s.lastRevision < s.firstRevision ? "none" : `${s.firstRevision}..${s.lastRevision}`,
    ],
    ["leader", s.leader || "-"],
  ];
  for (const [k, v] of rows) io.stdout.write(`${k.padEnd(16)} ${v}\n`);
}

async function* lines(items: AsyncIterable<string>): AsyncIterable<string> {
  for await (const item of items) yield `${item}\n`;
}

/** The same text as `JSON.stringify([...items])` and a newline, produced item by item. */
async function* jsonArray(items: AsyncIterable<string>): AsyncIterable<string> {
  let first = true;
  for await (const item of items) {
    yield `${first ? "[" : ","}${JSON.stringify(item)}`;
    first = false;
  }
  yield first ? "[]\n" : "]\n";
}
