/**
 * A watch as an AsyncIterable<Entry | null> (with `notices`, of WatchItem). The server
 * sends at most a window of events ahead of the application (credit-based flow
 * control, credit_window.ts), so neither side buffers without limit. When the stream is lost (connection
 * loss, a node shutting down or out of touch with its leader, SLOW_CONSUMER, or a
 * stream silent past its progress interval) the watcher resubscribes from the revision
 * after the last one it received, on another server where the node cannot serve,
 * keeping what it already buffered: the application sees no gap and no duplicate, only
 * an optional `watch_resumed` event. Where the server no longer holds every revision
 * since, it catches up (the latest entry of each changed key) and says so first.
 */
import { KvError, shownValue } from "../proto/index.js";
import type { Connection } from "./connection.js";
import { CreditWindow } from "./credit_window.js";
import { checkFlag, checkTimeoutMs } from "./options.js";
import type { Entry, WatchItem, WatchNotice, WatchOptions } from "./types.js";
import type { ServerAnswer, WireObject } from "./wire.js";

const DEFAULT_PROGRESS_INTERVAL_MS = 250;
/** Silence after which a stream counts as stalled: this many progress intervals... */
const STALL_INTERVALS = 3;
/** ...and at least this long. */
const MIN_STALL_MS = 750;

/** Codes after which the watch can be resumed from its cursor on another stream. */
const RESUMABLE: ReadonlySet<string> = new Set([
  "SLOW_CONSUMER",
  "OVERLOADED",
  "SHUTTING_DOWN",
  "CONNECTION_CLOSED",
  "TIMEOUT",
  "NO_LEADER",
  "NOT_LEADER",
  "DISK_FULL",
]);

/** Of the resumable codes, those after which the watch moves to another server: this node cannot serve it. */
const MOVE_ON: ReadonlySet<string> = new Set(["NO_LEADER", "TIMEOUT", "DISK_FULL"]);
/** Codes after which a first subscribe is worth asking again elsewhere, within its timeout. */
const RETRY_START: ReadonlySet<string> = new Set(["NO_LEADER", "DISK_FULL"]);

export class KvWatcher<T extends WatchItem = Entry | null> implements AsyncIterable<T> {
  private readonly queue: WatchItem[] = [];
  private readonly window: CreditWindow;
  private readonly progressMs: number;
  private readonly stallMs: number;
  private wake: (() => void) | undefined;
  private streamId = 0;
  private ended = false;
  private endError: KvError | undefined;
  /**
   * Where a resume starts (cursor + 1): every matching revision <= cursor was received.
   * It stays put during a catch-up, whose entries are sparse, until the catch-up is done.
   */
  private cursor = 0;
  /** Highest revision received; a resumed stream's entries at or below it are repeats. */
  private seen = 0;
  /** Set between a catch-up notice and its end (the stream's init_done). */
  private catchingUp: { reset: boolean } | undefined;
  private lastProgress = 0;
  private initReceived = false;
  /** The connection's socket this stream was opened on (Connection.failover). */
  private generation = 0;
  private lastFrameAt = 0;
  private stallTimer: ReturnType<typeof setTimeout> | undefined;
  private started: { resolve(): void; reject(err: KvError): void } | undefined;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private resumeAttempt = 0;
  /** Until when the first subscribe may be retried on another server (NO_LEADER). */
  private startDeadline = 0;

  constructor(
    private readonly conn: Connection,
    readonly bucket: string,
    readonly filter: string,
    private readonly options: WatchOptions,
  ) {
    const size = options.bufferSize;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 1 || size > 1_000_000)) {
      throw new KvError(
        "INVALID_OPTION",
        `watch: bufferSize must be an integer 1..1000000, got ${shownValue(size)}`,
      );
    }
    this.window = new CreditWindow(size);
    checkTimeoutMs(options.timeoutMs, "watch: timeoutMs");
    for (const flag of [
      "includeHistory",
      "ignoreDeletes",
      "metaOnly",
      "updatesOnly",
      "catchUp",
      "notices",
    ] as const) {
      checkFlag(options[flag], `watch: ${flag}`, "INVALID_OPTION");
    }
    const progress = options.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
    if (!Number.isSafeInteger(progress) || progress < 0 || progress > 60_000) {
      throw new KvError(
        "INVALID_OPTION",
        `watch: progressIntervalMs must be an integer 0..60000, got ${shownValue(progress)}`,
      );
    }
    // The server sends no progress more often than every 50 ms.
    this.progressMs = progress === 0 ? 0 : Math.max(50, progress);
    this.stallMs = Math.max(MIN_STALL_MS, STALL_INTERVALS * this.progressMs);
    if (options.resumeFromRevision !== undefined) {
      const r = options.resumeFromRevision;
      if (!Number.isSafeInteger(r) || r < 1) {
        throw new KvError(
          "INVALID_OPTION",
          `watch: resumeFromRevision must be an integer >= 1, got ${shownValue(r)}`,
        );
      }
    }
  }

  /** Subscribes; resolves when the server accepted the watch. */
  start(): Promise<void> {
    this.startDeadline = Date.now() + (this.options.timeoutMs ?? this.conn.timeoutMs);
    return new Promise<void>((resolve, reject) => {
      this.started = { resolve, reject };
      this.subscribe();
    });
  }

  /** Ends the watch; iteration finishes after what was already delivered. */
  stop(): void {
    if (this.ended) return;
    const id = this.streamId;
    this.end(undefined);
    this.conn.forgetStream(id);
    this.conn.call("watch_stop", { watch_id: id }).catch(() => {});
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    try {
      while (true) {
        if (this.queue.length > 0) {
          const item = this.queue.shift()!;
          // Notices take no credit: the server sent them outside flow control.
          if (!isNotice(item)) this.consumed();
          yield item as T;
          continue;
        }
        if (this.ended) {
          if (this.endError) throw this.endError;
          return;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      // A `break` out of for-await stops the watch.
      if (!this.ended) this.stop();
    }
  }

  private request(): WireObject {
    const o = this.options;
    const credit = this.window.subscribe(this.queue.length);
    const common: WireObject = {
      catch_up: o.catchUp !== false,
      // A reset can only be told to an application that reads notices.
      allow_reset: o.catchUp !== false && o.notices === true,
      progress_interval_ms: this.progressMs,
      // Initial values and bursts come several entries per frame (an older server ignores it).
      batch_entries: true,
    };
    if (this.cursor === 0 && !this.initReceived) {
      const body: WireObject = {
        ...common,
        bucket: this.bucket,
        filter: this.filter,
        include_history: Boolean(o.includeHistory),
        ignore_deletes: Boolean(o.ignoreDeletes),
        meta_only: Boolean(o.metaOnly),
        updates_only: Boolean(o.updatesOnly),
        credit,
      };
      if (o.resumeFromRevision !== undefined) body.resume_from_revision = o.resumeFromRevision;
      return body;
    }
    return {
      ...common,
      bucket: this.bucket,
      filter: this.filter,
      ignore_deletes: Boolean(o.ignoreDeletes),
      meta_only: Boolean(o.metaOnly),
      resume_from_revision: this.cursor + 1,
      credit,
    };
  }

  private subscribe(): void {
    if (this.ended) return;
    this.catchingUp = undefined;
    this.generation = this.conn.socketGeneration;
    const id = this.conn.openStream("watch", this.request(), {
      onFrame: (answer) => {
        if (id === this.streamId) this.onFrame(answer);
      },
      onDisconnect: (err) => {
        if (id === this.streamId) this.onStreamLost(err);
      },
    });
    this.streamId = id;
    clearTimeout(this.ackTimer);
    const timeoutMs = this.options.timeoutMs ?? this.conn.timeoutMs;
    this.ackTimer = setTimeout(() => {
      if (id !== this.streamId || this.ended) return;
      this.conn.forgetStream(id);
      this.onStreamLost(new KvError("TIMEOUT", `watch: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  }

  /** One entry of the watch stream, alone in its frame or one of several. */
  private onEntry(entry: Entry): void {
    this.window.received(entry.value.length, entry.key.length);
    if (this.catchingUp?.reset) {
      // A re-list: every matching key comes, also ones this watcher saw long ago.
      if (entry.revision > this.seen) this.seen = entry.revision;
      this.push(entry);
      return;
    }
    // After a resume the server may resend what this watcher already has.
    if (entry.revision <= this.seen) return;
    this.seen = entry.revision;
    if (this.catchingUp === undefined) this.cursor = entry.revision;
    this.push(entry);
  }

  private onFrame(answer: ServerAnswer): void {
    this.lastFrameAt = Date.now();
    switch (answer.type) {
      case "error":
        // Also a frame of this watch that did not decode (MALFORMED_FRAME: not resumable).
        this.conn.forgetStream(this.streamId);
        this.onStreamLost(answer.error);
        return;
      case "ack": {
        clearTimeout(this.ackTimer);
        this.resumeAttempt = 0;
        this.generation = this.conn.socketGeneration;
        this.armStallTimer(this.stallMs);
        const started = this.started;
        this.started = undefined;
        started?.resolve();
        return;
      }
      case "watch_end":
        this.conn.forgetStream(this.streamId);
        this.end(undefined);
        return;
      case "watch_entry":
        this.onEntry(answer.entry);
        return;
      case "watch_entries":
        for (const entry of answer.entries) this.onEntry(entry);
        return;
      case "watch_catch_up": {
        this.catchingUp = { reset: answer.reset };
        const notice = {
          fromRevision: answer.fromRevision,
          toRevision: answer.toRevision,
          reset: answer.reset,
        };
        this.conn.emitEvent({
          type: "watch_catch_up",
          bucket: this.bucket,
          filter: this.filter,
          ...notice,
        });
        this.pushNotice({ kind: "catch_up", ...notice });
        return;
      }
      case "watch_init_done": {
        const boundary = answer.revision;
        if (boundary > this.cursor) this.cursor = boundary;
        if (boundary > this.seen) this.seen = boundary;
        if (this.catchingUp !== undefined) {
          this.catchingUp = undefined;
          this.pushNotice({ kind: "caught_up", revision: this.cursor });
        }
        if (this.initReceived) return;
        this.initReceived = true;
        this.push(null);
        return;
      }
      case "watch_progress": {
        const r = answer.revision;
        // Every matching entry <= r came before this frame: a resume may start after it.
        if (r === 0 || this.catchingUp !== undefined || !this.initReceived) return;
        if (r > this.cursor) this.cursor = r;
        if (r > this.seen) this.seen = r;
        if (r > this.lastProgress) {
          this.lastProgress = r;
          this.pushNotice({ kind: "progress", revision: r });
        }
        return;
      }
      default:
        // Nothing else belongs to a watch stream; ignored as before.
        return;
    }
  }

  /**
   * Fails the stream over when no frame came for `stallMs` (a node paused or cut off
   * while the socket stays open). A timer that fires late because this process was
   * busy re-arms instead: the frames may be waiting to be read.
   */
  private armStallTimer(delayMs: number): void {
    clearTimeout(this.stallTimer);
    if (this.progressMs === 0 || this.ended) return;
    const dueAt = Date.now() + delayMs;
    const id = this.streamId;
    this.stallTimer = setTimeout(() => {
      if (this.ended || id !== this.streamId) return;
      const now = Date.now();
      const silentMs = now - this.lastFrameAt;
      if (silentMs < this.stallMs) {
        this.armStallTimer(this.stallMs - silentMs);
        return;
      }
      if (now - dueAt > this.progressMs) {
        this.armStallTimer(this.progressMs);
        return;
      }
      this.conn.forgetStream(id);
      this.onStreamLost(
        new KvError(
          "TIMEOUT",
          `watch: stalled, nothing from the server for ${silentMs} ms (progress every ${this.progressMs} ms)`,
        ),
      );
    }, delayMs);
    // A stall timer alone does not keep the process alive.
    (this.stallTimer as { unref?: () => void }).unref?.();
  }

  private onStreamLost(err: KvError): void {
    clearTimeout(this.ackTimer);
    clearTimeout(this.stallTimer);
    if (this.ended) return;
    if (this.started && !(RETRY_START.has(err.code) && Date.now() < this.startDeadline)) {
      // The subscribe itself failed: report it to the caller of watch(). Only a node
      // without a leader, or halted on a full disk, is worth asking again elsewhere,
      // within the call's timeout.
      this.fatal(err);
      return;
    }
    if (this.conn.isClosed) {
      this.end(undefined);
      return;
    }
    if (!RESUMABLE.has(err.code)) {
      this.fatal(err);
      return;
    }
    // The node cannot serve this watch: the connection moves to the next server.
    if (MOVE_ON.has(err.code)) this.conn.failover(this.generation, `${err.code}: ${err.message}`);
    this.resumeAttempt++;
    this.conn.emitEvent({
      type: "watch_resumed",
      bucket: this.bucket,
      filter: this.filter,
      fromRevision: this.cursor + 1,
      reason: `${err.code}: ${err.message}`,
    });
    // Back off when the same node keeps refusing (e.g. no leader yet).
    const delayMs = this.resumeAttempt <= 1 ? 0 : Math.min(1000, 20 * 2 ** this.resumeAttempt);
    if (delayMs === 0) this.subscribe();
    else setTimeout(() => this.subscribe(), delayMs);
  }

  private fatal(err: KvError): void {
    this.conn.forgetStream(this.streamId);
    const started = this.started;
    this.started = undefined;
    if (started) {
      this.ended = true;
      started.reject(err);
      return;
    }
    this.end(err);
  }

  private push(item: Entry | null): void {
    this.queue.push(item);
    this.wake?.();
  }

  /** Notices reach the application only when it asked for them. */
  private pushNotice(notice: WatchNotice): void {
    if (this.options.notices !== true) return;
    this.queue.push(notice);
    this.wake?.();
  }

  private consumed(): void {
    if (this.ended) return;
    const credit = this.window.consumed();
    if (credit > 0) this.conn.notify("watch_credit", { watch_id: this.streamId, credit });
  }

  private end(err: KvError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = err;
    clearTimeout(this.ackTimer);
    clearTimeout(this.stallTimer);
    this.wake?.();
  }
}

/** Whether a watch item is a notice (not an entry, not the initial-values `null`). */
export function isNotice(item: WatchItem): item is WatchNotice {
  return item !== null && "kind" in item;
}
