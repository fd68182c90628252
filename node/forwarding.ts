/**
 * Write forwarding: any node accepts any write. On the leader a write is proposed
 * here; on a follower it travels to the leader over the peer port (ForwardRequest in
 * proto/peer.proto), and the follower answers its client with the leader's result.
 *
 * The forwarded bytes are the kvapi command itself, carrying the client's request id.
 * That is what makes retrying safe: when the leader changes, dies or does not answer,
 * the follower sends the same command (same request id) to whoever leads now, and
 * kvapi, deciding at apply on every replica, applies a request id at most once and
 * hands a retry the first result. So a write is retried until it has an answer or the
 * write's deadline passes; a deadline reached after a send whose fate is unknown is
 * TIMEOUT (may or may not be applied, SEMANTICS.md), never a code that means "not done".
 *
 * Bounded: at most `maxInFlight` writes forwarded from this node at once (more fail at
 * once with TIMEOUT, before anything is sent) and at most `maxServing` forwarded writes
 * proposed on behalf of followers (more are answered TIMEOUT, and the follower retries).
 */
import { randomBytes } from "node:crypto";
import type { UnstampedCommand } from "../kvapi/index.js";
import { assert, type ErrorCode, KvError } from "../proto/index.js";
import { type Cancel, type Clock, nextEventOr, sleep, systemClock } from "./clock.js";
import type { ForwardFrame, ForwardOutcome } from "./forward_wire.js";
import type { ProposalResult, Proposer } from "./leader_proposer.js";
import type { Logger } from "./log.js";

export type { ForwardFrame } from "./forward_wire.js";
export type { LeaderView, ProposalResult } from "./leader_proposer.js";

/** A result and whether it came from another node (not yet applied here, maybe). */
export interface SubmitResult extends ProposalResult {
  forwarded: boolean;
}

export interface ForwarderOptions {
  id: string;
  log: Logger;
  /** This node's proposer: its leader view, its proposals as the leader, its leader events. */
  proposer: Proposer;
  /**
   * Sends a frame to a peer, best effort: false when it was dropped (a full queue).
   * Throws KvError (e.g. FRAME_TOO_LARGE) when it can never be sent.
   */
  send: (to: string, frame: ForwardFrame) => boolean;
  clock?: Clock;
  /** A bug (not a KvError) while serving a follower's write: the node must stop. */
  onFatal?: (err: unknown) => void;
  /** How long a write may take, forwarding and retries included (default 4000 ms). */
  writeTimeoutMs?: number;
  /** One send waits at most this long for its answer before it is sent again (default 1500 ms). */
  attemptTimeoutMs?: number;
  /**
   * The pause before another try after a refusal (a stale NOT_LEADER, a dropped send),
   * so two stale nodes cannot bounce a write quickly (default 20 ms).
   */
  retryMs?: number;
  /** Writes this node forwards at once (default 1024). */
  maxInFlight?: number;
  /** Forwarded writes this node proposes for followers at once (default 4096). */
  maxServing?: number;
}

type AttemptOutcome =
  | { kind: "ok"; result: ProposalResult }
  | { kind: "error"; error: KvError }
  /** Sent, but no answer to wait for any more: the write may or may not be applied. */
  | { kind: "unanswered"; why: string }
  /** Dropped before it left this node: certainly not applied. */
  | { kind: "not_sent" };

interface PendingAttempt {
  to: string;
  /**
   * Sent on a leader hint while this node's own view still named `viewLeader` (a stale
   * leader told us who leads now): the send stays valid while the view says either.
   */
  viewLeader?: string;
  cancelTimer: Cancel;
  resolve: (outcome: AttemptOutcome) => void;
}

/** The leader never proposed it: safe to send anywhere, and "not applied" for sure. */
const NOT_PROPOSED: ReadonlySet<ErrorCode> = new Set(["NOT_LEADER", "NO_LEADER"]);
/** Worth another try against whoever leads next; the outcome of this one is unknown. */
const RETRY_UNKNOWN: ReadonlySet<ErrorCode> = new Set(["TIMEOUT", "SHUTTING_DOWN"]);
/** Leader hints followed at once per write; later ones wait `retryMs` (two stale nodes cannot ping-pong fast). */
const MAX_IMMEDIATE_HINTS = 2;

/**
 * Forwarding counts for metrics: sends from this node by outcome (`ok`, an error code,
 * `unanswered`, `not_sent`) and forwarded writes served here by result (`ok` or a code).
 */
export interface ForwardStats {
  sent: Map<string, number>;
  received: Map<string, number>;
}

export class Forwarder {
  /** This process's incarnation: answers meant for an earlier one are ignored. */
  readonly session = randomBytes(8).toString("hex");
  private nextId = 0;
  private inFlight = 0;
  private serving = 0;
  private closed = false;
  private readonly pending = new Map<number, PendingAttempt>();
  private readonly clock: Clock;
  private readonly writeTimeoutMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly retryMs: number;
  private readonly maxInFlight: number;
  private readonly maxServing: number;
  private readonly stats: ForwardStats = { sent: new Map(), received: new Map() };
  private readonly stopListening: Cancel;

  constructor(private readonly opts: ForwarderOptions) {
    this.clock = opts.clock ?? systemClock;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 4000;
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 1500;
    this.retryMs = opts.retryMs ?? 20;
    this.maxInFlight = opts.maxInFlight ?? 1024;
    this.maxServing = opts.maxServing ?? 4096;
    // A send is pointless once its target no longer leads: the leader event ends it.
    this.stopListening = opts.proposer.onLeaderChange(() => this.dropMovedSends());
  }

  /** Writes being forwarded from this node now (tests, metrics). */
  forwardsInFlight(): number {
    return this.inFlight;
  }

  /** Forwarded writes this node proposes for followers now (metrics). */
  forwardsServing(): number {
    return this.serving;
  }

  /** Counts since start (metrics read them at each scrape). */
  forwardStats(): ForwardStats {
    return this.stats;
  }

  private count(kind: keyof ForwardStats, result: string): void {
    const m = this.stats[kind];
    m.set(result, (m.get(result) ?? 0) + 1);
  }

  /**
   * Proposes `command` here when this node leads, else forwards it to the leader,
   * retrying across leader changes until the write deadline: the earlier of `deadlineMs`
   * (the client's, epoch ms) and now + `writeTimeoutMs`. The leader stamps its time.
   */
  async submit(command: UnstampedCommand, deadlineMs?: number): Promise<SubmitResult> {
    // Counted only once it is forwarded: the leader's own writes are bounded by the driver.
    const slot = { held: false };
    const deadline = Math.min(
      this.clock.now() + this.writeTimeoutMs,
      deadlineMs ?? Number.POSITIVE_INFINITY,
    );
    try {
      return await this.submitWithRetries(command, slot, deadline);
    } finally {
      if (slot.held) {
        this.inFlight--;
        assert(this.inFlight >= 0, "forwarder in-flight count went negative");
      }
    }
  }

  private async submitWithRetries(
    command: UnstampedCommand,
    slot: { held: boolean },
    deadline: number,
  ): Promise<SubmitResult> {
    const started = this.clock.now();
    const waited = () => this.clock.now() - started;
    // Retrying a command that has no request id could apply it twice.
    const retryable = command.request !== undefined;
    /** Some earlier try may have been applied: a final failure must say TIMEOUT. */
    let unknown = false;
    let lastError: KvError | undefined;
    /** Who leads per a stale leader's NOT_LEADER, while our view still names that one. */
    let hint: { to: string; viewLeader: string } | undefined;
    let hintsFollowed = 0;
    const proposer = this.opts.proposer;
    while (true) {
      if (this.closed) throw this.shutdownError(unknown);
      const view = proposer.view();
      if (view.stopped) throw this.shutdownError(unknown);
      if (this.clock.now() >= deadline) throw this.deadlineError(unknown, lastError, waited());
      if (view.isLeader) {
        try {
          return { ...(await proposer.propose(command)), forwarded: false };
        } catch (err) {
          const e = asKvError(err);
          if (NOT_PROPOSED.has(e.code)) {
            lastError = e;
          } else if (RETRY_UNKNOWN.has(e.code) && retryable && !this.closed) {
            unknown = true;
            lastError = e;
          } else {
            // Definite even after an unknown try: a retry gets the first try's result.
            throw unknown && !isDefinite(e) ? this.deadlineError(true, e, waited()) : e;
          }
        }
        // Not in a tight loop: the next try waits for the view or the driver to move on.
        await this.pause(deadline);
        continue;
      }
      if (view.leaderId === null) {
        // Nobody to send to: wait for the driver to know a leader (or the deadline).
        await this.untilLeaderChange(deadline);
        continue;
      }
      if (!slot.held) {
        if (this.inFlight >= this.maxInFlight) {
          // Definitely not applied, unlike TIMEOUT: the caller may retry at once or back off.
          throw new KvError(
            "OVERLOADED",
            `node ${this.opts.id} is already forwarding ${this.inFlight} writes to the leader; not sent, retry`,
          );
        }
        this.inFlight++;
        slot.held = true;
        assert(this.inFlight <= this.maxInFlight, "forwarder in-flight count above its bound");
      }
      if (hint !== undefined && hint.viewLeader !== view.leaderId) hint = undefined;
      const to = hint?.to ?? view.leaderId;
      const outcome = await this.attempt(to, command, deadline, hint?.viewLeader);
      this.count("sent", outcome.kind === "error" ? outcome.error.code : outcome.kind);
      let immediate = false;
      switch (outcome.kind) {
        case "ok":
          return Object.assign({}, outcome.result, { forwarded: true }); // not V8's slow spread
        case "not_sent":
          break;
        case "unanswered":
          unknown = true;
          lastError = new KvError("TIMEOUT", outcome.why);
          if (!retryable) throw this.deadlineError(true, lastError, waited());
          break;
        case "error": {
          const e = outcome.error;
          if (NOT_PROPOSED.has(e.code)) {
            lastError = e;
            const hinted = e.details.leaderId;
            if (hinted !== undefined && hinted !== to && hinted !== this.opts.id) {
              // A stale leader knows who leads now: send there without waiting for
              // this node's own view to catch up (a heartbeat away, maybe more).
              hint = { to: hinted, viewLeader: view.leaderId };
              immediate = hintsFollowed++ < MAX_IMMEDIATE_HINTS;
            }
          } else if (RETRY_UNKNOWN.has(e.code) && retryable) {
            unknown = true;
            lastError = e;
          } else {
            // A definite answer of the write itself (KEY_EXISTS, BUCKET_NOT_FOUND, ...).
            throw e;
          }
          break;
        }
      }
      // A node that just lost leadership answers NOT_LEADER before others know it.
      if (outcome.kind !== "unanswered" && !immediate) await this.pause(deadline);
    }
  }

  /** The pause between refused tries, cut short by a leader change; never past `deadline`. */
  private pause(deadline: number): Promise<void> {
    return this.untilLeaderChange(Math.min(deadline, this.clock.now() + this.retryMs));
  }

  /** Resolves at the next leader event or at `until` (epoch ms), whichever first. */
  private untilLeaderChange(until: number): Promise<void> {
    return nextEventOr(this.clock, (l) => this.opts.proposer.onLeaderChange(l), until);
  }

  /** One send to `to`; resolves with its answer, or when waiting is pointless. */
  private attempt(
    to: string,
    command: UnstampedCommand,
    deadline: number,
    viewLeader?: string,
  ): Promise<AttemptOutcome> {
    const id = ++this.nextId;
    let sent: boolean;
    try {
      sent = this.opts.send(to, { kind: "request", id, session: this.session, command });
    } catch (err) {
      return Promise.resolve({ kind: "error", error: asKvError(err) });
    }
    if (!sent) return sleep(this.clock, this.retryMs).then(() => ({ kind: "not_sent" }));
    return new Promise((resolve) => {
      const attemptDeadline = Math.min(deadline, this.clock.now() + this.attemptTimeoutMs);
      const cancelTimer = this.clock.after(Math.max(0, attemptDeadline - this.clock.now()), () =>
        this.settle(id, {
          kind: "unanswered",
          why: `leader ${to} did not answer a forwarded write in time`,
        }),
      );
      this.pending.set(id, {
        to,
        ...(viewLeader === undefined ? {} : { viewLeader }),
        cancelTimer,
        resolve,
      });
    });
  }

  private settle(id: number, outcome: AttemptOutcome): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.cancelTimer();
    p.resolve(outcome);
  }

  /** Ends the sends whose target no longer leads in this node's view. */
  private dropMovedSends(): void {
    const leader = this.opts.proposer.view().leaderId;
    for (const [id, p] of this.pending) {
      if (leader === p.to || (p.viewLeader !== undefined && leader === p.viewLeader)) continue;
      this.settle(id, {
        kind: "unanswered",
        why: `leadership moved from ${p.to} to ${leader ?? "(none)"} while forwarding`,
      });
    }
  }

  /** A forwarded write or its answer from peer `from` (decoded at the edge: forward_wire.ts). */
  receive(from: string, frame: ForwardFrame): void {
    switch (frame.kind) {
      case "request":
      case "refused":
        this.serve(from, frame);
        return;
      case "response":
        this.handleResponse(from, frame.id, frame.session, frame.outcome);
        return;
    }
  }

  private handleResponse(from: string, id: number, session: string, outcome: ForwardOutcome): void {
    if (session !== this.session) return;
    const p = this.pending.get(id);
    if (!p || p.to !== from) return;
    this.settle(
      id,
      outcome.ok ? { kind: "ok", result: outcome.result } : { kind: "error", error: outcome.error },
    );
  }

  /** A ForwardRequest from follower `from`: propose it here and answer. */
  private serve(from: string, r: Extract<ForwardFrame, { kind: "request" | "refused" }>): void {
    const answer = (outcome: ForwardOutcome) => {
      this.count("received", outcome.ok ? "ok" : outcome.error.code);
      try {
        this.opts.send(from, { kind: "response", id: r.id, session: r.session, outcome });
      } catch (err) {
        this.opts.log.warn("cannot answer a forwarded write", { to: from, error: String(err) });
      }
    };
    if (r.kind === "refused") {
      answer({ ok: false, error: r.error });
      return;
    }
    if (this.closed) {
      answer({ ok: false, error: new KvError("SHUTTING_DOWN", "the leader is shutting down") });
      return;
    }
    if (this.serving >= this.maxServing) {
      answer({
        ok: false,
        error: new KvError(
          "TIMEOUT",
          `leader ${this.opts.id} is serving too many forwarded writes`,
        ),
      });
      return;
    }
    this.serving++;
    this.opts.proposer
      .propose(r.command)
      .then(
        (result) => answer({ ok: true, result }),
        (err) => {
          // An assertion is a bug here too: it stops the node, it never travels as an answer.
          if (err instanceof KvError) answer({ ok: false, error: err });
          else (this.opts.onFatal ?? rethrow)(err);
        },
      )
      .finally(() => {
        this.serving--;
        assert(this.serving >= 0, "forwarder serving count went negative");
      });
  }

  /** Fails waiting sends; later submits fail with SHUTTING_DOWN. */
  close(): void {
    this.closed = true;
    this.stopListening();
    for (const id of [...this.pending.keys()]) {
      this.settle(id, { kind: "unanswered", why: "the node is shutting down" });
    }
  }

  private shutdownError(unknown: boolean): KvError {
    return unknown
      ? new KvError(
          "TIMEOUT",
          "the node shut down while forwarding; the write may have been applied",
        )
      : new KvError("SHUTTING_DOWN", "the node is shutting down");
  }

  private deadlineError(unknown: boolean, last: KvError | undefined, waitedMs: number): KvError {
    if (!unknown && last !== undefined && NOT_PROPOSED.has(last.code)) return last;
    if (!unknown) return new KvError("NO_LEADER", "no leader reachable; retry shortly");
    return new KvError(
      "TIMEOUT",
      `no answer from a leader within ${waitedMs} ms; the write may have been applied (retry with the same request id)${last ? `: ${last.message}` : ""}`,
    );
  }
}

function rethrow(err: unknown): never {
  throw err;
}

function isDefinite(e: KvError): boolean {
  return !NOT_PROPOSED.has(e.code) && !RETRY_UNKNOWN.has(e.code);
}

/** A KvError is an answer; anything else is a bug and goes on up (crash-only). */
function asKvError(err: unknown): KvError {
  if (err instanceof KvError) return err;
  throw err;
}
