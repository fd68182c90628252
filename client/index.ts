/**
 * The streamkv client SDK (DESIGN.md section 6). Works in Node and in a browser: it
 * uses the global WebSocket where there is one and loads `ws` only on Node without it.
 *
 * ```ts
 * const nc = await connect({ servers: ["ws://127.0.0.1:7420"] });
 * const kv = await nc.createKeyValue({ bucket: "cfg", history: 5 });
 * await kv.putString("a.b", "1");
 * await nc.close();
 * ```
 */
import { KvError } from "../proto/index.js";
import { Connection } from "./connection.js";
import { KeyValue } from "./kv.js";
import { checkTimeoutMs, staleOf } from "./options.js";
import { openSnapshotImage, type SnapshotImage, type SnapshotImageOptions } from "./snapshot.js";
import type {
  CallOptions,
  ClusterStatus,
  ConnectOptions,
  KeyValueConfig,
  KeyValueStatus,
  ReadOptions,
} from "./types.js";
import { configToWire, expectAnswer, statusOf } from "./wire.js";

export type { SnapshotHeader } from "../proto/index.js";
export {
  ERROR_CODES,
  type ErrorCode,
  isKvError,
  KvError,
  type KvErrorDetails,
} from "../proto/index.js";
export { KeyValue, type KvWatch } from "./kv.js";
export type { SnapshotChunk, SnapshotImage, SnapshotImageOptions } from "./snapshot.js";
export type * from "./types.js";
export { isNotice } from "./watch.js";

/** A connection to a streamkv cluster. */
export class KvConnection {
  /** @internal */
  constructor(private readonly conn: Connection) {}

  /** The id of the node currently connected to ("" while reconnecting). */
  get serverId(): string {
    return this.conn.serverId;
  }

  /**
   * Creates a bucket, or binds it if it exists with the same config; a different
   * config is BUCKET_EXISTS.
   */
  async createKeyValue(config: KeyValueConfig, opts: CallOptions = {}): Promise<KeyValue> {
    if (!config || typeof config.bucket !== "string") {
      throw new KvError("INVALID_ARGUMENT", "createKeyValue: config.bucket is required");
    }
    await this.conn.call(
      "bucket_create",
      { config: configToWire(config), request_id: this.conn.newRequestId() },
      opts.timeoutMs,
    );
    return new KeyValue(this.conn, config.bucket);
  }

  /** Binds an existing bucket; BUCKET_NOT_FOUND if there is none. */
  async keyValue(bucket: string, opts: CallOptions = {}): Promise<KeyValue> {
    await this.conn.call("bucket_info", { bucket }, opts.timeoutMs);
    return new KeyValue(this.conn, bucket);
  }

  /** Deletes a bucket and all its data; BUCKET_NOT_FOUND if there is none. */
  async deleteKeyValue(bucket: string, opts: CallOptions = {}): Promise<void> {
    await this.conn.call(
      "bucket_delete",
      { bucket, request_id: this.conn.newRequestId() },
      opts.timeoutMs,
    );
  }

  /** Every bucket's status, sorted by name. */
  async listBuckets(opts: ReadOptions = {}): Promise<KeyValueStatus[]> {
    const answer = await this.conn.call("bucket_list", { stale: staleOf(opts) }, opts.timeoutMs);
    return expectAnswer(answer, "bucket_list", "listBuckets").buckets.map(statusOf);
  }

  /**
   * Moves Raft leadership to node `to` (a voter); resolves with the contacted node's
   * view once `to` leads. Must reach the leader: another node answers NOT_LEADER with
   * the leader's id in `err.details.leaderId`.
   */
  async transferLeadership(to: string, opts: CallOptions = {}): Promise<ClusterStatus> {
    const answer = await this.conn.call("cluster_transfer", { to }, opts.timeoutMs);
    return expectAnswer(answer, "cluster_status", "transferLeadership").status;
  }

  /**
   * Adds node `id`, whose peer port is at `address` (host:port) and which runs with
   * `--join`: it joins as a learner and is promoted to voter once caught up. Resolves
   * when it votes; after a TIMEOUT, calling again continues. Must reach the leader.
   */
  async addServer(id: string, address: string, opts: CallOptions = {}): Promise<ClusterStatus> {
    const answer = await this.conn.call("cluster_add", { id, address }, opts.timeoutMs);
    return expectAnswer(answer, "cluster_status", "addServer").status;
  }

  /**
   * Removes node `id` from the cluster (one server at a time; the leader may remove
   * itself and hands over). Resolves with the contacted node's view once the change is
   * committed. Must reach the leader, like `transferLeadership`.
   */
  async removeServer(id: string, opts: CallOptions = {}): Promise<ClusterStatus> {
    const answer = await this.conn.call("cluster_remove", { id }, opts.timeoutMs);
    return expectAnswer(answer, "cluster_status", "removeServer").status;
  }

  /**
   * Freezes a point-in-time image of every bucket on the connected node (holding every
   * write acknowledged before the call) for a backup; iterate it for its chunks, then
   * `close()` it. Needs an admin token. See `streamkv snapshot save`.
   */
  openSnapshot(opts: SnapshotImageOptions = {}): Promise<SnapshotImage> {
    checkTimeoutMs(opts.timeoutMs, "openSnapshot: timeoutMs");
    return openSnapshotImage(this.conn, opts);
  }

  /** The contacted node's view of the cluster. */
  async clusterStatus(opts: CallOptions = {}): Promise<ClusterStatus> {
    const answer = await this.conn.call("cluster_status", {}, opts.timeoutMs);
    return expectAnswer(answer, "cluster_status", "clusterStatus").status;
  }

  /** Fails pending calls with CONNECTION_CLOSED, ends watches, closes the socket. */
  close(): Promise<void> {
    return this.conn.close();
  }
}

/** Connects to the first reachable server of `servers`; fails with CONNECTION_CLOSED after `timeoutMs`. */
export async function connect(options: ConnectOptions): Promise<KvConnection> {
  checkTimeoutMs(options?.timeoutMs, "connect: timeoutMs");
  checkTimeoutMs(options?.reconnectDelayMs, "connect: reconnectDelayMs");
  checkTimeoutMs(options?.reconnectDelayMaxMs, "connect: reconnectDelayMaxMs");
  const conn = new Connection(options);
  await conn.start();
  return new KvConnection(conn);
}
