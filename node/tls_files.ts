/**
 * The PEM files of TLS on either port (`--tls-*` for clients, `--peer-tls-*` for peers),
 * read and checked at start: a missing or unreadable file, a file that is not PEM of
 * its kind, or a key that does not belong to its certificate is a `ConfigError` (exit 2,
 * one line naming the flag), never a failure at the first handshake.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { ConfigError, type ServerConfig } from "./config.js";

/** TLS on the client port (`--tls-cert`, `--tls-key`, `--tls-client-ca`). */
export interface ClientTls {
  cert: Buffer;
  key: Buffer;
  /** Mutual TLS: every client must present a certificate this CA signed. */
  clientCa: Buffer | undefined;
}

/** Both ports accept nothing older. */
export const TLS_MIN_VERSION = "TLSv1.2";

/**
 * Whether the files `[flag, path]` of one feature are all given; none given is false,
 * some but not all is a ConfigError naming the missing flags.
 */
export function allOrNone(what: string, files: readonly (readonly [string, string])[]): boolean {
  const missing = files.filter(([, path]) => path === "").map(([flag]) => flag);
  if (missing.length === 0) return true;
  if (missing.length === files.length) return false;
  const flags = files.map(([flag]) => flag);
  const list = `${flags.slice(0, -1).join(", ")} and ${flags[flags.length - 1]}`;
  throw new ConfigError(`${what} needs ${list} together (missing ${missing.join(", ")})`);
}

/** The PEM file `path` of `flag`: a certificate (or a CA bundle) or a private key. */
export function readPem(flag: string, path: string, kind: "certificate" | "private key"): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${flag} ${path}: ${(err as Error).message}`);
  }
  try {
    if (!pem.includes("-----BEGIN ")) throw new Error("no PEM header");
    if (kind === "private key") createPrivateKey(pem);
    else new X509Certificate(pem);
  } catch (err) {
    throw new ConfigError(`${flag} ${path}: not a PEM ${kind} (${(err as Error).message})`);
  }
  return pem;
}

/** A certificate and the private key of `keyFlag` must belong together. */
export function checkKeyPair(certFlag: string, keyFlag: string, cert: Buffer, key: Buffer): void {
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError(
      `${keyFlag} is not the private key of ${certFlag} (${(err as Error).message})`,
    );
  }
}

/** The client port's TLS files, or undefined for plain ws:// and http://. */
export function loadClientTls(config: ServerConfig): ClientTls | undefined {
  const given = allOrNone("TLS on the client port", [
    ["--tls-cert", config.tlsCert],
    ["--tls-key", config.tlsKey],
  ]);
  if (!given) {
    if (config.tlsClientCa !== "") {
      throw new ConfigError(
        "--tls-client-ca needs --tls-cert and --tls-key (TLS on the client port)",
      );
    }
    return undefined;
  }
  const cert = readPem("--tls-cert", config.tlsCert, "certificate");
  const key = readPem("--tls-key", config.tlsKey, "private key");
  checkKeyPair("--tls-cert", "--tls-key", cert, key);
  const clientCa =
    config.tlsClientCa === ""
      ? undefined
      : readPem("--tls-client-ca", config.tlsClientCa, "certificate");
  return { cert, key, clientCa };
}
