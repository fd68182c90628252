/**
 * The KV simulator's checks of a finished run, outside the code under test. Given the
 * final stream of the bucket (identical on every replica, checked first), every write
 * request with what its client learned, every client operation, and what each watch
 * chain delivered:
 *
 * - replicas: every member holds the same stream, message for message;
 * - acknowledged writes survive: an acked write is the entry at its revision, with its
 *   key, operation and value, unless a later purge of that key removed it;
 * - truthful answers: a write refused before it was proposed, or rejected by its CAS,
 *   is nowhere in the stream; no entry exists that no request asked for;
 * - at most once: a request id (its unique value) appears at most once, and a key has
 *   no more DEL/PURGE markers than delete/purge requests were made;
 * - linearizable per key (kvPerKeyModel, after patching unknown writes with their
 *   committed outcome) and consistent revisions across keys (checkKvRevisions);
 * - watches: each chain delivers increasing revisions, each entry as the stream holds
 *   it, and no entry the stream still holds between its first and last delivery.
 */

import type { KvInput, KvOutput, Op } from "../cluster-tests/lincheck/index.js";
import {
  type CommittedKvEntry,
  checkKvRevisions,
  checkLinearizable,
  kvPerKeyModel,
  patchKvHistory,
} from "../cluster-tests/lincheck/index.js";
import type { WriteRecord } from "./clients.js";
import type { WatchChain } from "./watchers.js";

/** One message of the bucket's stream, as every replica must hold it. */
export interface StreamEntry {
  revision: number;
  key: string;
  operation: "PUT" | "DEL" | "PURGE";
  value: string;
  timestampMs: number;
}

export interface KvCheckInput {
  stream: StreamEntry[];
  writes: WriteRecord[];
  history: Op<KvInput, KvOutput>[];
  chains: WatchChain[];
  /** Search budget of the linearizability checker (ms). */
  lincheckMs?: number;
}

export interface KvCheckResult {
  violations: string[];
  /** The linearizability search ran out of budget (neither a pass nor a violation). */
  lincheckUnknown: boolean;
  watchEntriesChecked: number;
}

const SHOWN_MAX = 5;

function opOf(w: WriteRecord): StreamEntry["operation"] {
  return w.op === "delete" ? "DEL" : w.op === "purge" ? "PURGE" : "PUT";
}

export function checkKvRun(input: KvCheckInput): KvCheckResult {
  const violations: string[] = [];
  const fail = (v: string) => {
    if (violations.length < 50) violations.push(v);
  };
  const byRevision = new Map(input.stream.map((e) => [e.revision, e]));
  const byKey = new Map<string, StreamEntry[]>();
  for (const e of input.stream) {
    let list = byKey.get(e.key);
    if (!list) byKey.set(e.key, (list = []));
    list.push(e);
  }

  // Acknowledged writes survive, at their revision.
  for (const w of input.writes) {
    if (w.outcome !== "written") continue;
    const r = w.revision!;
    const e = byRevision.get(r);
    if (e !== undefined) {
      if (e.key !== w.key || e.operation !== opOf(w) || (w.value !== null && e.value !== w.value)) {
        fail(
          `ack of ${w.requestId} (${w.op} ${w.key}=${w.value}) at revision ${r}, but the stream holds ${e.operation} ${e.key}=${e.value} there`,
        );
      }
      continue;
    }
    const oldest = byKey.get(w.key)?.[0];
    const purgedAfter = oldest !== undefined && oldest.operation === "PURGE" && oldest.revision > r;
    if (!purgedAfter) {
      fail(
        `acknowledged write ${w.requestId} (${w.op} ${w.key}) at revision ${r} is not in the final stream`,
      );
    }
  }

  // Truthful answers and at-most-once.
  const requests = new Map(input.writes.filter((w) => w.value !== null).map((w) => [w.value!, w]));
  const seenValues = new Map<string, number>();
  for (const e of input.stream) {
    if (e.operation !== "PUT") continue;
    const w = requests.get(e.value);
    if (w === undefined) {
      fail(`revision ${e.revision} holds ${e.key}=${e.value}, which no client wrote`);
      continue;
    }
    if (w.key !== e.key) fail(`${w.requestId} was written to ${e.key}, asked for ${w.key}`);
    const n = (seenValues.get(e.value) ?? 0) + 1;
    seenValues.set(e.value, n);
    if (n === 2) fail(`request ${w.requestId} (${w.op} ${w.key}) was applied more than once`);
    if (w.outcome === "not_applied") {
      fail(
        `request ${w.requestId} was answered as not applied, but it is at revision ${e.revision}`,
      );
    }
    if (w.outcome === "rejected") {
      fail(`request ${w.requestId} was answered ${w.code}, but it is at revision ${e.revision}`);
    }
    if (w.outcome === "written" && w.revision !== e.revision) {
      fail(`request ${w.requestId} was acked at ${w.revision} but applied at ${e.revision}`);
    }
  }
  for (const [key, entries] of byKey) {
    for (const op of ["DEL", "PURGE"] as const) {
      const markers = entries.filter((e) => e.operation === op).length;
      const asked = input.writes.filter(
        (w) =>
          w.key === key && opOf(w) === op && (w.outcome === "written" || w.outcome === "unknown"),
      ).length;
      if (markers > asked) fail(`${key} holds ${markers} ${op} markers for ${asked} such requests`);
    }
  }

  // Linearizable per key, with unknown writes resolved by what was committed.
  const committed: CommittedKvEntry[] = input.stream.map((e) => ({
    key: e.key,
    revision: e.revision,
    value: e.operation === "PUT" ? e.value : null,
  }));
  const patched = patchKvHistory(input.history, committed);
  let lincheckUnknown = false;
  const lin = checkLinearizable(kvPerKeyModel(), patched, {
    timeoutMs: input.lincheckMs ?? 10_000,
  });
  if (lin.result === "illegal") fail(`not linearizable: ${lin.explanation ?? "(no explanation)"}`);
  else if (lin.result !== "ok") lincheckUnknown = true;
  const revs = checkKvRevisions(patched);
  if (revs.result === "illegal") fail(`revisions inconsistent across keys: ${revs.explanation}`);

  // Watches: ordered, truthful, gapless against what the stream still holds.
  let watchEntriesChecked = 0;
  const revisions = input.stream.map((e) => e.revision);
  for (const chain of input.chains) {
    const where = `watch on ${chain.node}#${chain.incarnation}`;
    let shown = 0;
    const got = new Set<number>();
    for (let i = 0; i < chain.entries.length; i++) {
      const d = chain.entries[i]!;
      watchEntriesChecked++;
      if (i > 0 && d.revision <= chain.entries[i - 1]!.revision && shown++ < SHOWN_MAX) {
        fail(`${where} delivered revision ${d.revision} after ${chain.entries[i - 1]!.revision}`);
      }
      got.add(d.revision);
      const e = byRevision.get(d.revision);
      if (e === undefined) continue;
      if (
        (e.key !== d.key || e.operation !== d.operation || e.value !== d.value) &&
        shown++ < SHOWN_MAX
      ) {
        fail(
          `${where} delivered ${d.operation} ${d.key}=${d.value} at ${d.revision}; the stream holds ${e.operation} ${e.key}=${e.value}`,
        );
      }
    }
    if (chain.entries.length < 2) continue;
    const first = chain.entries[0]!.revision;
    const last = chain.entries[chain.entries.length - 1]!.revision;
    const missed = revisions.filter((r) => r > first && r < last && !got.has(r));
    if (missed.length > 0) {
      fail(
        `${where} skipped revisions ${missed.slice(0, 10).join(",")} between ${first} and ${last}`,
      );
    }
  }
  return { violations, lincheckUnknown, watchEntriesChecked };
}
