/**
 * Property test: the KV state machine on a real log against a tiny in-memory
 * model of SEMANTICS.md, over random command sequences (history limits, CAS,
 * delete, purge, purge-deletes, value and byte limits, TTL with time advances,
 * bucket deletion and re-creation). Every result and the final state must agree.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StreamLog } from "../log/index.js";
import { KvStateMachine, normalizeBucketConfig } from "./index.js";
import { Driver, text } from "./test_support.js";
import type { BucketConfig, CommandOp, Operation } from "./types.js";

interface ModelEntry {
  seq: number;
  key: string;
  op: Operation;
  value: string;
  ts: number;
}

interface ModelBucket {
  config: BucketConfig;
  lastSeq: number;
  entries: ModelEntry[];
  /** Every entry ever appended, in revision order: what a watcher must see. */
  appended: ModelEntry[];
}

type Outcome = { ok: true; revision: number; count: number } | { ok: false; code: string };

const CONFIGS: BucketConfig[] = [
  normalizeBucketConfig({ bucket: "plain", history: 3, maxValueSize: 6, maxBytes: 24 }),
  normalizeBucketConfig({ bucket: "ttl", history: 2, ttlMs: 1_000 }),
];

class Model {
  clock = 0;
  buckets = new Map<string, ModelBucket>();

  private bytes(b: ModelBucket): number {
    return b.entries.reduce((n, e) => n + e.value.length, 0);
  }

  private ofKey(b: ModelBucket, key: string): ModelEntry[] {
    return b.entries.filter((e) => e.key === key);
  }

  private append(b: ModelBucket, key: string, op: Operation, value: string): number {
    const seq = ++b.lastSeq;
    b.entries.push({ seq, key, op, value, ts: this.clock });
    b.appended.push({ seq, key, op, value, ts: this.clock });
    const mine = this.ofKey(b, key);
    const drop = new Set(
      mine.slice(0, Math.max(0, mine.length - b.config.history)).map((e) => e.seq),
    );
    if (op === "PURGE") for (const e of mine) if (e.seq !== seq) drop.add(e.seq);
    b.entries = b.entries.filter((e) => !drop.has(e.seq));
    return seq;
  }

  apply(op: CommandOp, ts: number): Outcome {
    this.clock = Math.max(this.clock, ts);
    const fail = (code: string): Outcome => ({ ok: false, code });
    const done = (revision = 0, count = 0): Outcome => ({ ok: true, revision, count });
    switch (op.type) {
      case "createBucket": {
        const existing = this.buckets.get(op.config.bucket);
        if (existing) {
          return JSON.stringify(existing.config) === JSON.stringify(op.config)
            ? done()
            : fail("BUCKET_EXISTS");
        }
        this.buckets.set(op.config.bucket, {
          config: op.config,
          lastSeq: 0,
          entries: [],
          appended: [],
        });
        return done();
      }
      case "deleteBucket":
        return this.buckets.delete(op.bucket) ? done() : fail("BUCKET_NOT_FOUND");
      case "timeAdvance": {
        let count = 0;
        for (const name of [...this.buckets.keys()].sort()) {
          const b = this.buckets.get(name)!;
          if (b.config.ttlMs === 0) continue;
          const cutoff = this.clock - b.config.ttlMs;
          const expired = b.entries.filter((e) => e.ts <= cutoff);
          count += expired.length;
          b.entries = b.entries.filter((e) => e.ts > cutoff);
          const newest = new Map<string, ModelEntry>();
          for (const e of expired) newest.set(e.key, e);
          const gone = [...newest.values()]
            .filter((e) => e.op === "PUT" && this.ofKey(b, e.key).length === 0)
            .sort((x, y) => x.seq - y.seq);
          for (const e of gone) this.append(b, e.key, "PURGE", "");
        }
        return done(0, count);
      }
      case "purgeDeletes": {
        const b = this.buckets.get(op.bucket);
        if (!b) return fail("BUCKET_NOT_FOUND");
        let count = 0;
        const keys = [...new Set(b.entries.map((e) => e.key))];
        for (const key of keys) {
          const mine = this.ofKey(b, key);
          const last = mine[mine.length - 1]!;
          if (last.op === "PUT") continue;
          const old = op.olderThanMs < 0 || last.ts <= this.clock - op.olderThanMs;
          const drop = new Set((old ? mine : mine.slice(0, -1)).map((e) => e.seq));
          count += drop.size;
          b.entries = b.entries.filter((e) => !drop.has(e.seq));
        }
        return done(0, count);
      }
      case "updateBucket":
        throw new Error("not generated");
      default: {
        const b = this.buckets.get(op.bucket);
        if (!b) return fail("BUCKET_NOT_FOUND");
        const mine = this.ofKey(b, op.key);
        const latest = mine[mine.length - 1];
        const current = latest?.seq ?? 0;
        if (op.type === "delete" || op.type === "purge") {
          if (op.last !== undefined && op.last !== current) return fail("WRONG_LAST_REVISION");
          return done(this.append(b, op.key, op.type === "delete" ? "DEL" : "PURGE", ""));
        }
        const value = text(op.value);
        if (b.config.maxValueSize !== -1 && value.length > b.config.maxValueSize) {
          return fail("VALUE_TOO_LARGE");
        }
        if (op.type === "create" && latest?.op === "PUT") return fail("KEY_EXISTS");
        if (op.type === "update" && op.last !== current) return fail("WRONG_LAST_REVISION");
        if (b.config.maxBytes !== -1) {
          const dropped = mine.slice(0, Math.max(0, mine.length + 1 - b.config.history));
          const after =
            this.bytes(b) - dropped.reduce((n, e) => n + e.value.length, 0) + value.length;
          if (after > b.config.maxBytes) return fail("BUCKET_FULL");
        }
        return done(this.append(b, op.key, "PUT", value));
      }
    }
  }
}

const bucketArb = fc.constantFrom("plain", "ttl");
const keyArb = fc.constantFrom("k1", "k2", "k3", "a.b");
const valueArb = fc.string({ unit: fc.constantFrom("x", "y", "z"), maxLength: 8 });
/** "current" is resolved against the model when the step runs, so CAS often succeeds. */
const casArb = fc.oneof(fc.constant("current" as const), fc.nat({ max: 12 }));
const lastArb = fc.option(casArb, { nil: undefined });

const stepArb: fc.Arbitrary<{ op: CommandOp; elapsedMs: number }> = fc.record({
  elapsedMs: fc.oneof(fc.constant(0), fc.nat({ max: 400 }), fc.nat({ max: 1_500 })),
  op: fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        type: fc.constant("put" as const),
        bucket: bucketArb,
        key: keyArb,
        value: valueArb.map((v) => new TextEncoder().encode(v)),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        type: fc.constant("create" as const),
        bucket: bucketArb,
        key: keyArb,
        value: valueArb.map((v) => new TextEncoder().encode(v)),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        type: fc.constant("update" as const),
        bucket: bucketArb,
        key: keyArb,
        value: valueArb.map((v) => new TextEncoder().encode(v)),
        last: casArb,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        type: fc.constant("delete" as const),
        bucket: bucketArb,
        key: keyArb,
        last: lastArb,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.constant("purge" as const),
        bucket: bucketArb,
        key: keyArb,
        last: lastArb,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.constant("purgeDeletes" as const),
        bucket: bucketArb,
        olderThanMs: fc.integer({ min: -1, max: 1_500 }),
      }),
    },
    { weight: 3, arbitrary: fc.constant({ type: "timeAdvance" as const }) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(...CONFIGS)
        .map((config) => ({ type: "createBucket" as const, config })),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.constant("deleteBucket" as const),
        bucket: fc.constant("ttl"),
      }),
    },
  ) as unknown as fc.Arbitrary<CommandOp>,
});

/** Drops an absent `last` and resolves "current" to the key's latest revision in the model. */
function resolve(op: CommandOp, model: Model): CommandOp {
  if (op.type !== "update" && op.type !== "delete" && op.type !== "purge") return op;
  const last = op.last as number | "current" | undefined;
  if (last === undefined) return { type: op.type, bucket: op.bucket, key: op.key } as CommandOp;
  if (last !== "current") return op;
  const entries = model.buckets.get(op.bucket)?.entries.filter((e) => e.key === op.key) ?? [];
  return { ...op, last: entries[entries.length - 1]?.seq ?? 0 };
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "streamkv-model-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("KV state machine vs model", () => {
  it("agrees on every result and on the final state", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 20, maxLength: 80, size: "max" }),
        async (steps) => {
          const dir = join(root, `run-${run++}`);
          const log = await StreamLog.open(dir);
          try {
            const kv = await KvStateMachine.open(log);
            const d = new Driver(kv);
            const model = new Model();
            for (const config of CONFIGS) {
              model.apply({ type: "createBucket", config }, d.nowMs);
              await d.ok({ type: "createBucket", config });
            }
            for (const step of steps) {
              d.nowMs += step.elapsedMs;
              const op = resolve(step.op, model);
              const want = model.apply(op, d.nowMs);
              const r = await d.run(op);
              const got: Outcome = r.ok
                ? { ok: true, revision: r.revision, count: r.count }
                : { ok: false, code: r.error.code };
              expect({ op: op.type, got }).toEqual({ op: op.type, got: want });
            }
            expect(kv.listBuckets().map((s) => s.bucket)).toEqual([...model.buckets.keys()].sort());
            for (const [name, b] of model.buckets) {
              const history = (await kv.history(name, ">")).map((e) => ({
                seq: e.revision,
                key: e.key,
                op: e.operation,
                value: text(e.value),
                ts: e.created.getTime(),
              }));
              expect(history).toEqual(b.entries);
              const keys = [...new Set(b.entries.map((e) => e.key))]
                .filter((k) => b.entries.filter((e) => e.key === k).pop()!.op === "PUT")
                .sort();
              expect(await kv.keys(name)).toEqual(keys);
              const status = kv.status(name);
              expect([status.values, status.bytes]).toEqual([
                b.entries.length,
                b.entries.reduce((n, e) => n + e.value.length, 0),
              ]);
            }
            kv.close();
          } finally {
            await log.close();
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);
});
