/** `streamkv kv ...`: the bucket and key commands, mirroring `nats kv`. */
import type { KeyValueStatus } from "../client/index.js";
import { type FlagSpec, flagHelp, type Parsed, parseArgs, UsageError } from "./args.js";
import {
  COMMON_FLAGS,
  entryJson,
  type Io,
  open,
  readAll,
  shortValue,
  wantPositionals,
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

/** `del` and `purge`: a marker write, optionally guarded by --last. */
function markerCommand(method: "delete" | "purge", name: string, help: string): Command {
  return {
    usage: `streamkv kv ${name} <bucket> <key> [--last <revision>]`,
    help,
    flags: [lastFlag],
    async run(parsed, io) {
      const [bucket, key] = wantPositionals(parsed, 2, 2, this.usage);
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
      { name: "ttl", type: "int", min: 0, help: "entries expire after this many ms (0 = never)" },
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
    help: "print the value raw (pipe-friendly); fails if the key has no value",
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
            rev === undefined
              ? `key ${key} has no value in bucket ${bucket}`
              : `key ${key} has no value at revision ${rev} in bucket ${bucket}`,
          );
        }
        if (parsed.flags.get("json")) io.stdout.write(`${JSON.stringify(entryJson(entry))}\n`);
        else io.stdout.write(entry.value);
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
        if (parsed.flags.get("json")) {
          io.stdout.write(`${JSON.stringify(await kv.keys(filter ?? ">", { stale }))}\n`);
          return;
        }
        for await (const k of kv.listKeys(filter ?? ">", { stale })) io.stdout.write(`${k}\n`);
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
      await withConnection(parsed, async (nc) => {
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
      });
    },
  },
  status: {
    usage: "streamkv kv status <bucket>",
    help: "show a bucket's configuration and size",
    flags: [],
    async run(parsed, io) {
      const [bucket] = wantPositionals(parsed, 1, 1, this.usage);
      await withConnection(parsed, async (nc) => {
        const kv = await nc.keyValue(bucket!);
        printStatus(parsed, io, await kv.status());
      });
    },
  },
  rm: {
    usage: "streamkv kv rm <bucket>",
    help: "delete a bucket and all its data",
    flags: [],
    async run(parsed, io) {
      const [bucket] = wantPositionals(parsed, 1, 1, this.usage);
      await withConnection(parsed, async (nc) => {
        await nc.deleteKeyValue(bucket!);
        if (parsed.flags.get("json")) io.stdout.write(`${JSON.stringify({ deleted: bucket })}\n`);
        else io.stdout.write(`deleted bucket ${bucket}\n`);
      });
    },
  },
};

/** An operation that failed in a way that is not a KvError (e.g. get of a missing key). */
export class CliFailure extends Error {
  override readonly name = "CliFailure";
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
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
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
): Promise<void> {
  const nc = await open(parsed);
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
