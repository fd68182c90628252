/**
 * Membership (ConfState) helpers and the ConfChange rules: one server at a
 * time (Raft dissertation §4.1), learners first, a node uses a configuration
 * as soon as its entry is in its log.
 */
import { assert } from "./assert.js";
import type { ConfState, NodeId } from "./storage.js";
import { type ConfChange, ConfChangeType } from "./types.js";

export function copyConf(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] };
}

export function isVoter(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id);
}

export function isMember(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id) || conf.learners.includes(id);
}

/** The membership after `type` on `nodeId`, or a reason why the change is invalid. */
export function changedConf(
  conf: ConfState,
  type: ConfChangeType,
  nodeId: NodeId,
): ConfState | string {
  switch (type) {
    case ConfChangeType.AddLearner:
      if (isMember(conf, nodeId)) return `${nodeId} is already a member`;
      return { voters: [...conf.voters], learners: [...conf.learners, nodeId] };
    case ConfChangeType.PromoteLearner:
      if (!conf.learners.includes(nodeId)) return `${nodeId} is not a learner`;
      return {
        voters: [...conf.voters, nodeId],
        learners: conf.learners.filter((l) => l !== nodeId),
      };
    case ConfChangeType.RemoveServer: {
      if (!isMember(conf, nodeId)) return `${nodeId} is not a member`;
      const voters = conf.voters.filter((v) => v !== nodeId);
      if (conf.voters.includes(nodeId) && voters.length === 0)
        return "cannot remove the last voter";
      return { voters, learners: conf.learners.filter((l) => l !== nodeId) };
    }
    default:
      return `unknown change type ${String(type)}`;
  }
}

export function makeConfChange(conf: ConfState, type: ConfChangeType, nodeId: NodeId): ConfChange {
  const next = changedConf(conf, type, nodeId);
  assert(typeof next !== "string", `invalid conf change: ${String(next)}`);
  return { type, nodeId, conf: next };
}

export function describeConf(conf: ConfState): string {
  const learners = conf.learners.length > 0 ? ` learners=[${conf.learners.join(" ")}]` : "";
  return `voters=[${conf.voters.join(" ")}]${learners}`;
}
