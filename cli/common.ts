/** Flags and helpers shared by the `streamkv kv` and `streamkv cluster` commands. */
import { readFileSync } from "node:fs";
import {
  type ConnectOptions,
  connect,
  type Entry,
  type KvConnection,
  type TlsOptions,
} from "../client/index.js";
import type { Io } from "../node/index.js";
import { CliFailure, type FlagSpec, type Parsed, UsageError } from "./args.js";

export const DEFAULT_URL = "ws://127.0.0.1:7420";

export const COMMON_FLAGS: readonly FlagSpec[] = [
  {
    name: "server",
    type: "string",
    env: "STREAMKV_URL",
    default: DEFAULT_URL,
    short: "s",
    help: "server URL(s), comma-separated",
  },
  { name: "json", type: "bool", short: "j", help: "print JSON for scripts" },
  {
    name: "timeout",
    type: "duration",
    min: 1,
    default: 5000,
    help: "timeout of each request (10s, 500ms; a plain integer is ms)",
  },
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
  // No env vars: STREAMKV_TLS_CERT/KEY are the server's own certificate.
  { name: "tls-ca", type: "string", help: "PEM CA that signed the servers' certificates (wss://)" },
  {
    name: "tls-cert",
    type: "string",
    help: "PEM client certificate, for a server with --tls-client-ca (with --tls-key)",
  },
  { name: "tls-key", type: "string", help: "PEM private key of --tls-cert" },
  {
    name: "insecure",
    type: "bool",
    help: "allow sending the token over plain ws:// to a host other than loopback",
  },
];

/** Where a command writes (declared in node/, which the server shares). */
export type { Io } from "../node/index.js";

/** `-f` / `--force` of the commands that otherwise ask first. */
export const FORCE_FLAG: FlagSpec = {
  name: "force",
  type: "bool",
  short: "f",
  help: "do it without asking (needed when stdin is not a terminal)",
};

/**
 * Asks on the terminal before a destructive `action` ("delete bucket cfg and all its
 * data") unless `--force`. With no terminal to ask on it refuses (a usage error, exit 2)
 * rather than waiting for an answer that a script never gives.
 */
export async function confirm(parsed: Parsed, io: Io, action: string): Promise<void> {
  if (parsed.flags.get("force") === true) return;
  if (!io.stdin.isTTY) {
    throw new UsageError(`stdin is not a terminal, so nobody can confirm: add -f to ${action}`);
  }
  io.stderr.write(`${action[0]!.toUpperCase()}${action.slice(1)}? [y/N] `);
  let answer = "";
  for await (const chunk of io.stdin) {
    answer += chunk.toString();
    if (answer.includes("\n")) break;
  }
  if (!/^\s*y(es)?\s*$/i.test(answer.split("\n")[0]!)) {
    throw new CliFailure("CANCELLED", `not confirmed: did not ${action}`);
  }
}

/** Whether a stream is a terminal (where a person reads it, not a pipe). */
export function isTerminal(stream: object): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}

/** The servers of `--server` (comma-separated). */
export function serversOf(parsed: Parsed): string[] {
  return String(parsed.flags.get("server"))
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The file named by `--<flag>`, or undefined when the flag is not given. */
function fileOf(parsed: Parsed, flag: string): string | undefined {
  const path = parsed.flags.get(flag);
  if (typeof path !== "string" || path === "") return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`--${flag} ${path}: cannot read: ${(err as Error).message}`);
  }
}

/** The token of `--token` or `--token-file` (one of them), or undefined. */
export function tokenOf(parsed: Parsed): string | undefined {
  const token = parsed.flags.get("token");
  const given = typeof token === "string" && token !== "";
  const text = fileOf(parsed, "token-file");
  if (text === undefined) return given ? (token as string) : undefined;
  if (given) throw new UsageError("give --token or --token-file, not both");
  const fromFile = text.trim();
  if (fromFile === "" || /\s/.test(fromFile)) {
    throw new UsageError(
      `--token-file ${parsed.flags.get("token-file")}: must hold one token on one line`,
    );
  }
  return fromFile;
}

/** A PEM file of `--tls-ca`, `--tls-cert` or `--tls-key`, or undefined when not given. */
function pemOf(parsed: Parsed, flag: string): string | undefined {
  const pem = fileOf(parsed, flag);
  if (pem !== undefined && !pem.includes("-----BEGIN ")) {
    throw new UsageError(
      `--${flag} ${parsed.flags.get(flag)}: not a PEM file (no -----BEGIN line)`,
    );
  }
  return pem;
}

/** The SDK's `tls` option from `--tls-ca`, `--tls-cert`, `--tls-key`, or undefined. */
function tlsOf(parsed: Parsed): TlsOptions | undefined {
  const ca = pemOf(parsed, "tls-ca");
  const cert = pemOf(parsed, "tls-cert");
  const key = pemOf(parsed, "tls-key");
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together (a client certificate and its key)");
  }
  if (ca === undefined && cert === undefined) return undefined;
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined || key === undefined ? {} : { cert, key }),
  };
}

/**
 * What every command connects with: `servers` (default: `--server`), timeout, token,
 * TLS files. The SDK refuses a token over plain ws:// to a non-loopback host
 * (INSECURE_TRANSPORT) unless `--insecure`.
 */
export function connectOptions(parsed: Parsed, servers = serversOf(parsed)): ConnectOptions {
  const token = tokenOf(parsed);
  const tls = tlsOf(parsed);
  return {
    servers,
    timeoutMs: Number(parsed.flags.get("timeout")),
    ...(token === undefined ? {} : { token }),
    ...(tls === undefined ? {} : { tls }),
    ...(parsed.flags.get("insecure") === true ? { insecure: true } : {}),
    name: "streamkv-cli",
  };
}

export async function open(
  parsed: Parsed,
  extra: Partial<ConnectOptions> = {},
): Promise<KvConnection> {
  return connect({ ...connectOptions(parsed), ...extra });
}

export function wantPositionals(parsed: Parsed, min: number, max: number, usage: string): string[] {
  const p = parsed.positionals;
  if (p.length < min || p.length > max) {
    throw new UsageError(`wrong number of arguments; usage: ${usage}`);
  }
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

/** Bytes of output gathered before one write (a million keys are not a million writes). */
const OUTPUT_CHUNK_CHARS = 64 * 1024;

/**
 * Writes `pieces` to stdout in chunks, waiting for the stream to drain whenever it says
 * its buffer is full: a listing of a million keys into a slow pipe holds one chunk in
 * memory, not the whole listing.
 */
export async function writeStreamed(io: Io, pieces: AsyncIterable<string>): Promise<void> {
  const out = io.stdout as Io["stdout"] & {
    once?: (event: "drain", listener: () => void) => unknown;
  };
  let chunk = "";
  const flush = async (): Promise<void> => {
    if (chunk === "") return;
    const ok = out.write(chunk);
    chunk = "";
    if (ok === false && typeof out.once === "function") {
      await new Promise<void>((resolve) => out.once!("drain", resolve));
    }
  };
  for await (const piece of pieces) {
    chunk += piece;
    if (chunk.length >= OUTPUT_CHUNK_CHARS) await flush();
  }
  await flush();
}
