/**
 * Public types of the client SDK (DESIGN.md section 6). They mirror NATS JetStream
 * KV (nats.js `KvEntry`, `KvStatus`, `KvWatchOptions`) with the semantics of
 * SEMANTICS.md.
 */

import type { BucketConfigInput, BucketInfo } from "../proto/index.js";

// The shapes shared with the server are declared once, in proto/types.ts.
export type { ClusterStatus, Entry, Operation, PeerStatus } from "../proto/index.js";

/**
 * Configuration of a bucket; absent fields take the server defaults (DESIGN.md
 * section 1). `ttl` is in ms (0 = forever); the rest as in proto/types.ts.
 */
export interface KeyValueConfig extends Omit<BucketConfigInput, "ttlMs"> {
  /** Entries expire this long after they were written, in ms (0 = forever). */
  ttl?: number;
}

/** What `kv.status()` and `nc.listBuckets()` report about a bucket. */
export interface KeyValueStatus extends Omit<BucketInfo, "ttlMs"> {
  /** ms, 0 = forever. */
  ttl: number;
}

export interface WatchOptions {
  /** All retained entries instead of the latest per key. */
  includeHistory?: boolean;
  /** Drop DEL and PURGE entries. */
  ignoreDeletes?: boolean;
  /** Entries without value bytes (`size` still set). */
  metaOnly?: boolean;
  /** No initial values: the `null` comes first. */
  updatesOnly?: boolean;
  /** Every retained matching entry with revision >= this, then `null`, then live. */
  resumeFromRevision?: number;
  /** Events the server may send ahead of the application (default 256). */
  bufferSize?: number;
  /** Timeout of the subscribe request in ms (default: the connection's timeoutMs). */
  timeoutMs?: number;
}

/** Options every call accepts. */
export interface CallOptions {
  /** Fail with TIMEOUT after this many ms (default: the connection's timeoutMs). */
  timeoutMs?: number;
}

/** Options of reads. */
export interface ReadOptions extends CallOptions {
  /** Serve from the contacted node's applied state, skipping ReadIndex (may be stale). */
  stale?: boolean;
}

export interface DeleteOptions extends CallOptions {
  /** Only if the key's latest revision is this (0 = the key has no entry). */
  last?: number;
}

export interface PurgeDeletesOptions extends CallOptions {
  /** Remove markers older than this many ms (default 30 minutes). */
  olderThanMs?: number;
}

/** Something that happened to the connection; the application may ignore all of these. */
export type ConnectionEvent =
  | { type: "connected"; server: string; serverId: string }
  | { type: "disconnected"; server: string; reason: string }
  | { type: "reconnecting"; server: string; attempt: number; delayMs: number }
  | { type: "watch_resumed"; bucket: string; filter: string; fromRevision: number; reason: string }
  | { type: "server_error"; code: string; message: string };

/** PEM text, or its bytes (what Node's `readFileSync` returns is such bytes). */
export type Pem = string | Uint8Array;

/**
 * TLS settings for `wss://` servers, Node only (in a browser `wss://` is verified by the
 * browser's own certificate store, and passing `tls` fails with INVALID_ARGUMENT).
 */
export interface TlsOptions {
  /** CA(s) that signed the servers' certificates (default: Node's built-in roots). */
  ca?: Pem | Pem[];
  /** Client certificate, for a node started with `--tls-client-ca` (with `key`). */
  cert?: Pem;
  /** Private key of `cert`. */
  key?: Pem;
}

export interface ConnectOptions {
  /**
   * WebSocket URLs of any nodes of the cluster, e.g. `ws://127.0.0.1:7420`, or
   * `wss://host:7420` for a node started with `--tls-cert`.
   */
  servers: string[] | string;
  /**
   * Sent in the hello frame when the server requires one. Never over plain `ws://` to a
   * host other than loopback (127.0.0.0/8, ::1, localhost): `connect` fails with
   * INSECURE_TRANSPORT before opening a socket, unless `insecure` is true.
   */
  token?: string;
  /** TLS for `wss://` servers in Node: the CA to trust and a client certificate. */
  tls?: TlsOptions;
  /** Allow sending the token over plain `ws://` to a non-loopback host (trusted networks only). */
  insecure?: boolean;
  /** Default timeout of every call in ms (default 5000). Also bounds the first connect. */
  timeoutMs?: number;
  /** Name the server may log for this connection. */
  name?: string;
  /** First reconnect delay in ms (default 50); doubles up to `reconnectDelayMaxMs`. */
  reconnectDelayMs?: number;
  /** Longest reconnect delay in ms (default 2000). */
  reconnectDelayMaxMs?: number;
  /** Called on connection events (reconnects, resumed watches). */
  onEvent?: (event: ConnectionEvent) => void;
}
