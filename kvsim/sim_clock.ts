/**
 * node/'s `Clock` on the simulator's event queue: virtual epoch milliseconds, timers
 * that are events. One clock per node incarnation: once the incarnation is gone (a
 * crash) its timers never fire, as a dead process's would not; while the node is
 * paused they fire when it resumes, late, as they would in a stopped process.
 */
import type { Cancel, Clock } from "../node/index.js";
import type { EventQueue } from "../raft/sim/event_queue.js";

/** Where virtual time starts: a plausible epoch, so timestamps look like real ones. */
export const SIM_EPOCH_MS = 1_700_000_000_000;

export interface ClockOwner {
  /** False once this incarnation crashed: its timers are dropped. */
  alive(): boolean;
  /** Virtual ms until which the node is paused (0 = running). */
  pausedUntilMs(): number;
}

export class EventClock implements Clock {
  constructor(
    private readonly events: EventQueue,
    private readonly owner: ClockOwner,
    /** This node's wall-clock error (ms): leaders stamp their own time. */
    private readonly skewMs = 0,
  ) {}

  now(): number {
    return SIM_EPOCH_MS + this.events.nowMs + this.skewMs;
  }

  /** Skew is the wall clock's error: elapsed time has none. */
  elapsedMs(): number {
    return this.events.nowMs;
  }

  after(ms: number, fn: () => void): Cancel {
    let cancelled = false;
    this.schedule(Math.max(0, ms), () => {
      if (!cancelled) fn();
    });
    return () => {
      cancelled = true;
    };
  }

  every(ms: number, fn: () => void): Cancel {
    let cancelled = false;
    const period = Math.max(1, ms);
    const loop = () => {
      if (cancelled) return;
      fn();
      this.schedule(period, loop);
    };
    this.schedule(period, loop);
    return () => {
      cancelled = true;
    };
  }

  private schedule(ms: number, run: () => void): void {
    const fire = () => {
      if (!this.owner.alive()) return;
      const paused = this.owner.pausedUntilMs();
      if (this.events.nowMs < paused) {
        this.events.at(paused, fire);
        return;
      }
      run();
    };
    this.events.after(ms, fire);
  }
}
