/**
 * Snapshots and log compaction of one node (issue 3): the glue between the Raft
 * driver's snapshot seam (raft/snapshot.ts), the stream log's export/import
 * (log/snapshot.ts) and kvapi.
 *
 * - Leader: an image is a `LogSnapshotReader`, one frozen LevelDB view of the log;
 *   its index is the applied index recorded in that same view.
 * - Follower: chunks go to a `LogSnapshotWriter`; the install is one synced write
 *   that also records the snapshot's Raft meta (`node/snapshot`, local to this
 *   node), then kvapi re-reads its state and ends its watches (SLOW_CONSUMER: the
 *   client resumes from its last revision).
 * - Compaction: after every `snapshotEntries` applied entries, a synced write makes
 *   the applied state durable, then the Raft log is compacted up to that applied
 *   index minus `snapshotEntries / 2` (a tail for slow followers). A failed write is
 *   fatal. Installs and compactions never overlap.
 */

import type { KvStateMachine } from "../kvapi/index.js";
import { APPLIED_META_KEY, appliedIndexOf } from "../kvapi/snapshot.js";
import type { StreamLog } from "../log/index.js";
import { LogSnapshotReader, LogSnapshotWriter } from "../log/snapshot.js";
import { KvError } from "../proto/errors.js";
import type { RaftDriver } from "../raft/driver.js";
import type { SnapshotSink, SnapshotSource, SnapshotStore } from "../raft/snapshot.js";
import type { RaftStorage, SnapshotMeta } from "../raft/storage.js";
import type { SnapshotStatus } from "./kv_service.js";
import type { Logger } from "./log.js";

/** Raft meta of the last snapshot installed here (read by RaftDriver.open after a crash). */
const RESTORED_META_KEY = "node/snapshot";
/** Written (synced) before each compaction: the applied index it made durable. */
const COMPACTION_META_KEY = "node/compaction";

export const DEFAULT_SNAPSHOT_ENTRIES = 10_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeMeta(meta: SnapshotMeta): Uint8Array {
  return encoder.encode(JSON.stringify(meta));
}

function decodeMeta(bytes: Uint8Array | null): SnapshotMeta {
  const none: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };
  if (bytes === null) return none;
  let m: SnapshotMeta;
  try {
    m = JSON.parse(decoder.decode(bytes)) as SnapshotMeta;
  } catch (err) {
    throw new KvError("CORRUPT_RECORD", `${RESTORED_META_KEY} is not valid JSON`, {}, err);
  }
  const ids = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
  if (
    !Number.isSafeInteger(m?.index) ||
    !Number.isSafeInteger(m.term) ||
    m.index < 0 ||
    m.term < 0 ||
    !ids(m.conf?.voters) ||
    !ids(m.conf?.learners)
  ) {
    throw new KvError("CORRUPT_RECORD", `${RESTORED_META_KEY} does not describe a snapshot`);
  }
  return {
    index: m.index,
    term: m.term,
    conf: { voters: m.conf.voters, learners: m.conf.learners },
  };
}

export interface NodeSnapshotsOptions {
  log: Logger;
  /** Applied entries between compactions (default 10000). */
  snapshotEntries?: number;
  /** Called after an install, once kvapi shows the new state. */
  onRestored?: () => void;
  /** A failed durable write: the node must stop. */
  onFatal: (err: unknown) => void;
}

export class NodeSnapshots implements SnapshotStore {
  private restored: SnapshotMeta;
  private readonly snapshotEntries: number;
  private driver: RaftDriver<unknown> | undefined;
  private storage: RaftStorage | undefined;
  /** Compactions and installs run one at a time, in this chain. */
  private exclusive: Promise<void> = Promise.resolve();
  private compactionQueued = false;
  private lastCompactionApplied: number;
  private compactions = 0;
  private closed = false;

  private constructor(
    private readonly streamLog: StreamLog,
    private readonly kv: KvStateMachine,
    private readonly opts: NodeSnapshotsOptions,
    restored: SnapshotMeta,
  ) {
    this.restored = restored;
    this.snapshotEntries = opts.snapshotEntries ?? DEFAULT_SNAPSHOT_ENTRIES;
    if (!Number.isSafeInteger(this.snapshotEntries) || this.snapshotEntries < 2) {
      throw new KvError("INVALID_CONFIG", "snapshotEntries must be an integer >= 2");
    }
    this.lastCompactionApplied = kv.appliedIndex();
  }

  static async open(
    streamLog: StreamLog,
    kv: KvStateMachine,
    opts: NodeSnapshotsOptions,
  ): Promise<NodeSnapshots> {
    const restored = decodeMeta(await streamLog.getMeta(RESTORED_META_KEY));
    return new NodeSnapshots(streamLog, kv, opts, restored);
  }

  /** Wires the driver once it exists (it needs this store first). */
  attach(driver: RaftDriver<unknown>, storage: RaftStorage): void {
    this.driver = driver;
    this.storage = storage;
  }

  /** Raft meta of the last snapshot installed here (index 0 if none). */
  restoredMeta(): SnapshotMeta {
    return this.restored;
  }

  // ---- SnapshotStore (raft/snapshot.ts)

  async open(): Promise<SnapshotSource> {
    const reader = await LogSnapshotReader.open(this.streamLog, APPLIED_META_KEY);
    try {
      const index = appliedIndexOf(reader.peekedMeta);
      return {
        index,
        read: (offset, maxBytes) => reader.read(offset, maxBytes),
        close: () => reader.close(),
      };
    } catch (err) {
      reader.close();
      throw err;
    }
  }

  async receive(meta: SnapshotMeta): Promise<SnapshotSink> {
    const writer = LogSnapshotWriter.begin(this.streamLog);
    this.opts.log.info("receiving a snapshot", { index: meta.index, term: meta.term });
    return {
      write: (offset, data, done) => writer.write(offset, data, done),
      install: (installed) => this.install(writer, installed),
      abort: async () => writer.abort(),
    };
  }

  private install(writer: LogSnapshotWriter, meta: SnapshotMeta): Promise<void> {
    const run = this.exclusive.then(async () => {
      await writer.install({ [RESTORED_META_KEY]: encodeMeta(meta) });
      await this.kv.restored();
      this.restored = meta;
      this.lastCompactionApplied = meta.index;
      this.opts.log.info("installed a snapshot", { index: meta.index, term: meta.term });
      this.opts.onRestored?.();
    });
    this.exclusive = run.catch(() => {});
    return run;
  }

  // ---- compaction

  /** Called after each apply: compacts once `snapshotEntries` entries were applied since the last time. */
  afterApply(): void {
    if (this.closed || this.compactionQueued) return;
    if (this.kv.appliedIndex() - this.lastCompactionApplied < this.snapshotEntries) return;
    this.compactionQueued = true;
    this.exclusive = this.exclusive
      .then(() => this.compact())
      .catch((err) => {
        this.opts.log.error("compaction failed", { error: String(err) });
        this.opts.onFatal(err);
      })
      .finally(() => {
        this.compactionQueued = false;
      });
  }

  private async compact(): Promise<void> {
    const driver = this.driver;
    if (this.closed || !driver) return;
    const applied = this.kv.appliedIndex();
    this.lastCompactionApplied = applied;
    // Synced, and after every apply batch written so far: the applied state up to
    // `applied` is then on disk, so the log may forget what it covers.
    await this.streamLog.writeMeta(
      { [COMPACTION_META_KEY]: encoder.encode(String(applied)) },
      { sync: true },
    );
    if (this.closed) return;
    const index = await driver.compact(Math.floor(this.snapshotEntries / 2), applied);
    if (index > 0) {
      this.compactions++;
      this.opts.log.info("raft log compacted", { index, applied });
    }
  }

  status(): SnapshotStatus {
    const stats = this.driver?.snapshotStats();
    return {
      index: this.storage?.snapshotMeta().index ?? 0,
      firstIndex: this.storage?.firstIndex() ?? 1,
      sent: stats?.sent ?? 0,
      installed: stats?.installed ?? 0,
      failed: stats?.failed ?? 0,
      compactions: this.compactions,
    };
  }

  /** Stops compacting and waits for a running compaction or install. */
  async close(): Promise<void> {
    this.closed = true;
    await this.exclusive;
  }
}
