/**
 * Determinism: replicas fed the same committed entries end byte-identical
 * (the log's digest covers every stored record: messages, streams, meta: the
 * applied index, request window and bucket configs), however the entries were
 * grouped into writes, and replaying entries after a restart changes nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StreamLog } from "../log/index.js";
import { type ApplyResult, encodeCommand, KvStateMachine, normalizeBucketConfig } from "./index.js";
import { bytes } from "./test_support.js";
import type { Command, CommandOp } from "./types.js";

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "streamkv-det-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const keyArb = fc.constantFrom("a", "b", "c.d", "c.e");
const opArb: fc.Arbitrary<CommandOp> = fc.oneof(
  fc.record({
    type: fc.constant("put" as const),
    bucket: fc.constantFrom("x", "y"),
    key: keyArb,
    value: fc.uint8Array({ maxLength: 16 }),
  }),
  fc.record({
    type: fc.constant("create" as const),
    bucket: fc.constant("x"),
    key: keyArb,
    value: fc.uint8Array({ maxLength: 4 }),
  }),
  fc.record({
    type: fc.constant("update" as const),
    bucket: fc.constant("x"),
    key: keyArb,
    value: fc.uint8Array({ maxLength: 4 }),
    last: fc.nat({ max: 20 }),
  }),
  fc.record({ type: fc.constant("delete" as const), bucket: fc.constant("x"), key: keyArb }),
  fc.record({ type: fc.constant("purge" as const), bucket: fc.constant("y"), key: keyArb }),
  fc.record({
    type: fc.constant("purgeDeletes" as const),
    bucket: fc.constant("x"),
    olderThanMs: fc.integer({ min: -1, max: 2_000 }),
  }),
  fc.constant({ type: "timeAdvance" as const }),
);

function script(ops: Array<{ op: CommandOp; elapsedMs: number; retry: boolean }>): Uint8Array[] {
  let nowMs = 1_000_000;
  const out: Uint8Array[] = [
    encodeCommand({
      type: "createBucket",
      config: normalizeBucketConfig({ bucket: "x", history: 4, ttlMs: 3_000, maxBytes: 64 }),
      timestampMs: nowMs,
    }),
    encodeCommand({
      type: "createBucket",
      config: normalizeBucketConfig({ bucket: "y", history: 2 }),
      timestampMs: nowMs,
    }),
  ];
  ops.forEach(({ op, elapsedMs, retry }, i) => {
    nowMs += elapsedMs;
    const command: Command = { ...op, timestampMs: nowMs, request: { clientId: "c", sequence: i } };
    out.push(encodeCommand(command));
    // A client retry of the same request, committed again.
    if (retry) out.push(encodeCommand(command));
  });
  return out;
}

async function replica(
  name: string,
  entries: Uint8Array[],
  grouping: "one by one" | "pipelined" | "batched",
): Promise<{
  digest: string;
  log: StreamLog;
  kv: KvStateMachine;
  dir: string;
  results: ApplyResult[];
}> {
  const dir = join(root, name);
  const log = await StreamLog.open(dir);
  const kv = await KvStateMachine.open(log, { dedupeWindow: 16 });
  let results: ApplyResult[] = [];
  if (grouping === "pipelined") {
    results = await Promise.all(entries.map((data, i) => kv.apply(i + 1, data, { sync: false })));
  } else if (grouping === "batched") {
    // Runs of 1..9 entries per applyBatch (as Raft rounds hand them over), pipelined too.
    const calls: Promise<ApplyResult[]>[] = [];
    const decided: ApplyResult[] = [];
    for (let i = 0; i < entries.length; ) {
      const n = 1 + ((i * 7) % 9);
      const run = entries.slice(i, i + n).map((data, j) => ({ index: i + j + 1, data }));
      calls.push(kv.applyBatch(run, { sync: false, onDecided: (r) => decided.push(r) }));
      i += n;
    }
    results = (await Promise.all(calls)).flat();
    // Each result was heard before its write, in index order, and is the one returned.
    expect(decided).toEqual(results);
  } else {
    for (let i = 0; i < entries.length; i++)
      results.push(await kv.apply(i + 1, entries[i]!, { sync: i % 7 === 0 }));
  }
  return { digest: await log.digest(), log, kv, dir, results };
}

describe("determinism", () => {
  it("two replicas fed the same entries end with the same digest, grouped differently", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ op: opArb, elapsedMs: fc.nat({ max: 1_500 }), retry: fc.boolean() }), {
          minLength: 10,
          maxLength: 60,
          size: "max",
        }),
        async (ops) => {
          const entries = script(ops);
          const a = await replica(`a${run}`, entries, "one by one");
          const b = await replica(`b${run}`, entries, "pipelined");
          const c = await replica(`c${run}`, entries, "batched");
          run++;
          try {
            expect(a.digest).toBe(b.digest);
            expect(c.digest).toBe(a.digest);
            expect(c.results).toEqual(a.results);
            expect(b.results).toEqual(a.results);
            for (const r of [a, b, c])
              expect([r.dir, r.kv.appliedIndex()]).toEqual([r.dir, entries.length]);
          } finally {
            for (const r of [a, b, c]) {
              r.kv.close();
              await r.log.close();
              rmSync(r.dir, { recursive: true, force: true });
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);

  it("after a restart, replaying applied entries changes nothing and the rest continues", async () => {
    const entries = script(
      Array.from({ length: 40 }, (_, i) => ({
        op: { type: "put", bucket: "x", key: `k${i % 5}`, value: bytes(`v${i}`) } as CommandOp,
        elapsedMs: 100,
        retry: i % 4 === 0,
      })),
    );
    const whole = await replica("whole", entries, "one by one");
    const dir = join(root, "crash");
    let log = await StreamLog.open(dir);
    let kv = await KvStateMachine.open(log, { dedupeWindow: 16 });
    for (let i = 0; i < 30; i++) await kv.apply(i + 1, entries[i]!);
    kv.close();
    await log.close();
    log = await StreamLog.open(dir);
    kv = await KvStateMachine.open(log, { dedupeWindow: 16 });
    expect(kv.appliedIndex()).toBe(30);
    // Raft may hand over entries the state machine already has (e.g. from a snapshot point).
    for (let i = 20; i < entries.length; i++) {
      const r = await kv.apply(i + 1, entries[i]!);
      if (i < 30) expect(r.disposition).toBe("replay");
      else expect(["applied", "duplicate"]).toContain(r.disposition);
    }
    expect(await log.digest()).toBe(whole.digest);
    kv.close();
    await log.close();
    whole.kv.close();
    await whole.log.close();
  });
});
