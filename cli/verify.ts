/**
 * `streamkv verify --data DIR`: checks every checksum LevelDB stores in a node's data
 * directory (CURRENT, the MANIFEST, the write-ahead logs and every block of every live
 * table), prints what it checked and each damage found. Exit 0 clean, 1 damaged
 * (`streamkv: CORRUPT_RECORD: ...`), 2 bad usage. Only reads: safe on a running node's
 * directory, where a table a compaction deletes meanwhile is skipped and said so.
 */
import { ConfigError, type DataDirVerifyReport, verifyDataDir } from "../node/index.js";
import { KvError } from "../proto/index.js";
import { type FlagSpec, flagHelp, parseArgs, UsageError } from "./args.js";
import { type Io, wantPositionals } from "./common.js";

const FLAGS: readonly FlagSpec[] = [
  {
    name: "data",
    type: "string",
    env: "STREAMKV_DATA",
    help: "the node's data directory (as streamkv server --data), or its db/ directory",
  },
  { name: "json", type: "bool", short: "j", help: "print JSON for scripts" },
];

const HELP = `usage: streamkv verify --data <dir> [flags]

Verifies every checksum LevelDB stores in a node's data directory: CURRENT, the
MANIFEST, the write-ahead logs and every block of every live table (keys, values, bloom
filters, indexes). A start checks only what LevelDB's recovery reads (not the tables);
a running node verifies its tables slowly in the background (--scrub-bytes-per-second).
Prints the files, bytes and time checked and each damage found (file, offset, reason).
Exit 0 if clean, 1 if damaged (then reset the member: README "A member with corrupted
data"), 2 for bad usage. It only reads: safe on a running node's directory (a table a
compaction deletes meanwhile is skipped and said so).`;

export async function runVerify(argv: readonly string[], io: Io): Promise<void> {
  const parsed = parseArgs(argv, FLAGS, io.env);
  if (parsed.help) {
    io.stdout.write(`${HELP}\n\nflags:\n${flagHelp(FLAGS)}\n`);
    return;
  }
  wantPositionals(parsed, 0, 0, "streamkv verify --data <dir>");
  const dir = String(parsed.flags.get("data") ?? "");
  if (dir === "") throw new UsageError("verify needs --data <dir> (see streamkv verify --help)");
  let report: DataDirVerifyReport;
  try {
    report = await verifyDataDir(dir);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  if (parsed.flags.get("json") === true) io.stdout.write(`${JSON.stringify(report)}\n`);
  else io.stdout.write(describe(report));
  if (report.damage.length > 0) {
    throw new KvError(
      "CORRUPT_RECORD",
      `${report.damage.length} damaged file${report.damage.length === 1 ? "" : "s"} in ${report.dbDir}; this node must not run on this data: reset the member (README, "A member with corrupted data")`,
    );
  }
}

function describe(r: DataDirVerifyReport): string {
  const mib = r.bytes / (1024 * 1024);
  const lines = [
    `verified ${r.dbDir}: ${r.files} files (${r.tables} tables), ${r.bytes} bytes in ${r.seconds.toFixed(2)} s (${(mib / Math.max(r.seconds, 1e-6)).toFixed(0)} MiB/s)`,
    ...r.skipped.map((name) => `skipped ${name}: deleted while the check ran (a compaction)`),
    ...r.damage.map((d) => `damaged ${d.file}: offset ${d.offset}: ${d.reason}`),
    r.damage.length === 0 ? "ok: no damage found" : `${r.damage.length} damaged`,
  ];
  return `${lines.join("\n")}\n`;
}
