/** The flag parser's durations and short flags, without a process. */
import { describe, expect, it } from "vitest";
import { type FlagSpec, parseArgs, parseDurationMs, UsageError } from "./args.js";

describe("parseDurationMs", () => {
  it("reads units and plain integers (ms)", () => {
    const cases: [string, number][] = [
      ["0", 0],
      ["1500", 1500],
      ["500ms", 500],
      ["30s", 30_000],
      ["5m", 300_000],
      ["1h", 3_600_000],
      ["2d", 172_800_000],
      ["1h30m", 5_400_000],
      ["1m500ms", 60_500],
    ];
    for (const [text, ms] of cases) expect(parseDurationMs(text), text).toBe(ms);
  });

  it("refuses anything else", () => {
    for (const text of ["", "s", "1.5s", "-1s", "30x", "1 h", "1H", "h1", "99999999999999999999"]) {
      expect(parseDurationMs(text), text).toBeUndefined();
    }
  });
});

describe("parseArgs", () => {
  const specs: FlagSpec[] = [
    { name: "server", type: "string", short: "s", help: "" },
    { name: "json", type: "bool", short: "j", help: "" },
    { name: "ttl", type: "duration", min: 0, help: "" },
  ];

  it("takes short flags and durations", () => {
    const p = parseArgs(["-s", "ws://a", "b", "-j", "--ttl=1h"], specs);
    expect(Object.fromEntries(p.flags)).toEqual({ server: "ws://a", json: true, ttl: 3_600_000 });
    expect(p.positionals).toEqual(["b"]);
  });

  it("names the flag and the value it refuses", () => {
    expect(() => parseArgs(["--ttl", "soon"], specs)).toThrow(UsageError);
    expect(() => parseArgs(["--ttl", "soon"], specs)).toThrow(
      /--ttl expects a duration .*got "soon"/,
    );
    expect(() => parseArgs(["-s"], specs)).toThrow(/^-s needs a value$/);
    expect(() => parseArgs(["-x"], specs)).toThrow(/unknown flag -x/);
  });
});
