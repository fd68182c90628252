/**
 * The background scrub: a running node reads every block of every live LevelDB table
 * again and again, at a bounded rate (`--scrub-bytes-per-second`), and stops on the
 * first damage. The start check (log/leveldb_files.ts) reads only what LevelDB's
 * recovery reads, so that a restart does not grow with the data; tables are immutable
 * and what damage appears in them (a flipped bit on the disk, a bad sector) is found
 * here instead, within one cycle.
 *
 * On damage it writes the `CORRUPT` marker (its first line the damage, fsynced) into the
 * LevelDB directory, so every later start refuses as the start check does, and hands a
 * CORRUPT_RECORD error to `onDamage` (the node stops without serving or voting). A cycle
 * lists the live tables from the MANIFEST, verifies those not yet verified in it, and
 * lists again (at most LISTINGS_PER_CYCLE times, so heavy compaction cannot keep a cycle
 * from ending) for the tables compactions wrote meanwhile; a table deleted meanwhile is
 * skipped (table numbers are never reused). Reads are paced: the next read starts no
 * earlier than the bytes read so far allow, with no credit saved up while idle.
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import {
  CORRUPT_MARKER,
  damageError,
  type LevelDbDamage,
  liveSetOf,
  TableReadBuffer,
  verifyTable,
} from "../log/index.js";
import type { KvError } from "../proto/index.js";
import { type Cancel, type Clock, systemClock } from "./clock.js";
import type { Logger } from "./log.js";

/** Listings of the MANIFEST in one cycle: the first, then rounds for tables written meanwhile. */
const LISTINGS_PER_CYCLE = 4;
/**
 * Table bytes checked between two turns of the event loop (under 1 ms of CRC here), so
 * the node's Raft ticks and requests never wait for a whole table (a 3 MiB table checked
 * in one go held the loop for about 30 ms).
 */
const YIELD_EVERY_BYTES = 64 * 1024;
/** Rest between two cycles: a minute, short beside the cycle over a large database. */
export const CYCLE_PAUSE_MS = 60_000;
/** Pause after a failed read that is not damage (EIO, EACCES), before the next cycle. */
const RETRY_PAUSE_MS = 10_000;

export interface ScrubStats {
  verifiedBytes: number;
  verifiedTables: number;
  corruptions: number;
  /** Full cycles completed. */
  cycles: number;
  /** Epoch ms at which the last cycle completed (undefined before the first). */
  lastCycleCompletedMs: number | undefined;
}

export interface ScrubOptions {
  /** The node's LevelDB directory (`<data>/db`). */
  dbDir: string;
  /** At least 1: a node with the scrub off does not start one. */
  bytesPerSecond: number;
  log: Logger;
  /** Called once, after the marker is written; the scrub has stopped. */
  onDamage: (err: KvError) => void;
  clock?: Clock;
  /**
   * Pause between two cycles (default CYCLE_PAUSE_MS): a db of few tables is not read in
   * a loop, which cost a busy leader of a 1000-key bucket 5% of its CPU in decompressing
   * the same tables every second (issue 11's profile).
   */
  cyclePauseMs?: number;
}

export class Scrubber {
  readonly stats: ScrubStats = {
    verifiedBytes: 0,
    verifiedTables: 0,
    corruptions: 0,
    cycles: 0,
    lastCycleCompletedMs: undefined,
  };
  private readonly clock: Clock;
  private stopped = false;
  /** Every table of a cycle is read into this one buffer (released between cycles). */
  private readonly buffer = new TableReadBuffer();
  private wake: () => void = () => {};
  /** Elapsed ms before which the next read may not start. */
  private nextReadAtMs = 0;
  private readonly running: Promise<void>;

  constructor(private readonly opts: ScrubOptions) {
    if (!Number.isSafeInteger(opts.bytesPerSecond) || opts.bytesPerSecond < 1) {
      throw new Error(`scrub rate ${opts.bytesPerSecond} bytes/s: must be a positive integer`);
    }
    this.clock = opts.clock ?? systemClock;
    this.running = this.run();
  }

  /** Ends the scrub (a read under way finishes first). Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let damage: LevelDbDamage | undefined;
      try {
        damage = await this.cycle();
      } catch (err) {
        this.opts.log.warn("the scrub could not read the LevelDB directory; retrying", {
          error: String(err),
        });
        await this.pause(RETRY_PAUSE_MS);
        continue;
      }
      if (damage) {
        this.found(damage);
        return;
      }
      if (this.stopped) return;
      this.stats.cycles++;
      this.stats.lastCycleCompletedMs = this.clock.now();
      await this.pause(this.opts.cyclePauseMs ?? CYCLE_PAUSE_MS);
    }
  }

  /** One pass over the live tables; the damage found, if any (undefined when stopped). */
  private async cycle(): Promise<LevelDbDamage | undefined> {
    try {
      return await this.cycleTables();
    } finally {
      this.buffer.release();
    }
  }

  private async cycleTables(): Promise<LevelDbDamage | undefined> {
    const verified = new Set<number>();
    for (let listing = 0; listing < LISTINGS_PER_CYCLE && !this.stopped; listing++) {
      await this.paced();
      const set = await liveSetOf(this.opts.dbDir);
      this.spent(set.bytes);
      if (set.damage) return set.damage;
      const pending = set.tables.filter((t) => !verified.has(t.number));
      if (pending.length === 0) return undefined;
      for (const table of pending) {
        await this.paced();
        if (this.stopped) return undefined;
        const checked = await verifyTable(this.opts.dbDir, table, {
          yieldEveryBytes: YIELD_EVERY_BYTES,
          buffer: this.buffer,
        });
        verified.add(table.number);
        if (checked === "gone") {
          this.opts.log.debug("scrub: a table was deleted before its turn", {
            file: table.name,
          });
          continue;
        }
        this.spent(checked.bytes);
        this.stats.verifiedBytes += checked.bytes;
        this.stats.verifiedTables++;
        if (checked.damage) return checked.damage;
      }
    }
    return undefined;
  }

  private found(damage: LevelDbDamage): void {
    this.stats.corruptions++;
    const err = damageError(damage);
    this.opts.log.error("the scrub found damaged data: stopping this node", {
      file: damage.file,
      offset: damage.offset,
      reason: damage.reason,
    });
    if (!damage.file.endsWith(`/${CORRUPT_MARKER}`)) {
      try {
        writeMarker(
          this.opts.dbDir,
          `corrupt LevelDB file ${damage.file}: offset ${damage.offset}: ${damage.reason}\nfound by the background scrub at ${new Date(this.clock.now()).toISOString()}\n`,
        );
      } catch (e) {
        // The start check does not read tables: until the next scrub finds it again, a
        // restart would serve this data. The operator must hear it.
        this.opts.log.error("could not write the CORRUPT marker: do not restart this node", {
          dbDir: this.opts.dbDir,
          error: String(e),
        });
      }
    }
    this.opts.onDamage(err);
  }

  /** Counts `bytes` just read against the rate. */
  private spent(bytes: number): void {
    const now = this.clock.elapsedMs();
    this.nextReadAtMs =
      Math.max(this.nextReadAtMs, now) + (bytes * 1000) / this.opts.bytesPerSecond;
  }

  /** Waits until the rate allows the next read. */
  private async paced(): Promise<void> {
    const waitMs = this.nextReadAtMs - this.clock.elapsedMs();
    if (waitMs > 0) await this.pause(waitMs);
  }

  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      let cancel: Cancel = () => {};
      this.wake = () => {
        cancel();
        resolve();
      };
      cancel = this.clock.after(ms, resolve);
    });
  }
}

/** The marker, whole and fsynced with its directory entry, before the node stops. */
function writeMarker(dbDir: string, text: string): void {
  const fd = openSync(join(dbDir, CORRUPT_MARKER), "w");
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const dir = openSync(dbDir, "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
