/**
 * Perf sanity, not a benchmark: times the checker on seeded histories and
 * prints the figures quoted in cluster-tests/README.md. Not a test: timings
 * depend on the machine; the verdicts are asserted in large_history.test.ts.
 *
 *   npx tsx cluster-tests/lincheck/perf_sanity.ts
 */
import { appendLogModel } from "./append_log_model.js";
import { checkLinearizable } from "./checker.js";
import { type KvInput, type KvOutput, kvModel, kvPerKeyModel } from "./kv_model.js";
import { checkKvRevisions } from "./kv_revisions.js";
import { appendLogWorkload, generateHistory, kvWorkload } from "./random_history.js";
import type { Model, Op } from "./types.js";

const RUNS = 5;

function timed<S, I, O>(label: string, model: Model<S, I, O>, history: Op<I, O>[]): void {
  const ms: number[] = [];
  let line = "";
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = checkLinearizable(model, history);
    ms.push(performance.now() - t0);
    line = `${r.result}, ${r.stats.ops} ops, ${r.stats.partitions} partitions, ${r.stats.steps} steps`;
  }
  ms.sort((a, b) => a - b);
  const median = ms[Math.floor(RUNS / 2)].toFixed(1);
  console.log(`${label}: ${line}; median of ${RUNS} ${median} ms (max ${ms[RUNS - 1].toFixed(1)})`);
}

/** The last read that saw a value now returns the key's first value instead. */
function staleLateRead(history: Op<KvInput, KvOutput>[]): Op<KvInput, KvOutput>[] {
  const reads = history.flatMap((op, i) => (op.output?.kind === "entry" ? [i] : []));
  const i = reads[reads.length - 1];
  const first = history.find(
    (op) =>
      op.input.key === history[i].input.key && "value" in op.input && op.output?.kind === "written",
  );
  if (first === undefined || !("value" in first.input) || first.output?.kind !== "written") {
    throw new Error("no write to corrupt from");
  }
  const bad = [...history];
  bad[i] = {
    ...history[i],
    output: { kind: "entry", value: first.input.value, revision: first.output.revision },
  };
  return bad;
}

for (const unknownRate of [0.02, 0.2]) {
  const kv = generateHistory(kvWorkload({ keys: 10 }), {
    seed: 42,
    clients: 5,
    ops: 2000,
    unknownRate,
  });
  const tag = `2000 ops, 10 keys, 5 clients, ${unknownRate * 100}% writes unknown`;
  timed(`kv per-key, ${tag}`, kvPerKeyModel(), kv);
  timed(`kv exact,   ${tag}`, kvModel(), kv);
  timed(`kv per-key, ${tag}, one stale read`, kvPerKeyModel(), staleLateRead(kv));
  const t0 = performance.now();
  const revisions = checkKvRevisions(kv);
  console.log(
    `kv revision checks, ${tag}: ${revisions.result}, ${(performance.now() - t0).toFixed(1)} ms`,
  );
  const log = generateHistory(appendLogWorkload(), { seed: 7, clients: 5, ops: 2000, unknownRate });
  timed(
    `append-log, 2000 ops, 5 clients, ${unknownRate * 100}% appends unknown`,
    appendLogModel(),
    log,
  );
}

// The same heavy case with each lost response recorded as settled (effectDeadline).
const settled = generateHistory(kvWorkload({ keys: 10 }), {
  seed: 42,
  clients: 5,
  ops: 2000,
  unknownRate: 0.2,
  settleUnknown: true,
});
const settledTag = "2000 ops, 10 keys, 5 clients, 20% writes unknown but settled";
timed(`kv per-key, ${settledTag}`, kvPerKeyModel(), settled);
timed(`kv exact,   ${settledTag}`, kvModel(), settled);
timed(`kv per-key, ${settledTag}, one stale read`, kvPerKeyModel(), staleLateRead(settled));
