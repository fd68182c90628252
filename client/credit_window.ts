/**
 * How many events a watch lets the server send ahead of the application (credit-based
 * flow control): the server sends only against credit, and credit comes back as the
 * application consumes, so the client holds at most `size` events.
 *
 * With `bufferSize` given, the window is exactly that. Without, it starts at 256 events
 * and grows while events are small, up to WINDOW_BYTES of them (at most 4096 events):
 * the server may run ahead by more than a credit round trip, which on a busy machine
 * was what bounded the initial values of a large bucket (300k entries of 128 B: 10.8 s
 * with 256, 5.1 s with 2048), while large values keep the window, and the memory it
 * holds, where it was.
 */
export const DEFAULT_WINDOW = 256;
/** The most events an unset `bufferSize` grows to. */
export const MAX_ADAPTIVE_WINDOW = 4096;
/** Bytes of events (value, key, overhead) an unset `bufferSize` lets the server send ahead. */
export const WINDOW_BYTES = 1024 * 1024;
/** What an event costs beyond its value and key, for the byte estimate. */
const EVENT_OVERHEAD_BYTES = 64;

export class CreditWindow {
  /** Credit granted and not yet consumed: events in flight plus events queued. */
  private outstanding = 0;
  /** Moving average of event bytes (0: none seen yet). */
  private averageBytes = 0;

  constructor(private readonly fixed: number | undefined) {}

  /** The window now: at most this many events granted and not yet consumed. */
  get size(): number {
    if (this.fixed !== undefined) return this.fixed;
    if (this.averageBytes === 0) return DEFAULT_WINDOW;
    const bySize = Math.floor(WINDOW_BYTES / this.averageBytes);
    return Math.min(MAX_ADAPTIVE_WINDOW, Math.max(DEFAULT_WINDOW, bySize));
  }

  /** The credit a (re)subscribe asks for while `queued` events are still held. */
  subscribe(queued: number): number {
    const credit = Math.max(1, this.size - queued);
    this.outstanding = credit + queued;
    return credit;
  }

  /** An entry of `valueBytes` + `keyBytes` arrived. */
  received(valueBytes: number, keyBytes: number): void {
    const bytes = valueBytes + keyBytes + EVENT_OVERHEAD_BYTES;
    this.averageBytes =
      this.averageBytes === 0 ? bytes : this.averageBytes + (bytes - this.averageBytes) / 16;
  }

  /**
   * The application consumed one event: the credit to grant now (0 for none). Credit
   * goes back in batches of at least half the window, one frame per batch.
   */
  consumed(): number {
    this.outstanding--;
    const size = this.size;
    const room = size - this.outstanding;
    if (room < Math.max(1, Math.floor(size / 2))) return 0;
    this.outstanding += room;
    return room;
  }
}
