/**
 * Programmer errors in log/ are assertions: a plain Error that no code in log/
 * catches, so the process crashes and restarts from disk. Operating errors
 * (bad input, limits, corruption) are `KvError`s instead.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`log assertion failed: ${message}`);
}
