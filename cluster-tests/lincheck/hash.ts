/**
 * Small deterministic hashes for memoization keys and log digests. Nothing
 * here is cryptographic: a collision can only make the checker prune a branch
 * it should have explored (a false "illegal", never a false "ok"), and two
 * independent 32-bit hashes make that vanishingly rare for the history sizes
 * we check.
 */

/** lowbias32 (Chris Wellons): a good 32-bit integer mixer. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of a string's UTF-16 code units, parameterized by a seed. */
export function hashString32(text: string, seed: number): number {
  let h = mix32(seed ^ 0x9e3779b9);
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    h ^= h >>> 13;
  }
  return mix32(h ^ text.length);
}

/** Two independent 32-bit hashes of `text`, as an 8+8 hex-digit string. */
export function hash64Hex(text: string): string {
  return hex32(hashString32(text, 0x243f6a88)) + hex32(hashString32(text, 0x85a308d3));
}

export function hex32(x: number): string {
  return (x >>> 0).toString(16).padStart(8, "0");
}
