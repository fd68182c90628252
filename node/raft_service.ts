/**
 * `KvService` on Raft: every write is a kvapi command proposed through the Raft driver
 * (raft/driver.ts) with LevelDB storage (log/raft_storage.ts) and applied by kvapi when
 * committed; reads are linearizable through ReadIndex unless `stale`; watches are served
 * from this node's applied log. One LevelDB per node holds the Raft log (prefix `r!`)
 * and the stream log (prefix `log/`).
 *
 * What is wired: a single node is a one-voter Raft group (leader of itself). With
 * `--peers`, Raft messages travel over the peer transport and the group elects and
 * replicates; a follower forwards writes to the leader (node/forwarding.ts).
 */
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import {
  type ApplyResult,
  encodeCommand,
  KvStateMachine,
  normalizeBucketConfig,
  validateKey,
} from "../kvapi/index.js";
import { streamOf } from "../kvapi/names.js";
import type { BucketStatus, Command, CommandOp, Entry as KvEntry } from "../kvapi/types.js";
import { StreamLog } from "../log/index.js";
import { LevelRaftStorage } from "../log/raft_storage.js";
import { KvError } from "../proto/errors.js";
import { decodeMessage, encodeMessage } from "../raft/codec.js";
import { applyConfChange } from "../raft/core.js";
import { RaftDriver, type RaftStateMachine, type RaftTicker } from "../raft/driver.js";
import { Sfc32 } from "../raft/prng.js";
import { type Entry, EntryType, type SnapshotMeta } from "../raft/storage.js";
import type { PeerAddress } from "./config.js";
import { Forwarder, type ForwardFrame, type ProposalResult } from "./forwarding.js";
import type {
  BucketConfigInput,
  BucketInfo,
  CallOptions,
  KeysPage,
  KvService,
  NodeStatus,
  Readiness,
  ReadOptions,
  ServiceWatch,
  WatchOptions,
  WriteRequest,
} from "./kv_service.js";
import type { Logger } from "./log.js";
import type { ForwardingView } from "./metrics.js";
import { NodeSnapshots } from "./snapshots.js";

/** Default age of markers removed by purgeDeletes (as nats.js: 30 minutes). */
const DEFAULT_PURGE_DELETES_OLDER_THAN_MS = 30 * 60 * 1000;

export interface RaftServiceOptions {
  id: string;
  dataDir: string;
  /** The initial cluster (this node included). */
  peers: PeerAddress[];
  log: Logger;
  /** Sends an encoded Raft message to a peer (best effort). */
  send: (to: string, data: Uint8Array) => void;
  /** Called when the node must stop (a failed write, a Raft assertion). */
  onFatal: (err: unknown) => void;
  /** Raft tick length (default 50 ms). */
  tickMs?: number;
  electionTimeoutTicks?: number;
  heartbeatTicks?: number;
  /** How long a write waits for a leader to be elected before NO_LEADER (default 3 s). */
  leaderWaitMs?: number;
  /** How often the leader advances the TTL clock when a bucket has a ttl (default 1 s). */
  ttlTickMs?: number;
  /** Applied entries between Raft log compactions (default 10000; see snapshots.ts). */
  snapshotEntries?: number;
  /** Sends a forwarded write or its answer to a peer; false if dropped (see forwarding.ts). */
  sendForward?: (to: string, frame: ForwardFrame) => boolean;
  /** How long a write may take, forwarding to the leader and retries included (default 4 s). */
  writeTimeoutMs?: number;
  /** Writes forwarded from this node at once (default 1024). */
  maxForwardsInFlight?: number;
  /**
   * Joins a running cluster: the Raft group starts with no members, so this node never
   * campaigns; it waits for the leader to add it as a learner (`cluster add`).
   */
  join?: boolean;
  /** Reported in status (what a joining node passes as --cluster-id). */
  clusterId?: string;
  /**
   * A member's peer address given to `addServer`: made durable and known to the peer
   * transport before the node is added, so Raft can reach it at once.
   */
  onPeerAddress?: (peer: PeerAddress) => void;
}

class IntervalTicker implements RaftTicker {
  private timer: ReturnType<typeof setInterval> | undefined;
  constructor(private readonly intervalMs: number) {}
  start(onTick: () => void): void {
    this.timer = setInterval(onTick, this.intervalMs);
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

function seedOf(id: string): number {
  let h = Date.now() >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

type Result = ApplyResult | undefined;

export class RaftKvService implements KvService {
  private closing = false;
  private lastTimestampMs: number;
  private ticking = false;
  private readonly ttlTimer: ReturnType<typeof setInterval>;
  private addresses: Map<string, string>;
  private readonly forwarder: Forwarder;
  /** Compaction and snapshot transfers (set right after construction). */
  private snapshots: NodeSnapshots | undefined;

  private constructor(
    private readonly opts: RaftServiceOptions,
    private readonly db: ClassicLevel<Uint8Array | string, Uint8Array>,
    private readonly streamLog: StreamLog,
    private readonly storage: LevelRaftStorage,
    private readonly kv: KvStateMachine,
    private readonly driver: RaftDriver<Result>,
  ) {
    this.lastTimestampMs = kv.clockMs();
    this.addresses = new Map(opts.peers.map((p) => [p.id, `${p.host}:${p.port}`]));
    this.forwarder = new Forwarder({
      id: opts.id,
      log: opts.log,
      leader: () => {
        const s = this.driver.status();
        return { isLeader: s.role === "leader", leaderId: s.leaderId, stopped: s.stopped };
      },
      proposeHere: (command) => this.proposeHere(command),
      send: (to, frame) => opts.sendForward?.(to, frame) ?? false,
      writeTimeoutMs: opts.writeTimeoutMs ?? opts.leaderWaitMs ?? 4000,
      ...(opts.maxForwardsInFlight === undefined ? {} : { maxInFlight: opts.maxForwardsInFlight }),
    });
    this.ttlTimer = setInterval(() => this.tickTtl(), opts.ttlTickMs ?? 1000);
    this.ttlTimer.unref();
  }

  static async open(opts: RaftServiceOptions): Promise<RaftKvService> {
    const db = new ClassicLevel<Uint8Array | string, Uint8Array>(join(opts.dataDir, "db"), {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    await db.open();
    let streamLog: StreamLog | undefined;
    let storage: LevelRaftStorage | undefined;
    try {
      streamLog = await StreamLog.open(db);
      storage = await LevelRaftStorage.open(db, {
        // A joining node starts outside any group: the leader's log brings its membership.
        initialConf: {
          voters: opts.join ? [] : opts.peers.map((p) => p.id),
          learners: [],
        },
        applyConfChange,
      });
      const kv = await KvStateMachine.open(streamLog);
      const snapshots = await NodeSnapshots.open(streamLog, kv, {
        log: opts.log,
        ...(opts.snapshotEntries === undefined ? {} : { snapshotEntries: opts.snapshotEntries }),
        onFatal: opts.onFatal,
      });
      // Raft's own entries (no-ops, membership) never reach kvapi; remember them here so
      // the driver and ReadIndex see every committed entry as applied.
      let appliedOther = 0;
      const applyAll = async (entries: Entry[]): Promise<Result[]> => {
        const results = await Promise.all(
          entries.map((e) =>
            e.type === EntryType.Normal
              ? // Not synced: the entry is already durable in the Raft log, which
                // replays it after a crash (kvapi dedupes by index and request id).
                kv.apply(e.index, e.data, { sync: false })
              : Promise.resolve(undefined),
          ),
        );
        const last = entries[entries.length - 1];
        if (last && last.index > appliedOther) appliedOther = last.index;
        return results;
      };
      const machine: RaftStateMachine<Result> = {
        appliedIndex: () => Math.max(kv.appliedIndex(), appliedOther),
        restoredMeta: (): SnapshotMeta => snapshots.restoredMeta(),
        apply: async (entries) => {
          try {
            return await applyAll(entries);
          } finally {
            snapshots.afterApply();
          }
        },
        snapshots,
      };
      const tickMs = opts.tickMs ?? 50;
      const driver = await RaftDriver.open<Result>({
        id: opts.id,
        storage,
        transport: {
          send: (m) => {
            try {
              opts.send(m.to, encodeMessage(m));
            } catch (err) {
              opts.log.warn("cannot send a raft message", { to: m.to, error: String(err) });
            }
          },
        },
        ticker: new IntervalTicker(tickMs),
        stateMachine: machine,
        prng: new Sfc32(seedOf(opts.id)),
        electionTimeoutTicks: opts.electionTimeoutTicks ?? 10,
        heartbeatTicks: opts.heartbeatTicks ?? 1,
        core: { preVote: true, checkQuorum: true },
        onFatal: (err) => {
          opts.log.error("raft driver stopped", { error: String((err as Error)?.stack ?? err) });
          opts.onFatal(err);
        },
      });
      const service = new RaftKvService(opts, db, streamLog, storage, kv, driver);
      snapshots.attach(driver as RaftDriver<unknown>, storage);
      service.snapshots = snapshots;
      driver.start();
      return service;
    } catch (err) {
      await storage?.close().catch(() => {});
      await streamLog?.close().catch(() => {});
      await db.close().catch(() => {});
      throw err;
    }
  }

  /** A Raft message from a peer; bad ones are dropped (the peer transport logs). */
  receive(from: string, data: Uint8Array): void {
    if (this.closing) return;
    let m: ReturnType<typeof decodeMessage>;
    try {
      m = decodeMessage(data);
    } catch (err) {
      this.opts.log.warn("bad raft message dropped", { from, error: String(err) });
      return;
    }
    if (m.from !== from || m.to !== this.opts.id) {
      this.opts.log.warn("raft message with wrong addresses dropped", {
        from,
        msgFrom: m.from,
        to: m.to,
      });
      return;
    }
    this.driver.receive(m);
  }

  /** Waits (bounded) until some node leads; throws NO_LEADER / NOT_LEADER unless it is us. */
  private async requireLeadership(): Promise<void> {
    const deadline = Date.now() + (this.opts.leaderWaitMs ?? 3000);
    while (true) {
      if (this.closing) throw new KvError("SHUTTING_DOWN", "the node is shutting down");
      const s = this.driver.status();
      if (s.stopped) throw new KvError("SHUTTING_DOWN", "the node's Raft driver has stopped");
      if (s.role === "leader") return;
      if (s.leaderId !== null) {
        throw new KvError("NOT_LEADER", `node ${this.opts.id} is not the leader`, {
          leaderId: s.leaderId,
        });
      }
      if (Date.now() >= deadline)
        throw new KvError("NO_LEADER", "no leader elected yet; retry shortly");
      await new Promise((r) => setTimeout(r, this.opts.tickMs ?? 50));
    }
  }

  /** A forwarded write or its answer from a peer (node/forwarding.ts). */
  receiveForward(from: string, frame: ForwardFrame): void {
    if ("forward_request" in frame) this.forwarder.handleRequest(from, frame.forward_request);
    else this.forwarder.handleResponse(from, frame.forward_response);
  }

  /**
   * Proposes one command here when this node leads, else through the leader
   * (forwarded, retried across leader changes with the same request id). A forwarded
   * result is the leader's: this node may not have applied it yet.
   */
  private async propose(
    op: CommandOp,
    requestId?: string,
    deadlineMs?: number,
  ): Promise<{ revision: number; count: number; forwarded: boolean }> {
    const command = {
      ...op,
      timestampMs: 0,
      ...(requestId === undefined ? {} : { request: { id: requestId } }),
    } as Command;
    return this.forwarder.submit(command, deadlineMs);
  }

  /** Proposes as the leader; resolves with the result once applied here. */
  private async proposeHere(command: Command): Promise<ProposalResult> {
    await this.requireLeadership();
    // Leader time, never going back, so every replica decides TTLs alike.
    this.lastTimestampMs = Math.max(this.lastTimestampMs, Date.now());
    const data = encodeCommand({ ...command, timestampMs: this.lastTimestampMs });
    const { index, result } = await this.driver.propose(data);
    if (result === undefined) throw new KvError("INTERNAL", "a command entry had no result");
    if (!result.ok) throw result.error;
    return { revision: result.revision, count: result.count, index };
  }

  /** Linearizable unless stale: waits until this node applied the leader's commit index. */
  private async read(opts: ReadOptions): Promise<void> {
    if (this.closing) throw new KvError("SHUTTING_DOWN", "the node is shutting down");
    if (opts.stale) return;
    const s = this.driver.status();
    if (s.leaderId === null)
      await this.requireLeadership().catch((err) => {
        if (!(err instanceof KvError && err.code === "NOT_LEADER")) throw err;
      });
    await this.driver.readIndex();
  }

  private tickTtl(): void {
    if (this.ticking || this.closing || this.driver.status().role !== "leader") return;
    if (!this.kv.listBuckets().some((b) => b.ttlMs > 0)) return;
    this.ticking = true;
    // Never forwarded: only the leader's clock advances time.
    this.proposeHere({ type: "timeAdvance", timestampMs: 0 })
      .catch((err) => this.opts.log.warn("ttl tick failed", { error: String(err) }))
      .finally(() => {
        this.ticking = false;
      });
  }

  private info(s: BucketStatus): BucketInfo {
    const state = this.streamLog.state(streamOf(s.bucket));
    const status = this.driver.status();
    return {
      ...s,
      firstRevision: state.firstSeq,
      lastRevision: state.lastSeq,
      leader: status.leaderId ?? "",
      replicaNodes: [...status.conf.voters],
    };
  }

  async createBucket(
    config: BucketConfigInput,
    requestId: string,
    opts: CallOptions = {},
  ): Promise<BucketInfo> {
    const full = normalizeBucketConfig(config, Math.min(5, this.opts.peers.length));
    const { forwarded } = await this.propose(
      { type: "createBucket", config: full },
      requestId,
      opts.deadlineMs,
    );
    // Created on the leader; this node reports it once it has applied that far.
    if (forwarded) await this.driver.readIndex();
    return this.info(this.kv.status(full.bucket));
  }

  async bucketInfo(bucket: string, opts: ReadOptions): Promise<BucketInfo> {
    await this.read(opts);
    return this.info(this.kv.status(bucket));
  }

  async deleteBucket(bucket: string, requestId: string, opts: CallOptions = {}): Promise<void> {
    // Validates the name and reports absence without a command; a follower catches up
    // with the leader first, or a bucket just created through another node looks absent.
    if (this.driver.status().role !== "leader") await this.read({ stale: false });
    this.kv.status(bucket);
    await this.propose({ type: "deleteBucket", bucket }, requestId, opts.deadlineMs);
  }

  async listBuckets(opts: ReadOptions): Promise<BucketInfo[]> {
    await this.read(opts);
    return this.kv.listBuckets().map((s) => this.info(s));
  }

  async write(r: WriteRequest): Promise<number> {
    let op: CommandOp;
    switch (r.op) {
      case "put":
      case "create":
        op = { type: r.op, bucket: r.bucket, key: r.key, value: r.value };
        break;
      case "update":
        op = { type: "update", bucket: r.bucket, key: r.key, value: r.value, last: r.last ?? 0 };
        break;
      case "delete":
      case "purge":
        op = {
          type: r.op,
          bucket: r.bucket,
          key: r.key,
          ...(r.last === undefined ? {} : { last: r.last }),
        };
        break;
    }
    return (await this.propose(op, r.requestId, r.deadlineMs)).revision;
  }

  async get(
    bucket: string,
    key: string,
    revision: number | undefined,
    opts: ReadOptions,
  ): Promise<KvEntry | null> {
    await this.read(opts);
    return revision === undefined
      ? this.kv.get(bucket, key)
      : this.kv.getRevision(bucket, key, revision);
  }

  async keysPage(
    bucket: string,
    filter: string,
    after: string,
    limit: number,
    opts: ReadOptions,
  ): Promise<KeysPage> {
    await this.read(opts);
    const keys: string[] = [];
    // Resumes after the previous page's last key (a binary search in kvapi), not from the start.
    for await (const k of this.kv.listKeys(bucket, filter, { startAfter: after })) {
      if (keys.length >= limit) return { keys, done: false };
      keys.push(k);
    }
    return { keys, done: true };
  }

  async history(bucket: string, key: string, opts: ReadOptions): Promise<KvEntry[]> {
    validateKey(key);
    await this.read(opts);
    return this.kv.history(bucket, key);
  }

  async watch(bucket: string, filter: string, opts: WatchOptions): Promise<ServiceWatch> {
    // Caught up with the leader's commit first (ReadIndex), so a watch started after an
    // acknowledged write has it among its initial values on every node, as a read would.
    await this.read({ stale: false });
    const w = this.kv.watch(bucket, filter, opts);
    // kvapi's boundary B, fixed when the watch started: initial entries are <= B, live
    // ones > B, so a client resuming an updatesOnly watch from B + 1 misses nothing.
    return { next: () => w.next(), stop: () => w.stop(), initRevision: w.boundaryRevision };
  }

  async purgeDeletes(
    bucket: string,
    olderThanMs: number | undefined,
    requestId: string,
    opts: CallOptions = {},
  ): Promise<number> {
    const r = await this.propose(
      {
        type: "purgeDeletes",
        bucket,
        olderThanMs: olderThanMs ?? DEFAULT_PURGE_DELETES_OLDER_THAN_MS,
      },
      requestId,
      opts.deadlineMs,
    );
    return r.count;
  }

  /** Write forwarding counts and gauges (metrics). */
  forwarding(): ForwardingView {
    return {
      stats: this.forwarder.forwardStats(),
      inFlight: this.forwarder.forwardsInFlight(),
      serving: this.forwarder.forwardsServing(),
    };
  }

  /** Peer addresses once the ports are bound (port 0 asks the OS for one). */
  setAddress(id: string, address: string): void {
    this.addresses.set(id, address);
  }

  status(): NodeStatus {
    const s = this.driver.status();
    const role = s.role === "precandidate" ? "candidate" : s.role;
    const voters = new Set(s.conf.voters);
    const members = [...s.conf.voters, ...s.conf.learners];
    return {
      id: this.opts.id,
      role: s.conf.learners.includes(this.opts.id) ? "learner" : role,
      term: s.term,
      leader: s.leaderId ?? "",
      commitIndex: s.commitIndex,
      appliedIndex: Math.max(this.kv.appliedIndex(), s.appliedIndex),
      peers: members.map((id) => ({
        id,
        address: this.addresses.get(id) ?? "",
        matchIndex: id === this.opts.id ? s.lastIndex : (s.progress[id]?.match ?? 0),
        voter: voters.has(id),
      })),
      buckets: this.kv.listBuckets().map((b) => b.bucket),
      replicated: true,
      ...(this.opts.clusterId === undefined ? {} : { clusterId: this.opts.clusterId }),
      ...(this.snapshots ? { snapshot: this.snapshots.status() } : {}),
    };
  }

  /** Throws NOT_LEADER (with the leader's id) / NO_LEADER / SHUTTING_DOWN unless this node leads. */
  private requireLeaderNow(): ReturnType<RaftDriver<Result>["status"]> {
    if (this.closing) throw new KvError("SHUTTING_DOWN", "the node is shutting down");
    const s = this.driver.status();
    if (s.role === "leader") return s;
    if (s.leaderId === null) throw new KvError("NO_LEADER", "no leader elected yet; retry shortly");
    throw new KvError("NOT_LEADER", `node ${this.opts.id} is not the leader (${s.leaderId} is)`, {
      leaderId: s.leaderId,
    });
  }

  /** `work`, failed with TIMEOUT at the client's deadline (the work itself goes on). */
  private async untilDeadline(work: Promise<void>, opts: CallOptions, what: string): Promise<void> {
    const deadlineMs = opts.deadlineMs;
    if (deadlineMs === undefined) return work;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new KvError("TIMEOUT", `${what} did not finish in time; it may still`)),
            Math.max(0, deadlineMs - Date.now()),
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async transferLeadership(to: string, opts: CallOptions = {}): Promise<NodeStatus> {
    const s = this.requireLeaderNow();
    if (!s.conf.voters.includes(to)) {
      throw new KvError("INVALID_ARGUMENT", `${JSON.stringify(to)} is not a voter of this cluster`);
    }
    // The driver gives up after three election timeouts; the caller may wait less.
    await this.untilDeadline(
      this.driver.transferLeadership(to),
      opts,
      `the transfer of leadership to ${to}`,
    );
    return this.status();
  }

  async addServer(id: string, address: string, opts: CallOptions = {}): Promise<NodeStatus> {
    const s = this.requireLeaderNow();
    const m = /^(.+):(\d{1,5})$/.exec(address);
    const port = m ? Number(m[2]) : 0;
    if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(id) || !m || port < 1 || port > 65535) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `add needs <id>=<host:port> with a real port (got ${JSON.stringify(`${id}=${address}`)})`,
      );
    }
    if (s.conf.voters.includes(id)) return this.status();
    const peer: PeerAddress = { id, host: m![1]!, port };
    // Durable and dialable before Raft sends the learner anything.
    this.opts.onPeerAddress?.(peer);
    this.addresses.set(id, `${peer.host}:${peer.port}`);
    const deadlineMs = opts.deadlineMs ?? Date.now() + 60_000;
    if (!s.conf.learners.includes(id)) {
      await this.untilDeadline(this.driver.addLearner(id), { deadlineMs }, `adding ${id}`);
    }
    // Promote once it has caught up with the commit index (the core refuses earlier).
    while (true) {
      const now = this.requireLeaderNow();
      if (now.conf.voters.includes(id)) return this.status();
      if (!now.conf.learners.includes(id)) {
        throw new KvError("INVALID_ARGUMENT", `${id} left the cluster while being added`);
      }
      if ((now.progress[id]?.match ?? 0) >= now.commitIndex) break;
      if (Date.now() >= deadlineMs) {
        throw new KvError(
          "TIMEOUT",
          `${id} is a learner and still catching up (match ${now.progress[id]?.match ?? 0} of ${now.commitIndex}); run add again to promote it`,
        );
      }
      await new Promise((r) => setTimeout(r, this.opts.tickMs ?? 50));
    }
    await this.untilDeadline(this.driver.promote(id), { deadlineMs }, `promoting ${id}`);
    return this.status();
  }

  async removeServer(id: string, opts: CallOptions = {}): Promise<NodeStatus> {
    const s = this.requireLeaderNow();
    if (!s.conf.voters.includes(id) && !s.conf.learners.includes(id)) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `${JSON.stringify(id)} is not a member of this cluster`,
      );
    }
    if (s.conf.voters.length === 1 && s.conf.voters[0] === id) {
      throw new KvError("INVALID_ARGUMENT", `${id} is the last voter; it cannot be removed`);
    }
    // Resolves once the ConfChange entry is committed and applied here; a leader that
    // removed itself then hands over and steps down (raft/core.ts).
    await this.untilDeadline(this.driver.removeServer(id), opts, `the removal of ${id}`);
    return this.status();
  }

  async readiness(): Promise<Readiness> {
    if (this.closing) return { ready: false, reason: "shutting down" };
    const s = this.driver.status();
    if (s.leaderId === null) return { ready: false, reason: "no leader known" };
    try {
      const index = await Promise.race([
        this.driver.readIndex(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new KvError("TIMEOUT", "read index timed out")), 1000),
        ),
      ]);
      return {
        ready: true,
        reason: `leader ${s.leaderId}; applied through the leader's commit ${index}`,
      };
    } catch (err) {
      return { ready: false, reason: (err as Error).message };
    }
  }

  /**
   * On shutdown: hands leadership to the most up-to-date other voter, so the cluster
   * does not wait an election timeout. Bounded by `timeoutMs`; a no-op for a lone node.
   */
  async transferLeadershipAway(timeoutMs: number): Promise<string | undefined> {
    const s = this.driver.status();
    if (s.role !== "leader") return undefined;
    const others = s.conf.voters.filter((id) => id !== this.opts.id);
    if (others.length === 0) return undefined;
    others.sort((a, b) => (s.progress[b]?.match ?? 0) - (s.progress[a]?.match ?? 0));
    const to = others[0]!;
    await Promise.race([
      this.driver.transferLeadership(to),
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new KvError("TIMEOUT", `leadership did not move to ${to}`)),
          timeoutMs,
        ),
      ),
    ]);
    return to;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.ttlTimer);
    this.forwarder.close();
    this.driver.stop();
    await this.snapshots?.close();
    this.kv.close();
    await this.streamLog.close();
    await this.storage.close();
    await this.db.close();
  }
}
