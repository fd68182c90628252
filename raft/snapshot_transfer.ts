/**
 * Snapshot transfer both ways, for the driver: on the leader, the images opened
 * for followers behind the compaction point and the bytes of each MsgSnap chunk;
 * on a follower, storing received chunks in the state machine's sink and
 * installing the stored snapshot when the core says so.
 *
 * The core knows only byte offsets and decides what to send and acknowledge;
 * this module does the I/O on the `SnapshotStore` (raft/snapshot.ts). The driver
 * still places the install in its persist order (after earlier applies, before
 * the log is reset); see `install`.
 */
import { KvError } from "../proto/index.js";
import { assert } from "./assert.js";
import type { RaftCore } from "./core.js";
import type { SnapshotSink, SnapshotSource, SnapshotStore } from "./snapshot.js";
import type { NodeId, SnapshotMeta } from "./storage.js";
import type { Message, SnapshotChunk } from "./types.js";

/** Counters of snapshot transfers (for metrics and tests). */
export interface SnapshotStats {
  /** Images opened on this node as leader. */
  opened: number;
  /** Chunks sent (resends included). */
  chunksSent: number;
  /** Transfers whose last chunk was sent. */
  sent: number;
  /** Chunks stored as follower. */
  chunksReceived: number;
  /** Snapshots installed as follower. */
  installed: number;
  /** Transfers abandoned: an image that could not be read, a chunk that failed its checks, a stalled follower. */
  failed: number;
}

/** What the transfer asks of the core: flow control and restarts. */
export type SnapshotTransferCore = Pick<
  RaftCore,
  "snapshotAborted" | "snapshotTransfer" | "snapshotStored" | "snapshotStoreFailed"
>;

/** The driver around the transfer: it owns stopping, scheduling and fatal errors. */
export interface SnapshotTransferHost {
  isStopped(): boolean;
  /** Runs a call into the core; an exception in it is fatal. */
  guard(fn: () => void): void;
  /** The core may have something new to hand out. */
  schedule(): void;
  fatal(err: unknown): void;
}

export interface SnapshotTransferOptions {
  store: SnapshotStore;
  core: SnapshotTransferCore;
  host: SnapshotTransferHost;
  /** Sends a filled MsgSnap (the driver's transport). */
  send: (m: Message) => void;
  /** About how many bytes to read per chunk. */
  chunkBytes: number;
  /** Ticks without a new acknowledged offset before a transfer is dropped. */
  stalledTicksMax: number;
}

/** A leader's image for one follower. */
interface OutgoingImage {
  source: SnapshotSource | null;
  /** A chunk read is running (a resend asked meanwhile is dropped; the core asks again). */
  reading: boolean;
  /** Highest offset asked for, and ticks since it last grew (a stalled transfer is dropped). */
  offset: number;
  stalledTicks: number;
  lastSent: boolean;
}

/** The follower's store for the snapshot being received. */
interface IncomingSnapshot {
  meta: SnapshotMeta;
  sink: SnapshotSink;
}

export class SnapshotTransfer {
  private readonly store: SnapshotStore;
  private readonly core: SnapshotTransferCore;
  private readonly host: SnapshotTransferHost;
  private readonly send: (m: Message) => void;
  private readonly chunkBytes: number;
  private readonly stalledTicksMax: number;
  private readonly outgoing = new Map<NodeId, OutgoingImage>();
  /** Chunk writes, in the order received. */
  private sinkTail: Promise<void> = Promise.resolve();
  private incoming: IncomingSnapshot | null = null;
  /** A fully stored snapshot the core decided to install (the next snapshot Ready). */
  private toInstall: IncomingSnapshot | null = null;
  private readonly counters: SnapshotStats = {
    opened: 0,
    chunksSent: 0,
    sent: 0,
    chunksReceived: 0,
    installed: 0,
    failed: 0,
  };

  constructor(options: SnapshotTransferOptions) {
    this.store = options.store;
    this.core = options.core;
    this.host = options.host;
    this.send = options.send;
    this.chunkBytes = options.chunkBytes;
    this.stalledTicksMax = options.stalledTicksMax;
  }

  stats(): SnapshotStats {
    return { ...this.counters };
  }

  /** The driver stops: images are released (no transfer outlives it). */
  closeAll(): void {
    for (const out of this.outgoing.values()) out.source?.close();
    this.outgoing.clear();
  }

  // ------------------------------------------------------------- leader

  /** The core's snapshotProvider: an image ready for `to`, or null while one opens. */
  provide(to: NodeId, minIndex: number): number | null {
    const out = this.outgoing.get(to);
    if (out?.source && out.source.index >= minIndex) return out.source.index;
    if (out && !out.source) return null;
    // None yet, or one older than the compaction point: open a new image.
    out?.source?.close();
    const image: OutgoingImage = {
      source: null,
      reading: false,
      offset: 0,
      stalledTicks: 0,
      lastSent: false,
    };
    this.outgoing.set(to, image);
    this.store.open().then(
      (source) => {
        if (this.host.isStopped() || this.outgoing.get(to) !== image) {
          source.close();
          return;
        }
        image.source = source;
        this.counters.opened++;
      },
      (err) => {
        if (this.outgoing.get(to) === image) this.outgoing.delete(to);
        this.sourceFailed(err);
      },
    );
    return null;
  }

  /** Fills a MsgSnap the core asked for with the chunk's bytes, then sends it. */
  sendChunk(m: Message): void {
    const chunk = m.snapshot;
    assert(chunk !== null, "MsgSnap without chunk");
    const image = this.outgoing.get(m.to);
    const source = image?.source;
    if (!image || !source || source.index !== chunk.meta.index) {
      this.host.guard(() => this.core.snapshotAborted(m.to));
      this.host.schedule();
      return;
    }
    // One read at a time per image; a resend asked meanwhile comes again on its own.
    if (image.reading) return;
    image.reading = true;
    if (chunk.offset > image.offset) {
      image.offset = chunk.offset;
      image.stalledTicks = 0;
    }
    source.read(chunk.offset, this.chunkBytes).then(
      ({ data, done }) => {
        image.reading = false;
        if (this.host.isStopped()) return;
        this.counters.chunksSent++;
        if (done && !image.lastSent) {
          image.lastSent = true;
          this.counters.sent++;
        }
        this.send({ ...m, snapshot: { ...chunk, data, done } });
      },
      (err) => {
        image.reading = false;
        if (this.outgoing.get(m.to) === image) this.outgoing.delete(m.to);
        source.close();
        this.sourceFailed(err);
        this.host.guard(() => this.core.snapshotAborted(m.to));
        this.host.schedule();
      },
    );
  }

  /**
   * One tick: closes images no transfer uses any more, and drops transfers whose
   * follower stopped acknowledging (an open image pins old data in LevelDB).
   */
  tick(): void {
    for (const [to, image] of this.outgoing) {
      if (!image.source) continue;
      const transfer = this.core.snapshotTransfer(to);
      const active = transfer !== null && transfer.index === image.source.index;
      if (++image.stalledTicks < this.stalledTicksMax) continue;
      this.outgoing.delete(to);
      image.source.close();
      if (active) {
        this.counters.failed++;
        this.host.guard(() => this.core.snapshotAborted(to));
      }
    }
  }

  /** A snapshot image could not be opened or read on the leader. */
  private sourceFailed(err: unknown): void {
    this.counters.failed++;
    // A record that fails its checks in our own store: this node must not lead as
    // if it had the data (it stops; the operator restores it from a peer).
    if (err instanceof KvError && err.code === "CORRUPT_RECORD") this.host.fatal(err);
  }

  // ------------------------------------------------------------- follower

  /** Stores received chunks in order and tells the core, which acknowledges them. */
  receive(chunks: SnapshotChunk[]): void {
    this.sinkTail = this.sinkTail
      .then(async () => {
        for (const c of chunks) {
          if (this.host.isStopped()) return;
          if (c.offset === 0) {
            const old = this.incoming;
            this.incoming = null;
            if (old) await old.sink.abort();
            this.incoming = { meta: c.meta, sink: await this.store.receive(c.meta) };
          }
          const incoming = this.incoming;
          if (
            incoming === null ||
            incoming.meta.index !== c.meta.index ||
            incoming.meta.term !== c.meta.term
          ) {
            continue;
          }
          try {
            await incoming.sink.write(c.offset, c.data, c.done);
          } catch (err) {
            // Bad bytes from the leader are bad input, not a reason to stop: drop what
            // was stored and have the leader start over. Anything else (a failed
            // write) is fatal.
            if (!(err instanceof KvError && err.code === "CORRUPT_RECORD")) throw err;
            this.incoming = null;
            await incoming.sink.abort();
            this.counters.failed++;
            this.host.guard(() => this.core.snapshotStoreFailed(c.meta));
            this.host.schedule();
            continue;
          }
          this.counters.chunksReceived++;
          let outcome = "stale";
          this.host.guard(() => {
            outcome = this.core.snapshotStored(c.meta, c.offset + c.data.byteLength, c.done);
          });
          if (outcome === "install") {
            this.incoming = null;
            // A newer snapshot overtook one not installed yet: the core installs the newer.
            const replaced = this.toInstall;
            this.toInstall = incoming;
            if (replaced) await replaced.sink.abort();
          } else if (outcome !== "more" && this.incoming === incoming) {
            this.incoming = null;
            await incoming.sink.abort();
          }
          this.host.schedule();
        }
      })
      .catch((err) => this.host.fatal(err));
  }

  /** Completes when every chunk received so far is stored (a snapshot Ready waits for it). */
  stored(): Promise<void> {
    return this.sinkTail;
  }

  /**
   * Installs the stored snapshot `meta` into the state machine, durably. The
   * driver calls it in its persist order, once `stored()` and earlier applies are
   * done, and resets the log only after it resolves.
   */
  async install(meta: SnapshotMeta): Promise<void> {
    const incoming = this.toInstall;
    assert(
      incoming !== null && incoming.meta.index === meta.index && incoming.meta.term === meta.term,
      `snapshot ${meta.index} to install was not stored`,
    );
    this.toInstall = null;
    await incoming.sink.install(meta);
    this.counters.installed++;
  }
}
