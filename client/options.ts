/**
 * Checks of the SDK's numeric and boolean options. Without them JavaScript coerces
 * silently: `timeoutMs: "5000"` made `Date.now() + "5000"` a string, `stale: "false"`
 * read as true. A value of the wrong type or out of range fails the call at once, with
 * the option's name and the value given.
 */
import { KvError, shownValue } from "../proto/index.js";

/** The longest timeout setTimeout honours (about 24.8 days); beyond it fires at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** `value` (ms) if it is undefined or an integer 1..MAX_TIMEOUT_MS; else INVALID_ARGUMENT. */
export function checkTimeoutMs(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== "number" ||
    !Number.isSafeInteger(value) ||
    value < 1 ||
    value > MAX_TIMEOUT_MS
  ) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `${what} must be an integer number of milliseconds 1..${MAX_TIMEOUT_MS}, got ${shownValue(value)}`,
    );
  }
  return value;
}

/** `value` if it is undefined or a boolean (undefined = false); else `code`. */
export function checkFlag(
  value: unknown,
  what: string,
  code: "INVALID_ARGUMENT" | "INVALID_OPTION" = "INVALID_ARGUMENT",
): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new KvError(code, `${what} must be true or false, got ${shownValue(value)}`);
  }
  return value;
}

/** `opts.stale` of a read, checked. */
export function staleOf(opts: { stale?: unknown }): boolean {
  return checkFlag(opts.stale, "stale");
}
