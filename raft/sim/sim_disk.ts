/**
 * A node's simulated disk. It keeps two images: the live one every read sees
 * (a write is visible as soon as `persist()` is called, as the storage
 * contract says) and the durable one, which only an fsync changes. An fsync
 * completes after a seeded, possibly slow, virtual latency and covers every
 * write queued when it started (group commit). A crash rebuilds the live image
 * from the durable one: unsynced hard state, entries and compactions are gone,
 * except that a seeded prefix of them may have reached the platter anyway
 * (`tornKeepP`), which the contract also allows.
 *
 * Built on `MemoryRaftLog` (the semantics both real storages share) rather
 * than on `MemoryRaftStorage`, so the checker can read the durable image
 * while the node runs and watch every write reach it.
 */
import { applyConfChange } from "../core.js";
import { MemoryRaftLog } from "../memory_storage.js";
import type { Prng } from "../prng.js";
import { chance, intBetween } from "../prng.js";
import type {
  ConfState,
  Entry,
  HardState,
  InitialState,
  PersistRequest,
  RaftStorage,
  SnapshotMeta,
} from "../storage.js";
import type { EventQueue } from "./event_queue.js";

type Op =
  | { kind: "persist"; request: PersistRequest }
  | { kind: "compact"; index: number; meta: SnapshotMeta };

interface Pending {
  op: Op;
  resolve: () => void;
}

/** What the checker learns from a disk: every append, and every change of the durable image. */
export interface DiskObserver {
  /** Entries written to the live log; `prevTerm` is the term just before each one. */
  onAppend(entries: readonly Entry[], prevTerms: readonly number[]): void;
  /** The durable hard state went from `before` to `after` (one fsync). */
  onSync(before: HardState, after: HardState): void;
}

/** Read access to one image (live or durable) for the checker. */
export interface DiskImage {
  hardState(): HardState;
  firstIndex(): number;
  lastIndex(): number;
  term(index: number): number | undefined;
}

export class SimDisk implements RaftStorage {
  private live: MemoryRaftLog;
  private durable: MemoryRaftLog;
  private pending: Pending[] = [];
  /** Bumped on every crash: an fsync scheduled before it must not touch the new images. */
  private generation = 0;
  private syncScheduled = false;
  /** fsync latency range; a "slow disk" fault raises it for a while. */
  fsyncMsMin = 1;
  fsyncMsMax = 4;
  /** Chance that a crash keeps a random prefix of the unsynced writes. */
  tornKeepP = 0;
  syncs = 0;
  observer: DiskObserver | null = null;

  constructor(
    private readonly events: EventQueue,
    private readonly prng: Prng,
    initialConf: ConfState,
  ) {
    this.durable = new MemoryRaftLog({ initialConf, applyConfChange });
    this.live = this.durable.clone();
  }

  /**
   * The storage one incarnation of the node uses. Writes a stopped incarnation
   * still has in flight when the power went out never reach the new images.
   */
  open(): RaftStorage {
    const generation = this.generation;
    const stale = () => generation !== this.generation;
    return {
      persist: (request) => (stale() ? never() : this.persist(request)),
      compact: (index, meta) => (stale() ? never() : this.compact(index, meta)),
      close: async () => {},
      initialState: () => this.initialState(),
      entries: (lo, hi, maxBytes) => this.entries(lo, hi, maxBytes),
      term: (index) => this.term(index),
      firstIndex: () => this.firstIndex(),
      lastIndex: () => this.lastIndex(),
      snapshotMeta: () => this.snapshotMeta(),
    };
  }

  persist(request: PersistRequest): Promise<void> {
    this.live.apply(request);
    if (request.entries && request.entries.length > 0) this.noteAppend(request);
    const done = this.enqueue({ kind: "persist", request: copyRequest(request) });
    // An unsynced request stays pending (a crash may lose it) but does not wait.
    return request.sync === false ? Promise.resolve() : done;
  }

  compact(index: number, meta: SnapshotMeta): Promise<void> {
    this.live.compact(index, meta);
    return this.enqueue({ kind: "compact", index, meta });
  }

  async close(): Promise<void> {}

  /**
   * Power loss: the live image becomes the durable one (plus, maybe, a prefix
   * of the unsynced writes); pending promises never settle.
   */
  crash(): void {
    let keep = 0;
    if (this.pending.length > 0 && chance(this.prng, this.tornKeepP)) {
      keep = intBetween(this.prng, 0, this.pending.length);
    }
    if (keep > 0) this.applyDurable(this.pending.slice(0, keep));
    this.pending = [];
    this.generation++;
    this.syncScheduled = false;
    this.live = this.durable.clone();
  }

  /** Writes queued but not yet covered by an fsync. */
  unsyncedCount(): number {
    return this.pending.length;
  }

  /** The image a restart would find. */
  durableImage(): DiskImage {
    return this.durable;
  }

  /** The image the running node reads. */
  liveImage(): DiskImage {
    return this.live;
  }

  private noteAppend(request: PersistRequest): void {
    const entries = request.entries!;
    const first = this.live.firstIndex();
    const kept: Entry[] = [];
    const prevTerms: number[] = [];
    for (const e of entries) {
      // Entries at or below the snapshot are skipped by the storage.
      if (e.index < first) continue;
      kept.push(e);
      prevTerms.push(this.live.term(e.index - 1) ?? -1);
    }
    if (kept.length > 0) this.observer?.onAppend(kept, prevTerms);
  }

  private enqueue(op: Op): Promise<void> {
    return new Promise((resolve) => {
      this.pending.push({ op, resolve });
      this.scheduleSync();
    });
  }

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    const generation = this.generation;
    // Only what was queued when the fsync started is covered by it.
    const covered = this.pending.length;
    this.events.after(intBetween(this.prng, this.fsyncMsMin, this.fsyncMsMax), () => {
      if (generation !== this.generation) return;
      this.syncScheduled = false;
      const batch = this.pending.splice(0, covered);
      this.applyDurable(batch);
      this.syncs++;
      for (const p of batch) p.resolve();
      if (this.pending.length > 0) this.scheduleSync();
    });
  }

  private applyDurable(batch: Pending[]): void {
    const before = this.durable.hardState();
    for (const p of batch) {
      if (p.op.kind === "persist") this.durable.apply(p.op.request);
      else this.durable.compact(p.op.index, p.op.meta);
    }
    this.observer?.onSync(before, this.durable.hardState());
  }

  initialState(): InitialState {
    return this.live.initialState();
  }
  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    return this.live.entries(lo, hi, maxBytes);
  }
  term(index: number): number | undefined {
    return this.live.term(index);
  }
  firstIndex(): number {
    return this.live.firstIndex();
  }
  lastIndex(): number {
    return this.live.lastIndex();
  }
  snapshotMeta(): SnapshotMeta {
    return this.live.snapshotMeta();
  }
}

function never(): Promise<void> {
  return new Promise(() => {});
}

function copyRequest(request: PersistRequest): PersistRequest {
  const copy: PersistRequest = {};
  if (request.hardState) copy.hardState = { ...request.hardState };
  if (request.snapshot) {
    const s = request.snapshot;
    copy.snapshot = {
      index: s.index,
      term: s.term,
      conf: { voters: [...s.conf.voters], learners: [...s.conf.learners] },
    };
  }
  if (request.entries) copy.entries = request.entries.map((e) => ({ ...e }));
  return copy;
}
