/**
 * Time for node/: the wall clock in production, virtual time in the simulator. Everything
 * in node/ that reads the time or waits takes a `Clock`, so the forwarder, the proposer,
 * membership and request deadlines run unchanged on the simulator's event queue.
 */
import { KvError } from "../proto/index.js";

/** Cancels a timer; calling it again, or after the timer fired, does nothing. */
export type Cancel = () => void;

export interface Clock {
  /** Epoch milliseconds (virtual in the simulator): the wall clock, which may jump. */
  now(): number;
  /**
   * Milliseconds of a clock that only moves forward, at the pace of real time, whatever
   * the wall clock does (CLOCK_MONOTONIC; virtual in the simulator). Its zero is
   * arbitrary: for how long something took, never for a time of day.
   */
  elapsedMs(): number;
  /** Calls `fn` once after `ms`, unless cancelled first. */
  after(ms: number, fn: () => void): Cancel;
  /** Calls `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): Cancel;
}

/** Resolves after `ms` of this clock's time. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.after(ms, resolve));
}

/**
 * Resolves at the first call of the listener `subscribe` registers (an event) or at
 * `untilMs` (epoch ms) on `clock`, whichever comes first; both are then released. Never
 * rejects: how node/ waits for a driver event without polling.
 */
export function nextEventOr(
  clock: Clock,
  subscribe: (listener: () => void) => Cancel,
  untilMs: number,
): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      unsubscribe();
      cancelTimer();
      resolve();
    };
    const unsubscribe = subscribe(finish);
    const cancelTimer = clock.after(Math.max(0, untilMs - clock.now()), finish);
  });
}

/**
 * `work`, or a rejection with `onTimeout()` once the clock reaches `deadlineMs` (epoch ms;
 * undefined = no deadline). The timer is cleared whichever comes first; `work` itself
 * goes on (the caller says so in its error, e.g. "it may still be applied").
 */
export function withDeadline<T>(
  clock: Clock,
  work: Promise<T>,
  deadlineMs: number | undefined,
  onTimeout: () => Error,
): Promise<T> {
  if (deadlineMs === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const cancel = clock.after(Math.max(0, deadlineMs - clock.now()), () => reject(onTimeout()));
    work.then(
      (v) => {
        cancel();
        resolve(v);
      },
      (err) => {
        cancel();
        reject(err);
      },
    );
  });
}

/** `withDeadline` with the usual TIMEOUT error: "<what> did not finish in time; it may still". */
export function timeoutAt<T>(
  clock: Clock,
  work: Promise<T>,
  deadlineMs: number | undefined,
  what: string,
): Promise<T> {
  return withDeadline(
    clock,
    work,
    deadlineMs,
    () => new KvError("TIMEOUT", `${what} did not finish in time; it may still`),
  );
}

/**
 * The wall clock. Timers are unref'd: a pending deadline never keeps the process alive
 * on its own (the servers and sockets do).
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  elapsedMs: () => performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};

/**
 * A clock that moves only when told (tests): `advance(ms)` runs the timers that fall due,
 * in time order, each at its own time.
 */
export class ManualClock implements Clock {
  private timers: { at: number; seq: number; fn: () => void; every?: number }[] = [];
  private seq = 0;

  constructor(private nowMs = 0) {}

  now(): number {
    return this.nowMs;
  }

  elapsedMs(): number {
    return this.nowMs;
  }

  after(ms: number, fn: () => void): Cancel {
    const t = { at: this.nowMs + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(t);
    return () => this.cancel(t);
  }

  every(ms: number, fn: () => void): Cancel {
    const t = { at: this.nowMs + ms, seq: this.seq++, fn, every: Math.max(1, ms) };
    this.timers.push(t);
    return () => this.cancel(t);
  }

  /** Timers not yet fired nor cancelled. */
  pending(): number {
    return this.timers.length;
  }

  advance(ms: number): void {
    const until = this.nowMs + ms;
    while (true) {
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const t = this.timers[0];
      if (!t || t.at > until) break;
      this.nowMs = t.at;
      if (t.every === undefined) this.timers.shift();
      else t.at += t.every;
      t.fn();
    }
    this.nowMs = until;
  }

  private cancel(t: object): void {
    this.timers = this.timers.filter((x) => x !== t);
  }
}
