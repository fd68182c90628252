/**
 * The KV simulator's CLI:
 *
 *   npm run sim:kv -- [--seeds N] [--from S] [--seed S] [--nodes 3|5] [--verbose]
 *                     [--unsafe skipDedupe|casAtProposer]
 *
 * Runs seeds S..S+N-1 (default 1..100), prints one line per failing seed with the
 * command that replays it, and a summary; exits 1 if any seed failed.
 */
import { type KvUnsafe, runKvSim } from "./cluster.js";

const USAGE = `usage: npm run sim:kv -- [--seeds N] [--from S] [--seed S] [--nodes 3|5] [--verbose] [--unsafe skipDedupe|casAtProposer]

  --seeds N    how many seeds to run (default 100)
  --from S     the first seed (default 1)
  --seed S     run only seed S (with --verbose: its whole trace)
  --nodes N    cluster size, 3 or 5 (default 3)
  --verbose    print every node's log lines and the fault schedule
  --unsafe X   run a deliberately broken variant (the checker must catch it)`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function intArg(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (v === undefined || !Number.isSafeInteger(n) || n < min)
    fail(`${name} needs an integer >= ${min} (got ${v})`);
  return n;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let seeds = 100;
  let from = 1;
  let nodes: 3 | 5 = 3;
  let verbose = false;
  let unsafe: KvUnsafe | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") {
      process.stdout.write(`${USAGE}\n`);
      return;
    } else if (a === "--seeds") seeds = intArg(a, args[++i], 1);
    else if (a === "--from") from = intArg(a, args[++i], 0);
    else if (a === "--seed") {
      from = intArg(a, args[++i], 0);
      seeds = 1;
    } else if (a === "--nodes") {
      const n = intArg(a, args[++i], 3);
      if (n !== 3 && n !== 5) fail("--nodes must be 3 or 5");
      nodes = n;
    } else if (a === "--verbose") verbose = true;
    else if (a === "--unsafe") {
      const name = args[++i];
      if (name !== "skipDedupe" && name !== "casAtProposer") fail(`unknown --unsafe ${name}`);
      unsafe = { [name]: true };
    } else fail(`unknown argument ${a}`);
  }
  let failed = 0;
  const started = Date.now();
  const faults: Record<string, number> = {};
  const totals = {
    writes: 0,
    acked: 0,
    unknown: 0,
    revisions: 0,
    watched: 0,
    snapshots: 0,
    inconclusive: 0,
  };
  for (let seed = from; seed < from + seeds; seed++) {
    const r = await runKvSim({ seed, nodes, verbose, ...(unsafe ? { unsafe } : {}) });
    const w = r.writes;
    totals.writes += w.written + w.rejected + w.not_applied + w.unknown;
    totals.acked += w.written;
    totals.unknown += w.unknown;
    totals.revisions += r.revisions;
    totals.watched += r.watchEntriesChecked;
    totals.snapshots += r.snapshotsInstalled;
    if (r.lincheckUnknown) totals.inconclusive++;
    for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v;
    if (verbose || seeds === 1) {
      process.stdout.write(`${JSON.stringify({ ...r, violations: r.violations.length })}\n`);
    }
    if (r.violations.length > 0) {
      failed++;
      process.stdout.write(
        `seed ${seed} FAILED (${r.swarm}):\n  ${r.violations.slice(0, 5).join("\n  ")}\n  replay: npm run sim:kv -- --seed ${seed} --nodes ${nodes}${unsafe ? ` --unsafe ${Object.keys(unsafe)[0]}` : ""} --verbose\n`,
      );
    }
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `${seeds - failed}/${seeds} seeds passed in ${secs} s: ${totals.writes} writes (${totals.acked} acked, ${totals.unknown} unknown), ${totals.revisions} revisions, ${totals.watched} watched entries, ${totals.snapshots} snapshots installed, ${totals.inconclusive} inconclusive lincheck\n`,
  );
  const shown = Object.entries(faults).sort((a, b) => b[1] - a[1]);
  process.stdout.write(`faults and retries: ${shown.map(([k, v]) => `${k}=${v}`).join(" ")}\n`);
  if (failed > 0) process.exitCode = 1;
}

await main();
