/**
 * A bound bucket (`nc.keyValue(name)`): the KV operations of DESIGN.md section 6.
 * Every call has a timeout and fails with a KvError; writes carry a request id that
 * survives reconnects, so a retried write is applied at most once.
 */
import { KvError, SERVER_MAX_VALUE_BYTES, shownValue } from "../proto/index.js";
import type { Connection } from "./connection.js";
import { staleOf } from "./options.js";
import type {
  CallOptions,
  DeleteOptions,
  Entry,
  KeyValueStatus,
  PurgeDeletesOptions,
  ReadOptions,
  WatchItem,
  WatchOptions,
} from "./types.js";
import { KvWatcher } from "./watch.js";
import { expectAnswer, statusOf, type WireObject, WriteOp } from "./wire.js";

const encoder = new TextEncoder();
/**
 * Keys in the first page of a listing; later pages are the server's full ones (10,000).
 * A short first read puts the first keys in the caller's hands sooner (a page of
 * 10,000 took 30 to 70 ms end to end, whatever the bucket's size), for one more round trip.
 */
const FIRST_PAGE_KEYS = 1000;

/**
 * A watch: iterate it with `for await`; `stop()` ends it. Yields `Entry | null`, or
 * also WatchNotice items when started with `notices: true`.
 */
export interface KvWatch<T extends WatchItem = Entry | null> extends AsyncIterable<T> {
  stop(): void;
}

export class KeyValue {
  constructor(
    private readonly conn: Connection,
    /** The bucket's name. */
    readonly bucket: string,
  ) {}

  /** Appends a PUT; returns its revision. */
  put(key: string, value: Uint8Array, opts?: CallOptions): Promise<number> {
    return this.write(WriteOp.PUT, key, value, undefined, opts);
  }

  /** `put` of a UTF-8 string. */
  putString(key: string, value: string, opts?: CallOptions): Promise<number> {
    return this.write(WriteOp.PUT, key, encoder.encode(value), undefined, opts);
  }

  /** Appends a PUT only if the key has no value; else KEY_EXISTS (details.currentRevision). */
  create(key: string, value: Uint8Array, opts?: CallOptions): Promise<number> {
    return this.write(WriteOp.CREATE, key, value, undefined, opts);
  }

  /**
   * Appends a PUT only if the key's latest revision is `last` (0 = the key has no
   * entry); else WRONG_LAST_REVISION (details.currentRevision).
   */
  update(key: string, value: Uint8Array, last: number, opts?: CallOptions): Promise<number> {
    checkRevision(last, "update: last", 0);
    return this.write(WriteOp.UPDATE, key, value, last, opts);
  }

  /** Appends a DEL marker (history kept); `last` makes it conditional. Returns its revision. */
  delete(key: string, opts: DeleteOptions = {}): Promise<number> {
    if (opts.last !== undefined) checkRevision(opts.last, "delete: last", 0);
    return this.write(WriteOp.DELETE, key, new Uint8Array(0), opts.last, opts);
  }

  /** Appends a PURGE marker and removes every earlier revision of the key. Returns its revision. */
  purge(key: string, opts: DeleteOptions = {}): Promise<number> {
    if (opts.last !== undefined) checkRevision(opts.last, "purge: last", 0);
    return this.write(WriteOp.PURGE, key, new Uint8Array(0), opts.last, opts);
  }

  /** The latest entry if it is a PUT, else null. Linearizable unless `stale`. */
  async get(key: string, opts: ReadOptions = {}): Promise<Entry | null> {
    const answer = await this.conn.call(
      "get",
      { bucket: this.bucket, key, stale: staleOf(opts) },
      opts.timeoutMs,
    );
    return expectAnswer(answer, "get_result", "get").entry;
  }

  /** The entry at `revision` if it exists, belongs to `key` and is a PUT, else null. */
  async getRevision(key: string, revision: number, opts: ReadOptions = {}): Promise<Entry | null> {
    checkRevision(revision, "getRevision: revision", 1);
    const answer = await this.conn.call(
      "get",
      { bucket: this.bucket, key, revision, stale: staleOf(opts) },
      opts.timeoutMs,
    );
    return expectAnswer(answer, "get_result", "getRevision").entry;
  }

  /** Keys whose latest entry is a PUT, sorted; `[]` when none. */
  async keys(filter = ">", opts: ReadOptions = {}): Promise<string[]> {
    const out: string[] = [];
    for await (const k of this.listKeys(filter, opts)) out.push(k);
    return out;
  }

  /**
   * The same keys as `keys`, fetched page by page, so a large bucket is never held in
   * memory at once. Each page is a linearizable read of its own (unless `stale`).
   */
  async *listKeys(filter = ">", opts: ReadOptions = {}): AsyncIterable<string> {
    const page = async (after: string, limit?: number) =>
      expectAnswer(
        await this.conn.call(
          "keys",
          {
            bucket: this.bucket,
            filter,
            stale: staleOf(opts),
            after,
            ...(limit === undefined ? {} : { limit }),
          },
          opts.timeoutMs,
        ),
        "keys_chunk",
        "keys",
      );
    let after = "";
    let next = page(after, FIRST_PAGE_KEYS);
    while (true) {
      const chunk = await next;
      const keys = chunk.keys;
      const more = !chunk.done && keys.length > 0;
      if (more) {
        // One page ahead: the next read runs while the caller consumes this one, so at most
        // two pages are held. A caller that stops early leaves it unawaited: not a failure.
        next = page(keys[keys.length - 1]!);
        next.catch(() => undefined);
      }
      for (const k of keys) {
        if (after !== "" && k <= after) continue;
        after = k;
        yield k;
      }
      if (!more) return;
    }
  }

  /** The retained entries of `key`, oldest first, markers included; `[]` when none. */
  async history(key: string, opts: ReadOptions = {}): Promise<Entry[]> {
    const out: Entry[] = [];
    let afterRevision = 0;
    while (true) {
      const answer = await this.conn.call(
        "history",
        { bucket: this.bucket, key, stale: staleOf(opts), after_revision: afterRevision },
        opts.timeoutMs,
      );
      const chunk = expectAnswer(answer, "entries_chunk", "history");
      const entries = chunk.entries;
      for (const e of entries) {
        if (e.revision <= afterRevision) continue;
        afterRevision = e.revision;
        out.push(e);
      }
      if (chunk.done || entries.length === 0) return out;
    }
  }

  /**
   * Watches keys matching `filter`: initial values, then one `null`, then every later
   * change, in revision order, without gap or duplicate across reconnects and failovers;
   * where revisions were removed meanwhile, an announced catch-up (see WatchOptions).
   */
  watch(filter: string, opts: WatchOptions & { notices: true }): Promise<KvWatch<WatchItem>>;
  watch(filter?: string, opts?: WatchOptions): Promise<KvWatch>;
  async watch(filter = ">", opts: WatchOptions = {}): Promise<KvWatch<WatchItem>> {
    if (typeof filter !== "string" || filter === "") {
      // As NATS: an empty filter is no filter at all, not "everything" (that is ">").
      throw new KvError(
        "INVALID_KEY",
        `watch: invalid key filter ${shownValue(filter)}: ${typeof filter === "string" ? "it is empty" : "it is not a string"}; use ">" (or watchAll) for every key`,
      );
    }
    if (opts.includeHistory && opts.updatesOnly) {
      throw new KvError(
        "INVALID_OPTION",
        "watch: includeHistory and updatesOnly exclude each other",
      );
    }
    const watcher = new KvWatcher(this.conn, this.bucket, filter, opts);
    await watcher.start();
    return watcher;
  }

  /** `watch(">", opts)`. */
  watchAll(opts: WatchOptions & { notices: true }): Promise<KvWatch<WatchItem>>;
  watchAll(opts?: WatchOptions): Promise<KvWatch>;
  watchAll(opts: WatchOptions = {}): Promise<KvWatch<WatchItem>> {
    return this.watch(">", opts);
  }

  /** The bucket's status (values count history and markers). */
  async status(opts: ReadOptions = {}): Promise<KeyValueStatus> {
    const answer = await this.conn.call(
      "bucket_info",
      { bucket: this.bucket, stale: staleOf(opts) },
      opts.timeoutMs,
    );
    return statusOf(expectAnswer(answer, "bucket_status", "status").status);
  }

  /** Removes DEL/PURGE markers older than `olderThanMs` (default 30 min); returns how many. */
  async purgeDeletes(opts: PurgeDeletesOptions = {}): Promise<number> {
    const body: WireObject = { bucket: this.bucket, request_id: this.conn.newRequestId() };
    if (opts.olderThanMs !== undefined) {
      if (!Number.isSafeInteger(opts.olderThanMs) || opts.olderThanMs < 0) {
        throw new KvError(
          "INVALID_ARGUMENT",
          `purgeDeletes: olderThanMs must be an integer >= 0, got ${shownValue(opts.olderThanMs)}`,
        );
      }
      body.older_than_ms = opts.olderThanMs;
    }
    const answer = await this.conn.call("purge_deletes", body, opts.timeoutMs);
    return expectAnswer(answer, "purge_deletes_result", "purgeDeletes").purged;
  }

  private async write(
    op: WriteOp,
    key: string,
    value: Uint8Array,
    last: number | undefined,
    opts: CallOptions | undefined,
  ): Promise<number> {
    if (!(value instanceof Uint8Array)) {
      throw new KvError(
        "INVALID_ARGUMENT",
        "the value must be a Uint8Array (use putString for text)",
      );
    }
    if (value.length > SERVER_MAX_VALUE_BYTES) {
      // The limit that applies, not the frame limit this would otherwise hit first.
      throw new KvError(
        "VALUE_TOO_LARGE",
        `value of ${value.length} bytes exceeds the largest value a server accepts, ${SERVER_MAX_VALUE_BYTES} bytes (a bucket's maxValueSize may lower it: see valueLimitBytes in its status)`,
      );
    }
    const body: WireObject = {
      bucket: this.bucket,
      key,
      op,
      value,
      request_id: this.conn.newRequestId(),
    };
    if (last !== undefined) body.last_revision = last;
    const answer = await this.conn.call("write", body, opts?.timeoutMs);
    return expectAnswer(answer, "write_result", "write").revision;
  }
}

function checkRevision(value: number, what: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `${what} must be an integer >= ${min}, got ${shownValue(value)}`,
    );
  }
}
