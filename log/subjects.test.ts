import { describe, expect, it } from "vitest";
import { isKvError } from "../proto/index.js";
import {
  compileFilter,
  isLiteralSubject,
  isValidFilter,
  isValidSubject,
  MAX_SUBJECT_BYTES,
  matchSubject,
  validateFilter,
  validateSubject,
} from "./subjects.js";

function code(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isKvError(err) ? err.code : "not a KvError";
  }
}

describe("matchSubject", () => {
  const table: Array<[filter: string, subject: string, matches: boolean]> = [
    ["a", "a", true],
    ["a", "b", false],
    ["a.b", "a.b", true],
    ["a.b", "a", false],
    ["a", "a.b", false],
    ["*", "a", true],
    ["*", "a.b", false],
    ["a.*", "a.b", true],
    ["a.*", "a", false],
    ["a.*", "a.b.c", false],
    ["*.b", "a.b", true],
    ["*.b", "a.c", false],
    ["a.*.c", "a.x.c", true],
    ["a.*.c", "a.x.d", false],
    ["*.*", "a.b", true],
    [">", "a", true],
    [">", "a.b.c", true],
    ["a.>", "a", false],
    ["a.>", "a.b", true],
    ["a.>", "a.b.c", true],
    ["a.>", "b.c", false],
    ["*.>", "a.b", true],
    ["*.>", "a", false],
    ["a.*.>", "a.b.c.d", true],
    ["a.*.>", "a.b", false],
    ["ab", "a", false],
    ["a", "ab", false],
    ["foo.bar", "foo.barx", false],
  ];
  it.each(table)("%s vs %s -> %s", (filter, subject, matches) => {
    expect(matchSubject(filter, subject)).toBe(matches);
    expect(compileFilter(filter)(subject)).toBe(matches);
  });
});

describe("validateSubject / validateFilter", () => {
  const table: Array<[text: unknown, subject: boolean, filter: boolean]> = [
    ["a", true, true],
    ["a.b.c", true, true],
    ["A-b_c/d=e", true, true],
    ["ünï.cødé", true, true],
    ["*", false, true],
    [">", false, true],
    ["a.*", false, true],
    ["a.>", false, true],
    ["a.*.>", false, true],
    ["a.>.b", false, false],
    [">.a", false, false],
    ["a*", false, false],
    ["a.b>", false, false],
    ["", false, false],
    [".", false, false],
    ["a.", false, false],
    [".a", false, false],
    ["a..b", false, false],
    ["a b", false, false],
    ["a\tb", false, false],
    ["a\nb", false, false],
    ["a\u0000b", false, false],
    ["a\u00a0b", false, false],
    ["x".repeat(MAX_SUBJECT_BYTES), true, true],
    ["x".repeat(MAX_SUBJECT_BYTES + 1), false, false],
    ["é".repeat(MAX_SUBJECT_BYTES / 2 + 1), false, false],
    [42, false, false],
    [undefined, false, false],
  ];
  it.each(table)("%j: subject %s, filter %s", (text, subject, filter) => {
    expect(isValidSubject(text)).toBe(subject);
    expect(isValidFilter(text)).toBe(filter);
    expect(code(() => validateSubject(text))).toBe(subject ? undefined : "INVALID_SUBJECT");
    expect(code(() => validateFilter(text))).toBe(filter ? undefined : "INVALID_SUBJECT");
  });

  it("tells literal filters from wildcard ones", () => {
    expect(isLiteralSubject("a.b")).toBe(true);
    expect(isLiteralSubject("a.*")).toBe(false);
    expect(isLiteralSubject(">")).toBe(false);
  });
});
