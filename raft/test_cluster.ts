/**
 * A synchronous in-memory cluster of bare cores for the core's unit tests
 * (etcd-io/raft's rafttest network): messages queue until the test delivers
 * them, links can be cut, and every delivered message is written to a
 * transcript in the canonical text form, so a failing test reads as a story.
 */
import { applyConfChange, type RaftConfig, RaftCore } from "./core.js";
import { describeMessage } from "./describe.js";
import { MemoryRaftStorage } from "./memory_storage.js";
import { Sfc32 } from "./prng.js";
import { type ConfState, type Entry, EntryType, type NodeId } from "./storage.js";
import type { Message, ReadState } from "./types.js";

export interface TestNode {
  id: NodeId;
  core: RaftCore;
  storage: MemoryRaftStorage;
  /** Data of applied Normal entries, in order (the toy state machine). */
  applied: string[];
  appliedIndex: number;
  reads: ReadState[];
  /** Leader: the image streamed to each follower (the core sends chunks without bytes). */
  images: Map<NodeId, Uint8Array>;
  /** Follower: chunks of the snapshot being received. */
  received: Uint8Array[];
}

export type TestConfig = Partial<Omit<RaftConfig, "id" | "storage" | "prng">>;

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered. */
  queue: Message[] = [];
  readonly transcript: string[] = [];
  private readonly cut = new Set<string>();
  private seed = 1;

  constructor(
    ids: NodeId[],
    private readonly config: TestConfig = {},
  ) {
    const conf: ConfState = { voters: [...ids], learners: [] };
    for (const id of ids) this.addNode(id, conf);
  }

  addNode(id: NodeId, conf: ConfState): TestNode {
    const storage = new MemoryRaftStorage({ initialConf: conf, applyConfChange });
    return this.start(id, storage, [], 0);
  }

  private start(id: NodeId, storage: MemoryRaftStorage, applied: string[], appliedIndex: number) {
    const node: TestNode = {
      id,
      core: undefined as unknown as RaftCore,
      storage,
      applied,
      appliedIndex,
      reads: [],
      images: new Map(),
      received: [],
    };
    node.core = new RaftCore({
      electionTimeoutTicks: 10,
      heartbeatTicks: 1,
      ...this.config,
      id,
      storage,
      prng: new Sfc32(this.seed++),
      appliedIndex,
      snapshotProvider: (to, minIndex) => {
        if (node.appliedIndex < minIndex) return null;
        node.images.set(to, new TextEncoder().encode(node.applied.join(",")));
        return node.appliedIndex;
      },
    });
    this.nodes.set(id, node);
    return node;
  }

  /** Restarts a node from its storage and state machine (everything persisted survives). */
  restart(id: NodeId): void {
    const n = this.node(id);
    this.queue = this.queue.filter((m) => m.to !== id);
    this.start(id, n.storage, n.applied, n.appliedIndex);
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Drops every message between a and b, both ways. */
  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}|${b}`);
    this.cut.add(`${b}|${a}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cutLink(id, other);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Processes every node's Ready: persist, queue messages, apply, advance. */
  processReady(): boolean {
    let any = false;
    for (const n of this.nodes.values()) {
      while (n.core.hasReady()) {
        any = true;
        const rd = n.core.ready();
        for (const c of rd.snapshotChunks) {
          if (c.offset === 0) n.received = [];
          n.received.push(c.data);
          // Stored at once here; the core acknowledges what the driver stored.
          n.core.snapshotStored(c.meta, c.offset + c.data.byteLength, c.done);
        }
        if (rd.snapshot) {
          n.applied = new TextDecoder()
            .decode(Buffer.concat(n.received))
            .split(",")
            .filter((s) => s !== "");
          n.received = [];
          n.appliedIndex = rd.snapshot.meta.index;
        }
        void n.storage.persist({
          ...(rd.hardState ? { hardState: rd.hardState } : {}),
          ...(rd.entries.length > 0 ? { entries: rd.entries } : {}),
          ...(rd.snapshot ? { snapshot: rd.snapshot.meta } : {}),
        });
        // Persisted at once here, so early and late messages leave together.
        for (const m of rd.earlyMessages) this.queue.push(this.fillSnapshotChunk(n, m));
        for (const m of rd.messages) this.queue.push(this.fillSnapshotChunk(n, m));
        for (const e of rd.committed) this.applyEntry(n, e);
        for (const r of rd.readStates) n.reads.push(r);
        n.core.advance(rd);
      }
    }
    return any;
  }

  /** What the driver does for a MsgSnap: reads the chunk's bytes from the image. */
  private fillSnapshotChunk(n: TestNode, m: Message): Message {
    if (m.type !== "MsgSnap" || !m.snapshot) return m;
    const image = n.images.get(m.to) ?? new Uint8Array(0);
    const chunkBytes = this.config.snapshotChunkBytes ?? 256 * 1024;
    const end = Math.min(m.snapshot.offset + chunkBytes, image.byteLength);
    return {
      ...m,
      snapshot: {
        ...m.snapshot,
        data: image.subarray(m.snapshot.offset, end),
        done: end === image.byteLength,
      },
    };
  }

  private applyEntry(n: TestNode, e: Entry): void {
    if (e.index <= n.appliedIndex) return;
    if (e.type === EntryType.Normal) n.applied.push(new TextDecoder().decode(e.data));
    n.appliedIndex = e.index;
  }

  /** Delivers queued messages (those matching `filter`, default all); returns how many. */
  deliver(filter: (m: Message) => boolean = () => true): number {
    const now = this.queue;
    this.queue = [];
    let count = 0;
    for (const m of now) {
      if (!filter(m)) {
        this.queue.push(m);
        continue;
      }
      if (this.cut.has(`${m.from}|${m.to}`) || !this.nodes.has(m.to)) {
        this.transcript.push(`DROP ${describeMessage(m)}`);
        continue;
      }
      this.transcript.push(describeMessage(m));
      this.node(m.to).core.step(m);
      count++;
    }
    return count;
  }

  /** Processes readies and delivers messages until nothing moves (bounded). */
  stabilize(roundsMax = 200): void {
    for (let i = 0; i < roundsMax; i++) {
      const worked = this.processReady();
      const delivered = this.deliver();
      if (!worked && delivered === 0 && this.queue.length === 0) return;
    }
    throw new Error(`cluster did not stabilize in ${roundsMax} rounds`);
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.node(id).core.tick();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const n of this.nodes.values()) n.core.tick();
  }

  /** Campaigns on `id` and stabilizes; returns the transcript lines this produced. */
  elect(id: NodeId): string[] {
    const from = this.transcript.length;
    this.node(id).core.campaign();
    this.stabilize();
    return this.transcript.slice(from);
  }

  propose(id: NodeId, value: string): { index: number; term: number } {
    return this.node(id).core.propose(new TextEncoder().encode(value));
  }

  leader(): NodeId | null {
    for (const n of this.nodes.values()) if (n.core.status().role === "leader") return n.id;
    return null;
  }

  /** Transcript since line `from`, keeping only lines that contain one of `types`. */
  since(from: number, ...types: string[]): string[] {
    return this.transcript
      .slice(from)
      .filter((l) => types.length === 0 || types.some((t) => l.includes(t)));
  }
}
