/**
 * Programmer errors in kvapi/ are assertions: a plain Error that nothing in
 * kvapi/ catches, so the process crashes and restarts from disk. Operating
 * errors (bad input, failed compare-and-set, limits) are `KvError`s instead.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`kvapi assertion failed: ${message}`);
}
