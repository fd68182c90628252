/**
 * The listing client of `npm run bench -- scale`, run as a child process so the RSS it
 * reports is its own, not the bench's: it iterates `listKeys(filter)` of one bucket
 * through the SDK and prints one JSON line (count, time, RSS before listing, VmHWM).
 * It acts only when started with the marker argument (bench/suites_load.test.ts imports
 * every bench file, and importing this must not connect anywhere).
 */
import { readFileSync } from "node:fs";
import { connect } from "../client/index.js";

export const LIST_CHILD_MARKER = "--scale-list-child";

function statusKb(field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : Number.NaN;
}

async function listChild(url: string, bucket: string, filter: string, callTimeoutMs: number) {
  const nc = await connect({ servers: url, timeoutMs: callTimeoutMs });
  try {
    const kv = await nc.keyValue(bucket);
    const rssBeforeKb = statusKb("VmRSS");
    const started = performance.now();
    let count = 0;
    let firstKeyMs = Number.NaN;
    for await (const _ of kv.listKeys(filter, { timeoutMs: callTimeoutMs })) {
      if (count === 0) firstKeyMs = performance.now() - started;
      count++;
    }
    const ms = performance.now() - started;
    process.stdout.write(
      `${JSON.stringify({ count, ms, firstKeyMs, rssBeforeKb, hwmKb: statusKb("VmHWM") })}\n`,
    );
  } finally {
    await nc.close();
  }
}

const at = process.argv.indexOf(LIST_CHILD_MARKER);
if (at >= 0) {
  const [url, bucket, filter, timeout] = process.argv.slice(at + 1);
  listChild(url!, bucket!, filter!, Number(timeout)).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
