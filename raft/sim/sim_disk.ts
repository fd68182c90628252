/**
 * A node's simulated disk: MemoryRaftStorage in manual-sync mode, with an
 * fsync that completes after a (seeded, possibly slow) virtual latency and
 * groups every write that arrived before it started (group commit). A crash
 * keeps only what was synced.
 */
import { applyConfChange } from "../core.js";
import { MemoryRaftStorage } from "../memory_storage.js";
import type { Prng } from "../prng.js";
import { intBetween } from "../prng.js";
import type {
  ConfState,
  Entry,
  InitialState,
  PersistRequest,
  RaftStorage,
  SnapshotMeta,
} from "../storage.js";
import type { EventQueue } from "./event_queue.js";

export class SimDisk implements RaftStorage {
  private storage: MemoryRaftStorage;
  private syncScheduled = false;
  /** fsync latency range; a "slow disk" fault raises it for a while. */
  fsyncMsMin = 1;
  fsyncMsMax = 4;
  syncs = 0;

  constructor(
    private readonly events: EventQueue,
    private readonly prng: Prng,
    initialConf: ConfState,
  ) {
    this.storage = new MemoryRaftStorage({ manualSync: true, initialConf, applyConfChange });
  }

  persist(request: PersistRequest): Promise<void> {
    const p = this.storage.persist(request);
    this.scheduleSync();
    return p;
  }

  compact(index: number, meta: SnapshotMeta): Promise<void> {
    const p = this.storage.compact(index, meta);
    this.scheduleSync();
    return p;
  }

  async close(): Promise<void> {}

  /** Power loss: unsynced writes are gone; pending promises never settle. */
  crash(): void {
    this.storage = this.storage.crash();
    this.syncScheduled = false;
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    const storage = this.storage;
    const pending = storage.stats().pending;
    this.events.after(intBetween(this.prng, this.fsyncMsMin, this.fsyncMsMax), () => {
      if (storage !== this.storage) return;
      this.syncScheduled = false;
      // Only what was queued when the fsync started is covered by it.
      storage.sync(pending);
      this.syncs++;
      if (storage.stats().pending > 0) this.scheduleSync();
    });
  }

  initialState(): InitialState {
    return this.storage.initialState();
  }
  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    return this.storage.entries(lo, hi, maxBytes);
  }
  term(index: number): number | undefined {
    return this.storage.term(index);
  }
  firstIndex(): number {
    return this.storage.firstIndex();
  }
  lastIndex(): number {
    return this.storage.lastIndex();
  }
  snapshotMeta(): SnapshotMeta {
    return this.storage.snapshotMeta();
  }
}
