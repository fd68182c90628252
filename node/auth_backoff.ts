/**
 * Slows down guessing: each failed authentication from a remote address doubles how
 * long that address waits for its next refusal (from `baseMs` up to `maxMs`), and the
 * socket holds its pre-hello slot meanwhile, so one address (at most
 * --max-pre-hello-per-address sockets before hello) gets few guesses per second. A
 * success, or `quietMs` without failures, forgets the address. At most `maxAddresses`
 * are remembered (the oldest forgotten first), so a spread-out attacker cannot grow it.
 */
import type { Clock } from "./clock.js";

export interface AuthBackoffOptions {
  /** Delay after the first failure, ms (default 100). */
  baseMs?: number;
  /** Longest delay, ms (default 2000: below the 5 s hello timeout). */
  maxMs?: number;
  /** Failures older than this are forgotten, ms (default 60 s). */
  quietMs?: number;
  /** Addresses remembered at once (default 4096). */
  maxAddresses?: number;
}

interface Failures {
  count: number;
  lastAt: number;
}

export class AuthBackoff {
  private readonly failures = new Map<string, Failures>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly quietMs: number;
  private readonly maxAddresses: number;

  constructor(
    private readonly clock: Clock,
    opts: AuthBackoffOptions = {},
  ) {
    this.baseMs = opts.baseMs ?? 100;
    this.maxMs = opts.maxMs ?? 2000;
    this.quietMs = opts.quietMs ?? 60_000;
    this.maxAddresses = opts.maxAddresses ?? 4096;
  }

  /** Notes a failure from `address`; returns how long its refusal waits, ms. */
  failed(address: string): number {
    const now = this.clock.now();
    const prev = this.failures.get(address);
    const count = prev !== undefined && now - prev.lastAt < this.quietMs ? prev.count + 1 : 1;
    // Re-inserted so the map's order is oldest-failure first.
    this.failures.delete(address);
    if (this.failures.size >= this.maxAddresses) {
      this.failures.delete(this.failures.keys().next().value!);
    }
    this.failures.set(address, { count, lastAt: now });
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(count - 1, 30));
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }

  /** Addresses remembered (tests, metrics). */
  get size(): number {
    return this.failures.size;
  }
}
