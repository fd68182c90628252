import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.js";
import type { Logger } from "./log.js";
import { rateLimitedLogger } from "./rate_limited_log.js";

function recorder(): {
  log: Logger;
  lines: { level: string; msg: string; fields?: Record<string, unknown> }[];
} {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    lines.push({ level, msg, ...(fields ? { fields } : {}) });
  return {
    lines,
    log: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") },
  };
}

describe("rate-limited refusal logs", () => {
  it("logs at most `burst` warnings of a kind per window, then one summary with the count", () => {
    const clock = new ManualClock(0);
    const { log, lines } = recorder();
    const limited = rateLimitedLogger(log, clock, { burst: 3, windowMs: 1000 });
    // A stranger's flood: 10,000 refusals in one window.
    for (let i = 0; i < 10_000; i++) limited.warn("peer refused", { remote: `10.0.0.${i % 250}` });
    expect(lines.filter((l) => l.msg === "peer refused")).toHaveLength(3);
    clock.advance(1000);
    expect(lines).toHaveLength(4);
    expect(lines[3]!.fields).toMatchObject({ suppressed: 9997, windowMs: 1000 });
    // A new window after it.
    limited.warn("peer refused", { remote: "10.0.0.1" });
    expect(lines).toHaveLength(5);
    expect(lines[4]!.fields).toEqual({ remote: "10.0.0.1" });
  });

  it("limits each kind on its own, and never limits debug, info or error", () => {
    const clock = new ManualClock(0);
    const { log, lines } = recorder();
    const limited = rateLimitedLogger(log, clock, { burst: 2, windowMs: 1000 });
    for (let i = 0; i < 100; i++) limited.warn("client connection refused");
    limited.warn("request forbidden");
    for (let i = 0; i < 50; i++) {
      limited.error("boom");
      limited.info("note");
      limited.debug("detail");
    }
    expect(lines.filter((l) => l.msg === "client connection refused")).toHaveLength(2);
    expect(lines.filter((l) => l.msg === "request forbidden")).toHaveLength(1);
    expect(lines.filter((l) => l.level !== "warn")).toHaveLength(150);
    clock.advance(1000);
    // No summary for a kind that lost nothing.
    expect(lines.filter((l) => l.fields?.suppressed !== undefined)).toHaveLength(1);
  });

  it("bounds the kinds it tracks; extra kinds pass rather than vanish", () => {
    const clock = new ManualClock(0);
    const { log, lines } = recorder();
    const limited = rateLimitedLogger(log, clock, { burst: 1, windowMs: 1000, maxKinds: 4 });
    for (let k = 0; k < 10; k++) for (let i = 0; i < 3; i++) limited.warn(`kind ${k}`);
    // 4 tracked kinds log once each; 6 untracked kinds pass all 3 lines.
    expect(lines).toHaveLength(4 + 6 * 3);
  });
});
