/**
 * Seeded random histories that are linearizable by construction, for the
 * property tests and the perf sanity script: simulated clients call ops, each
 * op takes effect on a concrete sequential object at one instant between its
 * call and its return (so the order of those instants is a witness), and some
 * responses are lost (unknown outcome) before or after the effect.
 */
import { seededRandom } from "../../test_support/index.js";
import type { AppendInput, AppendOutput, AppendValue } from "./append_log_model.js";
import { HistoryRecorder } from "./history.js";
import type { KvInput, KvOutput } from "./kv_model.js";
import type { CommittedKvEntry } from "./patch.js";
import type { RegisterInput, RegisterOutput, RegisterValue } from "./register_model.js";
import type { Op } from "./types.js";

/** A sequential object that produces outputs, plus a workload that picks inputs. */
export interface Workload<I, O> {
  nextInput(random: () => number, clientId: number, serial: number): I;
  apply(input: I): O;
  isRead(input: I): boolean;
}

export interface GenerateOptions {
  seed: number;
  clients: number;
  ops: number;
  /** Chance that a write's response is lost (the write may or may not have applied). */
  unknownRate?: number;
  /** Record lost responses as settled (`effectDeadline`): the generator knows the op's fate. */
  settleUnknown?: boolean;
}

export function generateHistory<I, O>(
  workload: Workload<I, O>,
  options: GenerateOptions,
): Op<I, O>[] {
  const random = seededRandom(options.seed);
  const unknownRate = options.unknownRate ?? 0;
  const recorder = new HistoryRecorder<I, O>();
  type Client = { handle: number; input: I; applied: boolean; output?: O } | undefined;
  const clients: Client[] = Array.from({ length: options.clients }, () => undefined);
  let issued = 0;
  let busy = 0;
  const stepsMax = options.ops * 20 + 100;
  for (let step = 0; step < stepsMax && (issued < options.ops || busy > 0); step++) {
    const c = Math.floor(random() * options.clients);
    const client = clients[c];
    if (client === undefined) {
      if (issued >= options.ops) continue;
      const input = workload.nextInput(random, c, issued);
      clients[c] = { handle: recorder.call(c, input), input, applied: false };
      issued += 1;
      busy += 1;
    } else if (!client.applied) {
      if (!workload.isRead(client.input) && random() < unknownRate / 2) {
        // Lost before it took effect: the client sees a timeout, nothing happened.
        recorder.unknown(client.handle, { settled: options.settleUnknown === true });
        clients[c] = undefined;
        busy -= 1;
      } else {
        client.output = workload.apply(client.input);
        client.applied = true;
      }
    } else {
      if (!workload.isRead(client.input) && random() < unknownRate / 2) {
        recorder.unknown(client.handle, { settled: options.settleUnknown === true });
      } else {
        recorder.ok(client.handle, client.output as O);
      }
      clients[c] = undefined;
      busy -= 1;
    }
  }
  return recorder.history();
}

export function registerWorkload(): Workload<RegisterInput, RegisterOutput> {
  let value: RegisterValue = null;
  const written: RegisterValue[] = [null];
  return {
    nextInput(random, clientId, serial) {
      const r = random();
      if (r < 0.4) return { op: "read" };
      const fresh = `c${clientId}-${serial}`;
      if (r < 0.75) return { op: "write", value: fresh };
      return { op: "cas", from: written[Math.floor(random() * written.length)], to: fresh };
    },
    apply(input) {
      if (input.op === "read") return value;
      if (input.op === "write") {
        value = input.value;
        written.push(value);
        return undefined;
      }
      if (value !== input.from) return false;
      value = input.to;
      written.push(value);
      return true;
    },
    isRead: (input) => input.op === "read",
  };
}

export function appendLogWorkload(): Workload<AppendInput, AppendOutput> & {
  committed(): AppendValue[];
} {
  const log: AppendValue[] = [];
  return {
    committed: () => [...log],
    nextInput(random, clientId, serial) {
      return random() < 0.35 ? { op: "read" } : { op: "append", value: `c${clientId}-${serial}` };
    },
    apply(input) {
      if (input.op === "read") return { values: [...log] };
      log.push(input.value);
      return { index: log.length };
    },
    isRead: (input) => input.op === "read",
  };
}

export function kvWorkload(options: { keys: number }): Workload<KvInput, KvOutput> & {
  committed(): CommittedKvEntry[];
} {
  let seq = 0;
  const latest = new Map<string, { present: boolean; value: string | null; revision: number }>();
  const log: CommittedKvEntry[] = [];
  return {
    committed: () => [...log],
    nextInput(random, clientId, serial) {
      const key = `k${Math.floor(random() * options.keys)}`;
      const value = `c${clientId}-${serial}`;
      const r = random();
      if (r < 0.4) return { op: "get", key };
      if (r < 0.6) return { op: "put", key, value };
      if (r < 0.7) return { op: "create", key, value };
      if (r < 0.85) {
        // Usually the key's real latest revision, sometimes a stale or wrong one.
        const current = latest.get(key)?.revision ?? 0;
        const last = random() < 0.7 ? current : Math.max(0, current - 1 - Math.floor(random() * 3));
        return { op: "update", key, value, last };
      }
      if (r < 0.95) return { op: "delete", key };
      return { op: "purge", key };
    },
    apply(input) {
      const cur = latest.get(input.key) ?? { present: false, value: null, revision: 0 };
      switch (input.op) {
        case "get":
          return cur.present
            ? { kind: "entry", value: cur.value!, revision: cur.revision }
            : { kind: "absent" };
        case "create":
          if (cur.present) {
            return { kind: "rejected", code: "KEY_EXISTS", currentRevision: cur.revision };
          }
          break;
        case "update":
          if (cur.revision !== input.last) {
            return { kind: "rejected", code: "WRONG_LAST_REVISION", currentRevision: cur.revision };
          }
          break;
        default:
          break;
      }
      seq += 1;
      const value = input.op === "delete" || input.op === "purge" ? null : input.value;
      latest.set(input.key, { present: value !== null, value, revision: seq });
      log.push({ key: input.key, revision: seq, value });
      return { kind: "written", revision: seq };
    },
    isRead: (input) => input.op === "get",
  };
}
