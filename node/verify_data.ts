/**
 * `streamkv verify --data DIR`: every checksum LevelDB stores in a node's data directory,
 * tables included (log/leveldb_files.ts verifyLevelDb), which a start no longer reads and
 * the running node's scrub reads slowly (node/scrub.ts). Read-only: safe on the directory
 * of a running node.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type LevelDbVerifyReport, verifyLevelDb } from "../log/index.js";
import { ConfigError } from "./config.js";

export interface DataDirVerifyReport extends LevelDbVerifyReport {
  /** The LevelDB directory checked: `<data>/db`, or DIR itself when it is one. */
  dbDir: string;
  seconds: number;
}

/** Verifies the node data directory `dir` (or a LevelDB directory); ConfigError if it is neither. */
export async function verifyDataDir(dir: string): Promise<DataDirVerifyReport> {
  const dbDir = existsSync(join(dir, "db", "CURRENT"))
    ? join(dir, "db")
    : existsSync(join(dir, "CURRENT"))
      ? dir
      : undefined;
  if (dbDir === undefined) {
    throw new ConfigError(
      `--data ${dir}: no LevelDB here (neither ${join(dir, "db", "CURRENT")} nor ${join(dir, "CURRENT")}): not a node's data directory, or the node never started`,
    );
  }
  const started = performance.now();
  const report = await verifyLevelDb(dbDir);
  return { dbDir, ...report, seconds: (performance.now() - started) / 1000 };
}
