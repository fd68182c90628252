/**
 * The JetStream API subjects KV clients use, answered like nats-server answers them,
 * each mapped onto the node's KV service (so on any node of a cluster: writes go to the
 * leader through the service, reads and watches are linearizable there):
 *
 * - `$JS.API.INFO`, `STREAM.CREATE|UPDATE|INFO|DELETE|NAMES|LIST|PURGE|MSG.GET|MSG.DELETE`,
 *   `DIRECT.GET` (last by subject, by sequence), `CONSUMER.CREATE|INFO|DELETE|NAMES|LIST`;
 * - publishes to `$KV.<bucket>.<key>` with the KV headers, answered with PubAcks.
 *
 * Whatever streamkv cannot do is answered with a JetStream error that says so, never
 * served approximately.
 */
import { randomUUID } from "node:crypto";
import type { Entry, WatchOptions } from "../kvapi/index.js";
import { isValidBucketName } from "../kvapi/index.js";
import { compileFilter, isLiteralSubject, isValidFilter, matchSubject } from "../log/index.js";
import {
  type BucketInfo,
  type ClientRequest,
  isKvError,
  KvError,
  type WriteOpName,
} from "../proto/index.js";
import type { NatsConnection, RoutedMessage } from "./connection.js";
import { type ConsumerOutput, PushConsumer } from "./consumer.js";
import { type BatchLimits, type BatchRead, readFrom, readMultiLast } from "./direct_batch.js";
import { headerValue } from "./headers.js";
import { JS_ERRORS, type JsApiError, jsErrorOf } from "./js_errors.js";
import {
  bucketConfigOf,
  bucketOfStreamName,
  entryHeaders,
  KV_STREAM_PREFIX,
  streamInfoOf,
} from "./streams.js";
import type { NatsAuth, NatsKvBackend, NatsLogger, NatsPrincipal } from "./types.js";

export interface JetStreamLimits {
  /** Consumers one connection may have at once. */
  maxConsumersPerConnection: number;
  /** Initial values one consumer may hold to count them (entries, value bytes). */
  maxInitialEntries: number;
  maxInitialBytes: number;
  /** A consumer nobody subscribes to within this is removed. */
  consumerNoInterestTimeoutMs: number;
  /** Entries a watch behind a consumer may queue before SLOW_CONSUMER. */
  watchMaxPending: number | undefined;
  /** Bounds of one batched DIRECT.GET (batch, multi_last). */
  directBatch: Omit<BatchLimits, "watchMaxPending">;
}

export interface JetStreamDeps extends JetStreamLimits {
  backend: NatsKvBackend;
  auth: NatsAuth;
  log: NatsLogger;
  out: ConsumerOutput & {
    /** Status 503 to the requester's reply subject, when it asked for no-responders. */
    noResponders(from: NatsConnection, reply: string): void;
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);
const API_PREFIX = "$JS.API.";
const NAMES_PAGE = 1024;
/** Filter subjects one consumer may have (each live entry is matched against them all). */
const MAX_FILTER_SUBJECTS = 256;
const LIST_PAGE = 256;
/**
 * A purge with `keep: 0` removes the markers at least as old as the key's, less this:
 * the leader stamped the marker and decides the age by its own clock.
 */
const PURGE_CLOCK_SLACK_MS = 1000;
const DIRECT_GET_FIELDS = new Set([
  "seq",
  "last_by_subj",
  "next_by_subj",
  "batch",
  "max_bytes",
  "multi_last",
  "up_to_seq",
  "up_to_time",
  "start_time",
]);
const UNSUPPORTED_PUB_HEADERS = [
  "Nats-Expected-Last-Sequence",
  "Nats-Expected-Last-Msg-Id",
  "Nats-Expected-Last-Subject-Sequence-Subject",
  "Nats-Batch-Id",
  "Nats-Incr",
  "Nats-Schedule",
];

class ApiError extends Error {
  constructor(readonly error: JsApiError) {
    super(error.description);
  }
}

/** Refused by the principal's permissions: `-ERR 'Permissions Violation ...'`, as nats-server. */
class PermissionError extends Error {}

export class JetStreamApi {
  /** Per stream, its consumers by name. */
  private readonly consumers = new Map<string, Map<string, PushConsumer>>();

  constructor(private readonly d: JetStreamDeps) {}

  /** A publish to `$JS.API.>`. */
  async api(from: NatsConnection, msg: RoutedMessage): Promise<void> {
    const path = msg.subject.slice(API_PREFIX.length).split(".");
    const type = `io.nats.jetstream.api.v1.${responseType(path)}`;
    try {
      const handled = await this.route(from, msg, path);
      if (handled !== undefined) this.reply(msg.reply, { type, ...handled });
    } catch (err) {
      if (err instanceof PermissionError) {
        from.error(`Permissions Violation for Publish to "${msg.subject}"`);
        return;
      }
      const error = apiErrorOf(err, this.d.log);
      this.reply(msg.reply, { type, error });
    }
  }

  /** A publish to `$KV.<bucket>.<key>`: a KV write. */
  async kvPublish(from: NatsConnection, msg: RoutedMessage): Promise<void> {
    const tokens = msg.subject.split(".");
    const bucket = tokens[1] ?? "";
    const key = tokens.slice(2).join(".");
    try {
      if (!isValidBucketName(bucket) || key === "") {
        throw new ApiError(JS_ERRORS.badRequest(`${msg.subject} is not $KV.<bucket>.<key>`));
      }
      const request = this.writeOf(from, bucket, key, msg);
      const revision = await this.d.backend.write(request);
      this.reply(msg.reply, { stream: `${KV_STREAM_PREFIX}${bucket}`, seq: revision });
    } catch (err) {
      if (err instanceof PermissionError) {
        from.error(`Permissions Violation for Publish to "${msg.subject}"`);
        return;
      }
      if (isKvError(err, "BUCKET_NOT_FOUND")) {
        // No stream listens on the subject: nats-server has no responder for it either.
        if (msg.reply !== undefined) this.d.out.noResponders(from, msg.reply);
        return;
      }
      this.reply(msg.reply, { error: apiErrorOf(err, this.d.log) });
    }
  }

  /** A subscription that reaches `subject` came or went: consumers delivering there check. */
  interestChanged(subject: string): void {
    for (const byName of this.consumers.values()) {
      for (const c of byName.values()) {
        if (matchSubject(subject, c.spec.deliverSubject)) c.interestChanged();
      }
    }
  }

  /** The connection closed: its consumers go with it (they are ephemeral). */
  closed(client: NatsConnection): void {
    for (const byName of this.consumers.values()) {
      for (const c of [...byName.values()]) if (c.spec.owner === client) c.stop();
    }
  }

  /** Every consumer stops (the node shuts the NATS port). */
  stopAll(): void {
    for (const byName of this.consumers.values()) for (const c of [...byName.values()]) c.stop();
  }

  private reply(to: string | undefined, body: unknown): void {
    if (to === undefined) return;
    this.d.out.send(to, to, undefined, undefined, undefined, encoder.encode(JSON.stringify(body)));
  }

  private check(from: NatsConnection, request: ClientRequest): NatsPrincipal {
    const who = from.principal;
    if (who === undefined) throw new PermissionError();
    const denied = this.d.auth.authorize(who, request);
    if (denied) {
      this.d.log.warn("nats request forbidden", { principal: who.name, op: request.type });
      throw new PermissionError();
    }
    return who;
  }

  private async route(
    from: NatsConnection,
    msg: RoutedMessage,
    path: string[],
  ): Promise<Record<string, unknown> | undefined> {
    const [group, verb] = path;
    const subjectStream = path[2];
    if (group === "INFO" && path.length === 1) return await this.accountInfo(from);
    if (group === "STREAM") {
      if (verb === "NAMES" && path.length === 2) return await this.streamNames(from, msg, false);
      if (verb === "LIST" && path.length === 2) return await this.streamNames(from, msg, true);
      if (verb === "MSG" && path.length === 4 && path[2] === "GET") {
        return await this.msgGet(from, path[3]!, msg);
      }
      if (verb === "MSG" && path.length === 4 && path[2] === "DELETE") {
        throw new ApiError(JS_ERRORS.messageDeleteDenied());
      }
      if (path.length === 3 && subjectStream !== undefined) {
        switch (verb) {
          case "CREATE":
            return await this.streamCreate(from, subjectStream, msg, false);
          case "UPDATE":
            return await this.streamCreate(from, subjectStream, msg, true);
          case "INFO":
            return await this.streamInfo(from, subjectStream);
          case "DELETE":
            return await this.streamDelete(from, subjectStream);
          case "PURGE":
            return await this.streamPurge(from, subjectStream, msg);
        }
      }
    }
    if (group === "DIRECT" && verb === "GET" && subjectStream !== undefined) {
      await this.directGet(from, subjectStream, path.slice(3).join("."), msg);
      return undefined;
    }
    if (group === "CONSUMER" && subjectStream !== undefined) {
      if (verb === "CREATE") return await this.consumerCreate(from, path, msg);
      if (verb === "INFO" && path.length === 4) return this.consumerInfo(subjectStream, path[3]!);
      if (verb === "DELETE" && path.length === 4) {
        const c = this.consumer(subjectStream, path[3]!);
        c.stop();
        return { success: true };
      }
      if ((verb === "NAMES" || verb === "LIST") && path.length === 3) {
        const all = [...(this.consumers.get(subjectStream)?.values() ?? [])];
        const page = { total: all.length, offset: 0, limit: all.length };
        return verb === "NAMES"
          ? { ...page, consumers: all.map((c) => c.spec.name) }
          : { ...page, consumers: all.map((c) => this.infoOf(c)) };
      }
      if (verb === "DURABLE") {
        throw new ApiError(
          JS_ERRORS.consumerCreate("streamkv serves ephemeral push consumers only"),
        );
      }
    }
    throw new ApiError(
      JS_ERRORS.badRequest(`streamkv does not serve ${msg.subject} (see README "NATS port")`),
    );
  }

  private async accountInfo(from: NatsConnection): Promise<Record<string, unknown>> {
    const who = from.principal;
    const buckets = (await this.d.backend.listBuckets({ stale: false })).filter(
      (b) => who !== undefined && this.d.auth.mayList(who, b.bucket),
    );
    let consumers = 0;
    for (const m of this.consumers.values()) consumers += m.size;
    return {
      memory: 0,
      storage: buckets.reduce((n, b) => n + b.bytes, 0),
      streams: buckets.length,
      consumers,
      limits: {
        max_memory: -1,
        max_storage: -1,
        max_streams: -1,
        max_consumers: -1,
        max_ack_pending: -1,
        memory_max_stream_bytes: -1,
        storage_max_stream_bytes: -1,
        max_bytes_required: false,
      },
      api: { total: 0, errors: 0 },
    };
  }

  private bucketOf(stream: string): string {
    const bucket = bucketOfStreamName(stream);
    if (bucket === undefined) throw new ApiError(JS_ERRORS.streamNotFound());
    return bucket;
  }

  private consumerCount(stream: string): number {
    return this.consumers.get(stream)?.size ?? 0;
  }

  private async streamInfo(from: NatsConnection, stream: string) {
    const bucket = this.bucketOf(stream);
    this.check(from, { type: "bucket_info", bucket, stale: false });
    const info = await this.d.backend.bucketInfo(bucket, { stale: false });
    return streamInfoOf(info, this.consumerCount(stream));
  }

  private async streamCreate(
    from: NatsConnection,
    stream: string,
    msg: RoutedMessage,
    update: boolean,
  ): Promise<Record<string, unknown>> {
    const bucket = bucketOfStreamName(stream);
    if (bucket === undefined) {
      throw new ApiError(
        JS_ERRORS.invalidConfig(
          `streamkv serves KV buckets only: a stream named ${KV_STREAM_PREFIX}<bucket> with the subject $KV.<bucket>.>`,
        ),
      );
    }
    const body = jsonBody(msg.payload);
    const config = bucketConfigOf(bucket, body);
    if ("err_code" in config) throw new ApiError(config);
    if (update) {
      this.check(from, { type: "bucket_info", bucket, stale: false });
      const current = await this.d.backend.bucketInfo(bucket, { stale: false });
      if (!sameConfig(current, config)) {
        throw new ApiError(
          JS_ERRORS.streamUpdate(
            "streamkv cannot change a bucket's configuration yet; only an identical update is accepted",
          ),
        );
      }
      return streamInfoOf(current, this.consumerCount(stream));
    }
    const who = this.check(from, { type: "bucket_create", config, requestId: "" });
    const info = await this.d.backend.createBucket(
      config,
      this.d.auth.scopeRequestId(who, `nats-${randomUUID()}`),
    );
    return { ...streamInfoOf(info, this.consumerCount(stream)), did_create: true };
  }

  private async streamDelete(from: NatsConnection, stream: string) {
    const bucket = this.bucketOf(stream);
    const who = this.check(from, { type: "bucket_delete", bucket, requestId: "" });
    await this.d.backend.deleteBucket(
      bucket,
      this.d.auth.scopeRequestId(who, `nats-${randomUUID()}`),
    );
    for (const c of [...(this.consumers.get(stream)?.values() ?? [])]) c.stop();
    return { success: true };
  }

  /**
   * STREAM.PURGE as KV clients' purgeDeletes sends it: `filter` one key's subject, `keep`
   * 0 or 1. streamkv removes markers only with its own purgeDeletes, bucket-wide, so the
   * request becomes that with the threshold this key's marker implies: `keep: 0` removes
   * every marker at least as old as this one (within the clock slack), `keep: 1` only
   * the history before every marker. The client asks the same of every marker it saw,
   * so the bucket ends as on nats-server. A key whose latest entry is a value is left
   * alone (`purged: 0`): its history goes only with kv.purge(key).
   */
  private async streamPurge(from: NatsConnection, stream: string, msg: RoutedMessage) {
    const bucket = this.bucketOf(stream);
    const body = jsonBody(msg.payload);
    for (const k of Object.keys(body)) {
      if (k !== "filter" && k !== "keep" && k !== "seq") {
        throw new ApiError(JS_ERRORS.badRequest(`unknown purge field ${k}`));
      }
    }
    const { filter, keep, seq } = body;
    if (seq !== undefined && keep !== undefined) {
      throw new ApiError(JS_ERRORS.badRequest("seq and keep cannot both be set"));
    }
    const prefix = `$KV.${bucket}.`;
    if (
      typeof filter !== "string" ||
      !filter.startsWith(prefix) ||
      !isLiteralSubject(filter) ||
      !(seq === undefined || seq === 0) ||
      !(keep === undefined || keep === 0 || keep === 1)
    ) {
      throw new ApiError(
        JS_ERRORS.badRequest(
          "streamkv purges one deleted key at a time (filter: one key's subject, keep 0 or 1, as kv.purgeDeletes sends); kv.purge(key) for a live key",
        ),
      );
    }
    const key = filter.slice(prefix.length);
    const who = this.check(from, { type: "purge_deletes", bucket, requestId: "" });
    const history = await this.d.backend.history(bucket, key, { stale: false });
    const latest = history[history.length - 1];
    if (latest === undefined || latest.operation === "PUT") return { success: true, purged: 0 };
    if (keep === 1 && history.length === 1) return { success: true, purged: 0 };
    const olderThanMs =
      keep === 1
        ? Number.MAX_SAFE_INTEGER
        : Math.max(0, Date.now() - latest.created.getTime() - PURGE_CLOCK_SLACK_MS);
    const purged = await this.d.backend.purgeDeletes(
      bucket,
      olderThanMs,
      this.d.auth.scopeRequestId(who, `nats-${randomUUID()}`),
    );
    return { success: true, purged };
  }

  private async streamNames(from: NatsConnection, msg: RoutedMessage, list: boolean) {
    const body = msg.payload.length === 0 ? {} : jsonBody(msg.payload);
    const offset = typeof body.offset === "number" && body.offset > 0 ? Math.floor(body.offset) : 0;
    const subject = typeof body.subject === "string" ? body.subject : undefined;
    const who = from.principal;
    const all = (await this.d.backend.listBuckets({ stale: false })).filter(
      (b) =>
        who !== undefined &&
        this.d.auth.mayList(who, b.bucket) &&
        (subject === undefined || subjectOverlaps(subject, b.bucket)),
    );
    const limit = list ? LIST_PAGE : NAMES_PAGE;
    const page = all.slice(offset, offset + limit);
    return {
      total: all.length,
      offset,
      limit,
      streams: list
        ? page.map((b) => streamInfoOf(b, this.consumerCount(`${KV_STREAM_PREFIX}${b.bucket}`)))
        : page.map((b) => `${KV_STREAM_PREFIX}${b.bucket}`),
    };
  }

  /** The latest entry of `key`, markers included (what a NATS last-by-subject get returns). */
  private async lastOf(bucket: string, key: string): Promise<Entry | null> {
    const entry = await this.d.backend.get(bucket, key, undefined, { stale: false });
    if (entry !== null) return entry;
    const history = await this.d.backend.history(bucket, key, { stale: false });
    return history[history.length - 1] ?? null;
  }

  /** The entry at revision `seq`, whichever key it belongs to, markers included. */
  private async atRevision(bucket: string, seq: number): Promise<Entry | null> {
    let watch: Awaited<ReturnType<NatsKvBackend["watch"]>>;
    try {
      watch = await this.d.backend.watch(bucket, ">", { resumeFromRevision: seq, maxPending: 16 });
    } catch (err) {
      if (isKvError(err, "REVISION_COMPACTED")) return null;
      throw err;
    }
    try {
      const first = await watch.next();
      if (first.done || first.value === null) return null;
      return first.value.revision === seq ? first.value : null;
    } finally {
      watch.stop();
    }
  }

  /** The entry a DIRECT.GET or MSG.GET body (or subject suffix) asks for. */
  private async lookup(
    from: NatsConnection,
    bucket: string,
    lastBySubject: string | undefined,
    seq: number | undefined,
  ): Promise<Entry | null> {
    if (lastBySubject !== undefined) {
      const prefix = `$KV.${bucket}.`;
      if (!lastBySubject.startsWith(prefix) || !isLiteralSubject(lastBySubject)) return null;
      const key = lastBySubject.slice(prefix.length);
      this.check(from, { type: "get", bucket, key, stale: false });
      return await this.lastOf(bucket, key);
    }
    if (seq !== undefined) {
      this.check(from, { type: "get", bucket, key: ">", stale: false });
      return await this.atRevision(bucket, seq);
    }
    throw new ApiError(JS_ERRORS.badRequest("give last_by_subj or seq"));
  }

  private async directGet(
    from: NatsConnection,
    stream: string,
    suffix: string,
    msg: RoutedMessage,
  ): Promise<void> {
    const reply = msg.reply;
    if (reply === undefined) return;
    const bucket = bucketOfStreamName(stream);
    if (bucket === undefined) {
      this.d.out.noResponders(from, reply);
      return;
    }
    const status = (code: number, description: string) =>
      this.d.out.send(reply, reply, undefined, [], { code, description }, EMPTY);
    let lastBySubject: string | undefined;
    let seq: number | undefined;
    if (suffix !== "") {
      if (msg.payload.length > 0) return status(408, "Bad Request");
      lastBySubject = suffix;
    } else {
      let body: Record<string, unknown>;
      try {
        body = jsonBody(msg.payload);
      } catch {
        return status(408, "Bad Request");
      }
      if (!Object.keys(body).every((k) => DIRECT_GET_FIELDS.has(k))) {
        return status(408, "Bad Request");
      }
      if (body.start_time !== undefined || body.up_to_time !== undefined) {
        return status(408, "streamkv does not serve start_time or up_to_time");
      }
      if (
        body.multi_last !== undefined ||
        body.batch !== undefined ||
        body.max_bytes !== undefined ||
        body.next_by_subj !== undefined
      ) {
        return await this.directBatch(from, stream, bucket, body, reply, status);
      }
      if (typeof body.last_by_subj === "string") lastBySubject = body.last_by_subj;
      else if (isSeq(body.seq)) seq = body.seq;
      else return status(408, "Bad Request");
    }
    let entry: Entry | null;
    try {
      entry = await this.lookup(from, bucket, lastBySubject, seq);
    } catch (err) {
      if (err instanceof PermissionError) throw err;
      if (isKvError(err, "BUCKET_NOT_FOUND")) {
        this.d.out.noResponders(from, reply);
        return;
      }
      const e = apiErrorOf(err, this.d.log);
      return status(e.code === 503 ? 503 : 408, e.description);
    }
    if (entry === null) return status(404, "Message Not Found");
    this.d.out.send(
      reply,
      reply,
      undefined,
      [
        ["Nats-Stream", stream],
        ["Nats-Subject", `$KV.${bucket}.${entry.key}`],
        ["Nats-Sequence", String(entry.revision)],
        ["Nats-Time-Stamp", entry.created.toISOString()],
        ...entryHeaders(entry),
      ],
      undefined,
      entry.value,
    );
  }

  /**
   * A DIRECT.GET with `batch`, `max_bytes`, `next_by_subj` or `multi_last` (ADR-31): one
   * message per entry, then (for a batch) the end-of-batch status 204 with the pending
   * count; 404 when nothing matches, 413 when a multi_last matches too many keys.
   */
  private async directBatch(
    from: NatsConnection,
    stream: string,
    bucket: string,
    body: Record<string, unknown>,
    reply: string,
    status: (code: number, description: string) => void,
  ): Promise<void> {
    const prefix = `$KV.${bucket}.`;
    const keyFilterOf = (f: unknown): string | undefined =>
      typeof f === "string" && f.startsWith(prefix) && isValidFilter(f)
        ? f.slice(prefix.length)
        : f === ">"
          ? ">"
          : undefined;
    const batched = body.batch !== undefined || body.max_bytes !== undefined;
    const positive = (v: unknown) => isSeq(v) && v > 0;
    if (
      (body.batch !== undefined && !positive(body.batch)) ||
      (body.max_bytes !== undefined && !positive(body.max_bytes)) ||
      (body.seq !== undefined && !isSeq(body.seq)) ||
      (body.up_to_seq !== undefined && !isSeq(body.up_to_seq)) ||
      body.last_by_subj !== undefined
    ) {
      return status(408, "Bad Request");
    }
    const bound = this.d.directBatch;
    const multi = body.multi_last !== undefined;
    // Without batch or max_bytes a next_by_subj get is one message; a multi_last all keys.
    const asked = batched ? Number(body.batch ?? bound.maxMessages) : multi ? bound.maxMessages : 1;
    const limits = {
      ...bound,
      maxMessages: Math.min(asked, bound.maxMessages),
      maxBytes: Math.min(Number(body.max_bytes ?? bound.maxBytes), bound.maxBytes),
      watchMaxPending: this.d.watchMaxPending,
    };
    let read: BatchRead | "too many";
    try {
      if (multi) {
        const list = body.multi_last;
        if (!Array.isArray(list) || list.length === 0 || list.length > limits.maxSubjects) {
          return status(408, "Bad Request");
        }
        const keyFilters = list.map(keyFilterOf);
        if (keyFilters.some((f) => f === undefined)) return status(408, "Bad Request");
        this.check(from, { type: "get", bucket, key: ">", stale: false });
        read = await readMultiLast(
          this.d.backend,
          bucket,
          keyFilters as string[],
          body.up_to_seq as number | undefined,
          limits,
        );
      } else {
        const keyFilter = body.next_by_subj === undefined ? ">" : keyFilterOf(body.next_by_subj);
        if (keyFilter === undefined) return status(408, "Bad Request");
        this.check(from, { type: "get", bucket, key: ">", stale: false });
        read = await readFrom(this.d.backend, bucket, keyFilter, Number(body.seq ?? 1), limits);
      }
    } catch (err) {
      if (err instanceof PermissionError) throw err;
      if (isKvError(err, "BUCKET_NOT_FOUND")) return this.d.out.noResponders(from, reply);
      const e = apiErrorOf(err, this.d.log);
      return status(e.code === 503 ? 503 : 408, e.description);
    }
    if (read === "too many") return status(413, "Too Many Results");
    if (read.entries.length === 0) return status(404, "Message Not Found");
    const pendingHeaders = batched || multi;
    let last = 0;
    for (const { entry, pending } of read.entries) {
      // Delivered at the pace the requester reads, like a consumer's messages.
      await this.d.out.writable(from);
      this.d.out.send(
        reply,
        reply,
        undefined,
        [
          ["Nats-Stream", stream],
          ["Nats-Subject", `${prefix}${entry.key}`],
          ["Nats-Sequence", String(entry.revision)],
          ["Nats-Time-Stamp", entry.created.toISOString()],
          ...(pendingHeaders
            ? ([
                ["Nats-Num-Pending", String(pending)],
                ["Nats-Last-Sequence", String(last)],
              ] as [string, string][])
            : []),
          ...(read.upTo === undefined
            ? []
            : ([["Nats-UpTo-Sequence", String(read.upTo)]] as [string, string][])),
          ...entryHeaders(entry),
        ],
        undefined,
        entry.value,
      );
      last = entry.revision;
    }
    if (!pendingHeaders) return;
    this.d.out.send(
      reply,
      reply,
      undefined,
      [
        ["Nats-Num-Pending", String(read.pendingAfter)],
        ["Nats-Last-Sequence", String(last)],
        ...(read.upTo === undefined
          ? []
          : ([["Nats-UpTo-Sequence", String(read.upTo)]] as [string, string][])),
      ],
      { code: 204, description: "EOB" },
      EMPTY,
    );
  }

  private async msgGet(from: NatsConnection, stream: string, msg: RoutedMessage) {
    const bucket = this.bucketOf(stream);
    const body = jsonBody(msg.payload);
    const entry = await this.lookup(
      from,
      bucket,
      typeof body.last_by_subj === "string" ? body.last_by_subj : undefined,
      isSeq(body.seq) ? body.seq : undefined,
    );
    if (entry === null) throw new ApiError(JS_ERRORS.noMessageFound());
    const headers = entryHeaders(entry);
    const hdrs =
      headers.length === 0
        ? undefined
        : Buffer.from(
            `NATS/1.0\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`,
          ).toString("base64");
    return {
      message: {
        subject: `$KV.${bucket}.${entry.key}`,
        seq: entry.revision,
        ...(hdrs === undefined ? {} : { hdrs }),
        data: Buffer.from(entry.value).toString("base64"),
        time: entry.created.toISOString(),
      },
    };
  }

  private writeOf(from: NatsConnection, bucket: string, key: string, msg: RoutedMessage) {
    const h = msg.headers;
    for (const name of UNSUPPORTED_PUB_HEADERS) {
      if (headerValue(h, name) !== undefined) {
        throw new ApiError(JS_ERRORS.badRequest(`streamkv does not support the header ${name}`));
      }
    }
    if (headerValue(h, "Nats-TTL") !== undefined) {
      throw new ApiError(JS_ERRORS.messageTtlDisabled());
    }
    const expectedStream = headerValue(h, "Nats-Expected-Stream");
    if (expectedStream !== undefined && expectedStream !== `${KV_STREAM_PREFIX}${bucket}`) {
      throw new ApiError(JS_ERRORS.expectedStreamMismatch());
    }
    const operation = headerValue(h, "KV-Operation");
    if (operation !== undefined && operation !== "DEL" && operation !== "PURGE") {
      throw new ApiError(JS_ERRORS.badRequest(`KV-Operation ${operation}: use DEL or PURGE`));
    }
    const rollup = headerValue(h, "Nats-Rollup");
    if (rollup !== undefined && (rollup !== "sub" || operation !== "PURGE")) {
      throw new ApiError(
        JS_ERRORS.badRequest("streamkv applies Nats-Rollup: sub only with KV-Operation: PURGE"),
      );
    }
    const expectedText = headerValue(h, "Nats-Expected-Last-Subject-Sequence");
    let expected: number | undefined;
    if (expectedText !== undefined) {
      if (!/^\d{1,15}$/.test(expectedText)) {
        throw new ApiError(JS_ERRORS.badRequest("Nats-Expected-Last-Subject-Sequence: a number"));
      }
      expected = Number(expectedText);
    }
    let op: WriteOpName;
    if (operation === "DEL") op = "delete";
    else if (operation === "PURGE") op = "purge";
    else if (expected === undefined) op = "put";
    // Expected 0 is "no message for the subject"; streamkv's create also takes a key
    // whose latest entry is a DEL or PURGE marker, atomically (NATS clients retry so).
    else if (expected === 0) op = "create";
    else op = "update";
    const msgId = headerValue(h, "Nats-Msg-Id");
    const value = op === "delete" || op === "purge" ? EMPTY : msg.payload;
    const base = {
      bucket,
      key,
      op,
      value,
      requestId: msgId === undefined ? `nats-${randomUUID()}` : `nats-msgid-${msgId}`,
      ...(expected === undefined || op === "create" ? {} : { last: expected }),
    };
    const who = this.check(from, { type: "write", ...base });
    return { ...base, requestId: this.d.auth.scopeRequestId(who, base.requestId) };
  }

  private consumer(stream: string, name: string): PushConsumer {
    const c = this.consumers.get(stream)?.get(name);
    if (!c) throw new ApiError(JS_ERRORS.consumerNotFound());
    return c;
  }

  private consumerInfo(stream: string, name: string) {
    return this.infoOf(this.consumer(stream, name));
  }

  private infoOf(c: PushConsumer): Record<string, unknown> {
    return {
      stream_name: c.spec.stream,
      name: c.spec.name,
      created: c.created.toISOString(),
      config: c.spec.config,
      delivered: c.delivered,
      ack_floor: { consumer_seq: 0, stream_seq: 0 },
      num_ack_pending: 0,
      num_redelivered: 0,
      num_waiting: 0,
      num_pending: c.numPending,
      push_bound: this.d.out.hasInterest(c.spec.deliverSubject),
      ts: new Date().toISOString(),
    };
  }

  private async consumerCreate(from: NatsConnection, path: string[], msg: RoutedMessage) {
    const stream = path[2]!;
    const bucket = this.bucketOf(stream);
    const body = jsonBody(msg.payload);
    if (body.stream_name !== undefined && body.stream_name !== stream) {
      throw new ApiError(JS_ERRORS.streamMismatch());
    }
    const cfg = (body.config ?? {}) as Record<string, unknown>;
    if (typeof cfg !== "object" || cfg === null) throw new ApiError(JS_ERRORS.badRequest());
    const refuse = (why: string) => new ApiError(JS_ERRORS.consumerCreate(why));
    if (typeof cfg.durable_name === "string" && cfg.durable_name !== "") {
      throw refuse("streamkv serves ephemeral push consumers only (no durable_name)");
    }
    const deliverSubject = cfg.deliver_subject;
    if (typeof deliverSubject !== "string" || deliverSubject === "") {
      throw refuse("streamkv serves push consumers only: set deliver_subject");
    }
    if (cfg.ack_policy !== undefined && cfg.ack_policy !== "none") {
      throw refuse("streamkv consumers do not take acks: use ack_policy none");
    }
    if (typeof cfg.deliver_group === "string" && cfg.deliver_group !== "") {
      throw refuse("streamkv consumers have no deliver_group");
    }
    let filters: string[] = [];
    if (Array.isArray(cfg.filter_subjects)) filters = cfg.filter_subjects.map(String);
    else if (typeof cfg.filter_subject === "string" && cfg.filter_subject !== "") {
      filters = [cfg.filter_subject];
    } else if (path.length > 4) filters = [path.slice(4).join(".")];
    if (filters.length === 0) filters = [">"];
    if (filters.length > MAX_FILTER_SUBJECTS) {
      throw refuse(`at most ${MAX_FILTER_SUBJECTS} filter subjects per consumer`);
    }
    const prefix = `$KV.${bucket}.`;
    const keyFilters = filters.map((f) => {
      if (f === ">") return ">";
      if (f.startsWith(prefix) && isValidFilter(f)) return f.slice(prefix.length);
      throw refuse(`filter subject ${f} is not under ${prefix}>`);
    });
    // Several filters: one watch of the whole bucket, its entries kept when any matches.
    const filter = keyFilters.length === 1 ? keyFilters[0]! : ">";
    const matchers = keyFilters.map((f) => compileFilter(f));
    const accept =
      keyFilters.length === 1 ? () => true : (key: string) => matchers.some((m) => m(key));
    const filterSubject = filters.length === 1 ? filters[0]! : undefined;
    const name =
      typeof cfg.name === "string" && cfg.name !== ""
        ? cfg.name
        : path.length > 3
          ? path[3]!
          : `streamkv_${randomUUID().replaceAll("-", "")}`;
    const opts: WatchOptions = { catchUp: true };
    if (this.d.watchMaxPending !== undefined) opts.maxPending = this.d.watchMaxPending;
    const headersOnly = cfg.headers_only === true;
    if (headersOnly) opts.metaOnly = true;
    switch (cfg.deliver_policy ?? "all") {
      case "all":
        opts.includeHistory = true;
        break;
      case "last_per_subject":
        break;
      case "new":
        opts.updatesOnly = true;
        break;
      case "by_start_sequence":
        if (!isSeq(cfg.opt_start_seq) || cfg.opt_start_seq < 1) {
          throw refuse("deliver_policy by_start_sequence needs opt_start_seq >= 1");
        }
        opts.resumeFromRevision = cfg.opt_start_seq;
        break;
      default:
        throw refuse(
          `streamkv consumers take deliver_policy all, last_per_subject, new or by_start_sequence, not ${String(cfg.deliver_policy)}`,
        );
    }
    this.check(from, {
      type: "watch",
      bucket,
      filter,
      includeHistory: opts.includeHistory === true,
      ignoreDeletes: false,
      metaOnly: headersOnly,
      updatesOnly: opts.updatesOnly === true,
      credit: 0,
      catchUp: true,
      allowReset: false,
      progressIntervalMs: 0,
      batchEntries: false,
    });
    let owned = 0;
    for (const m of this.consumers.values()) {
      for (const c of m.values()) if (c.spec.owner === from) owned++;
    }
    if (owned >= this.d.maxConsumersPerConnection) {
      throw new ApiError({
        code: 400,
        err_code: 10026,
        description: "maximum consumers limit reached",
      });
    }
    const existing = this.consumers.get(stream)?.get(name);
    if (existing)
      throw new ApiError({
        code: 400,
        err_code: 10013,
        description: "consumer name already in use",
      });
    const watch = await this.d.backend.watch(bucket, filter, opts);
    const initial: Entry[] = [];
    let bytes = 0;
    try {
      // Bounded by maxInitialEntries: the watch's initial values end with a null.
      for (;;) {
        const next = await watch.next();
        if (next.done || next.value === null) break;
        if (!accept(next.value.key)) continue;
        initial.push(next.value);
        bytes += next.value.value.length;
        if (initial.length > this.d.maxInitialEntries || bytes > this.d.maxInitialBytes) {
          throw refuse(
            `more than ${this.d.maxInitialEntries} initial entries or ${this.d.maxInitialBytes} bytes for one consumer: use a narrower filter or headers_only`,
          );
        }
      }
    } catch (err) {
      watch.stop();
      throw err;
    }
    const idleHeartbeatNs = typeof cfg.idle_heartbeat === "number" ? cfg.idle_heartbeat : 0;
    const config = {
      ...cfg,
      name,
      deliver_subject: deliverSubject,
      deliver_policy: cfg.deliver_policy ?? "all",
      ack_policy: "none",
      ...(filterSubject === undefined
        ? { filter_subjects: filters }
        : { filter_subject: filterSubject }),
      headers_only: headersOnly,
      max_deliver: 1,
      replay_policy: "instant",
      num_replicas: 1,
      mem_storage: true,
    };
    const consumer = new PushConsumer(
      {
        stream,
        name,
        deliverSubject,
        headersOnly,
        idleHeartbeatMs: Math.max(idleHeartbeatNs > 0 ? Math.round(idleHeartbeatNs / 1e6) : 0, 0),
        config,
        owner: from,
        noInterestTimeoutMs: this.d.consumerNoInterestTimeoutMs,
      },
      watch,
      initial,
      accept,
      this.d.out,
      (c) => this.consumers.get(stream)?.delete(c.spec.name),
    );
    let byName = this.consumers.get(stream);
    if (!byName) this.consumers.set(stream, (byName = new Map()));
    byName.set(name, consumer);
    const info = this.infoOf(consumer);
    // The answer goes out before delivery can start (the client subscribes after it).
    queueMicrotask(() => consumer.interestChanged());
    return info;
  }
}

function responseType(path: string[]): string {
  const words = path.filter((t) => /^[A-Z]+$/.test(t)).map((t) => t.toLowerCase());
  return `${words.join("_") || "unknown"}_response`;
}

function isSeq(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function jsonBody(payload: Uint8Array): Record<string, unknown> {
  if (payload.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(payload));
  } catch (err) {
    throw new ApiError(JS_ERRORS.invalidJson((err as Error).message));
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ApiError(JS_ERRORS.invalidJson("the request must be a JSON object"));
  }
  return v as Record<string, unknown>;
}

function apiErrorOf(err: unknown, log: NatsLogger): JsApiError {
  if (err instanceof ApiError) return err.error;
  if (err instanceof KvError) return jsErrorOf(err);
  log.error("nats request failed", { error: String(err) });
  return JS_ERRORS.unavailable();
}

/** Whether a STREAM.NAMES subject filter can reach the bucket's subjects. */
function subjectOverlaps(filter: string, bucket: string): boolean {
  const all = `$KV.${bucket}.>`;
  if (filter === all) return true;
  try {
    return matchSubject(filter, `$KV.${bucket}.x`) || matchSubject(all, filter);
  } catch {
    return false;
  }
}

function sameConfig(b: BucketInfo, c: ReturnType<typeof bucketConfigOf>): boolean {
  if ("err_code" in c) return false;
  return (
    b.history === c.history &&
    b.ttlMs === c.ttlMs &&
    b.maxValueSize === c.maxValueSize &&
    b.maxBytes === c.maxBytes &&
    (c.replicas === 0 || b.replicas === c.replicas) &&
    b.description === (c.description ?? "")
  );
}
