/**
 * Public types of the linearizability checker: the history format every
 * recorder produces (simulator and real-process tests alike) and the model
 * interface every sequential specification implements.
 */

/**
 * One client operation. Times come from one monotone counter shared by all
 * clients of a history (see `HistoryRecorder`); only their order matters.
 * Intervals are closed: an op returning at t and another called at t overlap.
 */
export interface Op<I, O> {
  clientId: number | string;
  input: I;
  callTime: number;
  /**
   * `undefined` = no response (timeout, crash, lost connection): the op may or
   * may not have taken effect, at any time after its call. The checker treats
   * it as returning at +infinity with an unknown output.
   */
  returnTime: number | undefined;
  /** The response; ignored when `returnTime` is undefined. */
  output?: O;
  /**
   * Only for an op without a response: a time by which it had taken effect
   * or never will (the simulator knows when a proposal was applied or
   * dropped). Optional; it narrows the search a great deal when many ops
   * have no response, because a never-applied op stops being a candidate.
   */
  effectDeadline?: number;
}

/**
 * A sequential specification. It may be non-deterministic: `step` returns
 * every state the op could leave behind (none = the op with this output is not
 * legal in `state`); the checker then tracks the set of possible states.
 *
 * Ops without a response (`returned` false) fork, as in etcd's
 * non-deterministic model: return the states where the op took effect at
 * this point (with any output) and `state` itself (it has not, or not yet).
 * The search may also leave such an op out of the order altogether.
 *
 * Every function must be pure and must not mutate its arguments: the checker
 * shares states between search branches.
 */
export interface Model<S, I, O> {
  readonly name: string;
  /** The possible initial states (usually exactly one). */
  init(): readonly S[];
  /**
   * P-compositionality: ops with different partition keys touch independent
   * objects, so each partition is checked on its own. Omit for one partition.
   */
  partition?(input: I): string;
  /**
   * Optional verdict-preserving rewrite of one partition's ops, run before
   * the search: e.g. giving an op without a response the output a later read
   * proves it had (the ops are linearizable iff the rewritten ones are). It
   * must return one op per input op, in place, and the same object for every
   * op it leaves alone.
   */
  prepare?(history: readonly Op<I, O>[]): readonly Op<I, O>[];
  /**
   * The states after applying `input` in `state` and answering `output`.
   * `returned` is false when the op has no response: `output` is undefined
   * then and stands for "any output".
   */
  step(state: S, input: I, output: O | undefined, returned: boolean): readonly S[];
  /** Canonical text of a state: equal keys <=> equal states (used for memoization). */
  stateKey(state: S): string;
  /** One line for explanations, e.g. `put("a", "v1") -> rev 3`. */
  describeOp(input: I, output: O | undefined, returned: boolean): string;
  /** A short account of a state for explanations. */
  describeState(state: S): string;
}

export interface CheckOptions {
  /**
   * Step budget per partition (each step tries one op against the current
   * states, or backtracks). Deterministic: the same history and budget give
   * the same verdict on every machine. Default 5,000,000.
   */
  maxSteps?: number;
  /**
   * Memoized configurations (set of linearized ops, model states) kept per
   * partition; bounds memory. Default 1,000,000.
   */
  maxStates?: number;
  /**
   * Optional wall-clock limit for the whole check, in addition to the budgets
   * (results then depend on machine speed). Default none.
   */
  timeoutMs?: number;
  /**
   * On an illegal verdict, search for the smallest failing prefix of the
   * failing partition to make the explanation short (costs at most another
   * `maxSteps`). Default true.
   */
  minimize?: boolean;
}

export interface CheckStats {
  partitions: number;
  ops: number;
  steps: number;
  states: number;
}

export type CheckResult<I, O> =
  | { result: "ok"; stats: CheckStats }
  | {
      result: "illegal";
      /** The partition key of the first failing partition (sorted order). */
      partition: string;
      /** A readable account: smallest failing prefix, best order found, ops that could not follow. */
      explanation: string;
      /** The op whose response made the history illegal, when the search pinned one down. */
      culprit?: Op<I, O>;
      stats: CheckStats;
    }
  | {
      result: "unknown";
      reason: "timeout";
      /** Which budget ran out. */
      budget: "steps" | "states" | "wall-clock";
      /** The partition being checked when it ran out. */
      partition: string;
      stats: CheckStats;
    };
