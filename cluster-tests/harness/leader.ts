/**
 * Waiting for a leader, for any cluster the tests can ask `/v1/status` of: local
 * processes, processes in network namespaces, containers. One rule everywhere.
 */
import type { NodeStatus } from "../../proto/index.js";
import { waitFor } from "../../test_support/index.js";

export interface StatusSource {
  /** Node ids, by index. */
  readonly ids: readonly string[];
  /** `/v1/status` of node `i`; undefined when it does not answer. */
  status(i: number): Promise<NodeStatus | undefined>;
}

/**
 * Waits until every node in `among` names the same leader, one of them that says it
 * leads (and, with `notIndex`, is not that node); returns its index.
 */
export async function waitForLeaderAmong(
  source: StatusSource,
  among: readonly number[],
  timeoutMs: number,
  notIndex?: number,
): Promise<number> {
  let leader = -1;
  let seen = "";
  await waitFor(
    async () => {
      const all = await Promise.all(among.map((i) => source.status(i)));
      seen = all
        .map((s, k) =>
          s ? `${s.id}:${s.role}/t${s.term}/leader=${s.leader}` : `${source.ids[among[k]!]}:?`,
        )
        .join(" ");
      if (all.some((s) => s === undefined)) return false;
      const id = all[0]!.leader;
      const at = among.findIndex((i) => source.ids[i] === id);
      if (id === "" || at < 0 || all[at]!.role !== "leader") return false;
      if (!all.every((s) => s!.leader === id)) return false;
      if (among[at] === notIndex) return false;
      leader = among[at]!;
      return true;
    },
    timeoutMs,
    notIndex === undefined ? "one leader known to every live node" : "a new leader",
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last seen: ${seen})`);
  });
  return leader;
}
