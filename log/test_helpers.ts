/** Shared helpers of the log's tests (not part of the public surface). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isKvError } from "../proto/index.js";
import type { StreamConfig } from "./types.js";

export function tempDir(prefix = "streamkv-log-"): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function config(name: string, overrides: Partial<StreamConfig> = {}): StreamConfig {
  return {
    name,
    maxMsgsPerSubject: -1,
    maxAgeMs: 0,
    maxBytes: -1,
    maxMsgs: -1,
    maxMsgSize: -1,
    discard: "old",
    ...overrides,
  };
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (b: Uint8Array | null | undefined): string | null =>
  b ? new TextDecoder().decode(b) : null;

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

export async function collect<T>(items: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
