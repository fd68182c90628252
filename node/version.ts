/**
 * streamkv's version, from package.json, read once. The metrics' build info and any
 * `--version` read it here, so there is one source.
 */
import { readFileSync } from "node:fs";

function readVersion(): string {
  const text = readFileSync(new URL("../package.json", import.meta.url), "utf8");
  const version = (JSON.parse(text) as { version?: unknown }).version;
  // A label value with a bound: package.json is ours, but it must not blow up a series.
  return typeof version === "string" && /^[0-9A-Za-z.+-]{1,64}$/.test(version)
    ? version
    : "unknown";
}

export const STREAMKV_VERSION = readVersion();
