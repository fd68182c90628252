/**
 * A watch as an AsyncIterable<Entry | null>. The server sends at most `bufferSize`
 * events ahead of the application (credit-based flow control), so neither side
 * buffers without limit. When the stream is lost (connection loss, a node shutting
 * down, SLOW_CONSUMER) the watcher resubscribes from the revision after the last one
 * it received, keeping what it already buffered: the application sees no gap and no
 * duplicate, only an optional `watch_resumed` event.
 */
import { KvError, shownValue } from "../proto/index.js";
import type { Connection } from "./connection.js";
import { checkFlag, checkTimeoutMs } from "./options.js";
import type { Entry, WatchOptions } from "./types.js";
import type { ServerAnswer, WireObject } from "./wire.js";

const DEFAULT_BUFFER_SIZE = 256;

/** Codes after which the watch can be resumed from its cursor on another stream. */
const RESUMABLE: ReadonlySet<string> = new Set([
  "SLOW_CONSUMER",
  "OVERLOADED",
  "SHUTTING_DOWN",
  "CONNECTION_CLOSED",
  "TIMEOUT",
  "NO_LEADER",
  "NOT_LEADER",
]);

export class KvWatcher implements AsyncIterable<Entry | null> {
  private readonly queue: Array<Entry | null> = [];
  private readonly bufferSize: number;
  private wake: (() => void) | undefined;
  private streamId = 0;
  private ended = false;
  private endError: KvError | undefined;
  /** Highest revision received (delivered or buffered); 0 = none. */
  private cursor = 0;
  private initReceived = false;
  private consumedSinceCredit = 0;
  private started: { resolve(): void; reject(err: KvError): void } | undefined;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private resumeAttempt = 0;

  constructor(
    private readonly conn: Connection,
    readonly bucket: string,
    readonly filter: string,
    private readonly options: WatchOptions,
  ) {
    const size = options.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!Number.isSafeInteger(size) || size < 1 || size > 1_000_000) {
      throw new KvError(
        "INVALID_OPTION",
        `watch: bufferSize must be an integer 1..1000000, got ${shownValue(size)}`,
      );
    }
    this.bufferSize = size;
    checkTimeoutMs(options.timeoutMs, "watch: timeoutMs");
    for (const flag of ["includeHistory", "ignoreDeletes", "metaOnly", "updatesOnly"] as const) {
      checkFlag(options[flag], `watch: ${flag}`, "INVALID_OPTION");
    }
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

  async *[Symbol.asyncIterator](): AsyncIterator<Entry | null> {
    try {
      while (true) {
        if (this.queue.length > 0) {
          const item = this.queue.shift()!;
          this.consumed();
          yield item;
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
    const credit = Math.max(1, this.bufferSize - this.queue.length);
    if (this.cursor === 0 && !this.initReceived) {
      const body: WireObject = {
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
    this.consumedSinceCredit = 0;
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

  private onFrame(answer: ServerAnswer): void {
    switch (answer.type) {
      case "error":
        // Also a frame of this watch that did not decode (MALFORMED_FRAME: not resumable).
        this.conn.forgetStream(this.streamId);
        this.onStreamLost(answer.error);
        return;
      case "ack": {
        clearTimeout(this.ackTimer);
        this.resumeAttempt = 0;
        const started = this.started;
        this.started = undefined;
        started?.resolve();
        return;
      }
      case "watch_end":
        this.conn.forgetStream(this.streamId);
        this.end(undefined);
        return;
      case "watch_entry": {
        const entry = answer.entry;
        // After a resume the server may resend what this watcher already has.
        if (entry.revision <= this.cursor) return;
        this.cursor = entry.revision;
        this.push(entry);
        return;
      }
      case "watch_init_done": {
        const boundary = answer.revision;
        if (boundary > this.cursor) this.cursor = boundary;
        if (this.initReceived) return;
        this.initReceived = true;
        this.push(null);
        return;
      }
      default:
        // Nothing else belongs to a watch stream; ignored as before.
        return;
    }
  }

  private onStreamLost(err: KvError): void {
    clearTimeout(this.ackTimer);
    if (this.ended) return;
    if (this.started) {
      // The subscribe itself failed: report it to the caller of watch().
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

  private consumed(): void {
    if (this.ended) return;
    this.consumedSinceCredit++;
    if (this.consumedSinceCredit >= Math.max(1, Math.floor(this.bufferSize / 2))) {
      this.conn.notify("watch_credit", {
        watch_id: this.streamId,
        credit: this.consumedSinceCredit,
      });
      this.consumedSinceCredit = 0;
    }
  }

  private end(err: KvError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = err;
    clearTimeout(this.ackTimer);
    this.wake?.();
  }
}
