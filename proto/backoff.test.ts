import { describe, expect, it } from "vitest";
import { backoffDelayMs } from "./backoff.js";

describe("backoffDelayMs", () => {
  it("doubles from the base up to the cap, before jitter", () => {
    const top = () => 1 - Number.EPSILON;
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelayMs(a, 50, 1000, top))).toEqual([
      50, 100, 200, 400, 800, 1000,
    ]);
    expect(backoffDelayMs(10_000, 50, 2000, top)).toBe(2000);
  });

  it("jitters to between half and all of the delay", () => {
    expect(backoffDelayMs(3, 100, 2000, () => 0)).toBe(200);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(3, 100, 2000);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });

  it("treats an attempt below 1 as the first", () => {
    expect(backoffDelayMs(0, 100, 2000, () => 0)).toBe(50);
  });
});
