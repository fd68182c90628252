/**
 * The window of recently applied entries: their Raft index, request id and
 * result, in a ring of `window` slots stored as meta records next to the data
 * (written in the same batch as the entry they describe, so a restart finds
 * exactly the window that matches the applied state).
 *
 * It answers two questions: "was this request id applied already?" (a client
 * retry is applied at most once and gets the first result) and "what did
 * index i return?" (a replayed index is a no-op that returns its result).
 */
import { assert } from "./assert.js";
import type { DedupeRecord } from "./commands.js";

export const DEFAULT_DEDUPE_WINDOW = 4096;

/** Where the request window's records live: one meta record per slot. */
export const RING_KEY_PREFIX = "kv/ring/";

export function ringKey(slot: number): string {
  return `${RING_KEY_PREFIX}${slot}`;
}

export class DedupeWindow {
  readonly window: number;
  /** Records ever written; the next slot is `written % window`. */
  private written: number;
  private readonly slots: Array<DedupeRecord | undefined>;
  private readonly byIndex = new Map<number, DedupeRecord>();
  private readonly byRequest = new Map<string, DedupeRecord>();

  constructor(window: number, written: number) {
    assert(Number.isSafeInteger(window) && window >= 1, "dedupe window must be >= 1");
    assert(Number.isSafeInteger(written) && written >= 0, "dedupe record count must be >= 0");
    this.window = window;
    this.written = written;
    this.slots = new Array(window).fill(undefined);
  }

  get records(): number {
    return this.written;
  }

  /** Slots that hold a record, oldest first (what `open` must read back). */
  liveSlots(): number[] {
    const n = Math.min(this.written, this.window);
    const out: number[] = [];
    for (let i = this.written - n; i < this.written; i++) out.push(i % this.window);
    return out;
  }

  /** Restores one slot at open, in oldest-first order. */
  restore(slot: number, record: DedupeRecord): void {
    this.slots[slot] = record;
    this.byIndex.set(record.index, record);
    if (record.requestKey !== "") this.byRequest.set(record.requestKey, record);
  }

  /** The slot the next record goes to. */
  nextSlot(): number {
    return this.written % this.window;
  }

  /** Remembers a record (after its batch committed), evicting the oldest one. */
  add(record: DedupeRecord): void {
    const slot = this.nextSlot();
    const old = this.slots[slot];
    if (old !== undefined) {
      this.byIndex.delete(old.index);
      if (old.requestKey !== "" && this.byRequest.get(old.requestKey) === old) {
        this.byRequest.delete(old.requestKey);
      }
    }
    this.slots[slot] = record;
    this.byIndex.set(record.index, record);
    // A retry's record replaces the first one here, so the request stays
    // remembered for as long as any record of it is in the window.
    if (record.requestKey !== "") this.byRequest.set(record.requestKey, record);
    this.written++;
  }

  forIndex(index: number): DedupeRecord | undefined {
    return this.byIndex.get(index);
  }

  forRequest(requestKey: string): DedupeRecord | undefined {
    return this.byRequest.get(requestKey);
  }
}
