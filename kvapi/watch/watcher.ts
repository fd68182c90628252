/**
 * One watch: the initial entries (pulled lazily from a source fixed at a
 * revision boundary B), then one `null`, then live entries (> B) that the hub
 * pushes as they are committed. Live entries that arrive during the initial
 * scan wait in the same bounded queue, so nothing between the scan and the
 * live stream is lost or repeated. A watcher whose queue overflows is ended
 * with SLOW_CONSUMER rather than growing without limit or holding up others.
 */
import { KvError } from "../../proto/index.js";
import { assert } from "../assert.js";
import type { CatchUp, Entry, Operation, Watcher } from "../types.js";

/** A committed stream message as the watch engine sees it. */
export interface WatchEvent {
  seq: number;
  subject: string;
  payload: Uint8Array;
  operation: Operation;
  timestampMs: number;
}

/** The initial entries of a watch, all with seq <= B, in revision order. */
export interface InitialSource {
  /** The entries a chunk (one log read) at a time, so most are handed out without a wait. */
  chunks: AsyncIterator<WatchEvent[]>;
  /**
   * Asked as each entry is handed out: false skips it (removed since its chunk was read);
   * a KvError it throws ends the watch. Asked once more with undefined after the last chunk.
   * Absent: every entry is handed out.
   */
  admit?: (event: WatchEvent | undefined) => boolean;
  /** How many entries the source expects to yield (for `delta`); an estimate. */
  expected: number;
}

export interface WatcherOptions {
  bucket: string;
  filter: string;
  /** Live entries with seq <= boundary are not delivered (they belong to the initial scan). */
  boundary: number;
  /** Live entries below this revision are skipped (resumeFromRevision beyond B). */
  fromRevision: number;
  ignoreDeletes: boolean;
  metaOnly: boolean;
  maxPending: number;
  maxPendingBytes: number;
  /** Undefined: no initial entries (updatesOnly); the `null` comes first. */
  initial: InitialSource | undefined;
  /** Set when the initial entries are a catch-up or a reset (resume.ts). */
  catchUp?: CatchUp;
  /** The bucket's written revision now (for progress messages). */
  currentRevision: () => number;
  /** Called once when the watcher ends for any reason (the hub unregisters it). */
  onEnd: (watcher: KvWatcher) => void;
}

export const DEFAULT_MAX_PENDING = 4096;
export const DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024;

const EMPTY = new Uint8Array(0);
type Phase = "initial" | "marker" | "live";
type Next = IteratorResult<Entry | null, undefined>;

export class KvWatcher implements Watcher {
  readonly bucket: string;
  readonly filter: string;
  readonly boundaryRevision: number;
  readonly catchUp: CatchUp | undefined;
  private readonly options: WatcherOptions;
  private phase: Phase;
  private initial: InitialSource | undefined;
  /** The initial chunk being handed out: `chunk[chunkAt..]` are left. */
  private chunk: WatchEvent[] = [];
  private chunkAt = 0;
  private expectedLeft: number;
  /** Live events, a deque: `queue[head..]` are pending. */
  private queue: WatchEvent[] = [];
  private head = 0;
  private queuedBytes = 0;
  private delivered = 0;
  private ended = false;
  private error: KvError | undefined;
  private errorThrown = false;
  private wake: (() => void) | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  /** A `next()` is under way (takeReady must not overtake it). */
  private stepping = 0;

  constructor(options: WatcherOptions) {
    this.options = options;
    this.bucket = options.bucket;
    this.filter = options.filter;
    this.boundaryRevision = options.boundary;
    this.catchUp = options.catchUp;
    this.initial = options.initial;
    this.expectedLeft = options.initial?.expected ?? 0;
    this.phase = options.initial === undefined ? "marker" : "initial";
  }

  get lastRevision(): number {
    return this.delivered;
  }

  get pending(): number {
    return this.queue.length - this.head;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  progressRevision(): number {
    if (this.ended || this.phase !== "live") return 0;
    // Idle and live: every matching entry up to the bucket's written revision was handed
    // out (the hub pushes at write time, in the same turn as that revision moves).
    if (this.pending === 0) return Math.max(this.delivered, this.options.currentRevision());
    return this.delivered;
  }

  [Symbol.asyncIterator](): AsyncIterator<Entry | null, undefined> {
    return {
      next: () => this.next(),
      return: async () => {
        this.stop();
        return { done: true, value: undefined };
      },
    };
  }

  /** Calls are served one at a time, in order. */
  next(): Promise<Next> {
    this.stepping++;
    const result = this.chain.then(() => this.step());
    this.chain = result.then(
      () => this.stepping--,
      () => this.stepping--,
    );
    return result;
  }

  /**
   * The next item when it is ready now (a buffered initial entry, the marker, a queued
   * live entry), else undefined: then `next()` waits for it. Lets a consumer drain what is
   * buffered without a promise per entry. Never overtakes a `next()` under way.
   */
  takeReady(): Next | undefined {
    if (this.stepping > 0 || this.ended) return undefined;
    const next = this.readyNow();
    return this.ended ? undefined : next;
  }

  stop(): void {
    this.end(undefined);
  }

  /** Ends the watcher with an error that the consumer's next `next()` throws. */
  fail(error: KvError): void {
    this.end(error);
  }

  /** A committed event from the hub (already matched against the filter). */
  push(event: WatchEvent): void {
    if (this.ended) return;
    assert(event.seq > this.options.boundary, "live event at or below the watch boundary");
    if (event.seq < this.options.fromRevision) return;
    if (this.options.ignoreDeletes && event.operation !== "PUT") return;
    const size = this.options.metaOnly ? 0 : event.payload.length;
    if (
      this.pending >= this.options.maxPending ||
      this.queuedBytes + size > this.options.maxPendingBytes
    ) {
      this.fail(
        new KvError(
          "SLOW_CONSUMER",
          `watch on ${this.bucket} "${this.filter}" fell more than ${this.pending} entries behind; resume from revision ${this.delivered + 1}`,
          { lastRevision: this.delivered },
        ),
      );
      return;
    }
    this.queue.push(event);
    this.queuedBytes += size;
    this.wakeUp();
  }

  private end(error: KvError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    this.chunk = [];
    this.chunkAt = 0;
    const initial = this.initial;
    this.initial = undefined;
    // Releases the log iterator (and its LevelDB snapshot) the scan may hold.
    initial?.chunks.return?.(undefined)?.catch(() => undefined);
    this.options.onEnd(this);
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private finish(): Next {
    if (this.error !== undefined && !this.errorThrown) {
      this.errorThrown = true;
      throw this.error;
    }
    return { done: true, value: undefined };
  }

  /** The oldest queued live entry (there must be one). */
  private takeQueued(): Next {
    const event = this.queue[this.head]!;
    this.queue[this.head] = undefined as unknown as WatchEvent;
    this.head++;
    if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.queuedBytes -= this.options.metaOnly ? 0 : event.payload.length;
    return { done: false, value: this.toEntry(event, this.pending) };
  }

  private toEntry(event: WatchEvent, delta: number): Entry {
    this.delivered = event.seq;
    return {
      bucket: this.bucket,
      key: event.subject,
      value: this.options.metaOnly ? EMPTY : event.payload,
      size: event.payload.length,
      revision: event.seq,
      created: new Date(event.timestampMs),
      delta,
      operation: event.operation,
    };
  }

  /** Fails the watcher with what the initial scan threw (a KvError, else INTERNAL). */
  private failScan(cause: unknown): void {
    if (this.ended) return;
    this.fail(
      cause instanceof KvError
        ? cause
        : new KvError("INTERNAL", "watch initial scan failed", {}, cause),
    );
  }

  /** The next admitted entry of the current chunk, or undefined when it is used up. */
  private nextFromChunk(): WatchEvent | undefined {
    const admit = this.initial?.admit;
    while (this.chunkAt < this.chunk.length) {
      const event = this.chunk[this.chunkAt]!;
      this.chunk[this.chunkAt++] = undefined as unknown as WatchEvent;
      try {
        if (admit === undefined || admit(event)) return event;
      } catch (cause) {
        this.failScan(cause);
        return undefined;
      }
    }
    return undefined;
  }

  /** What can be handed out without a wait: an initial entry, the marker, a live entry. */
  private readyNow(): Next | undefined {
    if (this.phase === "initial") {
      const event = this.nextFromChunk();
      if (event === undefined) return undefined;
      this.expectedLeft = Math.max(0, this.expectedLeft - 1);
      return { done: false, value: this.toEntry(event, this.expectedLeft + this.pending) };
    }
    if (this.phase === "marker") {
      this.phase = "live";
      return { done: false, value: null };
    }
    return this.pending > 0 ? this.takeQueued() : undefined;
  }

  /** Reads the next initial chunk; after the last one the marker comes next. */
  private async readChunk(): Promise<void> {
    const initial = this.initial;
    assert(initial !== undefined, "initial phase without a source");
    let r: IteratorResult<WatchEvent[]>;
    try {
      r = await initial.chunks.next();
      if (r.done) initial.admit?.(undefined);
    } catch (cause) {
      this.failScan(cause);
      return;
    }
    if (this.ended) return;
    if (!r.done) {
      this.chunk = r.value;
      this.chunkAt = 0;
      return;
    }
    this.initial = undefined;
    this.expectedLeft = 0;
    this.phase = "marker";
  }

  private async step(): Promise<Next> {
    for (;;) {
      if (this.ended) return this.finish();
      const next = this.readyNow();
      if (this.ended) return this.finish();
      if (next !== undefined) return next;
      if (this.phase === "initial") {
        await this.readChunk();
        continue;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }
}
