/** Flags and helpers shared by the `streamkv kv` and `streamkv cluster` commands. */
import { readFileSync } from "node:fs";
import { type ConnectOptions, connect, type Entry, type KvConnection } from "../client/index.js";
import { type FlagSpec, type Parsed, UsageError } from "./args.js";

export const DEFAULT_URL = "ws://127.0.0.1:7420";

export const COMMON_FLAGS: readonly FlagSpec[] = [
  {
    name: "server",
    type: "string",
    env: "STREAMKV_URL",
    default: DEFAULT_URL,
    help: "server URL(s), comma-separated",
  },
  { name: "json", type: "bool", help: "print JSON for scripts" },
  { name: "timeout", type: "int", min: 1, default: 5000, help: "timeout of each request in ms" },
  {
    name: "token",
    type: "string",
    env: "STREAMKV_TOKEN",
    help: "token for the server (prefer --token-file or the env: ps shows flags)",
  },
  {
    name: "token-file",
    type: "string",
    env: "STREAMKV_TOKEN_FILE",
    help: "read the token from this file",
  },
];

/** Where a command writes (declared in node/, which the server shares). */
export type { Io } from "../node/index.js";

/** The servers of `--server` (comma-separated). */
export function serversOf(parsed: Parsed): string[] {
  return String(parsed.flags.get("server"))
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The token of `--token` or `--token-file` (one of them), or undefined. */
export function tokenOf(parsed: Parsed): string | undefined {
  const token = parsed.flags.get("token");
  const file = parsed.flags.get("token-file");
  const given = typeof token === "string" && token !== "";
  if (typeof file !== "string" || file === "") return given ? (token as string) : undefined;
  if (given) throw new UsageError("give --token or --token-file, not both");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`--token-file ${file}: cannot read: ${(err as Error).message}`);
  }
  const fromFile = text.trim();
  if (fromFile === "" || /\s/.test(fromFile)) {
    throw new UsageError(`--token-file ${file}: must hold one token on one line`);
  }
  return fromFile;
}

/** What every command connects with: `servers` (default: `--server`), timeout, token. */
export function connectOptions(parsed: Parsed, servers = serversOf(parsed)): ConnectOptions {
  const token = tokenOf(parsed);
  return {
    servers,
    timeoutMs: Number(parsed.flags.get("timeout")),
    ...(token === undefined ? {} : { token }),
    name: "streamkv-cli",
  };
}

export async function open(parsed: Parsed): Promise<KvConnection> {
  return connect(connectOptions(parsed));
}

export function wantPositionals(parsed: Parsed, min: number, max: number, usage: string): string[] {
  const p = parsed.positionals;
  if (p.length < min || p.length > max) throw new UsageError(`usage: ${usage}`);
  return p;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function utf8OrUndefined(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export function entryJson(e: Entry): Record<string, unknown> {
  const text = utf8OrUndefined(e.value);
  return {
    bucket: e.bucket,
    key: e.key,
    revision: e.revision,
    operation: e.operation,
    created: e.created.toISOString(),
    delta: e.delta,
    size: e.size,
    ...(text === undefined
      ? { valueBase64: Buffer.from(e.value).toString("base64") }
      : { value: text }),
  };
}

/** A value for a one-line human display: text if printable, else its size. */
export function shortValue(e: Entry, max = 60): string {
  if (e.operation !== "PUT") return "";
  const text = utf8OrUndefined(e.value);
  if (text === undefined || hasControlCharacters(text)) return `<${e.size} bytes>`;
  const oneLine = text.replace(/\s+/g, " ");
  return oneLine.length > max ? `${oneLine.slice(0, max)}...` : oneLine;
}

export async function readAll(stdin: AsyncIterable<Uint8Array | string>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of stdin) chunks.push(typeof c === "string" ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

function hasControlCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return true;
  }
  return false;
}
