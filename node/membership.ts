/**
 * Membership of the Raft group, on the leader (DESIGN.md: single-server changes):
 * leadership transfer, adding a node (as a learner, promoted once it has caught up) and
 * removing one. Waits are driver events and the caller's deadline, never polls.
 */
import { KvError } from "../proto/index.js";
import { type Clock, timeoutAt } from "./clock.js";
import type { PeerAddress } from "./config.js";
import type { CallOptions } from "./kv_service.js";
import type { LeaderProposer, RaftKvDriver } from "./leader_proposer.js";
import { bracketedHost } from "./peer_address.js";

/** `host:port`, `[v6]:port` for an IPv6 host (what parsePeerAddress reads back). */
export function formatPeerAddress(p: PeerAddress): string {
  return `${bracketedHost(p.host)}:${p.port}`;
}

/** How long `add` waits for a learner to catch up when the client gives no deadline. */
const ADD_DEFAULT_TIMEOUT_MS = 60_000;

export interface MembershipOptions {
  id: string;
  driver: RaftKvDriver;
  proposer: LeaderProposer;
  clock: Clock;
  /**
   * A member's peer address given to `add`: known to the peer transport before the node
   * is added, so Raft can reach it at once (a pending addition until the add ends).
   */
  onPeerAddress?: (peer: PeerAddress) => void;
}

export class Membership {
  constructor(private readonly opts: MembershipOptions) {}

  /** Hands leadership to voter `to`; resolves once it leads. */
  async transfer(to: string, call: CallOptions = {}): Promise<void> {
    const s = this.opts.proposer.requireLeader();
    if (!s.conf.voters.includes(to)) {
      throw new KvError("INVALID_ARGUMENT", `${JSON.stringify(to)} is not a voter of this cluster`);
    }
    // The driver gives up after three election timeouts; the caller may wait less.
    await timeoutAt(
      this.opts.clock,
      this.opts.driver.transferLeadership(to),
      call.deadlineMs,
      `the transfer of leadership to ${to}`,
    );
  }

  /**
   * Adds `peer` as a learner, then promotes it once its match index reaches the commit
   * index (the core refuses a promotion earlier). Repeating it after a TIMEOUT
   * continues: a learner is only promoted, a voter is left as it is.
   */
  async add(peer: PeerAddress, call: CallOptions = {}): Promise<void> {
    const { id } = peer;
    const s = this.opts.proposer.requireLeader();
    if (s.conf.voters.includes(id)) return;
    // Dialable before Raft sends the learner anything; every member (this one included)
    // records the address when the entry that carries it commits.
    this.opts.onPeerAddress?.(peer);
    const deadlineMs = call.deadlineMs ?? this.opts.clock.now() + ADD_DEFAULT_TIMEOUT_MS;
    if (!s.conf.learners.includes(id)) {
      const context = new TextEncoder().encode(formatPeerAddress(peer));
      await timeoutAt(
        this.opts.clock,
        this.opts.driver.addLearner(id, context),
        deadlineMs,
        `adding ${id}`,
      );
    }
    await this.caughtUp(id, deadlineMs);
    if (this.opts.driver.status().conf.voters.includes(id)) return;
    await timeoutAt(this.opts.clock, this.opts.driver.promote(id), deadlineMs, `promoting ${id}`);
  }

  /** Removes voter or learner `id`; resolves once the change is committed and applied here. */
  async remove(id: string, call: CallOptions = {}): Promise<void> {
    const s = this.opts.proposer.requireLeader();
    if (!s.conf.voters.includes(id) && !s.conf.learners.includes(id)) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `${JSON.stringify(id)} is not a member of this cluster`,
      );
    }
    if (s.conf.voters.length === 1 && s.conf.voters[0] === id) {
      throw new KvError("INVALID_ARGUMENT", `${id} is the last voter; it cannot be removed`);
    }
    // A leader that removed itself then hands over and steps down (raft/core.ts).
    await timeoutAt(
      this.opts.clock,
      this.opts.driver.removeServer(id),
      call.deadlineMs,
      `the removal of ${id}`,
    );
  }

  /**
   * On shutdown: hands leadership to the most up-to-date other voter, so the cluster
   * does not wait an election timeout. Bounded by `timeoutMs`; a no-op for a lone node.
   */
  async transferAway(timeoutMs: number): Promise<string | undefined> {
    const s = this.opts.driver.status();
    if (s.role !== "leader") return undefined;
    const others = s.conf.voters.filter((id) => id !== this.opts.id);
    if (others.length === 0) return undefined;
    others.sort((a, b) => (s.progress[b]?.match ?? 0) - (s.progress[a]?.match ?? 0));
    const to = others[0]!;
    await timeoutAt(
      this.opts.clock,
      this.opts.driver.transferLeadership(to),
      this.opts.clock.now() + timeoutMs,
      `leadership moving to ${to}`,
    );
    return to;
  }

  /**
   * Resolves once learner `id` has caught up with the commit index, re-checked at every
   * driver round; TIMEOUT at `deadlineMs`, NOT_LEADER if leadership is lost meanwhile.
   */
  private caughtUp(id: string, deadlineMs: number): Promise<void> {
    const { driver, proposer, clock } = this.opts;
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: unknown) => {
        if (done) return;
        done = true;
        unsubscribe();
        cancelTimer();
        if (err === undefined) resolve();
        else reject(err);
      };
      const check = (): void => {
        let now: ReturnType<LeaderProposer["requireLeader"]>;
        try {
          now = proposer.requireLeader();
        } catch (err) {
          finish(err);
          return;
        }
        if (now.conf.voters.includes(id)) finish();
        else if (!now.conf.learners.includes(id)) {
          finish(new KvError("INVALID_ARGUMENT", `${id} left the cluster while being added`));
        } else if ((now.progress[id]?.match ?? 0) >= now.commitIndex) finish();
      };
      const unsubscribe = driver.subscribe(check);
      const cancelTimer = clock.after(Math.max(0, deadlineMs - clock.now()), () => {
        const s = driver.status();
        finish(
          new KvError(
            "TIMEOUT",
            `${id} is a learner and still catching up (match ${s.progress[id]?.match ?? 0} of ${s.commitIndex}); run add again to promote it`,
          ),
        );
      });
      check();
    });
  }
}
