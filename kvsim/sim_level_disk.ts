/**
 * The stream log's simulated disk: memory-level with power loss. `SimLevelDisk` keeps a
 * durable image (what survives a crash) next to the live db every read sees, and models
 * LevelDB's write-ahead log: a write is visible at once; an unsynced write becomes
 * durable only with a later synced one (the log is sequential, so one fsync covers
 * every earlier write); a synced write resolves only once its fsync completed, after a
 * seeded virtual latency (group commit: one fsync covers what was queued when it
 * started). A crash drops what was not durable, except that a seeded prefix of the
 * unsynced batches may have reached the platter anyway (`tornKeepP`): batches are
 * atomic WAL records, so never half a batch.
 *
 * `open()` hands out the db of one incarnation; writes a crashed incarnation still
 * issues never reach the new images and never resolve (the process is gone).
 */
import { MemoryLevel } from "memory-level";
import type { LevelDb } from "../log/index.js";
import { chance, intBetween, type Prng } from "../raft/index.js";
import type { EventQueue } from "../raft/sim/event_queue.js";

export type RawOp =
  | { type: "put"; key: Uint8Array; value: Uint8Array }
  | { type: "del"; key: Uint8Array };

/** memory-level's implementation hooks (abstract-level's `_batch` etc.), untyped in its .d.ts. */
interface MemoryLevelInternals {
  _batch(ops: RawOp[], options: { sync?: boolean }): Promise<void>;
}
const base = MemoryLevel.prototype as unknown as MemoryLevelInternals;

interface Pending {
  ops: RawOp[];
  /** Set for a synced write: resolves once an fsync covered it. */
  resolve?: () => void;
}

function hex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");
}

function never(): Promise<void> {
  return new Promise(() => {});
}

/** One incarnation's db: memory-level that reports each write to its disk. */
class SimLevel extends MemoryLevel<Uint8Array | string, Uint8Array> {
  /** Set while the durable image is copied in at open (not a write of the node's). */
  loading = false;

  constructor(
    private readonly disk: SimLevelDisk,
    private readonly generation: number,
  ) {
    super({ storeEncoding: "view", keyEncoding: "view", valueEncoding: "view" });
  }

  async _batch(ops: RawOp[], options: { sync?: boolean }): Promise<void> {
    if (this.loading) return base._batch.call(this, ops, options);
    if (this.disk.isStale(this.generation)) return never();
    const copy = ops.map((op) =>
      op.type === "put"
        ? { type: "put" as const, key: op.key.slice(), value: op.value.slice() }
        : { type: "del" as const, key: op.key.slice() },
    );
    await base._batch.call(this, ops, options);
    return this.disk.written(copy, options.sync === true);
  }

  async _put(key: Uint8Array, value: Uint8Array, options: { sync?: boolean }): Promise<void> {
    return this._batch([{ type: "put", key, value }], options);
  }

  async _del(key: Uint8Array, options: { sync?: boolean }): Promise<void> {
    return this._batch([{ type: "del", key }], options);
  }

  /** A range delete, recorded as one unsynced batch of deletes (LevelDB's is no more durable). */
  async _clear(options: {
    gt?: Uint8Array;
    gte?: Uint8Array;
    lt?: Uint8Array;
    lte?: Uint8Array;
    limit?: number;
    reverse?: boolean;
  }): Promise<void> {
    const range: Record<string, unknown> = { keyEncoding: "view" };
    for (const k of ["gt", "gte", "lt", "lte", "reverse"] as const) {
      if (options[k] !== undefined) range[k] = options[k];
    }
    if (options.limit !== undefined && options.limit >= 0) range.limit = options.limit;
    const keys = await this.keys<Uint8Array>(range).all();
    if (keys.length === 0) return;
    return this._batch(
      keys.map((key) => ({ type: "del", key })),
      {},
    );
  }
}

export class SimLevelDisk {
  private readonly durable = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  private pending: Pending[] = [];
  private generation = 0;
  private syncScheduled = false;
  fsyncMsMin = 1;
  fsyncMsMax = 4;
  /** Chance that a crash keeps a random prefix of the unsynced batches. */
  tornKeepP = 0;
  syncs = 0;

  constructor(
    private readonly events: EventQueue,
    private readonly prng: Prng,
  ) {}

  /** The db of a new incarnation, holding the durable image. */
  async open(): Promise<LevelDb> {
    const db = new SimLevel(this, this.generation);
    await db.open();
    db.loading = true;
    try {
      await db.batch(
        [...this.durable.values()].map((e) => ({
          type: "put" as const,
          key: e.key,
          value: e.value,
        })),
      );
    } finally {
      db.loading = false;
    }
    return db as unknown as LevelDb;
  }

  isStale(generation: number): boolean {
    return generation !== this.generation;
  }

  /** Batches written but not durable yet. */
  unsyncedCount(): number {
    return this.pending.length;
  }

  /** Keys in the durable image (tests). */
  durableSize(): number {
    return this.durable.size;
  }

  /** Power loss: the next `open()` finds only what was durable (or a torn prefix beyond it). */
  crash(): void {
    if (this.pending.length > 0 && chance(this.prng, this.tornKeepP)) {
      const keep = intBetween(this.prng, 0, this.pending.length);
      this.makeDurable(this.pending.slice(0, keep));
    }
    this.pending = [];
    this.generation++;
    this.syncScheduled = false;
  }

  /** @internal A write of the current incarnation reached the live db. */
  written(ops: RawOp[], sync: boolean): Promise<void> {
    if (!sync) {
      this.pending.push({ ops });
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.pending.push({ ops, resolve });
      this.scheduleSync();
    });
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    const generation = this.generation;
    const covered = this.pending.length;
    this.events.after(intBetween(this.prng, this.fsyncMsMin, this.fsyncMsMax), () => {
      if (generation !== this.generation) return;
      this.syncScheduled = false;
      const batch = this.pending.splice(0, covered);
      this.makeDurable(batch);
      this.syncs++;
      for (const p of batch) p.resolve?.();
      if (this.pending.some((p) => p.resolve !== undefined)) this.scheduleSync();
    });
  }

  private makeDurable(batch: Pending[]): void {
    for (const p of batch) {
      for (const op of p.ops) {
        if (op.type === "put") this.durable.set(hex(op.key), { key: op.key, value: op.value });
        else this.durable.delete(hex(op.key));
      }
    }
  }
}
