import { describe, expect, it } from "vitest";
import { KvError } from "../proto/index.js";
import { ManualClock, sleep, timeoutAt, withDeadline } from "./clock.js";

describe("withDeadline", () => {
  it("clears its timer when the work finishes first", async () => {
    const clock = new ManualClock(1000);
    const v = await withDeadline(clock, Promise.resolve(7), 5000, () => new Error("late"));
    expect(v).toBe(7);
    expect(clock.pending()).toBe(0);
  });

  it("clears its timer when the work fails first", async () => {
    const clock = new ManualClock();
    const err = await withDeadline(
      clock,
      Promise.reject(new Error("boom")),
      50,
      () => new Error("late"),
    ).catch((e: Error) => e);
    expect((err as Error).message).toBe("boom");
    expect(clock.pending()).toBe(0);
  });

  it("rejects with the caller's error at the deadline", async () => {
    const clock = new ManualClock();
    const p = timeoutAt(clock, new Promise(() => {}), 100, "the thing");
    clock.advance(99);
    clock.advance(1);
    const err = (await p.catch((e) => e)) as KvError;
    expect(err).toBeInstanceOf(KvError);
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toMatch(/the thing did not finish in time/);
    expect(clock.pending()).toBe(0);
  });

  it("without a deadline is the work itself", async () => {
    const clock = new ManualClock();
    expect(await withDeadline(clock, Promise.resolve(1), undefined, () => new Error())).toBe(1);
    expect(clock.pending()).toBe(0);
  });
});

describe("ManualClock", () => {
  it("runs timers in time order at their own time, repeating ones until cancelled", () => {
    const clock = new ManualClock();
    const seen: string[] = [];
    clock.after(30, () => seen.push(`once@${clock.now()}`));
    const stop = clock.every(20, () => seen.push(`every@${clock.now()}`));
    clock.advance(50);
    stop();
    clock.advance(100);
    expect(seen).toEqual(["every@20", "once@30", "every@40"]);
    void sleep(clock, 5);
    expect(clock.pending()).toBe(1);
  });
});
