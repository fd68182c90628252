/**
 * Programmer errors in log/ are assertions: an AssertionError (proto/assert.ts) that no code in log/
 * catches, so the process crashes and restarts from disk. Operating errors
 * (bad input, limits, corruption) are `KvError`s instead.
 */
import { assertIn } from "../proto/index.js";

/** See proto/assert.ts: the one AssertionError of every package, scoped "log". */
export function assert(condition: unknown, message: string): asserts condition {
  assertIn("log", condition, message);
}
