/**
 * Majority arithmetic, kept pure so it can be property-tested on its own
 * (etcd-io/raft quorum/majority.go).
 */
import type { NodeId } from "./storage.js";

/** Smallest number of voters that forms a majority. */
export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest index that a majority of `voters` has matched: sort the match
 * indexes descending and take the quorum-th. An empty voter set commits
 * nothing (returns 0): a cluster without voters cannot decide anything.
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[quorumSize(voters.length) - 1]!;
}

export type VoteResult = "won" | "lost" | "pending";

/** Outcome of an election given the answers received so far (absent = not yet answered). */
export function voteResult(
  voters: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  if (voters.length === 0) return "won";
  const need = quorumSize(voters.length);
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === undefined) missing++;
  }
  if (granted >= need) return "won";
  if (granted + missing >= need) return "pending";
  return "lost";
}

/** True when the voters for which `active` holds form a majority. */
export function hasQuorum(voters: readonly NodeId[], active: (id: NodeId) => boolean): boolean {
  let count = 0;
  for (const id of voters) if (active(id)) count++;
  return count >= quorumSize(voters.length);
}
