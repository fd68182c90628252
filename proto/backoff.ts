/**
 * Reconnect delays, one rule for the client SDK and the peer transport: exponential
 * from `baseMs`, capped at `maxMs`, then jittered down to between half and all of it
 * so that nodes or clients that lost the same server do not come back in step.
 * Lives in proto/ because the client may import only proto; browser-safe.
 */

/** The delay before reconnect attempt `attempt` (1 = the first retry). */
export function backoffDelayMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const delayMs = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 16));
  return Math.round(delayMs * (0.5 + random() * 0.5));
}
