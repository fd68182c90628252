/**
 * Programmer errors in raft/ are assertions: they throw an AssertionError (proto/assert.ts) that no
 * code in raft/ catches, so the process crashes and restarts from disk
 * (TigerBeetle style). Operating errors are `KvError`s instead.
 */
import { AssertionError, assertIn } from "../proto/index.js";

/** See proto/assert.ts: the one AssertionError of every package, scoped "raft". */
export function assert(condition: unknown, message: string): asserts condition {
  assertIn("raft", condition, message);
}

export function unreachable(value: never): never {
  throw new AssertionError(`raft assertion failed: unreachable ${String(value)}`);
}

export function isIndex(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
