/**
 * Child process of crash.test.ts: appends batches to two streams with
 * `sync: true`, each batch carrying an "applied" meta record, and prints
 * `ok <n>` once batch n's commit resolved (stdout to a pipe is synchronous on
 * Linux, so a printed ack survives the SIGKILL that ends this process). Up to
 * three commits are in flight, so group commit is exercised too.
 *
 *   node --import tsx log/crash_child.ts <dir>
 */
import { StreamLog } from "./stream_log.js";

/** Appends per stream in batch n; the parent computes the same. */
export function batchSize(n: number): number {
  return 1 + ((Math.imul(n, 2654435761) >>> 0) % 6);
}

export function payloadFor(seq: number): Uint8Array {
  return new TextEncoder().encode(`payload-${seq}-${"x".repeat(seq % 50)}`);
}

export const HISTORY = 2;
export const plainSubject = (seq: number): string => `p.${seq % 3}`;
export const histSubject = (seq: number): string => `h.${seq % 5}`;

const MAX_BATCHES = 1_000_000;

async function main(dir: string): Promise<void> {
  const log = await StreamLog.open(dir);
  const base = { maxAgeMs: 0, maxBytes: -1, maxMsgs: -1, maxMsgSize: -1, discard: "old" } as const;
  await log.createStream({ name: "plain", maxMsgsPerSubject: -1, ...base }, { sync: true });
  await log.createStream({ name: "hist", maxMsgsPerSubject: HISTORY, ...base }, { sync: true });
  process.stdout.write("ready\n");
  const inFlight: Promise<void>[] = [];
  let seq = 0;
  for (let n = 1; n <= MAX_BATCHES; n++) {
    const batch = log.batch();
    for (let i = 0; i < batchSize(n); i++) {
      seq++;
      const at = { payload: payloadFor(seq), timestampMs: seq };
      batch.append("plain", { subject: plainSubject(seq), ...at });
      batch.append("hist", { subject: histSubject(seq), ...at });
    }
    batch.putMeta("applied", new TextEncoder().encode(String(n)));
    inFlight.push(batch.commit({ sync: true }).then(() => void process.stdout.write(`ok ${n}\n`)));
    if (inFlight.length >= 3) await inFlight.shift();
  }
  await Promise.all(inFlight);
  await log.close();
}

if (process.argv[1]?.endsWith("crash_child.ts")) {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: crash_child.ts <dir>");
  await main(dir);
}
