/**
 * `KvStateMachine`: applies the commands Raft commits and serves reads and watches
 * from the applied state. It reaches
 * storage only through the stream log, and has no clock, timers, randomness or
 * network of its own: time arrives inside commands.
 *
 *   const kv = await KvStateMachine.open(log);
 *   const bytes = encodeCommand({ type: "put", bucket, key, value, timestampMs });
 *   const result = await kv.apply(raftIndex, bytes);   // { ok, revision } | { ok: false, error }
 *   for await (const e of kv.watch(bucket, "a.>")) ...
 */
import { KvError } from "../proto/index.js";
import type { KvLog } from "./log_port.js";
import { streamOf, validateBucketName, validateFilter, validateKey } from "./names.js";
import * as reads from "./reads.js";
import { type ApplyEffects, StateMachine, type StateMachineOptions } from "./state_machine.js";
import type {
  ApplyResult,
  BucketConfig,
  BucketStatus,
  Entry,
  ListKeysOptions,
  Watcher,
  WatchOptions,
} from "./types.js";
import { WatchHub } from "./watch/hub.js";
import { type InitialMode, initialSource } from "./watch/initial.js";
import { planOutgrown, planResume, type ResumeInput } from "./watch/resume.js";
import { DEFAULT_MAX_PENDING, DEFAULT_MAX_PENDING_BYTES, KvWatcher } from "./watch/watcher.js";

export interface KvOptions extends StateMachineOptions {}

function invalidOption(message: string): KvError {
  return new KvError("INVALID_OPTION", message);
}

function checkCount(name: string, value: unknown): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 1)) {
    throw invalidOption(`${name} must be a positive integer (got ${String(value)})`);
  }
}

function checkFlag(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "boolean") {
    throw invalidOption(`${name} must be a boolean (got ${typeof value})`);
  }
}

export class KvStateMachine {
  private readonly log: KvLog;
  private readonly hub = new WatchHub();
  /** The hub's watchers too, kept here so metrics can read their queues (bounded by it). */
  private readonly liveWatchers = new Set<KvWatcher>();
  /** Replaced only when the log was replaced by a snapshot (`restored`). */
  private machine: StateMachine;
  private closed = false;

  private constructor(
    log: KvLog,
    machine: StateMachine,
    private readonly options: KvOptions,
  ) {
    this.log = log;
    this.machine = machine;
  }

  static async open(log: KvLog, options: KvOptions = {}): Promise<KvStateMachine> {
    let self: KvStateMachine | undefined;
    const machine = await StateMachine.open(log, options, (effects) => self?.committed(effects));
    self = new KvStateMachine(log, machine, options);
    return self;
  }

  private committed(effects: ApplyEffects): void {
    for (const [bucket, events] of effects.events) this.hub.publish(bucket, events);
    for (const bucket of effects.deletedBuckets) {
      this.hub.endBucket(
        bucket,
        new KvError("BUCKET_NOT_FOUND", `bucket ${JSON.stringify(bucket)} was deleted`),
      );
    }
  }

  /**
   * Applies the committed Raft entry `index` (one atomic, by default synced,
   * batch). `sync: false` suits all but the last entry of a group: LevelDB's
   * next synced write makes the earlier ones durable too.
   */
  apply(index: number, data: Uint8Array, options: { sync?: boolean } = {}): Promise<ApplyResult> {
    if (this.closed) {
      return Promise.reject(new KvError("SHUTTING_DOWN", "the KV state machine is closed"));
    }
    return this.machine.apply(index, data, options);
  }

  /** Committed entries in index order as one batch (state_machine.ts applyBatch). */
  applyBatch(
    entries: readonly { index: number; data: Uint8Array }[],
    options: { sync?: boolean; onDecided?: (result: ApplyResult) => void } = {},
  ): Promise<ApplyResult[]> {
    if (this.closed) {
      return Promise.reject(new KvError("SHUTTING_DOWN", "the KV state machine is closed"));
    }
    return this.machine.applyBatch(entries, options);
  }

  appliedIndex(): number {
    return this.machine.appliedIndex();
  }

  /** The latest leader time applied (ms since epoch). */
  clockMs(): number {
    return this.machine.clockMs();
  }

  private requireBucket(bucket: string): BucketConfig {
    validateBucketName(bucket);
    const config = this.machine.buckets.get(bucket);
    if (config === undefined) {
      throw new KvError("BUCKET_NOT_FOUND", `bucket ${JSON.stringify(bucket)} not found`);
    }
    return config;
  }

  bucketConfig(bucket: string): BucketConfig | undefined {
    return this.machine.buckets.get(bucket);
  }

  /**
   * At least the largest value any entry of `bucket` holds (undefined: no such bucket),
   * without reading: what an answer to a `get` may carry.
   */
  largestValueBytes(bucket: string): number | undefined {
    if (!this.machine.buckets.has(bucket)) return undefined;
    return this.log.largestPayload(streamOf(bucket));
  }

  async get(bucket: string, key: string): Promise<Entry | null> {
    validateKey(key);
    this.requireBucket(bucket);
    return reads.getLatest(this.log, bucket, key);
  }

  async getRevision(bucket: string, key: string, revision: number): Promise<Entry | null> {
    validateKey(key);
    this.requireBucket(bucket);
    if (!Number.isSafeInteger(revision) || revision < 1) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `revision must be a positive integer (got ${revision})`,
      );
    }
    return reads.getRevision(this.log, bucket, key, revision);
  }

  async keys(bucket: string, filter = ">", options: ListKeysOptions = {}): Promise<string[]> {
    const out: string[] = [];
    for await (const key of this.listKeys(bucket, filter, options)) out.push(key);
    return out;
  }

  /**
   * Streams the keys of `keys()` without collecting them, sorted; with
   * `startAfter`, only keys strictly after it, so a pager continues from the
   * last key it returned without rescanning. Throws on bad input at once.
   */
  listKeys(bucket: string, filter = ">", options: ListKeysOptions = {}): AsyncIterable<string> {
    validateFilter(filter);
    this.requireBucket(bucket);
    const startAfter = options.startAfter ?? "";
    if (typeof startAfter !== "string") {
      throw invalidOption(`startAfter must be a string (got ${typeof startAfter})`);
    }
    return reads.listKeys(this.log, bucket, filter, startAfter);
  }

  async history(bucket: string, keyOrFilter: string): Promise<Entry[]> {
    validateFilter(keyOrFilter);
    this.requireBucket(bucket);
    return reads.history(this.log, bucket, keyOrFilter);
  }

  /** One page of `key`'s history after `afterRevision`, within `maxBytes` (reads.historyPage). */
  async historyPage(
    bucket: string,
    key: string,
    afterRevision: number,
    maxBytes: number,
  ): Promise<reads.HistoryPage> {
    validateKey(key);
    this.requireBucket(bucket);
    return reads.historyPage(this.log, bucket, key, afterRevision, maxBytes);
  }

  status(bucket: string): BucketStatus {
    return reads.status(this.log, this.requireBucket(bucket));
  }

  listBuckets(): BucketStatus[] {
    return [...this.machine.buckets.keys()]
      .sort()
      .map((bucket) => reads.status(this.log, this.machine.buckets.get(bucket)!));
  }

  /**
   * Starts a watch: initial entries (revision <= the committed revision now),
   * one `null`, then live entries. Throws on a bad filter or options, a missing
   * bucket, or a resume point older than what is retained.
   */
  watch(bucket: string, filter = ">", options: WatchOptions = {}): Watcher {
    if (this.closed) throw new KvError("SHUTTING_DOWN", "the KV state machine is closed");
    validateFilter(filter);
    this.requireBucket(bucket);
    const o = options;
    if (o.includeHistory && o.updatesOnly) {
      throw invalidOption("includeHistory and updatesOnly cannot be combined");
    }
    const resume = o.resumeFromRevision;
    if (resume !== undefined) {
      if (!Number.isSafeInteger(resume) || resume < 1) {
        throw invalidOption(`resumeFromRevision must be a positive integer (got ${resume})`);
      }
      if (o.updatesOnly)
        throw invalidOption("resumeFromRevision and updatesOnly cannot be combined");
    }
    checkCount("maxPending", o.maxPending);
    checkCount("maxPendingBytes", o.maxPendingBytes);

    checkFlag("catchUp", o.catchUp);
    checkFlag("allowReset", o.allowReset);

    const stream = streamOf(bucket);
    const boundary = this.machine.committedRevision.get(bucket) ?? 0;
    const resumeInput = (): ResumeInput => ({
      bucket,
      resume: resume!,
      boundary,
      horizon: this.log.watchHorizon(stream),
      firstSeq: this.log.state(stream).firstSeq,
      catchUp: o.catchUp === true,
      allowReset: o.allowReset === true,
    });
    // Throws REVISION_COMPACTED when the resume point cannot be served (resume.ts).
    const plan = resume === undefined ? undefined : planResume(resumeInput());
    const ignoreDeletes = o.ignoreDeletes === true;
    const mode: InitialMode =
      plan === "catch-up"
        ? { kind: "latest", fromSeq: resume! }
        : plan === "reset"
          ? { kind: "latest" }
          : resume !== undefined
            ? { kind: "all", fromSeq: resume }
            : o.includeHistory
              ? { kind: "all", fromSeq: 1 }
              : { kind: "latest" };
    const recheck =
      plan === undefined || !o.catchUp
        ? undefined
        : (): KvError | undefined => {
            try {
              if (!planOutgrown(plan, planResume(resumeInput()))) return undefined;
            } catch (err) {
              if (err instanceof KvError) return err;
              throw err;
            }
            return new KvError(
              "SLOW_CONSUMER",
              `entries of bucket ${JSON.stringify(bucket)} from revision ${resume} on were removed while this watch read them; resume from revision ${resume} to catch up`,
              { lastRevision: resume! - 1 },
            );
          };
    const initial = o.updatesOnly
      ? undefined
      : initialSource({
          log: this.log,
          bucket,
          stream,
          filter,
          boundary,
          ignoreDeletes,
          mode,
          ...(recheck === undefined ? {} : { recheck }),
        });
    const watcher = new KvWatcher({
      bucket,
      filter,
      boundary,
      fromRevision: resume ?? 1,
      ignoreDeletes,
      metaOnly: o.metaOnly === true,
      maxPending: o.maxPending ?? DEFAULT_MAX_PENDING,
      maxPendingBytes: o.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES,
      initial,
      ...(plan === "catch-up" || plan === "reset"
        ? { catchUp: { fromRevision: resume!, toRevision: boundary, reset: plan === "reset" } }
        : {}),
      currentRevision: () => this.machine.committedRevision.get(bucket) ?? 0,
      onEnd: (w) => {
        this.hub.remove(w);
        this.liveWatchers.delete(w);
      },
    });
    this.hub.add(watcher);
    this.liveWatchers.add(watcher);
    return watcher;
  }

  /** Entries queued for watchers on this node, summed and the most any one holds (metrics). */
  watchQueueDepth(): { total: number; max: number } {
    let total = 0;
    let max = 0;
    for (const w of this.liveWatchers) {
      total += w.pending;
      if (w.pending > max) max = w.pending;
    }
    return { total, max };
  }

  watcherCount(bucket?: string): number {
    return this.hub.watcherCount(bucket);
  }

  /**
   * The log under this state machine was replaced by a snapshot (log/snapshot.ts):
   * re-reads the applied index, request window and bucket configs from it, and ends
   * every watch with SLOW_CONSUMER: the state jumped, so a watcher cannot be carried
   * across; the client resumes from the last revision it received, which replays
   * from the new state with no gap (or fails with REVISION_COMPACTED when that
   * revision is no longer retained). The caller guarantees that no apply runs.
   */
  async restored(): Promise<void> {
    // Swap first, then end the watches: a watch started while the new state was being
    // read would otherwise be served from the old machine and never be ended.
    const machine = await StateMachine.open(this.log, this.options, (effects) =>
      this.committed(effects),
    );
    this.machine = machine;
    this.hub.endAll(
      new KvError(
        "SLOW_CONSUMER",
        "this node replaced its state with a snapshot from the leader; resume the watch from the last revision received",
      ),
    );
  }

  /**
   * Ends every watch with `error` (resumable for clients): the node found it cannot serve
   * them (no leader within its timeout), so its watchers move to another node.
   */
  endWatches(error: KvError): void {
    this.hub.endAll(error);
  }

  /** Ends every watch with SHUTTING_DOWN; the log is the caller's to close. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.endAll(new KvError("SHUTTING_DOWN", "the KV state machine is closing"));
  }
}
