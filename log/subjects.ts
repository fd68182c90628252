/**
 * NATS subject rules. A subject is dot-separated non-empty tokens; a filter may
 * use `*` as a whole token (exactly one token) and `>` as the last token (one
 * or more trailing tokens; `a.>` does not match `a`). We are stricter than NATS
 * on purpose: `*` and `>` inside a longer token (`a*`) are rejected rather than
 * treated as literal characters, and so are whitespace and control characters,
 * so a subject never means one thing to the log and another to a reader.
 */
import { KvError } from "../proto/index.js";

/** Longest subject (or filter) in UTF-8 bytes; a KV key is at most 1024. */
export const MAX_SUBJECT_BYTES = 4096;

const encoder = new TextEncoder();

/** Whitespace, C0/C1 controls and DEL: invisible or ambiguous on the wire. */
function hasForbiddenChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || (c >= 0x7f && c <= 0xa0)) return true;
  }
  return /\s/u.test(text);
}

function problem(text: unknown, allowWildcards: boolean): string | undefined {
  if (typeof text !== "string") return "it is not a string";
  if (text.length === 0) return "it is empty";
  if (text.length > MAX_SUBJECT_BYTES || encoder.encode(text).length > MAX_SUBJECT_BYTES) {
    return `it is longer than ${MAX_SUBJECT_BYTES} bytes`;
  }
  if (hasForbiddenChar(text)) return "it contains whitespace or a control character";
  const tokens = text.split(".");
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.length === 0) return "it has an empty token";
    if (token === "*" || token === ">") {
      if (!allowWildcards) return `wildcard "${token}" is not allowed here`;
      if (token === ">" && i !== tokens.length - 1) return `">" must be the last token`;
      continue;
    }
    if (token.includes("*") || token.includes(">")) {
      return `"*" and ">" must be whole tokens (got "${token}")`;
    }
  }
  return undefined;
}

/** True for a valid literal subject (no wildcards). */
export function isValidSubject(subject: unknown): subject is string {
  return problem(subject, false) === undefined;
}

/** True for a valid filter (literal or with wildcards). */
export function isValidFilter(filter: unknown): filter is string {
  return problem(filter, true) === undefined;
}

/** Throws `KvError("INVALID_SUBJECT")` unless `subject` is a valid literal subject. */
export function validateSubject(subject: unknown): asserts subject is string {
  const why = problem(subject, false);
  if (why !== undefined) {
    throw new KvError("INVALID_SUBJECT", `invalid subject ${JSON.stringify(subject)}: ${why}`);
  }
}

/** Throws `KvError("INVALID_SUBJECT")` unless `filter` is a valid filter. */
export function validateFilter(filter: unknown): asserts filter is string {
  const why = problem(filter, true);
  if (why !== undefined) {
    throw new KvError(
      "INVALID_SUBJECT",
      `invalid subject filter ${JSON.stringify(filter)}: ${why}`,
    );
  }
}

/** True if a valid filter has no wildcard token (it names one subject). */
export function isLiteralSubject(filter: string): boolean {
  return !filter.includes("*") && !filter.includes(">");
}

/**
 * Compiles a valid filter into a predicate on valid literal subjects; use it
 * when one filter is matched against many subjects.
 */
export function compileFilter(filter: string): (subject: string) => boolean {
  if (filter === ">") return () => true;
  if (isLiteralSubject(filter)) return (subject) => subject === filter;
  const tokens = filter.split(".");
  const tail = tokens[tokens.length - 1] === ">";
  const fixed = tail ? tokens.slice(0, -1) : tokens;
  return (subject) => {
    const parts = subject.split(".");
    if (tail ? parts.length <= fixed.length : parts.length !== fixed.length) return false;
    for (let i = 0; i < fixed.length; i++) {
      const want = fixed[i]!;
      if (want !== "*" && want !== parts[i]) return false;
    }
    return true;
  };
}

/**
 * What every subject matching a valid wildcard `filter` starts with: its tokens before
 * the first wildcard, each followed by "." ("a.b.>" -> "a.b.", "a.*.c" -> "a.", ">" ->
 * ""). Matching subjects are therefore contiguous in sorted order, from this prefix on.
 */
export function literalPrefix(filter: string): string {
  const tokens = filter.split(".");
  let prefix = "";
  for (const t of tokens) {
    if (t === "*" || t === ">") break;
    prefix += `${t}.`;
  }
  return prefix;
}

/** True if the literal `subject` matches `filter` (both assumed valid). */
export function matchSubject(filter: string, subject: string): boolean {
  return compileFilter(filter)(subject);
}
