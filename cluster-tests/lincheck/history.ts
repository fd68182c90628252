/**
 * `HistoryRecorder`: the one way tests record client histories. Times come
 * from a monotone counter, not a clock, so the simulator (virtual time) and
 * real-process tests (many async clients in one event loop) record the same
 * way, and a saved history replays to the same verdict.
 *
 * Call `call()` just before the request is sent and `ok()` / `unknown()` /
 * `failDefinitely()` just after its outcome is known; in one event loop, that
 * brackets the real effect, which is all linearizability needs.
 */
import type { Op } from "./types.js";

export type OpHandle = number;

interface Slot<I, O> {
  op: Op<I, O>;
  state: "pending" | "ok" | "unknown" | "failed";
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`HistoryRecorder: ${message}`);
}

export class HistoryRecorder<I, O> {
  private clock = 0;
  private readonly slots: Slot<I, O>[] = [];

  /** Records the invocation; returns the handle to complete it with. */
  call(clientId: number | string, input: I): OpHandle {
    this.clock += 1;
    this.slots.push({
      op: { clientId, input, callTime: this.clock, returnTime: undefined },
      state: "pending",
    });
    return this.slots.length - 1;
  }

  /**
   * A response arrived. Definite errors that are results of the operation
   * (KEY_EXISTS, WRONG_LAST_REVISION) are outputs too: record them here.
   */
  ok(handle: OpHandle, output: O): void {
    const slot = this.pending(handle);
    this.clock += 1;
    slot.op.returnTime = this.clock;
    slot.op.output = output;
    slot.state = "ok";
  }

  /**
   * The op certainly did not take effect (e.g. rejected with NO_LEADER before
   * it was proposed, or a read that failed): it is left out of the history.
   */
  failDefinitely(handle: OpHandle): void {
    const slot = this.pending(handle);
    this.clock += 1;
    slot.state = "failed";
  }

  /**
   * No response (timeout, connection lost, node crashed): the op may or may
   * not take effect, at any time from its call on. With `settled`, the caller
   * knows that by now it has taken effect or never will (the simulator saw
   * its proposal applied or dropped): recorded as `effectDeadline`.
   */
  unknown(handle: OpHandle, options: { settled?: boolean } = {}): void {
    const slot = this.pending(handle);
    this.clock += 1;
    slot.state = "unknown";
    if (options.settled === true) slot.op.effectDeadline = this.clock;
  }

  /** Ops still pending count as unknown. Returns copies; recording may go on. */
  history(): Op<I, O>[] {
    const out: Op<I, O>[] = [];
    for (const slot of this.slots) {
      if (slot.state === "failed") continue;
      out.push({ ...slot.op });
    }
    return out;
  }

  /** How many ops are still waiting for an outcome. */
  pendingCount(): number {
    return this.slots.filter((s) => s.state === "pending").length;
  }

  private pending(handle: OpHandle): Slot<I, O> {
    const slot = this.slots[handle];
    assert(slot !== undefined, `unknown handle ${handle}`);
    assert(slot.state === "pending", `op ${handle} already completed (${slot.state})`);
    return slot;
  }
}
