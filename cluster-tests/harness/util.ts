/** Small helpers shared by the cluster tests. */
import { isKvError } from "../../client/index.js";

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);

/** The KvError code a promise rejects with ("no error" if it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return isKvError(err) ? err.code : `not a KvError: ${String(err)}`;
  }
  return "no error";
}

/** The next `n` items of an async iterator, failing after `timeoutMs`. */
export async function take<T>(it: AsyncIterator<T>, n: number, timeoutMs = 5000): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} items`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), left);
      }),
    ]);
    clearTimeout(timer);
    if (r === "timeout") throw new Error(`got ${out.length} of ${n} items before the timeout`);
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}
