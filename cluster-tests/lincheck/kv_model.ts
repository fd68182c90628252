/**
 * Models of streamkv's KV semantics (shared/SEMANTICS.md) for one or more
 * buckets, over one history format:
 *
 * - `kvModel`: exact. The state is the whole bucket with its revision counter,
 *   so every accepted write must return exactly the next revision. One
 *   partition per bucket: exact, but the search sees every key's ops at once,
 *   so keep histories small (hundreds of ops, few concurrent clients).
 * - `kvPerKeyModel`: one partition per key. Revisions are bucket-wide, so a key
 *   alone cannot know which revision its next write gets; this model checks
 *   values, CAS outcomes, and that a key's revisions strictly increase and
 *   match what reads return. Sound (never rejects a linearizable history) but
 *   weaker; pair it with `checkKvRevisions` for the cross-key facts.
 *
 * Values are strings and should be unique per write, so a read names the write
 * it saw. TTL expiry and history limits are not modelled (use ttl = 0).
 */
import { historyEndTime } from "./patch.js";
import type { Model, Op } from "./types.js";

export type KvCasCode = "KEY_EXISTS" | "WRONG_LAST_REVISION";

export type KvInput =
  | { op: "put"; key: string; value: string; bucket?: string }
  | { op: "create"; key: string; value: string; bucket?: string }
  /** `last = 0` means "the key has no entry at all". */
  | { op: "update"; key: string; value: string; last: number; bucket?: string }
  | { op: "delete"; key: string; last?: number; bucket?: string }
  | { op: "purge"; key: string; last?: number; bucket?: string }
  | { op: "get"; key: string; bucket?: string };

export type KvOutput =
  /** An accepted write and the revision it took. */
  | { kind: "written"; revision: number }
  /** A definite CAS failure; `currentRevision` is checked when given. */
  | { kind: "rejected"; code: KvCasCode; currentRevision?: number }
  /** get: the latest entry is a PUT. */
  | { kind: "entry"; value: string; revision: number }
  /** get: null (missing, deleted or purged). */
  | { kind: "absent" };

export type KvWriteInput = Exclude<KvInput, { op: "get" }>;

/** The latest entry of one key; revision 0 = never written. */
export interface KvKeyState {
  readonly present: boolean;
  readonly value: string | null;
  readonly revision: number;
}

export interface KvBucketState {
  /** The bucket's last assigned revision. */
  readonly seq: number;
  readonly keys: ReadonlyMap<string, KvKeyState>;
}

/**
 * Per-key state. `exact = false` after a write with unknown outcome took
 * effect: the key's revision is then only known to be >= `revision`.
 */
export interface KvPerKeyState extends KvKeyState {
  readonly exact: boolean;
}

const NEVER_WRITTEN: KvKeyState = { present: false, value: null, revision: 0 };

function isWrite(input: KvInput): input is KvWriteInput {
  return input.op !== "get";
}

function rejectCode(input: KvWriteInput): KvCasCode {
  return input.op === "create" ? "KEY_EXISTS" : "WRONG_LAST_REVISION";
}

function expectedLast(input: KvWriteInput): number | undefined {
  if (input.op === "update") return input.last;
  if (input.op === "delete" || input.op === "purge") return input.last;
  return undefined;
}

function writtenValue(input: KvWriteInput): string | null {
  return input.op === "put" || input.op === "create" || input.op === "update" ? input.value : null;
}

function badOutput(model: string, input: KvInput, output: unknown): never {
  throw new Error(`${model}: output ${JSON.stringify(output)} does not fit op ${input.op}`);
}

/**
 * A write without a response whose value (written to that key by no other op)
 * a read returned happened, with the revision the read shows: give it that
 * output. The verdict is unchanged, and the search no longer has to place it
 * blindly. Deletes and purges carry no value to recognize, so they stay.
 */
function resolveSeenWrites(history: readonly Op<KvInput, KvOutput>[]): Op<KvInput, KvOutput>[] {
  const id = (input: KvInput, value: string) =>
    JSON.stringify([input.bucket ?? "", input.key, value]);
  const writers = new Map<string, number>();
  const seenAt = new Map<string, number>();
  for (const op of history) {
    const value = isWrite(op.input) ? writtenValue(op.input) : null;
    if (value !== null)
      writers.set(id(op.input, value), (writers.get(id(op.input, value)) ?? 0) + 1);
    if (op.input.op === "get" && op.returnTime !== undefined && op.output?.kind === "entry") {
      const k = id(op.input, op.output.value);
      if (!seenAt.has(k)) seenAt.set(k, op.output.revision);
    }
  }
  const end = historyEndTime(history);
  return history.map((op) => {
    if (op.returnTime !== undefined || !isWrite(op.input)) return op;
    const value = writtenValue(op.input);
    if (value === null) return op;
    const k = id(op.input, value);
    const revision = seenAt.get(k);
    if (revision === undefined || writers.get(k) !== 1) return op;
    return {
      clientId: op.clientId,
      input: op.input,
      callTime: op.callTime,
      returnTime: op.effectDeadline ?? end,
      output: { kind: "written", revision },
    };
  });
}

// ---------------------------------------------------------------- exact model

function bucketAccepts(cur: KvKeyState, input: KvWriteInput): boolean {
  if (input.op === "create") return !cur.present;
  const last = expectedLast(input);
  return last === undefined || cur.revision === last;
}

function bucketApply(state: KvBucketState, input: KvWriteInput): KvBucketState {
  const seq = state.seq + 1;
  const value = writtenValue(input);
  const keys = new Map(state.keys);
  keys.set(input.key, { present: value !== null, value, revision: seq });
  return { seq, keys };
}

export function kvModel(): Model<KvBucketState, KvInput, KvOutput> {
  const name = "kv-exact";
  return {
    name,
    init: () => [{ seq: 0, keys: new Map() }],
    prepare: resolveSeenWrites,
    partition: (input) => input.bucket ?? "default",
    step(state, input, output, returned) {
      const cur = state.keys.get(input.key) ?? NEVER_WRITTEN;
      if (!isWrite(input)) {
        if (!returned) return [state];
        if (output?.kind === "entry") {
          const same =
            cur.present && cur.value === output.value && cur.revision === output.revision;
          return same ? [state] : [];
        }
        if (output?.kind === "absent") return cur.present ? [] : [state];
        return badOutput(name, input, output);
      }
      const accepts = bucketAccepts(cur, input);
      // No response: it happened here (if accepted), or not (yet): fork.
      if (!returned) return accepts ? [bucketApply(state, input), state] : [state];
      if (output?.kind === "written") {
        return accepts && output.revision === state.seq + 1 ? [bucketApply(state, input)] : [];
      }
      if (output?.kind === "rejected") {
        const fits =
          !accepts &&
          output.code === rejectCode(input) &&
          (output.currentRevision === undefined || output.currentRevision === cur.revision);
        return fits ? [state] : [];
      }
      return badOutput(name, input, output);
    },
    stateKey(state) {
      const keys = [...state.keys.keys()].sort();
      const parts = keys.map((k) => {
        const e = state.keys.get(k)!;
        return `${k}=${e.revision}:${e.present ? JSON.stringify(e.value) : "-"}`;
      });
      return `${state.seq}|${parts.join(",")}`;
    },
    describeOp: describeKvOp,
    describeState(state) {
      const keys = [...state.keys.keys()].sort();
      const parts = keys.map((k) => `${k}=${describeKey(state.keys.get(k)!, true)}`);
      return `rev ${state.seq}: {${parts.join(", ")}}`;
    },
  };
}

// -------------------------------------------------------------- per-key model

const PER_KEY_INITIAL: KvPerKeyState = { present: false, value: null, revision: 0, exact: true };

/** The state refined by learning that the key's revision is `r`, if possible. */
function withRevision(state: KvPerKeyState, r: number): KvPerKeyState | undefined {
  if (state.exact) return state.revision === r ? state : undefined;
  return r >= state.revision ? { ...state, revision: r, exact: true } : undefined;
}

export function kvPerKeyModel(): Model<KvPerKeyState, KvInput, KvOutput> {
  const name = "kv-per-key";
  return {
    name,
    init: () => [PER_KEY_INITIAL],
    prepare: resolveSeenWrites,
    partition: (input) => (input.bucket === undefined ? input.key : `${input.bucket}:${input.key}`),
    step(state, input, output, returned) {
      if (!isWrite(input)) {
        if (!returned) return [state];
        if (output?.kind === "entry") {
          if (!state.present || state.value !== output.value) return [];
          const refined = withRevision(state, output.revision);
          return refined === undefined ? [] : [refined];
        }
        if (output?.kind === "absent") return state.present ? [] : [state];
        return badOutput(name, input, output);
      }
      const value = writtenValue(input);
      const last = expectedLast(input);
      // Where the key's revision must be for the write to be accepted.
      const matched: KvPerKeyState | undefined =
        input.op === "create"
          ? state.present
            ? undefined
            : state
          : last === undefined
            ? state
            : withRevision(state, last);
      const mayReject =
        input.op === "create"
          ? state.present
          : last !== undefined && (!state.exact || state.revision !== last);

      if (!returned) {
        // It happened here (if it could be accepted), or not (yet): fork.
        if (matched === undefined) return [state];
        // Bucket-wide revisions: all we know is that it exceeds the old one.
        return [
          { present: value !== null, value, revision: matched.revision + 1, exact: false },
          state,
        ];
      }
      if (output?.kind === "written") {
        // matched.revision is a lower bound when inexact: some actual revision < r exists iff it is < r.
        if (matched === undefined || !(matched.revision < output.revision)) return [];
        return [{ present: value !== null, value, revision: output.revision, exact: true }];
      }
      if (output?.kind === "rejected") {
        if (!mayReject || output.code !== rejectCode(input)) return [];
        if (output.currentRevision === undefined) return [state];
        if (last !== undefined && output.currentRevision === last) return [];
        const refined = withRevision(state, output.currentRevision);
        return refined === undefined ? [] : [refined];
      }
      return badOutput(name, input, output);
    },
    stateKey: (state) =>
      `${state.exact ? "=" : ">="}${state.revision}|${state.present ? JSON.stringify(state.value) : "-"}`,
    describeOp: describeKvOp,
    describeState: (state) => describeKey(state, state.exact),
  };
}

// ---------------------------------------------------------------- descriptions

function describeKey(state: KvKeyState, exact: boolean): string {
  const rev = `${exact ? "" : ">="}${state.revision}`;
  if (state.revision === 0) return "never written";
  return state.present ? `${JSON.stringify(state.value)}@${rev}` : `deleted@${rev}`;
}

export function describeKvOp(
  input: KvInput,
  output: KvOutput | undefined,
  returned: boolean,
): string {
  const key = input.bucket === undefined ? input.key : `${input.bucket}:${input.key}`;
  let call: string;
  switch (input.op) {
    case "put":
    case "create":
      call = `${input.op}(${key}, ${JSON.stringify(input.value)})`;
      break;
    case "update":
      call = `update(${key}, ${JSON.stringify(input.value)}, last ${input.last})`;
      break;
    case "delete":
    case "purge":
      call = `${input.op}(${key}${input.last === undefined ? "" : `, last ${input.last}`})`;
      break;
    case "get":
      call = `get(${key})`;
      break;
  }
  if (!returned || output === undefined) return `${call} -> ?`;
  switch (output.kind) {
    case "written":
      return `${call} -> rev ${output.revision}`;
    case "rejected":
      return `${call} -> ${output.code}${output.currentRevision === undefined ? "" : ` (current ${output.currentRevision})`}`;
    case "entry":
      return `${call} -> ${JSON.stringify(output.value)}@${output.revision}`;
    case "absent":
      return `${call} -> null`;
  }
}
