/**
 * Helpers for kvapi's tests and benchmark: a stand-in for Raft that numbers
 * commands and stamps them with a virtual clock. Not part of the public
 * surface; it reads no clock and touches no files (the tests open the logs).
 */
import { isKvError } from "../proto/index.js";
import { encodeCommand } from "./commands.js";
import type { KvStateMachine } from "./index.js";
import { normalizeBucketConfig } from "./names.js";
import type {
  ApplyResult,
  BucketConfigInput,
  CommandOp,
  Entry,
  RequestId,
  Watcher,
} from "./types.js";

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Drives a state machine like Raft would: consecutive indexes, the leader's time. */
export class Driver {
  index = 0;
  nowMs = 1_700_000_000_000;

  constructor(
    readonly kv: KvStateMachine,
    readonly options: { sync?: boolean } = { sync: false },
  ) {}

  encode(op: CommandOp, request?: RequestId): Uint8Array {
    return encodeCommand({ ...op, timestampMs: this.nowMs, ...(request ? { request } : {}) });
  }

  run(op: CommandOp, request?: RequestId): Promise<ApplyResult> {
    return this.kv.apply(++this.index, this.encode(op, request), this.options);
  }

  /** Runs and returns the new revision; throws the command's KvError if it failed. */
  async ok(op: CommandOp, request?: RequestId): Promise<number> {
    const r = await this.run(op, request);
    if (!r.ok) throw r.error;
    return r.revision;
  }

  /** The error code of a command ("none" if it succeeded). */
  async code(op: CommandOp): Promise<string> {
    const r = await this.run(op);
    return r.ok ? "none" : r.error.code;
  }

  createBucket(input: BucketConfigInput): Promise<number> {
    return this.ok({ type: "createBucket", config: normalizeBucketConfig(input) });
  }

  put(bucket: string, key: string, value: string | Uint8Array): Promise<number> {
    const v = typeof value === "string" ? bytes(value) : value;
    return this.ok({ type: "put", bucket, key, value: v });
  }

  del(bucket: string, key: string, last?: number): Promise<number> {
    return this.ok(
      last === undefined ? { type: "delete", bucket, key } : { type: "delete", bucket, key, last },
    );
  }

  purge(bucket: string, key: string, last?: number): Promise<number> {
    return this.ok(
      last === undefined ? { type: "purge", bucket, key } : { type: "purge", bucket, key, last },
    );
  }

  /** Moves the leader's clock forward and applies a time-advance entry. */
  async advance(ms: number): Promise<ApplyResult> {
    this.nowMs += ms;
    return this.run({ type: "timeAdvance" });
  }
}

/** The code of the KvError `fn` throws or rejects with ("none" if it succeeds). */
export async function errorCode(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return "none";
  } catch (err) {
    if (isKvError(err)) return err.code;
    throw err;
  }
}

/** A compact text form of an entry (or the init-done null) for assertions. */
export function show(e: Entry | null): string {
  if (e === null) return "null";
  const v = e.operation === "PUT" ? `=${text(e.value)}` : "";
  return `${e.revision}:${e.key}:${e.operation}${v}`;
}

/**
 * Takes `n` items from a watcher (fewer if it ends). It waits for the items, not
 * for time; a watcher that never delivers fails the test by vitest's timeout
 * (this file stays free of timers, like the rest of kvapi/).
 */
export async function take(w: Watcher, n: number): Promise<Array<Entry | null>> {
  const out: Array<Entry | null> = [];
  while (out.length < n) {
    const r = await w.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}
