/**
 * Programmer errors in kvapi/ are assertions: an AssertionError (proto/assert.ts) that nothing in
 * kvapi/ catches, so the process crashes and restarts from disk. Operating
 * errors (bad input, failed compare-and-set, limits) are `KvError`s instead.
 */
import { assertIn } from "../proto/index.js";

/** See proto/assert.ts: the one AssertionError of every package, scoped "kvapi". */
export function assert(condition: unknown, message: string): asserts condition {
  assertIn("kvapi", condition, message);
}
