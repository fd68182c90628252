/**
 * Programmer errors in raft/ are assertions: they throw a plain Error that no
 * code in raft/ catches, so the process crashes and restarts from disk
 * (TigerBeetle style). Operating errors are `KvError`s instead.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`raft assertion failed: ${message}`);
}

export function unreachable(value: never): never {
  throw new Error(`raft assertion failed: unreachable ${String(value)}`);
}

export function isIndex(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
