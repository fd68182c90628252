/**
 * The simulator's command line:
 *   npm run sim -- --seeds N [--seed S] [--nodes 3|5] [--verbose] [--unsafe NAME]
 * Runs seeds S, S+1, ... S+N-1 (S defaults to a value derived from the wall
 * clock, printed so it can be replayed) and prints a summary. A failing seed
 * prints the exact command that replays it. `--unsafe NAME` runs a
 * deliberately broken core (one of the `unsafe` options of raft/core.ts) to
 * measure how many seeds catch it; then violations are the expected outcome. This file alone may read the wall
 * clock, and only to report wall time and pick a default start seed.
 */
import type { RaftConfig } from "../core.js";
import { runSim, type SimResult } from "./cluster.js";

type UnsafeName = keyof NonNullable<RaftConfig["unsafe"]>;
const UNSAFE_NAMES: UnsafeName[] = [
  "voteWithoutPersist",
  "commitEarlierTermsByCount",
  "voteWithoutLogCheck",
  "skipNoopOnElection",
  "leaderCountsSelfBeforePersist",
];

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function intFlag(name: string, fallback: number): number {
  const raw = flag(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${raw}`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const explicitSeed = flag("seed") !== undefined;
  const seeds = intFlag("seeds", 1);
  const start = intFlag("seed", Date.now() % 1_000_000_000);
  const nodesArg = intFlag("nodes", 0);
  if (nodesArg !== 0 && nodesArg !== 3 && nodesArg !== 5) {
    console.error("--nodes must be 3 or 5");
    process.exit(2);
  }
  const verbose = process.argv.includes("--verbose");
  const unsafeArg = flag("unsafe");
  if (unsafeArg !== undefined && !UNSAFE_NAMES.includes(unsafeArg as UnsafeName)) {
    console.error(`--unsafe must be one of ${UNSAFE_NAMES.join(", ")}`);
    process.exit(2);
  }
  const unsafe = unsafeArg ? { [unsafeArg]: true } : undefined;
  const kinds: Record<string, number> = {};
  const wallStart = performance.now();
  const totals = {
    simulatedMs: 0,
    elections: 0,
    entries: 0,
    acked: 0,
    reads: 0,
    snapshots: 0,
    membership: 0,
    transfers: 0,
  };
  const faults: Record<string, number> = {};
  const failed: SimResult[] = [];
  for (let k = 0; k < seeds; k++) {
    const seed = start + k;
    // Without --nodes, alternate 3 and 5 nodes by seed parity.
    const nodes = (nodesArg || (seed % 2 === 0 ? 3 : 5)) as 3 | 5;
    const r = await runSim({
      seed,
      nodes,
      verbose,
      log: (l) => console.log(l),
      ...(unsafe ? { unsafe } : {}),
    });
    totals.simulatedMs += r.simulatedMs;
    totals.elections += r.elections;
    totals.entries += r.entriesCommitted;
    totals.acked += r.proposalsAcked;
    totals.reads += r.readsChecked;
    totals.snapshots += r.snapshotsInstalled;
    totals.membership += r.membershipChanges;
    totals.transfers += r.transfers;
    for (const [f, c] of Object.entries(r.faults)) faults[f] = (faults[f] ?? 0) + c;
    if (r.violations.length > 0) {
      failed.push(r);
      const kind = violationKind(r.violations[0]!);
      kinds[kind] = (kinds[kind] ?? 0) + 1;
      console.log(`seed ${seed} (${nodes} nodes, ${r.swarm}) FAILED:`);
      for (const v of r.violations) console.log(`  ${v}`);
      const replayUnsafe = unsafeArg ? ` --unsafe ${unsafeArg}` : "";
      console.log(`  replay: npm run sim -- --seed ${seed} --nodes ${nodes}${replayUnsafe}`);
    } else if (explicitSeed && seeds === 1) {
      console.log(`seed ${seed} (${nodes} nodes) ok: ${JSON.stringify(r)}`);
    }
  }
  const wallS = (performance.now() - wallStart) / 1000;
  const faultTotal = Object.values(faults).reduce((a, b) => a + b, 0);
  console.log(`seeds:               ${seeds} (from ${start})`);
  console.log(`simulated time:      ${(totals.simulatedMs / 1000).toFixed(1)} s`);
  console.log(`elections:           ${totals.elections}`);
  console.log(`faults:              ${faultTotal} ${JSON.stringify(faults)}`);
  console.log(`entries committed:   ${totals.entries}`);
  console.log(`writes acked:        ${totals.acked}`);
  console.log(`reads checked:       ${totals.reads}`);
  console.log(`snapshots installed: ${totals.snapshots}`);
  console.log(`membership changes:  ${totals.membership}`);
  console.log(`transfers asked:     ${totals.transfers}`);
  console.log(`violations:          ${failed.length} seed(s) ${JSON.stringify(kinds)}`);
  console.log(`wall time:           ${wallS.toFixed(1)} s`);
  console.log(`elections / wall s:  ${(totals.elections / wallS).toFixed(0)}`);
  if (failed.length > 0 && !unsafeArg) process.exit(1);
}

/** The violation's kind: its text up to the first colon, without node names or numbers. */
function violationKind(v: string): string {
  return v
    .split(":")[0]!
    .replace(/\bn\d+\b/g, "")
    .trim();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
