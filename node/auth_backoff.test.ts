import { describe, expect, it } from "vitest";
import { AuthBackoff } from "./auth_backoff.js";
import { ManualClock } from "./clock.js";

describe("auth backoff", () => {
  it("doubles the wait per failure from one address, up to the cap", () => {
    const b = new AuthBackoff(new ManualClock(0), { baseMs: 100, maxMs: 2000 });
    const waits = Array.from({ length: 8 }, () => b.failed("10.0.0.1"));
    expect(waits).toEqual([100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    // Another address starts from the bottom.
    expect(b.failed("10.0.0.2")).toBe(100);
  });

  it("forgets an address after a success or a quiet period", () => {
    const clock = new ManualClock(0);
    const b = new AuthBackoff(clock, { baseMs: 100, quietMs: 60_000 });
    b.failed("a");
    b.failed("a");
    b.succeeded("a");
    expect(b.failed("a")).toBe(100);
    b.failed("a");
    clock.advance(60_000);
    expect(b.failed("a")).toBe(100);
  });

  it("remembers a bounded number of addresses, oldest forgotten first", () => {
    const b = new AuthBackoff(new ManualClock(0), { maxAddresses: 100 });
    for (let i = 0; i < 10_000; i++) b.failed(`10.0.${i >> 8}.${i & 255}`);
    expect(b.size).toBe(100);
  });
});
