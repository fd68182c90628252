/**
 * Public types of the client SDK (DESIGN.md section 6). They mirror NATS JetStream
 * KV (nats.js `KvEntry`, `KvStatus`, `KvWatchOptions`) with the semantics of
 * SEMANTICS.md.
 */

import type { BucketConfigInput, BucketInfo, Entry } from "../proto/index.js";

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
  /**
   * Every matching entry with revision >= this, then `null`, then live. If some of them
   * are no longer retained, a catch-up comes instead (see `catchUp`).
   */
  resumeFromRevision?: number;
  /**
   * Events the server may send ahead of the application. Default: 256, growing while
   * events are small up to 1 MiB of them (at most 4096 events; credit_window.ts).
   */
  bufferSize?: number;
  /** Timeout of the subscribe request in ms (default: the connection's timeoutMs). */
  timeoutMs?: number;
  /**
   * When a resume point (after a failover, a SLOW_CONSUMER, or `resumeFromRevision`) is
   * no longer retained: true (the default) catches up, sending the latest entry of each
   * key changed since, announced by a `watch_catch_up` event (and a WatchCatchUp item
   * with `notices`); false ends the watch with REVISION_COMPACTED instead.
   */
  catchUp?: boolean;
  /**
   * Also yield WatchNotice items: catch-ups and resets before their entries, `caught_up`
   * after them, and progress. Needed to survive a reset (a key changed and then vanished
   * while the watcher was away); without it such a resume ends with REVISION_COMPACTED.
   */
  notices?: boolean;
  /**
   * The server sends a progress message after this much silence (default 250 ms); three
   * intervals (at least 750 ms) without any frame mean the stream stalled, and the watch
   * moves to another server. 0 turns both off.
   */
  progressIntervalMs?: number;
}

/** With `notices`: before the entries of a catch-up or a reset. */
export interface WatchCatchUp {
  kind: "catch_up";
  /** The first revision this watcher had not seen. */
  fromRevision: number;
  /** The revision the catch-up brings it to: the entries that follow are <= it. */
  toRevision: number;
  /**
   * False: from `fromRevision` through `toRevision` only the latest entry of each changed
   * key follows (the revisions between were superseded or removed). True: the latest entry
   * of every matching key follows; replace your state with them at `caught_up`.
   */
  reset: boolean;
}

/** With `notices`: the entries of a catch-up or reset are done; live entries follow. */
export interface WatchCaughtUp {
  kind: "caught_up";
  revision: number;
}

/** With `notices`: every matching entry with revision <= `revision` was delivered. */
export interface WatchProgress {
  kind: "progress";
  revision: number;
}

export type WatchNotice = WatchCatchUp | WatchCaughtUp | WatchProgress;

/** What a watch with `notices: true` yields. */
export type WatchItem = Entry | null | WatchNotice;

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
  /** A watch resumed with a catch-up (or, with `reset`, a re-list); see WatchCatchUp. */
  | {
      type: "watch_catch_up";
      bucket: string;
      filter: string;
      fromRevision: number;
      toRevision: number;
      reset: boolean;
    }
  /** The connection left `server` for the next one: a watch found it cannot serve. */
  | { type: "failover"; server: string; reason: string }
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
