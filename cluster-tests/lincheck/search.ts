/**
 * The Wing-Gong-Lowe search for one partition: find an order of the ops that
 * respects real time (an op that returned before another was called comes
 * first) and that the model accepts, or prove none exists.
 *
 * Events (calls and returns) sit in a doubly linked list in time order. The
 * search walks it from the head: at a call it tries to linearize that op now
 * (the model must accept it), lifting the call and its return out of the list;
 * at a return it has met an op that had to be linearized already, so it
 * backtracks. Lowe's memoization keeps every (set of linearized ops, model
 * states) configuration seen; reaching one again cannot succeed where the first
 * visit failed, which prunes the exponential re-exploration of equivalent
 * interleavings.
 *
 * Non-deterministic models are run as their powerset: the search state is the
 * set of every model state reachable with the ops linearized so far.
 */
import { mix32 } from "./hash.js";
import type { Model, Op } from "./types.js";

/** The set of possible model states, with a canonical key. */
export interface StateSet<S> {
  states: readonly S[];
  key: string;
}

/** The deepest dead end met: the best partial order and what could not follow it. */
export interface DeadEnd<S> {
  /** Op indexes of the longest linearizable prefix found, in order. */
  order: number[];
  /** The possible states after `order`. */
  after: StateSet<S>;
  /** The op whose return was reached while it was still not linearized. */
  blocking: number;
  /** Ops called before that return and not linearized: none could come next. */
  candidates: number[];
}

export interface SearchLimits {
  maxSteps: number;
  maxStates: number;
  /** `performance.now()` deadline; Infinity for none. */
  deadline: number;
}

export type SearchOutcome<S> =
  | { verdict: "ok"; steps: number; states: number }
  | { verdict: "illegal"; steps: number; states: number; deadEnd: DeadEnd<S> }
  | {
      verdict: "unknown";
      budget: "steps" | "states" | "wall-clock";
      steps: number;
      states: number;
    };

const CLOCK_CHECK_MASK = 1023;

export function initialStates<S, I, O>(model: Model<S, I, O>): StateSet<S> {
  const set = canonicalSet(model, model.init());
  if (set === undefined) throw new Error(`lincheck: model ${model.name} has no initial state`);
  return set;
}

function canonicalSet<S, I, O>(
  model: Model<S, I, O>,
  states: readonly S[],
): StateSet<S> | undefined {
  if (states.length === 0) return undefined;
  if (states.length === 1) return { states, key: model.stateKey(states[0]) };
  const byKey = new Map<string, S>();
  for (const s of states) {
    const k = model.stateKey(s);
    if (!byKey.has(k)) byKey.set(k, s);
  }
  const keys = [...byKey.keys()].sort();
  return { states: keys.map((k) => byKey.get(k)!), key: keys.join("\u0000") };
}

/** Apply one op to every possible state; undefined when no state accepts it. */
export function stepSet<S, I, O>(
  model: Model<S, I, O>,
  set: StateSet<S>,
  op: Op<I, O>,
): StateSet<S> | undefined {
  const returned = op.returnTime !== undefined;
  const output = returned ? op.output : undefined;
  if (set.states.length === 1) {
    return canonicalSet(model, model.step(set.states[0], op.input, output, returned));
  }
  const next: S[] = [];
  for (const s of set.states) {
    for (const ns of model.step(s, op.input, output, returned)) next.push(ns);
  }
  return canonicalSet(model, next);
}

export function searchPartition<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Op<I, O>[],
  limits: SearchLimits,
): SearchOutcome<S> {
  const n = ops.length;
  // Node 0 is the head sentinel of a circular list; nodes 1..2n are events.
  const nodeCount = 2 * n + 1;
  const next = new Int32Array(nodeCount);
  const prev = new Int32Array(nodeCount);
  const opOf = new Int32Array(nodeCount);
  const isCall = new Uint8Array(nodeCount);
  const returnNodeOf = new Int32Array(n);

  const events: { time: number; call: boolean; op: number }[] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[i];
    events.push({ time: op.callTime, call: true, op: i });
    // No response: it may take effect until its deadline, or forever.
    const end = op.returnTime ?? op.effectDeadline ?? Number.POSITIVE_INFINITY;
    events.push({ time: end, call: false, op: i });
  }
  // Calls before returns on equal times: intervals are closed, so they overlap.
  events.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.call !== b.call) return a.call ? -1 : 1;
    return a.op - b.op;
  });
  for (let j = 0; j < events.length; j++) {
    const node = j + 1;
    const ev = events[j];
    opOf[node] = ev.op;
    isCall[node] = ev.call ? 1 : 0;
    if (!ev.call) returnNodeOf[ev.op] = node;
    prev[node] = node - 1;
    next[node] = node + 1 === nodeCount ? 0 : node + 1;
  }
  next[0] = n === 0 ? 0 : 1;
  prev[0] = n === 0 ? 0 : nodeCount - 1;

  const lift = (call: number): void => {
    const ret = returnNodeOf[opOf[call]];
    next[prev[call]] = next[call];
    prev[next[call]] = prev[call];
    next[prev[ret]] = next[ret];
    prev[next[ret]] = prev[ret];
  };
  // Exact inverse of lift; valid because lifts are undone in LIFO order.
  const unlift = (call: number): void => {
    const ret = returnNodeOf[opOf[call]];
    prev[next[ret]] = ret;
    next[prev[ret]] = ret;
    prev[next[call]] = call;
    next[prev[call]] = call;
  };

  // Linearized set as a bitset plus two Zobrist hashes updated in O(1).
  const words = Math.max(1, Math.ceil(n / 32));
  const linearized = new Uint32Array(words);
  const zobrist1 = new Int32Array(n);
  const zobrist2 = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    zobrist1[i] = mix32(2 * i + 1);
    zobrist2[i] = mix32((i + 0x5bd1e995) ^ 0x27d4eb2f);
  }
  let hash1 = 0;
  let hash2 = 0;
  const toggle = (op: number): void => {
    linearized[op >>> 5] ^= 1 << (op & 31);
    hash1 ^= zobrist1[op];
    hash2 ^= zobrist2[op];
  };

  const cache = new Map<string, Uint32Array[]>();
  const remember = (key: string): boolean => {
    const bucket = cache.get(key);
    if (bucket === undefined) {
      cache.set(key, [linearized.slice()]);
      return true;
    }
    for (const seen of bucket) {
      let same = true;
      for (let w = 0; w < words; w++) {
        if (seen[w] !== linearized[w]) {
          same = false;
          break;
        }
      }
      if (same) return false;
    }
    bucket.push(linearized.slice());
    return true;
  };

  // Ops without a response may never take effect: once every op with a
  // response is linearized, the rest are left out and the history is fine.
  let knownLeft = 0;
  const unknownOp = new Uint8Array(n);
  ops.forEach((op, i) => {
    if (op.returnTime !== undefined) knownLeft += 1;
    else unknownOp[i] = 1;
  });

  let state = initialStates(model);
  const stack: { call: number; before: StateSet<S> }[] = [];
  let steps = 0;
  let loops = 0;
  let statesKept = 0;
  let deadEnd: DeadEnd<S> | undefined;
  let e = next[0];

  while (knownLeft > 0) {
    steps += 1;
    loops += 1;
    if (steps > limits.maxSteps) {
      return { verdict: "unknown", budget: "steps", steps, states: statesKept };
    }
    if ((loops & CLOCK_CHECK_MASK) === 0 && performance.now() > limits.deadline) {
      return { verdict: "unknown", budget: "wall-clock", steps, states: statesKept };
    }
    if (isCall[e] === 1) {
      const op = opOf[e];
      // Stepping a set of k states costs k model steps.
      steps += state.states.length - 1;
      const after = stepSet(model, state, ops[op]);
      const known = unknownOp[op] === 0;
      // An op without a response (nor deadline) that changes nothing here is
      // the same as leaving it out, which the end condition already allows.
      const noEffect = !known && ops[op].effectDeadline === undefined && after?.key === state.key;
      if (after !== undefined && !noEffect) {
        toggle(op);
        if (remember(`${hash1 >>> 0}.${hash2 >>> 0}|${after.key}`)) {
          statesKept += 1;
          if (statesKept > limits.maxStates) {
            return { verdict: "unknown", budget: "states", steps, states: statesKept };
          }
          stack.push({ call: e, before: state });
          state = after;
          lift(e);
          if (known) knownLeft -= 1;
          e = next[0];
          continue;
        }
        toggle(op);
      }
      e = next[e];
    } else {
      // A return whose op is not linearized: everything before it failed.
      if (deadEnd === undefined || stack.length > deadEnd.order.length) {
        const candidates: number[] = [];
        for (let c = next[0]; c !== e; c = next[c]) {
          if (isCall[c] === 1) candidates.push(opOf[c]);
        }
        deadEnd = {
          order: stack.map((f) => opOf[f.call]),
          after: state,
          blocking: opOf[e],
          candidates,
        };
      }
      const top = stack.pop();
      if (top === undefined) {
        return { verdict: "illegal", steps, states: statesKept, deadEnd };
      }
      toggle(opOf[top.call]);
      state = top.before;
      unlift(top.call);
      if (unknownOp[opOf[top.call]] === 0) knownLeft += 1;
      e = next[top.call];
    }
  }
  return { verdict: "ok", steps, states: statesKept };
}
