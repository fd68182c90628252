/**
 * Snapshot storage of one node: the driver's `SnapshotStore` (raft/snapshot.ts) on the
 * stream log's export/import (log/snapshot.ts) and kvapi. Compaction, which needs the
 * driver, is node/compactor.ts; the two share `exclusive` so they never overlap.
 *
 * - Leader: an image is a `LogSnapshotReader`, one frozen LevelDB view of the log;
 *   its index is the applied index recorded in that same view.
 * - Follower: chunks go to a `LogSnapshotWriter`; the install is one synced write
 *   that also records the snapshot's Raft meta (`node/snapshot`, local to this
 *   node, in a checksummed meta record of the log), then kvapi re-reads its state and
 *   ends its watches (SLOW_CONSUMER: the client resumes from its last revision).
 */

import {
  APPLIED_META_KEY,
  appliedIndexOf,
  checkSnapshotMeta,
  type KvStateMachine,
} from "../kvapi/index.js";
import { LogSnapshotReader, LogSnapshotWriter, type StreamLog } from "../log/index.js";
import { KvError } from "../proto/index.js";
import type { SnapshotMeta, SnapshotSink, SnapshotSource, SnapshotStore } from "../raft/index.js";
import type { Logger } from "./log.js";
import { type ReplicaObserver, transferTimer } from "./replica_observer.js";

/** Raft meta of the last snapshot installed here (read by RaftDriver.open after a crash). */
const RESTORED_META_KEY = "node/snapshot";
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

/**
 * The record that says the log holds the snapshot `meta` describes, as an install writes
 * it: also what a restore from a backup writes (node/backup_restore.ts), so a restored
 * node opens as one that installed that snapshot.
 */
export function installedSnapshotRecord(meta: SnapshotMeta): Record<string, Uint8Array> {
  return { [RESTORED_META_KEY]: encodeMeta(meta) };
}

export interface KvSnapshotStoreOptions {
  log: Logger;
  /** Called after an install, once kvapi shows the new state. */
  onRestored?: () => void;
  /** Told how long each transfer took (metrics). */
  observer?: ReplicaObserver;
}

export class KvSnapshotStore implements SnapshotStore {
  private restored: SnapshotMeta;
  /** Installs and compactions run one at a time, in this chain. */
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly streamLog: StreamLog,
    private readonly kv: KvStateMachine,
    private readonly opts: KvSnapshotStoreOptions,
    restored: SnapshotMeta,
  ) {
    this.restored = restored;
  }

  static async open(
    streamLog: StreamLog,
    kv: KvStateMachine,
    opts: KvSnapshotStoreOptions,
  ): Promise<KvSnapshotStore> {
    const restored = decodeMeta(await streamLog.getMeta(RESTORED_META_KEY));
    return new KvSnapshotStore(streamLog, kv, opts, restored);
  }

  /** Raft meta of the last snapshot installed here (index 0 if none). */
  restoredMeta(): SnapshotMeta {
    return this.restored;
  }

  /** Runs `work` after every install and compaction queued before it; returns its result. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.chain.then(work);
    this.chain = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** Resolves once the running install or compaction, if any, finished. */
  idle(): Promise<void> {
    return this.chain;
  }

  // ---- SnapshotStore (raft/snapshot.ts)

  async open(): Promise<SnapshotSource> {
    const { reader, index } = await this.openImage();
    const sent = transferTimer(this.opts.observer, "send");
    return {
      index,
      read: async (offset, maxBytes) => {
        const chunk = await reader.read(offset, maxBytes);
        // Timed to the last chunk read: the image stays open a while after (until
        // the driver sees the transfer is over), which is not transfer time.
        if (chunk.done) sent();
        return chunk;
      },
      close: () => reader.close(),
    };
  }

  /**
   * A frozen image of the applied state and the applied index it stands for: what a
   * follower's InstallSnapshot gets (`open`) and what a backup saves (node/backup_images.ts).
   */
  async openImage(): Promise<{ reader: LogSnapshotReader; index: number }> {
    const reader = await LogSnapshotReader.open(this.streamLog, APPLIED_META_KEY);
    try {
      return { reader, index: appliedIndexOf(reader.peekedMeta) };
    } catch (err) {
      reader.close();
      throw err;
    }
  }

  async receive(meta: SnapshotMeta): Promise<SnapshotSink> {
    // kvapi's records are checked as they arrive: one kvapi could not read back after the
    // install would leave this node on a state it cannot open.
    const writer = LogSnapshotWriter.begin(this.streamLog, { checkMeta: checkSnapshotMeta });
    this.opts.log.info("receiving a snapshot", { index: meta.index, term: meta.term });
    const installed = transferTimer(this.opts.observer, "install");
    return {
      write: async (offset, data, done) => {
        try {
          await writer.write(offset, data, done);
        } catch (err) {
          // The leader starts over; a refusal repeated is worth an operator's look.
          if (err instanceof KvError && err.code === "CORRUPT_RECORD") {
            this.opts.log.warn("snapshot chunk refused", {
              index: meta.index,
              term: meta.term,
              offset,
              error: err.message,
            });
          }
          throw err;
        }
      },
      install: async (meta) => {
        await this.install(writer, meta);
        installed();
      },
      abort: async () => {
        this.opts.log.info("snapshot receive abandoned", { index: meta.index, term: meta.term });
        await writer.abort();
      },
    };
  }

  private install(writer: LogSnapshotWriter, meta: SnapshotMeta): Promise<void> {
    return this.exclusive(async () => {
      await writer.install(installedSnapshotRecord(meta));
      await this.kv.restored();
      this.restored = meta;
      this.opts.log.info("installed a snapshot", { index: meta.index, term: meta.term });
      this.opts.onRestored?.();
    });
  }
}
