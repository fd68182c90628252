/**
 * What the NATS port needs from the node, declared here so that nats/ depends on no
 * node code: the node hands in its KvService (which has these methods) and its
 * Authenticator's checks as functions.
 */
import type { BucketConfigInput, Entry, WatchOptions } from "../kvapi/index.js";
import type { BucketInfo, ClientRequest, KvError, WriteRequest } from "../proto/index.js";

export interface NatsWatch {
  next(): Promise<IteratorResult<Entry | null, undefined>>;
  stop(): void;
  readonly initRevision: number;
}

/** The KV operations the NATS port maps JetStream requests onto (node/kv_service.ts). */
export interface NatsKvBackend {
  createBucket(config: BucketConfigInput, requestId: string): Promise<BucketInfo>;
  bucketInfo(bucket: string, opts: { stale: boolean }): Promise<BucketInfo>;
  deleteBucket(bucket: string, requestId: string): Promise<void>;
  listBuckets(opts: { stale: boolean }): Promise<BucketInfo[]>;
  write(request: WriteRequest): Promise<number>;
  get(
    bucket: string,
    key: string,
    revision: number | undefined,
    opts: { stale: boolean },
  ): Promise<Entry | null>;
  history(bucket: string, key: string, opts: { stale: boolean }): Promise<Entry[]>;
  watch(bucket: string, filter: string, opts: WatchOptions): Promise<NatsWatch>;
  /**
   * Removes the delete and purge markers at least `olderThanMs` old with their keys'
   * history, and the history before every younger marker; returns the entries removed.
   */
  purgeDeletes(bucket: string, olderThanMs: number, requestId: string): Promise<number>;
}

/** Who a connection is (opaque here: the node's principal). */
export type NatsPrincipal = { readonly name: string };

export interface NatsAuth {
  /** Tokens are configured: INFO says auth_required and CONNECT must carry one. */
  readonly required: boolean;
  /** The principal of a CONNECT's `auth_token`, or undefined (refused). */
  authenticate(token: string | undefined): NatsPrincipal | undefined;
  /** Undefined when the principal may make the request, else the FORBIDDEN error. */
  authorize(principal: NatsPrincipal, request: ClientRequest): KvError | undefined;
  /** The request id the service dedupes on, scoped to the principal. */
  scopeRequestId(principal: NatsPrincipal, requestId: string): string;
  /** Whether the principal may see this bucket in lists. */
  mayList(principal: NatsPrincipal, bucket: string): boolean;
}

export interface NatsLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}
