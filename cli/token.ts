/**
 * `streamkv token ...`: makes entries for a server's `--tokens-file` (node/auth.ts).
 * The token is printed once, for the client; the file holds only its SHA-256.
 */
import { type FlagSpec, flagHelp, parseArgs, UsageError } from "./args.js";
import { type Io, readAll } from "./common.js";

const CREATE_FLAGS: readonly FlagSpec[] = [
  { name: "name", type: "string", help: "the principal's name, shown in logs (required)" },
  { name: "read", type: "string", help: "bucket patterns it may read, comma-separated (a, b*, *)" },
  { name: "write", type: "string", help: "bucket patterns it may write, comma-separated" },
  {
    name: "admin",
    type: "bool",
    help: "may create/delete buckets, purge markers, see and change the cluster",
  },
  { name: "json", type: "bool", help: "print JSON for scripts" },
];

const USAGE = `usage: streamkv token <command> [flags]

commands:
  create --name <name> [--read <patterns>] [--write <patterns>] [--admin]
         a new random token, and its entry for the server's --tokens-file
  hash   the entry's "sha256" of a token you already have (read from stdin)

A tokens file is {"tokens": [entry, ...]}; the server re-reads it on SIGHUP.

create flags:
${flagHelp(CREATE_FLAGS)}`;

export async function runToken(argv: readonly string[], io: Io): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    throw new UsageError("missing command: create, hash (see streamkv token --help)");
  }
  if (name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${USAGE}\n`);
    return;
  }
  const { newToken, parseTokensFile, sha256Hex } = await import("../node/index.js");
  if (name === "hash") {
    const parsed = parseArgs(rest, [], io.env);
    if (parsed.help || parsed.positionals.length > 0) {
      io.stdout.write('usage: printf %s "$TOKEN" | streamkv token hash\n');
      if (parsed.positionals.length > 0) throw new UsageError("the token comes from stdin");
      return;
    }
    const token = Buffer.from(await readAll(io.stdin))
      .toString("utf8")
      .trim();
    if (token === "" || /\s/.test(token)) throw new UsageError("stdin must hold one token");
    io.stdout.write(`${sha256Hex(token)}\n`);
    return;
  }
  if (name !== "create") {
    throw new UsageError(`unknown command "token ${name}" (see streamkv token --help)`);
  }
  const parsed = parseArgs(rest, CREATE_FLAGS, io.env);
  if (parsed.help) {
    io.stdout.write(`${USAGE}\n`);
    return;
  }
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected ${parsed.positionals[0]}`);
  const principal = parsed.flags.get("name");
  if (typeof principal !== "string" || principal === "") {
    throw new UsageError("token create needs --name <name>");
  }
  const list = (flag: string) => {
    const v = parsed.flags.get(flag);
    return typeof v === "string" && v !== ""
      ? v
          .split(",")
          .map((p) => p.trim())
          .filter(Boolean)
      : undefined;
  };
  const token = newToken();
  const entry: Record<string, unknown> = { name: principal, sha256: sha256Hex(token) };
  if (parsed.flags.get("admin") === true) entry.admin = true;
  const read = list("read");
  const write = list("write");
  if (read) entry.read = read;
  if (write) entry.write = write;
  if (!entry.admin && !read && !write) {
    throw new UsageError("a token with no permissions: give --read, --write or --admin");
  }
  // The server's own parser checks the entry, so a bad name or pattern fails here.
  try {
    parseTokensFile(JSON.stringify({ tokens: [entry] }), "the new entry");
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.flags.get("json")) {
    io.stdout.write(`${JSON.stringify({ token, entry })}\n`);
    return;
  }
  io.stdout.write(
    `token  ${token}\nentry  ${JSON.stringify(entry)}\n\n` +
      "Give the token to the client (--token-file, STREAMKV_TOKEN); it is not shown again.\n" +
      'Add the entry to the server\'s --tokens-file ({"tokens": [...]}) and send it SIGHUP.\n',
  );
}
