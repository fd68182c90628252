/**
 * A full data directory is an operating condition, not a bug: the node stops serving
 * (every request answers DISK_FULL), closes its stores, and opens them again once the
 * file system has room, instead of exiting. Other failed writes (EIO, a failed fsync)
 * still stop the process: after them the disk's contents cannot be trusted, while a
 * write refused for lack of space left everything before it intact (LevelDB refuses
 * every later write until it is reopened, which is what the reopen is for).
 */
import { KvError } from "../proto/index.js";

const NO_SPACE_CODES: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT"]);
/** How LevelDB (through classic-level) and libuv word it in a message. */
const NO_SPACE_TEXT = /no space left on device|disk quota exceeded|\bENOSPC\b|\bEDQUOT\b/i;

/** `err` and the errors it was caused by, outermost first (at most 8: a cycle ends there). */
function* causes(err: unknown): Generator<{ code?: unknown; message?: unknown }> {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e !== undefined && e !== null; depth++) {
    yield e as { code?: unknown; message?: unknown };
    e = (e as { cause?: unknown }).cause;
  }
}

/** Whether `err`, or an error it was caused by, says the file system is full. */
export function isDiskFull(err: unknown): boolean {
  for (const { code, message } of causes(err)) {
    if (typeof code === "string" && NO_SPACE_CODES.has(code)) return true;
    if (typeof message === "string" && NO_SPACE_TEXT.test(message)) return true;
  }
  return false;
}

/** `err`'s message and its causes', outermost first: the full disk's own words are last. */
export function withCauses(err: unknown): string {
  return [...causes(err)].map((e) => (e instanceof Error ? e.message : String(e))).join(": ");
}

export function diskFullError(nodeId: string): KvError {
  return new KvError(
    "DISK_FULL",
    `node ${nodeId}: its data directory is full (no space left on device); it stopped serving and serves again once space is freed`,
  );
}

/**
 * Room a file system of `sizeBytes` must have before the node opens its stores again:
 * enough for LevelDB's recovery (it rewrites its log into a table) and some writes, so
 * freeing a few bytes does not make it fill up again at once. 5% of the file system, at
 * least 1 MiB, at most 64 MiB.
 */
export function resumeThresholdBytes(sizeBytes: number): number {
  return Math.min(64 * 1024 * 1024, Math.max(1024 * 1024, Math.floor(sizeBytes * 0.05)));
}
