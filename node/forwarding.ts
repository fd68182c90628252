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
import { decodeCommand, encodeCommand } from "../kvapi/index.js";
import type { Command } from "../kvapi/types.js";
import { type ErrorCode, isErrorCode, KvError, type KvErrorDetails } from "../proto/errors.js";
import type { Logger } from "./log.js";

/** What a write did on the leader. */
export interface ProposalResult {
  revision: number;
  count: number;
  /** The Raft index of the write's entry. */
  index: number;
}

/** A result and whether it came from another node (not yet applied here, maybe). */
export interface SubmitResult extends ProposalResult {
  forwarded: boolean;
}

/** PeerError in proto/peer.proto, as protobufjs objects carry it. */
export interface WireError {
  code?: string;
  message?: string;
  details?: {
    current_revision?: number;
    first_revision?: number;
    last_revision?: number;
    leader_id?: string;
  };
}

export interface WireForwardRequest {
  id?: number;
  session?: string;
  command?: Uint8Array;
}

export interface WireForwardResponse {
  id?: number;
  session?: string;
  revision?: number;
  count?: number;
  index?: number;
  error?: WireError;
}

export type ForwardFrame =
  | { forward_request: WireForwardRequest }
  | { forward_response: WireForwardResponse };

export interface LeaderView {
  isLeader: boolean;
  /** null while no leader is known. */
  leaderId: string | null;
  /** The Raft driver stopped (fatal error or shutdown). */
  stopped: boolean;
}

export interface ForwarderOptions {
  id: string;
  log: Logger;
  /** Raft's view right now. */
  leader: () => LeaderView;
  /** Proposes on this node as the leader; NOT_LEADER / NO_LEADER when it is not. */
  proposeHere: (command: Command) => Promise<ProposalResult>;
  /**
   * Sends a frame to a peer, best effort: false when it was dropped (a full queue).
   * Throws KvError (e.g. FRAME_TOO_LARGE) when it can never be sent.
   */
  send: (to: string, frame: ForwardFrame) => boolean;
  /** How long a write may take, forwarding and retries included (default 4000 ms). */
  writeTimeoutMs?: number;
  /** One send waits at most this long for its answer before it is sent again (default 1500 ms). */
  attemptTimeoutMs?: number;
  /** How often waiting writes look at the leader (default 20 ms). */
  pollMs?: number;
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
  attemptDeadline: number;
  resolve: (outcome: AttemptOutcome) => void;
}

/** The leader never proposed it: safe to send anywhere, and "not applied" for sure. */
const NOT_PROPOSED: ReadonlySet<ErrorCode> = new Set(["NOT_LEADER", "NO_LEADER"]);
/** Worth another try against whoever leads next; the outcome of this one is unknown. */
const RETRY_UNKNOWN: ReadonlySet<ErrorCode> = new Set(["TIMEOUT", "SHUTTING_DOWN"]);
/** Leader hints followed at once per write; later ones wait a poll (two stale nodes cannot ping-pong fast). */
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
  private poller: ReturnType<typeof setInterval> | undefined;
  private readonly writeTimeoutMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly pollMs: number;
  private readonly maxInFlight: number;
  private readonly maxServing: number;
  private readonly stats: ForwardStats = { sent: new Map(), received: new Map() };

  constructor(private readonly opts: ForwarderOptions) {
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 4000;
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 1500;
    this.pollMs = opts.pollMs ?? 20;
    this.maxInFlight = opts.maxInFlight ?? 1024;
    this.maxServing = opts.maxServing ?? 4096;
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
   * (the client's, epoch ms) and now + `writeTimeoutMs`. `command.timestampMs` is
   * ignored: the leader stamps its own time.
   */
  async submit(command: Command, deadlineMs?: number): Promise<SubmitResult> {
    // Counted only once it is forwarded: the leader's own writes are bounded by the driver.
    const slot = { held: false };
    const deadline = Math.min(
      Date.now() + this.writeTimeoutMs,
      deadlineMs ?? Number.POSITIVE_INFINITY,
    );
    try {
      return await this.submitWithRetries(command, slot, deadline);
    } finally {
      if (slot.held) this.inFlight--;
    }
  }

  private async submitWithRetries(
    command: Command,
    slot: { held: boolean },
    deadline: number,
  ): Promise<SubmitResult> {
    const started = Date.now();
    // Retrying a command that has no request id could apply it twice.
    const retryable = command.request !== undefined;
    let data: Uint8Array | undefined;
    /** Some earlier try may have been applied: a final failure must say TIMEOUT. */
    let unknown = false;
    let lastError: KvError | undefined;
    /** Who leads per a stale leader's NOT_LEADER, while our view still names that one. */
    let hint: { to: string; viewLeader: string } | undefined;
    let hintsFollowed = 0;
    while (true) {
      if (this.closed) throw this.shutdownError(unknown);
      const view = this.opts.leader();
      if (view.stopped) throw this.shutdownError(unknown);
      if (Date.now() >= deadline)
        throw this.deadlineError(unknown, lastError, Date.now() - started);
      if (view.isLeader) {
        try {
          return { ...(await this.opts.proposeHere(command)), forwarded: false };
        } catch (err) {
          const e = asKvError(err);
          if (NOT_PROPOSED.has(e.code)) {
            lastError = e;
          } else if (RETRY_UNKNOWN.has(e.code) && retryable && !this.closed) {
            unknown = true;
            lastError = e;
          } else {
            // Definite even after an unknown try: a retry gets the first try's result.
            throw unknown && !isDefinite(e) ? this.deadlineError(true, e, Date.now() - started) : e;
          }
        }
        // Not in a tight loop: the next try waits for the view or the driver to move on.
        await delay(this.pollMs);
      } else if (view.leaderId !== null) {
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
        }
        data ??= encodeCommand({ ...command, timestampMs: 0 });
        if (hint !== undefined && hint.viewLeader !== view.leaderId) hint = undefined;
        const to = hint?.to ?? view.leaderId;
        const outcome = await this.attempt(to, data, deadline, hint?.viewLeader);
        this.count("sent", outcome.kind === "error" ? outcome.error.code : outcome.kind);
        let immediate = false;
        switch (outcome.kind) {
          case "ok":
            return { ...outcome.result, forwarded: true };
          case "not_sent":
            break;
          case "unanswered":
            unknown = true;
            lastError = new KvError("TIMEOUT", outcome.why);
            if (!retryable) throw this.deadlineError(true, lastError, Date.now() - started);
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
              return Promise.reject(e);
            }
            break;
          }
        }
        // A node that just lost leadership answers NOT_LEADER before others know it.
        if (outcome.kind !== "unanswered" && !immediate) await delay(this.pollMs);
        continue;
      }
      await delay(this.pollMs);
    }
  }

  /** One send to `to`; resolves with its answer, or when waiting is pointless. */
  private attempt(
    to: string,
    command: Uint8Array,
    deadline: number,
    viewLeader?: string,
  ): Promise<AttemptOutcome> {
    const id = ++this.nextId;
    let sent: boolean;
    try {
      sent = this.opts.send(to, { forward_request: { id, session: this.session, command } });
    } catch (err) {
      return Promise.resolve({ kind: "error", error: asKvError(err) });
    }
    if (!sent) return delay(this.pollMs).then(() => ({ kind: "not_sent" }));
    return new Promise((resolve) => {
      this.pending.set(id, {
        to,
        ...(viewLeader === undefined ? {} : { viewLeader }),
        attemptDeadline: Math.min(deadline, Date.now() + this.attemptTimeoutMs),
        resolve,
      });
      this.poller ??= setInterval(() => this.poll(), this.pollMs);
    });
  }

  /** Gives up on sends whose target no longer leads or that waited too long. */
  private poll(): void {
    const now = Date.now();
    const view = this.opts.leader();
    for (const [id, p] of this.pending) {
      let why: string | undefined;
      if (
        view.leaderId !== p.to &&
        (p.viewLeader === undefined || view.leaderId !== p.viewLeader)
      ) {
        why = `leadership moved from ${p.to} to ${view.leaderId ?? "(none)"} while forwarding`;
      } else if (now >= p.attemptDeadline) {
        why = `leader ${p.to} did not answer a forwarded write in time`;
      }
      if (why === undefined) continue;
      this.pending.delete(id);
      p.resolve({ kind: "unanswered", why });
    }
    this.stopPollerIfIdle();
  }

  private stopPollerIfIdle(): void {
    if (this.pending.size === 0 && this.poller !== undefined) {
      clearInterval(this.poller);
      this.poller = undefined;
    }
  }

  /** A ForwardResponse from `from`. */
  handleResponse(from: string, r: WireForwardResponse): void {
    if (r.session !== this.session) return;
    const id = r.id;
    if (typeof id !== "number" || !Number.isSafeInteger(id)) return;
    const p = this.pending.get(id);
    if (!p || p.to !== from) return;
    this.pending.delete(id);
    this.stopPollerIfIdle();
    if (r.error && (r.error.code ?? "") !== "") {
      p.resolve({ kind: "error", error: errorFromWire(r.error) });
      return;
    }
    const revision = r.revision ?? 0;
    const count = r.count ?? 0;
    const index = r.index ?? 0;
    if (![revision, count, index].every((n) => Number.isSafeInteger(n) && n >= 0)) {
      p.resolve({ kind: "unanswered", why: `leader ${from} sent a malformed answer` });
      return;
    }
    p.resolve({ kind: "ok", result: { revision, count, index } });
  }

  /** A ForwardRequest from follower `from`: propose it here and answer. */
  handleRequest(from: string, r: WireForwardRequest): void {
    const answer = (body: Omit<WireForwardResponse, "id" | "session">) => {
      this.count("received", body.error?.code ?? "ok");
      try {
        this.opts.send(from, { forward_response: { id: r.id, session: r.session, ...body } });
      } catch (err) {
        this.opts.log.warn("cannot answer a forwarded write", { to: from, error: String(err) });
      }
    };
    if (typeof r.id !== "number" || !Number.isSafeInteger(r.id) || !r.session) {
      this.opts.log.warn("forwarded write without id or session dropped", { from });
      return;
    }
    if (this.closed) {
      answer({ error: errorToWire(new KvError("SHUTTING_DOWN", "the leader is shutting down")) });
      return;
    }
    let command: Command;
    try {
      command = decodeCommand(r.command ?? new Uint8Array(0));
      if (command.type === "timeAdvance") {
        throw new KvError("INVALID_ARGUMENT", "time is advanced by the leader only");
      }
    } catch (err) {
      const e =
        err instanceof KvError
          ? err
          : new KvError("MALFORMED_FRAME", `cannot decode a forwarded command: ${String(err)}`);
      answer({ error: errorToWire(e) });
      return;
    }
    if (this.serving >= this.maxServing) {
      answer({
        error: errorToWire(
          new KvError("TIMEOUT", `leader ${this.opts.id} is serving too many forwarded writes`),
        ),
      });
      return;
    }
    this.serving++;
    this.opts
      .proposeHere(command)
      .then(
        (result) => answer(result),
        (err) => answer({ error: errorToWire(asKvError(err)) }),
      )
      .finally(() => {
        this.serving--;
      });
  }

  /** Fails waiting sends; later submits fail with SHUTTING_DOWN. */
  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) {
      p.resolve({ kind: "unanswered", why: "the node is shutting down" });
    }
    this.pending.clear();
    this.stopPollerIfIdle();
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

function isDefinite(e: KvError): boolean {
  return !NOT_PROPOSED.has(e.code) && !RETRY_UNKNOWN.has(e.code);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function asKvError(err: unknown): KvError {
  if (err instanceof KvError) return err;
  return new KvError("INTERNAL", (err as Error)?.message ?? String(err));
}

export function errorToWire(e: KvError): WireError {
  const d: NonNullable<WireError["details"]> = {};
  if (e.details.currentRevision !== undefined) d.current_revision = e.details.currentRevision;
  if (e.details.firstRevision !== undefined) d.first_revision = e.details.firstRevision;
  if (e.details.lastRevision !== undefined) d.last_revision = e.details.lastRevision;
  if (e.details.leaderId !== undefined) d.leader_id = e.details.leaderId;
  return { code: e.code, message: e.message, details: d };
}

export function errorFromWire(w: WireError): KvError {
  const code = w.code ?? "";
  const details: KvErrorDetails = {};
  const d = w.details ?? {};
  const revision = (n: number | undefined) =>
    typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  const current = revision(d.current_revision);
  const first = revision(d.first_revision);
  const last = revision(d.last_revision);
  if (current !== undefined) details.currentRevision = current;
  if (first !== undefined) details.firstRevision = first;
  if (last !== undefined) details.lastRevision = last;
  if (d.leader_id) details.leaderId = d.leader_id;
  if (!isErrorCode(code)) {
    return new KvError(
      "INTERNAL",
      `the leader answered an unknown error code ${JSON.stringify(code)}: ${w.message ?? ""}`,
    );
  }
  return new KvError(code, w.message ?? code, details);
}
