/**
 * The KV state machine: applies the commands Raft commits, a group of entries as one
 * LogBatch (their data and request-window records, and the applied index, together:
 * all or none of the group is on disk), deterministically. Every compare-and-set is
 * decided here from the stream's per-subject last sequence, and every time-dependent
 * step uses the time the leader put in the command, so replicas fed the same entries
 * end byte-identical, however the entries were grouped.
 *
 * Apply is serialized (the log allows one open batch); the async reads a command needs
 * (marker timestamps for purgeDeletes) happen with no batch open, and nothing else
 * writes meanwhile.
 */
import type { ExpiredMessage, LogBatch, StreamConfig } from "../log/index.js";
import { KvError } from "../proto/index.js";
import { assert } from "./assert.js";
import {
  type AppliedState,
  type DedupeRecord,
  decodeAppliedState,
  decodeBucketConfig,
  decodeCommand,
  decodeDedupeRecord,
  encodeAppliedState,
  encodeBucketConfig,
  encodeDedupeRecord,
  requestKey,
} from "./commands.js";
import { DEFAULT_DEDUPE_WINDOW, DedupeWindow, ringKey } from "./dedupe.js";
import type { KvLog } from "./log_port.js";
import {
  bucketOfStream,
  sameBucketConfig,
  streamOf,
  validateBucketConfig,
  validateBucketName,
  validateKey,
  valueLimitBytes,
} from "./names.js";
import type { ApplyResult, BucketConfig, Command, CommandResult, NodeLimits } from "./types.js";
import type { WatchEvent } from "./watch/watcher.js";

export const APPLIED_KEY = "kv/applied";

export function bucketMetaKey(bucket: string): string {
  return `kv/bucket/${bucket}`;
}

const EMPTY = new Uint8Array(0);

export interface StateMachineOptions {
  /**
   * Applied entries remembered for replays and client retries. Takes effect
   * only on a fresh state: the window is part of the replicated state, so a
   * stored one wins (every replica must use the same).
   */
  dedupeWindow?: number;
  /** Deliberately broken behaviour, for the KV simulator's checker tests only. */
  unsafe?: {
    /** Applies a retried request id again instead of answering with its first result. */
    skipDedupe?: boolean;
  };
}

/** What a committed entry changed, for the watch hub and the caches. */
export interface ApplyEffects {
  events: Map<string, WatchEvent[]>;
  createdBuckets: BucketConfig[];
  updatedBuckets: BucketConfig[];
  deletedBuckets: string[];
}

/** The staging half of a command; runs synchronously inside the open batch. */
type Stage = (batch: LogBatch, effects: ApplyEffects) => CommandResult;

function ok(revision = 0, count = 0): CommandResult {
  return { ok: true, revision, count };
}

function failed(error: KvError): CommandResult {
  return { ok: false, error };
}

/** Log errors in the KV vocabulary (the log speaks of streams and subjects). */
function kvErrorOf(err: KvError, bucket: string): KvError {
  const b = JSON.stringify(bucket);
  switch (err.code) {
    case "STREAM_FULL":
      return new KvError("BUCKET_FULL", `bucket ${b} is full`, {}, err);
    case "MESSAGE_TOO_LARGE":
      return new KvError("VALUE_TOO_LARGE", err.message, {}, err);
    case "INVALID_SUBJECT":
      return new KvError("INVALID_KEY", err.message, {}, err);
    case "STREAM_NOT_FOUND":
      return new KvError("BUCKET_NOT_FOUND", `bucket ${b} not found`, {}, err);
    case "STREAM_EXISTS":
      return new KvError("BUCKET_EXISTS", `bucket ${b} exists with a different config`, {}, err);
    default:
      return err;
  }
}

function bucketOfCommand(command: Command): string {
  if (command.type === "createBucket" || command.type === "updateBucket") {
    return String(command.config?.bucket);
  }
  return command.type === "timeAdvance" ? "" : String(command.bucket);
}

export function streamConfigOf(config: BucketConfig): StreamConfig {
  return {
    name: streamOf(config.bucket),
    maxMsgsPerSubject: config.history,
    maxAgeMs: config.ttlMs,
    // kvapi enforces maxBytes itself: markers must pass on a full bucket, and
    // the log would drop other keys' entries if a limit were lowered.
    maxBytes: -1,
    maxMsgs: -1,
    // Value size is checked here, to raise VALUE_TOO_LARGE with the bucket's words.
    maxMsgSize: -1,
    discard: "new",
  };
}

export class StateMachine {
  private readonly log: KvLog;
  /** The state as of the last staged entry (decisions are made against it). */
  private staged: AppliedState;
  /** The state as of the last written entry. */
  private durable: AppliedState;
  private readonly window: DedupeWindow;
  /** Bucket configs as of the last staged entry (like the log's own indexes). */
  readonly buckets: Map<string, BucketConfig>;
  /** Highest written revision per bucket: the watch boundary B. */
  readonly committedRevision = new Map<string, number>();
  private queue: Promise<unknown> = Promise.resolve();
  /** The last staged call's publishing (durable state, watch boundary, onCommit). */
  private publishTail: Promise<void> = Promise.resolve();
  private fatal: unknown;
  private readonly onCommit: (effects: ApplyEffects) => void;

  private constructor(
    log: KvLog,
    applied: AppliedState,
    window: DedupeWindow,
    buckets: Map<string, BucketConfig>,
    onCommit: (effects: ApplyEffects) => void,
    private readonly unsafeSkipDedupe: boolean,
  ) {
    this.log = log;
    this.staged = applied;
    this.durable = applied;
    this.window = window;
    this.buckets = buckets;
    this.onCommit = onCommit;
    for (const bucket of buckets.keys()) {
      this.committedRevision.set(bucket, log.state(streamOf(bucket)).lastSeq);
    }
  }

  static async open(
    log: KvLog,
    options: StateMachineOptions,
    onCommit: (effects: ApplyEffects) => void,
  ): Promise<StateMachine> {
    const raw = await log.getMeta(APPLIED_KEY);
    const windowSize = options.dedupeWindow ?? DEFAULT_DEDUPE_WINDOW;
    assert(Number.isSafeInteger(windowSize) && windowSize >= 1, "dedupeWindow must be >= 1");
    const applied: AppliedState =
      raw === null
        ? { index: 0, clockMs: 0, records: 0, window: windowSize }
        : decodeAppliedState(raw);
    const window = new DedupeWindow(applied.window, applied.records);
    const slots = window.liveSlots();
    const records = await Promise.all(slots.map((slot) => log.getMeta(ringKey(slot))));
    slots.forEach((slot, i) => {
      const bytes = records[i];
      assert(bytes !== null && bytes !== undefined, `dedupe slot ${slot} is missing`);
      window.restore(slot, decodeDedupeRecord(bytes));
    });
    const buckets = new Map<string, BucketConfig>();
    for (const stream of log.streamNames()) {
      const bucket = bucketOfStream(stream);
      if (bucket === undefined) continue;
      const meta = await log.getMeta(bucketMetaKey(bucket));
      // A KV_ stream without a config was not made by kvapi: leave it alone.
      if (meta === null) continue;
      buckets.set(bucket, decodeBucketConfig(meta));
    }
    return new StateMachine(
      log,
      applied,
      window,
      buckets,
      onCommit,
      options.unsafe?.skipDedupe === true,
    );
  }

  /** The last entry whose batch has been written (what a reopen finds, once synced). */
  appliedIndex(): number {
    return this.durable.index;
  }

  /** The state machine's clock: the latest command timestamp written. */
  clockMs(): number {
    return this.durable.clockMs;
  }

  get dedupeWindow(): number {
    return this.window.window;
  }

  /**
   * Applies the committed entry at `index` (applyBatch of one). Entries must come in
   * index order (gaps are fine: Raft's own entries never reach here). Calls may
   * overlap: each call is decided and staged as soon as the previous one is staged, and
   * its batch commit joins the log's group commit, so pipelined applies share writes;
   * results resolve in index order once their batch is written. A failed write is
   * fatal: this and every later call rejects, and the node must restart from disk.
   */
  apply(index: number, data: Uint8Array, options: { sync?: boolean } = {}): Promise<ApplyResult> {
    return this.applyBatch([{ index, data }], options).then((results) => results[0]!);
  }

  /**
   * Applies committed entries, in index order, as one LogBatch: each entry is decided
   * against what the ones before it staged, and the batch carries their data and
   * request-window records with the applied state written once, so a Raft round of
   * many entries costs one batch, not one per entry. (A command that must read the log
   * before it is decided, purgeDeletes, ends the batch and starts another after it.)
   *
   * `onDecided` hears each entry's result as soon as it is decided and staged, before
   * the write: the entry is committed (durable on a majority in the Raft log, which
   * replays it after a crash and decides it the same way), so its answer may go out.
   * What reads the applied state (appliedIndex, the watch boundary, watchers) waits
   * for the write, as the returned promise does.
   */
  applyBatch(
    entries: readonly { index: number; data: Uint8Array }[],
    options: { sync?: boolean; onDecided?: (result: ApplyResult) => void } = {},
  ): Promise<ApplyResult[]> {
    for (const { index, data } of entries) {
      assert(
        Number.isSafeInteger(index) && index >= 1,
        `apply index ${index} is not a positive integer`,
      );
      assert(data instanceof Uint8Array, "apply data must be a Uint8Array");
    }
    const staged = this.queue.then(() => {
      if (this.fatal !== undefined) throw this.fatal;
      return this.stageMany(entries, options.sync ?? true, options.onDecided);
    });
    this.queue = staged.catch((err: unknown) => {
      this.fatal ??= err;
    });
    return staged.then((done) => done());
  }

  /** An entry staged before (a replay after a restart or a snapshot): its first result. */
  private replayed(index: number): ApplyResult {
    const record = this.window.forIndex(index);
    return record !== undefined
      ? { ...record.result, index, disposition: "replay" }
      : {
          ok: false,
          error: new KvError(
            "INTERNAL",
            `entry ${index} was applied before and its result is no longer remembered`,
          ),
          index,
          disposition: "forgotten",
        };
  }

  /** Decides and stages entries; returns a function to call once their writes have resolved. */
  private async stageMany(
    entries: readonly { index: number; data: Uint8Array }[],
    sync: boolean,
    onDecided: ((result: ApplyResult) => void) | undefined,
  ): Promise<() => Promise<ApplyResult[]>> {
    const results: ApplyResult[] = [];
    const commits: Array<{ written: Promise<void>; state: AppliedState; effects: ApplyEffects[] }> =
      [];
    let open: { batch: LogBatch; effects: ApplyEffects[] } | undefined;
    const close = () => {
      if (open === undefined) return;
      open.batch.putMeta(APPLIED_KEY, encodeAppliedState(this.staged));
      commits.push({
        written: open.batch.commit({ sync }),
        state: this.staged,
        effects: open.effects,
      });
      open = undefined;
    };

    for (const { index, data } of entries) {
      if (index <= this.staged.index) {
        const result = this.replayed(index);
        results.push(result);
        onDecided?.(result);
        continue;
      }
      let command: Command | undefined;
      let result: CommandResult | undefined;
      let stage: Stage | undefined;
      let disposition: ApplyResult["disposition"] = "applied";
      let reqKey = "";
      let clockMs = this.staged.clockMs;
      try {
        command = decodeCommand(data);
      } catch (err) {
        if (!(err instanceof KvError)) throw err;
        result = failed(err);
      }
      if (command !== undefined) {
        // Time only moves forward, so expiry never runs backwards on a leader change.
        clockMs = Math.max(clockMs, command.timestampMs);
        if (command.request !== undefined) reqKey = requestKey(command.request);
        const first =
          reqKey === "" || this.unsafeSkipDedupe ? undefined : this.window.forRequest(reqKey);
        if (first !== undefined) {
          result = first.result;
          disposition = "duplicate";
        } else {
          try {
            const prepared = this.prepare(command, clockMs);
            if (prepared instanceof Promise) {
              // It reads the log: nothing may be open meanwhile (the log has one open batch).
              close();
              stage = await prepared;
            } else {
              stage = prepared;
            }
          } catch (err) {
            if (!(err instanceof KvError)) throw err;
            result = failed(kvErrorOf(err, bucketOfCommand(command)));
          }
        }
      }

      const effects: ApplyEffects = {
        events: new Map(),
        createdBuckets: [],
        updatedBuckets: [],
        deletedBuckets: [],
      };
      open ??= { batch: this.log.batch(), effects: [] };
      if (stage !== undefined) {
        try {
          result = stage(open.batch, effects);
        } catch (err) {
          if (!(err instanceof KvError) || command === undefined) throw err;
          // Stages do their checks before their first mutation, and a log call
          // that throws changes nothing, so the batch holds no part of this command.
          assert(effects.events.size === 0, "command failed after it appended");
          result = failed(kvErrorOf(err, bucketOfCommand(command)));
        }
      }
      assert(result !== undefined, "command without a result");
      open.batch.endOfCommand();
      const record: DedupeRecord = { index, requestKey: reqKey, result };
      open.batch.putMeta(ringKey(this.window.nextSlot()), encodeDedupeRecord(record));
      open.effects.push(effects);

      // The next entry is decided against this one's staged state (the log's
      // indexes already show it), so the in-memory mirror moves on now too.
      this.staged = {
        index,
        clockMs,
        records: this.window.records + 1,
        window: this.window.window,
      };
      this.window.add(record);
      for (const config of effects.createdBuckets) this.buckets.set(config.bucket, config);
      for (const config of effects.updatedBuckets) this.buckets.set(config.bucket, config);
      for (const bucket of effects.deletedBuckets) this.buckets.delete(bucket);
      // Object.assign, not a spread (about 1 us per entry on V8's slow clone path).
      const final: ApplyResult = Object.assign({}, result, { index, disposition });
      results.push(final);
      onDecided?.(final);
    }
    close();

    // Published in staging order, one call after another: a call's later batch (after a
    // purgeDeletes) may be written in the same LevelDB write as the next call's batch,
    // and its effects must still reach the watchers first.
    const published = this.publishTail.then(async () => {
      for (const { written, state, effects } of commits) {
        await written;
        // Watchers and the watch boundary only ever see written entries.
        this.durable = state;
        for (const e of effects) {
          for (const config of e.createdBuckets) this.committedRevision.set(config.bucket, 0);
          for (const bucket of e.deletedBuckets) this.committedRevision.delete(bucket);
          for (const [bucket, events] of e.events) {
            if (events.length > 0) {
              this.committedRevision.set(bucket, events[events.length - 1]!.seq);
            }
          }
          this.onCommit(e);
        }
      }
    });
    this.publishTail = published.catch(() => {}); // a failed write rejects its own call
    return () => published.then(() => results);
  }

  private requireBucket(bucket: string): BucketConfig {
    validateBucketName(bucket);
    const config = this.buckets.get(bucket);
    if (config === undefined) {
      throw new KvError("BUCKET_NOT_FOUND", `bucket ${JSON.stringify(bucket)} not found`);
    }
    return config;
  }

  private currentRevision(bucket: string, key: string): number {
    return this.log.subjectInfo(streamOf(bucket), key)?.lastSeq ?? 0;
  }

  private checkLast(bucket: string, key: string, last: number): void {
    const current = this.currentRevision(bucket, key);
    if (current !== last) {
      throw new KvError(
        "WRONG_LAST_REVISION",
        `key ${JSON.stringify(key)} in bucket ${JSON.stringify(bucket)} is at revision ${current}, not ${last}`,
        { currentRevision: current },
      );
    }
  }

  /** Validates a command and decides it; the returned stage only mutates. */
  /** A Promise only for a command that must read the log first (purgeDeletes). */
  private prepare(command: Command, clockMs: number): Stage | Promise<Stage> {
    switch (command.type) {
      case "createBucket":
        return this.prepareCreateBucket(command.config, command.limits);
      case "updateBucket":
        return this.prepareUpdateBucket(command.config);
      case "deleteBucket": {
        this.requireBucket(command.bucket);
        const bucket = command.bucket;
        return (batch, effects) => {
          batch.deleteStream(streamOf(bucket));
          batch.putMeta(bucketMetaKey(bucket), null);
          effects.deletedBuckets.push(bucket);
          return ok();
        };
      }
      case "put":
      case "create":
      case "update":
        return this.prepareWrite(command, clockMs);
      case "delete":
      case "purge":
        return this.prepareMarker(command, clockMs);
      case "purgeDeletes":
        return this.preparePurgeDeletes(command.bucket, command.olderThanMs, clockMs);
      case "timeAdvance":
        return (batch, effects) => this.expire(batch, effects, clockMs);
    }
  }

  private prepareCreateBucket(config: BucketConfig, limits: NodeLimits | undefined): Stage {
    validateBucketConfig(config);
    // Every bucket lives in the one Raft group: its replicas are the voters, however
    // many. Judged against the count the leader stamped, so every replica decides alike.
    const voters = limits?.voters ?? 0;
    if (voters > 0 && config.replicas !== 0 && config.replicas !== voters) {
      throw new KvError(
        "INVALID_CONFIG",
        `bucket ${JSON.stringify(config.bucket)}: replicas must be the cluster's voter count, ${voters}: every bucket is replicated on every voter (omit replicas or give 0 for that count), got ${config.replicas}`,
      );
    }
    const existing = this.buckets.get(config.bucket);
    if (existing !== undefined) {
      if (sameBucketConfig(existing, config)) return () => ok();
      throw new KvError(
        "BUCKET_EXISTS",
        `bucket ${JSON.stringify(config.bucket)} exists with a different config`,
      );
    }
    const maxBuckets = limits?.maxBuckets ?? 0;
    if (maxBuckets > 0 && this.buckets.size >= maxBuckets) {
      throw new KvError(
        "QUOTA_EXCEEDED",
        `cannot create bucket ${JSON.stringify(config.bucket)}: the node holds ${this.buckets.size} buckets, its limit (--max-buckets) is ${maxBuckets}; delete a bucket first`,
      );
    }
    return (batch, effects) => {
      batch.createStream(streamConfigOf(config));
      batch.putMeta(bucketMetaKey(config.bucket), encodeBucketConfig(config));
      effects.createdBuckets.push(config);
      return ok();
    };
  }

  private prepareUpdateBucket(config: BucketConfig): Stage {
    validateBucketConfig(config);
    this.requireBucket(config.bucket);
    return (batch, effects) => {
      // The log trims history at once when maxMsgsPerSubject shrinks.
      batch.updateStream(streamConfigOf(config));
      batch.putMeta(bucketMetaKey(config.bucket), encodeBucketConfig(config));
      effects.updatedBuckets.push(config);
      return ok();
    };
  }

  private prepareWrite(
    command: Extract<Command, { type: "put" | "create" | "update" }>,
    clockMs: number,
  ): Stage {
    const { bucket, key, value } = command;
    validateBucketName(bucket);
    validateKey(key);
    const config = this.requireBucket(bucket);
    if (!(value instanceof Uint8Array))
      throw new KvError("INVALID_ARGUMENT", "value must be bytes");
    const limit = valueLimitBytes(config);
    if (value.length > limit) {
      throw new KvError(
        "VALUE_TOO_LARGE",
        `value of ${value.length} bytes exceeds the limit of ${limit} bytes of bucket ${JSON.stringify(bucket)}`,
      );
    }
    const stream = streamOf(bucket);
    if (command.type === "create") {
      const info = this.log.subjectInfo(stream, key);
      if (info !== undefined && info.operation === "PUT") {
        throw new KvError(
          "KEY_EXISTS",
          `key ${JSON.stringify(key)} exists in bucket ${JSON.stringify(bucket)} at revision ${info.lastSeq}`,
          { currentRevision: info.lastSeq },
        );
      }
    } else if (command.type === "update") {
      this.checkLast(bucket, key, command.last);
    }
    const maxStoredBytes = command.limits?.maxStoredBytes ?? 0;
    if (config.maxBytes !== -1 || maxStoredBytes > 0) {
      // Judge the bucket (and the node) as it will be after this write trims the key's history.
      const seqs = this.log.seqsOfSubject(stream, key);
      const dropped = seqs.slice(0, Math.max(0, seqs.length + 1 - config.history));
      // Sizes come from the log's in-memory index: this runs on every replica for every
      // write, so it must not read the trimmed messages from disk.
      let freedBytes = 0;
      for (const seq of dropped) freedBytes += this.log.payloadSize(stream, seq) ?? 0;
      if (maxStoredBytes > 0 && value.length > freedBytes) {
        // Every bucket together: the node's disk is shared (markers still pass, to free space).
        const nodeAfter = this.log.storedBytes() - freedBytes + value.length;
        if (nodeAfter > maxStoredBytes) {
          throw new KvError(
            "QUOTA_EXCEEDED",
            `the node is full: ${nodeAfter} bytes stored would exceed its limit (--max-stored-bytes) of ${maxStoredBytes}; delete or purge keys, or delete a bucket`,
          );
        }
      }
      const bytesAfter = this.log.state(stream).bytes - freedBytes + value.length;
      if (config.maxBytes !== -1 && bytesAfter > config.maxBytes) {
        throw new KvError(
          "BUCKET_FULL",
          `bucket ${JSON.stringify(bucket)} is full: ${bytesAfter} bytes would exceed maxBytes ${config.maxBytes}`,
        );
      }
    }
    return (batch, effects) => {
      const seq = batch.append(stream, {
        subject: key,
        payload: value,
        operation: "PUT",
        timestampMs: clockMs,
      });
      pushEvent(effects, bucket, {
        seq,
        subject: key,
        payload: value,
        operation: "PUT",
        timestampMs: clockMs,
      });
      return ok(seq);
    };
  }

  private prepareMarker(
    command: Extract<Command, { type: "delete" | "purge" }>,
    clockMs: number,
  ): Stage {
    const { bucket, key } = command;
    validateBucketName(bucket);
    validateKey(key);
    this.requireBucket(bucket);
    if (command.last !== undefined) this.checkLast(bucket, key, command.last);
    const operation = command.type === "delete" ? "DEL" : "PURGE";
    const stream = streamOf(bucket);
    // Markers hold no value bytes, so they pass on a full bucket (users can free space).
    return (batch, effects) => {
      const seq = batch.append(stream, {
        subject: key,
        payload: EMPTY,
        operation,
        timestampMs: clockMs,
      });
      if (operation === "PURGE") batch.purge(stream, { subject: key, keep: 1 });
      pushEvent(effects, bucket, {
        seq,
        subject: key,
        payload: EMPTY,
        operation,
        timestampMs: clockMs,
      });
      return ok(seq);
    };
  }

  private async preparePurgeDeletes(
    bucket: string,
    olderThanMs: number,
    clockMs: number,
  ): Promise<Stage> {
    this.requireBucket(bucket);
    const stream = streamOf(bucket);
    const markers: Array<{ subject: string; timestampMs: number }> = [];
    for await (const info of this.log.subjects(stream)) {
      if (info.operation === "PUT") continue;
      const message = await this.log.getBySeq(stream, info.lastSeq);
      assert(message !== null, `marker ${info.lastSeq} of ${info.subject} is not stored`);
      markers.push({ subject: info.subject, timestampMs: message.timestampMs });
    }
    return (batch) => {
      let removed = 0;
      for (const m of markers) {
        // Old markers go entirely; younger ones stay (alone) so watchers still learn of them.
        const old = olderThanMs < 0 || m.timestampMs <= clockMs - olderThanMs;
        removed += batch.purge(stream, { subject: m.subject, keep: old ? 0 : 1 });
      }
      return ok(0, removed);
    };
  }

  /** Expires entries of every TTL bucket; a key whose last value expired gets a PURGE marker. */
  private expire(batch: LogBatch, effects: ApplyEffects, clockMs: number): CommandResult {
    let expiredCount = 0;
    for (const bucket of [...this.buckets.keys()].sort()) {
      const config = this.buckets.get(bucket)!;
      if (config.ttlMs === 0) continue;
      const stream = streamOf(bucket);
      const expired = batch.expire(stream, clockMs);
      expiredCount += expired.length;
      const newest = new Map<string, ExpiredMessage>();
      for (const m of expired) {
        const prev = newest.get(m.subject);
        if (prev === undefined || m.seq > prev.seq) newest.set(m.subject, m);
      }
      // A marker that expires gets no marker of its own: the key is already absent
      // for watchers, and a marker per marker would never end.
      const gone = [...newest.values()]
        .filter(
          (m) => m.operation === "PUT" && this.log.subjectInfo(stream, m.subject) === undefined,
        )
        .sort((a, b) => a.seq - b.seq);
      for (const m of gone) {
        const seq = batch.append(stream, {
          subject: m.subject,
          payload: EMPTY,
          operation: "PURGE",
          timestampMs: clockMs,
        });
        pushEvent(effects, bucket, {
          seq,
          subject: m.subject,
          payload: EMPTY,
          operation: "PURGE",
          timestampMs: clockMs,
        });
      }
    }
    return ok(0, expiredCount);
  }
}

function pushEvent(effects: ApplyEffects, bucket: string, event: WatchEvent): void {
  let list = effects.events.get(bucket);
  if (list === undefined) {
    list = [];
    effects.events.set(bucket, list);
  }
  list.push(event);
}
