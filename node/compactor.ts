/**
 * Raft log compaction of one node: after every `snapshotEntries` applied entries, a
 * synced write makes the applied state durable, then the Raft log is compacted up to
 * that applied index minus `snapshotEntries / 2` (a tail for slightly slow followers).
 * A failed write is fatal. It runs in the snapshot store's `exclusive` chain, so it
 * never overlaps an install, and it is driven by the driver's round events (built after
 * the driver, so nothing is wired twice).
 */
import type { KvStateMachine } from "../kvapi/index.js";
import type { StreamLog } from "../log/index.js";
import { KvError } from "../proto/index.js";
import type { RaftDriver, RaftStorage } from "../raft/index.js";
import type { Cancel } from "./clock.js";
import type { SnapshotStatus } from "./kv_service.js";
import type { Logger } from "./log.js";
import type { KvSnapshotStore } from "./snapshot_store.js";

/** Written (synced) before each compaction: the applied index it made durable. */
const COMPACTION_META_KEY = "node/compaction";

export const DEFAULT_SNAPSHOT_ENTRIES = 10_000;

const encoder = new TextEncoder();

export interface CompactorOptions {
  driver: RaftDriver<unknown>;
  storage: RaftStorage;
  store: KvSnapshotStore;
  streamLog: StreamLog;
  kv: KvStateMachine;
  log: Logger;
  /** Applied entries between compactions (default 10000). */
  snapshotEntries?: number;
  /** A failed durable write: the node must stop. */
  onFatal: (err: unknown) => void;
}

export class Compactor {
  private readonly snapshotEntries: number;
  private queued = false;
  private lastCompactionApplied: number;
  private compactions = 0;
  private closed = false;
  private readonly stopListening: Cancel;

  constructor(private readonly opts: CompactorOptions) {
    this.snapshotEntries = opts.snapshotEntries ?? DEFAULT_SNAPSHOT_ENTRIES;
    if (!Number.isSafeInteger(this.snapshotEntries) || this.snapshotEntries < 2) {
      throw new KvError("INVALID_CONFIG", "snapshotEntries must be an integer >= 2");
    }
    this.lastCompactionApplied = opts.kv.appliedIndex();
    this.stopListening = opts.driver.subscribe((event) => {
      if (event === "round") this.maybeCompact();
    });
  }

  /** Compacts once `snapshotEntries` entries were applied since the last time (or install). */
  private maybeCompact(): void {
    if (this.closed || this.queued) return;
    // An installed snapshot is a fresh start: count from it.
    const since = Math.max(this.lastCompactionApplied, this.opts.store.restoredMeta().index);
    if (this.opts.kv.appliedIndex() - since < this.snapshotEntries) return;
    this.queued = true;
    this.opts.store
      .exclusive(() => this.compact())
      .catch((err) => {
        this.opts.log.error("compaction failed", { error: String(err) });
        this.opts.onFatal(err);
      })
      .finally(() => {
        this.queued = false;
      });
  }

  private async compact(): Promise<void> {
    if (this.closed) return;
    const applied = this.opts.kv.appliedIndex();
    this.lastCompactionApplied = applied;
    // Synced, and after every apply batch written so far: the applied state up to
    // `applied` is then on disk, so the log may forget what it covers.
    await this.opts.streamLog.writeMeta(
      { [COMPACTION_META_KEY]: encoder.encode(String(applied)) },
      { sync: true },
    );
    if (this.closed) return;
    const index = await this.opts.driver.compact(Math.floor(this.snapshotEntries / 2), applied);
    if (index > 0) {
      this.compactions++;
      this.opts.log.info("raft log compacted", { index, applied });
    }
  }

  status(): SnapshotStatus {
    const stats = this.opts.driver.snapshotStats();
    return {
      index: this.opts.storage.snapshotMeta().index,
      firstIndex: this.opts.storage.firstIndex(),
      sent: stats.sent,
      installed: stats.installed,
      failed: stats.failed,
      compactions: this.compactions,
    };
  }

  /** Stops compacting and waits for a running compaction or install. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopListening();
    await this.opts.store.idle();
  }
}
