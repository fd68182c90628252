/**
 * Who may speak on the peer port: a cluster secret proven by an HMAC challenge-response
 * in the hello (proto/peer.proto describes the three frames), mutual TLS, or both.
 *
 * The proof is HMAC-SHA256 keyed by the secret over a role label, the cluster id, both
 * node ids and both nonces, each length-prefixed so no two inputs encode alike. Each
 * side's nonce is fresh, so a recorded proof is useless on another connection, and the
 * role label differs per direction, so a proof one side sent cannot be reflected back
 * as the other side's. The secret itself never travels; proofs are compared with
 * `crypto.timingSafeEqual`.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { PeerCertificate } from "node:tls";
import { ConfigError, type ServerConfig } from "./config.js";
import { allOrNone, checkKeyPair, readPem } from "./tls_files.js";

export const PEER_NONCE_BYTES = 32;
/** Shorter secrets are refused at start: they could be guessed offline from one proof. */
export const PEER_SECRET_MIN_BYTES = 16;
/** A secret file larger than this is not a secret file. */
const PEER_SECRET_MAX_BYTES = 4096;

export interface PeerTls {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
  /** When set, the other side's certificate must carry one of these names (CN or SAN). */
  allowedNames: string[] | undefined;
}

export interface PeerSecurity {
  secret: Buffer | undefined;
  tls: PeerTls | undefined;
  /** Warnings to log at start (a readable secret file, an unauthenticated port). */
  warnings: string[];
}

export type PeerRole = "dialer" | "acceptor";

export interface HandshakeInput {
  clusterId: string;
  dialer: string;
  acceptor: string;
  dialerNonce: Uint8Array;
  acceptorNonce: Uint8Array;
}

export function newNonce(): Buffer {
  return randomBytes(PEER_NONCE_BYTES);
}

/** The proof `role` sends on this connection. */
export function peerProof(secret: Buffer, role: PeerRole, h: HandshakeInput): Buffer {
  const mac = createHmac("sha256", secret);
  for (const part of [
    `streamkv-peer-v2:${role}`,
    h.clusterId,
    h.dialer,
    h.acceptor,
    h.dialerNonce,
    h.acceptorNonce,
  ]) {
    const bytes = typeof part === "string" ? Buffer.from(part, "utf8") : Buffer.from(part);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    mac.update(len);
    mac.update(bytes);
  }
  return mac.digest();
}

/** Constant-time check of a received proof (any length is safe to pass). */
export function proofMatches(
  secret: Buffer,
  role: PeerRole,
  h: HandshakeInput,
  received: Uint8Array,
): boolean {
  const expected = peerProof(secret, role, h);
  if (received.length !== expected.length) return false;
  return timingSafeEqual(expected, received);
}

/** The names a certificate vouches for: its subject CN and its DNS and IP SANs. */
export function certificateNames(cert: PeerCertificate | undefined): string[] {
  if (!cert || Object.keys(cert).length === 0) return [];
  const names: string[] = [];
  const cn = cert.subject?.CN;
  if (typeof cn === "string") names.push(cn);
  else if (Array.isArray(cn)) names.push(...(cn as string[]));
  for (const part of (cert.subjectaltname ?? "").split(",")) {
    const m = /^\s*(DNS|IP Address):(.+)$/.exec(part);
    if (m) names.push(m[2]!.trim());
  }
  return names;
}

/** Reads the peer credentials the config names; a bad file is a ConfigError (exit 2). */
export function loadPeerSecurity(config: ServerConfig): PeerSecurity {
  const warnings: string[] = [];
  let secret: Buffer | undefined;
  if (config.peerSecretFile !== "") {
    const path = config.peerSecretFile;
    let raw: Buffer;
    try {
      if (statSync(path).size > PEER_SECRET_MAX_BYTES) {
        throw new ConfigError(
          `--peer-secret-file ${path}: larger than ${PEER_SECRET_MAX_BYTES} bytes`,
        );
      }
      raw = readFileSync(path);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`--peer-secret-file ${path}: ${(err as Error).message}`);
    }
    // A trailing newline from an editor or `echo` is not part of the secret.
    secret = Buffer.from(raw.toString("utf8").replace(/[\r\n]+$/, ""), "utf8");
    if (secret.length < PEER_SECRET_MIN_BYTES) {
      throw new ConfigError(
        `--peer-secret-file ${path}: the secret has ${secret.length} bytes, use at least ${PEER_SECRET_MIN_BYTES} (e.g. openssl rand -hex 32)`,
      );
    }
    try {
      if ((statSync(path).mode & 0o077) !== 0) {
        warnings.push(`--peer-secret-file ${path} is readable by other users: chmod 600 it`);
      }
    } catch {}
  }
  let tls: PeerTls | undefined;
  const given = allOrNone("mutual TLS on the peer port", [
    ["--peer-tls-cert", config.peerTlsCert],
    ["--peer-tls-key", config.peerTlsKey],
    ["--peer-tls-ca", config.peerTlsCa],
  ]);
  if (given) {
    const names = config.peerTlsAllowedNames
      .split(",")
      .map((n) => n.trim())
      .filter((n) => n !== "");
    const cert = readPem("--peer-tls-cert", config.peerTlsCert, "certificate");
    const key = readPem("--peer-tls-key", config.peerTlsKey, "private key");
    checkKeyPair("--peer-tls-cert", "--peer-tls-key", cert, key);
    tls = {
      cert,
      key,
      ca: readPem("--peer-tls-ca", config.peerTlsCa, "certificate"),
      allowedNames: names.length > 0 ? names : undefined,
    };
  } else if (config.peerTlsAllowedNames !== "") {
    throw new ConfigError(
      "--peer-tls-allowed-names needs --peer-tls-cert, --peer-tls-key and --peer-tls-ca",
    );
  }
  if (!secret && !tls) {
    warnings.push(
      "the peer port is unauthenticated: anyone who can reach it and knows the cluster id may speak Raft to this node; set --peer-secret-file or --peer-tls-cert/--peer-tls-key/--peer-tls-ca (node/README.md)",
    );
  }
  return { secret, tls, warnings };
}
