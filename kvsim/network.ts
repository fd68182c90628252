/**
 * The KV simulator's network between nodes: Raft messages as the bytes the peer port
 * carries, and forwarded writes as the PeerFrame body the peer port encodes (decoded
 * again at the receiver, through node/'s own edge decoder). Links drop, duplicate,
 * reorder and delay by the seed; partitions and islands cut them.
 */
import { type ForwardFrame, forwardFromWire, forwardToWire } from "../node/index.js";
import { chance, intBetween, type Prng, pick } from "../raft/index.js";
import type { EventQueue } from "../raft/sim/event_queue.js";
import type { FaultFamily, Swarm } from "./swarm.js";

/** What the network needs of the cluster. */
export interface NetworkHost {
  /** Whether fault family `f` is on in the current phase. */
  on(f: FaultFamily): boolean;
  /** Hands over a Raft message; false when the node is down (dropped). */
  deliverRaft(from: string, to: string, data: Uint8Array): void;
  deliverForward(from: string, to: string, frame: ForwardFrame): void;
  /** Virtual ms until which `id` is paused (deliveries wait). */
  pausedUntilMs(id: string): number;
  fail(violation: string): void;
  count(fault: string): void;
}

interface Island {
  members: Set<string>;
  untilMs: number;
}

export class SimNetwork {
  /** Directed links that drop everything ("a|b": a cannot reach b). */
  private readonly blocked = new Set<string>();
  private islands: Island[] = [];
  messages = 0;

  constructor(
    private readonly events: EventQueue,
    private readonly prng: Prng,
    private readonly swarm: Swarm,
    private readonly host: NetworkHost,
  ) {}

  linkDown(from: string, to: string): boolean {
    if (this.blocked.has(`${from}|${to}`)) return true;
    const now = this.events.nowMs;
    for (const i of this.islands) {
      if (i.untilMs > now && i.members.has(from) !== i.members.has(to)) return true;
    }
    return false;
  }

  sendRaft(from: string, to: string, data: Uint8Array): void {
    // The sender may reuse its buffer: what travels is a copy, as on a socket.
    const copy = data.slice();
    this.transmit(from, to, () => this.host.deliverRaft(from, to, copy));
  }

  /** False when the sender's queue is "full" (the forwarder must cope: not sent). */
  sendForward(from: string, to: string, frame: ForwardFrame): boolean {
    if (this.host.on("forward_drops") && chance(this.prng, this.swarm.forwardDropP)) {
      this.host.count("forward_not_sent");
      return false;
    }
    const wire = forwardToWire(frame);
    this.transmit(from, to, () => {
      let decoded: ForwardFrame;
      try {
        decoded = forwardFromWire(wire);
      } catch (err) {
        this.host.fail(`a forward frame ${from}->${to} did not decode: ${String(err)}`);
        return;
      }
      this.host.deliverForward(from, to, decoded);
    });
    return true;
  }

  private transmit(from: string, to: string, deliver: () => void): void {
    this.messages++;
    if (this.linkDown(from, to)) return;
    if (this.host.on("loss") && chance(this.prng, this.swarm.lossP)) return;
    const copies = this.host.on("duplication") && chance(this.prng, this.swarm.dupP) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay =
        1 + (this.host.on("reordering") ? intBetween(this.prng, 0, this.swarm.delayMsMax) : 0);
      if (this.host.on("slow_links") && chance(this.prng, this.swarm.slowLinkP)) {
        delay += intBetween(this.prng, 40, this.swarm.slowLinkMsMax);
      }
      this.events.after(delay, () => this.arrive(from, to, deliver));
    }
  }

  private arrive(from: string, to: string, deliver: () => void): void {
    if (this.linkDown(from, to)) return;
    const paused = this.host.pausedUntilMs(to);
    if (this.events.nowMs < paused) {
      this.events.at(paused, () => this.arrive(from, to, deliver));
      return;
    }
    deliver();
  }

  heal(): void {
    this.blocked.clear();
    this.islands = [];
  }

  /** Cuts `members` off from everyone else for `durationMs`. */
  isolate(members: string[], durationMs: number): void {
    const now = this.events.nowMs;
    this.islands = this.islands.filter((i) => i.untilMs > now);
    this.islands.push({ members: new Set(members), untilMs: now + durationMs });
  }

  /** A new partition of one of four shapes (or a heal) among `ids`. */
  partition(ids: string[]): void {
    this.blocked.clear();
    const kind = intBetween(this.prng, 0, 4);
    const side = new Set(ids.filter(() => chance(this.prng, 0.5)));
    const cut = (a: string, b: string) => this.blocked.add(`${a}|${b}`);
    if (kind === 0) {
      this.host.count("heal");
    } else if (kind === 1) {
      this.host.count("partition_symmetric");
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) cut(a, b);
    } else if (kind === 2) {
      this.host.count("partition_asymmetric");
      for (const a of ids) for (const b of ids) if (side.has(a) && !side.has(b)) cut(a, b);
    } else if (kind === 3) {
      this.host.count("partition_bridge");
      const bridge = pick(this.prng, ids);
      for (const a of ids) {
        for (const b of ids) {
          if (a !== bridge && b !== bridge && side.has(a) !== side.has(b)) cut(a, b);
        }
      }
    } else {
      this.host.count("partition_isolate");
      const lonely = pick(this.prng, ids);
      for (const b of ids) {
        if (b === lonely) continue;
        cut(lonely, b);
        cut(b, lonely);
      }
    }
  }
}
