/**
 * The KV simulator's swarm (TigerBeetle's swarm testing, as in raft/sim/): each seed
 * switches each fault family on with probability 0.6 and draws its rates, its Raft
 * timing and its workload mix, so some seeds are dense in exactly the faults a bug
 * needs and light in the ones that would hide it.
 */
import { chance, intBetween, type Prng, pick } from "../raft/index.js";

export const FAULT_FAMILIES = [
  "loss",
  "duplication",
  "reordering",
  "slow_links",
  "partitions",
  "leader_isolation",
  "crashes",
  "leader_crashes",
  "pauses",
  "slow_disks",
  "torn_writes",
  "clock_skew",
  "transfers",
  "forward_drops",
] as const;
export type FaultFamily = (typeof FAULT_FAMILIES)[number];

export interface Swarm {
  families: Set<FaultFamily>;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  appendEntriesMax: number;
  inflightCountMax: number;
  snapshotChunkBytes: number;
  /** Applied entries between compactions: small, so lagging nodes catch up by snapshot. */
  snapshotEntries: number;
  phaseMsMin: number;
  phaseMsMax: number;
  lossP: number;
  dupP: number;
  delayMsMax: number;
  slowLinkP: number;
  slowLinkMsMax: number;
  partitionEveryMs: number;
  isolateEveryMs: number;
  isolationMsMax: number;
  crashEveryMs: number;
  crashLeaderP: number;
  pauseEveryMs: number;
  slowDiskEveryMs: number;
  tornKeepP: number;
  /** Largest wall-clock error of a node (ms, either way). */
  skewMsMax: number;
  transferEveryMs: number;
  forwardDropP: number;
  clients: number;
  keys: number;
  /** Mean think time of a client between two operations (ms). */
  thinkMs: number;
  /** Share of operations that are linearizable reads. */
  readP: number;
  /** Share of writes that are CAS (create/update), the rest put/delete/purge. */
  casP: number;
}

export function pickSwarm(p: Prng): Swarm {
  const families = new Set<FaultFamily>();
  for (const f of FAULT_FAMILIES) if (chance(p, 0.6)) families.add(f);
  const electionTicks = pick(p, [6, 8, 10, 10, 12]);
  const appendEntriesMax = pick(p, [2, 8, 32, 64]);
  return {
    families,
    tickMs: pick(p, [10, 20, 20, 50]),
    electionTicks,
    heartbeatTicks: electionTicks >= 8 ? 2 : 1,
    appendEntriesMax,
    inflightCountMax: Math.max(pick(p, [2, 4, 16]), Math.ceil(8 / appendEntriesMax)),
    snapshotChunkBytes: pick(p, [256, 1024, 64 * 1024]),
    snapshotEntries: pick(p, [8, 16, 32, 64, 10_000]),
    phaseMsMin: intBetween(p, 100, 300),
    phaseMsMax: intBetween(p, 400, 1200),
    lossP: intBetween(p, 1, 20) / 100,
    dupP: intBetween(p, 1, 10) / 100,
    delayMsMax: intBetween(p, 2, 30),
    slowLinkP: intBetween(p, 2, 15) / 100,
    slowLinkMsMax: intBetween(p, 80, 600),
    partitionEveryMs: intBetween(p, 200, 1000),
    isolateEveryMs: intBetween(p, 200, 800),
    isolationMsMax: intBetween(p, 200, 1500),
    crashEveryMs: intBetween(p, 200, 1200),
    crashLeaderP: intBetween(p, 20, 80) / 100,
    pauseEveryMs: intBetween(p, 300, 1500),
    slowDiskEveryMs: intBetween(p, 300, 1500),
    tornKeepP: intBetween(p, 20, 100) / 100,
    skewMsMax: intBetween(p, 10, 3000),
    transferEveryMs: intBetween(p, 300, 1500),
    forwardDropP: intBetween(p, 1, 10) / 100,
    clients: intBetween(p, 2, 6),
    keys: intBetween(p, 1, 5),
    thinkMs: intBetween(p, 2, 20),
    readP: intBetween(p, 10, 40) / 100,
    casP: intBetween(p, 20, 70) / 100,
  };
}

export function describeSwarm(s: Swarm): string {
  const timing = `tick=${s.tickMs}ms election=${s.electionTicks}/${s.heartbeatTicks} batch=${s.appendEntriesMax} snapshot=${s.snapshotEntries}`;
  const load = `clients=${s.clients} keys=${s.keys}`;
  return `${timing} ${load} ${[...s.families].join(" ")}`;
}
