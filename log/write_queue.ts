/**
 * Serializes the log's LevelDB writes and groups them (group commit).
 *
 * Writes must reach LevelDB in commit order: classic-level runs each write on a
 * libuv worker thread, so two writes issued at once may land in either order,
 * and a later batch that deletes a message could land before the batch that put
 * it. So one write is in flight at a time; batches committed meanwhile wait and
 * then go out together as ONE LevelDB write (atomic as a whole, synced if any of
 * them asked for it). None of them has resolved before that write completes, so
 * merging them gives nothing away, and a caller that pipelines commits gets
 * many batches per fsync.
 *
 * A failed write is fatal (STYLE.md): the in-memory indexes are already ahead
 * of the disk, so every queued and later write is rejected and the node must
 * restart from disk.
 */
import type { AbstractLevel } from "abstract-level";

export type WriteOp =
  | { type: "put"; key: Uint8Array; value: Uint8Array; slot?: string }
  | { type: "del"; key: Uint8Array; slot?: string };

/**
 * The ops of a merged group, without those a later op of the same `slot` overwrites.
 * A slot names one LevelDB key whose every op sets its whole value (a stream's record,
 * a meta key, the header): pipelined applies rewrite the same few of them once per
 * entry, and LevelDB applies a write's ops in order, so only each slot's last op can
 * be seen once the (atomic) write is done. Untagged ops are all kept, in order.
 */
export function withoutOverwritten(ops: WriteOp[]): WriteOp[] {
  const seen = new Set<string>();
  const kept: WriteOp[] = [];
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i]!;
    if (op.slot !== undefined) {
      if (seen.has(op.slot)) continue;
      seen.add(op.slot);
    }
    kept.push(op);
  }
  return kept.reverse();
}

/**
 * Any abstract-level database: classic-level (LevelDB) in production, memory-level
 * in tests and the simulator (kvsim/), which wraps it to model power loss.
 */
export type LevelDb = AbstractLevel<string | Buffer | Uint8Array, Uint8Array | string, Uint8Array>;

interface Pending {
  ops: WriteOp[];
  sync: boolean;
  /** Runs after the write succeeded, before the promise resolves. */
  onWritten: () => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const VIEW = { keyEncoding: "view", valueEncoding: "view" } as const;

export class WriteQueue {
  private queue: Pending[] = [];
  private active = false;
  private running: Promise<void> = Promise.resolve();
  /** The error of the write that failed; set once, never cleared. */
  failure: Error | null = null;
  /** LevelDB writes issued (for tests and metrics). */
  writes = 0;

  constructor(private readonly db: LevelDb) {}

  enqueue(ops: WriteOp[], sync: boolean, onWritten: () => void): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, sync, onWritten, resolve, reject });
      if (!this.active) {
        this.active = true;
        this.running = this.run();
      }
    });
  }

  /** Resolves when every write queued so far has finished (or failed). */
  async drain(): Promise<void> {
    while (this.active) await this.running;
  }

  private async run(): Promise<void> {
    for (;;) {
      if (this.queue.length === 0) {
        // In the same synchronous step as the emptiness check, so an enqueue
        // cannot slip in between and be left waiting.
        this.active = false;
        return;
      }
      const group = this.queue.splice(0);
      const ops =
        group.length === 1 ? group[0]!.ops : withoutOverwritten(group.flatMap((p) => p.ops));
      const sync = group.some((p) => p.sync);
      try {
        // An empty group has nothing to make durable; LevelDB would still sync.
        if (ops.length > 0) {
          // `sync` is LevelDB's (classic-level); abstract-level passes it through to
          // every implementation (memory-level ignores it, kvsim's SimLevel honours it).
          const options = { ...VIEW, sync };
          await this.db.batch(ops as never, options);
          this.writes++;
        }
      } catch (err) {
        this.failure = new Error("stream log write failed; the node must restart from disk", {
          cause: err,
        });
        for (const p of [...group, ...this.queue.splice(0)]) p.reject(this.failure);
        this.active = false;
        return;
      }
      for (const p of group) {
        p.onWritten();
        p.resolve();
      }
    }
  }
}
