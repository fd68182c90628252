/** CreditWindow: the credit a watch grants, fixed by bufferSize or sized by its events. */
import { describe, expect, it } from "vitest";
import {
  CreditWindow,
  DEFAULT_WINDOW,
  MAX_ADAPTIVE_WINDOW,
  WINDOW_BYTES,
} from "./credit_window.js";

/** Consumes `n` events; the credit granted meanwhile, grant by grant. */
function consume(w: CreditWindow, n: number): number[] {
  const grants: number[] = [];
  for (let i = 0; i < n; i++) {
    const g = w.consumed();
    if (g > 0) grants.push(g);
  }
  return grants;
}

describe("CreditWindow", () => {
  it("with bufferSize, grants it and returns credit by halves, as before", () => {
    const w = new CreditWindow(10);
    expect(w.subscribe(0)).toBe(10);
    expect(consume(w, 4)).toEqual([]);
    expect(consume(w, 1)).toEqual([5]);
    expect(consume(w, 10)).toEqual([5, 5]);
    w.received(1, 1);
    expect(w.size).toBe(10);
  });

  it("counts held events against a resubscribe's credit", () => {
    const w = new CreditWindow(10);
    expect(w.subscribe(7)).toBe(3);
    expect(consume(w, 5)).toEqual([5]);
    expect(new CreditWindow(4).subscribe(9)).toBe(1);
  });

  it("unset, grows while events are small, shrinks for large ones, within bounds", () => {
    const w = new CreditWindow(undefined);
    expect(w.subscribe(0)).toBe(DEFAULT_WINDOW);
    for (let i = 0; i < 100; i++) w.received(128, 12);
    expect(w.size).toBe(MAX_ADAPTIVE_WINDOW);
    // The growth is granted with the next batch: never more outstanding than the window.
    const grants = consume(w, DEFAULT_WINDOW);
    expect(grants[0]).toBe(MAX_ADAPTIVE_WINDOW - DEFAULT_WINDOW + 1);
    for (let i = 0; i < 200; i++) w.received(1024 * 1024, 12);
    expect(w.size).toBe(DEFAULT_WINDOW);
    // Outstanding (4096 - 255) above the shrunk window: no credit until half of it is free.
    const outstanding = MAX_ADAPTIVE_WINDOW - DEFAULT_WINDOW + 1;
    expect(consume(w, outstanding - DEFAULT_WINDOW / 2 - 1)).toEqual([]);
    expect(consume(w, 1)).toEqual([DEFAULT_WINDOW / 2]);
    // In between: the window holds about WINDOW_BYTES of such events.
    for (let i = 0; i < 400; i++) w.received(WINDOW_BYTES / 1000 - 76, 12);
    expect(Math.abs(w.size - 1000)).toBeLessThanOrEqual(1);
  });
});
