/**
 * Programmer errors are assertions, in every package: an `AssertionError` that no code
 * catches as an answer, so the node stops through its `onFatal` with a log line and
 * restarts from disk (TigerBeetle style; assertions stay on in production). Operating
 * errors (bad input, limits, corruption, lost leadership) are `KvError`s instead.
 * Lives in proto/ because every package, the browser client included, may import it.
 */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
  /** Stable, like a KvError's code, for logs and tests; never sent to a client. */
  readonly code = "ASSERTION_FAILED";
}

/** Throws an AssertionError naming `scope` ("raft", "log", ...) unless `condition`. */
export function assertIn(scope: string, condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(`${scope} assertion failed: ${message}`);
}

export function assert(condition: unknown, message: string): asserts condition {
  assertIn("streamkv", condition, message);
}

export function isAssertionError(err: unknown): err is AssertionError {
  return err instanceof AssertionError;
}
