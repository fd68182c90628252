/**
 * `KvService` on Raft: every write is a kvapi command proposed through this node's
 * replica (node/replica.ts: forwarder -> leader proposer -> Raft driver) and applied by
 * kvapi when committed; reads are linearizable through ReadIndex unless `stale`; watches
 * are served from this node's applied log. One LevelDB per node holds the Raft log
 * (prefix `r!`) and the stream log (prefix `log/`).
 *
 * A single node is a one-voter Raft group (leader of itself). With `--peers`, Raft
 * messages travel over the peer transport and the group elects and replicates; a
 * follower forwards writes to the leader (node/forwarding.ts).
 */
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import {
  type BucketStatus,
  bucketOfStream,
  type Entry as KvEntry,
  type NodeLimits,
  normalizeBucketConfig,
  streamOf,
  type UnstampedCommand,
  validateKey,
  valueLimitBytes,
} from "../kvapi/index.js";
import { LOG_SNAPSHOT_FORMAT, StreamLog, verifyLevelDbFiles } from "../log/index.js";
import { KvError, type SnapshotHeader } from "../proto/index.js";
import {
  decodeMessage,
  type Prng,
  type RaftStorage,
  type RaftTicker,
  Sfc32,
} from "../raft/index.js";
import { openNodeRaftStorage } from "../raftstore/index.js";
import { BackupImages, type FrozenImage, type ImageChunk } from "./backup_images.js";
import { type Cancel, type Clock, systemClock, withDeadline } from "./clock.js";
import type { PeerAddress } from "./config.js";
import type { ForwardFrame } from "./forward_wire.js";
import type {
  BucketConfigInput,
  BucketInfo,
  CallOptions,
  HistoryPage,
  KeysPage,
  KvService,
  NodeStatus,
  Readiness,
  ReadOptions,
  ServiceWatch,
  WatchOptions,
  WriteRequest,
} from "./kv_service.js";
import { type ContactView, LeaderContact } from "./leader_contact.js";
import type { Logger } from "./log.js";
import { Membership } from "./membership.js";
import type { ForwardingView, ReplicaView } from "./metrics.js";
import { isValidNodeId, parsePeerAddress } from "./peer_address.js";
import { encodingSender, Replica, type ReplicaOptions } from "./replica.js";
import type { ReplicaObserver } from "./replica_observer.js";
import { STREAMKV_VERSION } from "./version.js";

/** Default age of markers removed by purgeDeletes (as nats.js: 30 minutes). */
const DEFAULT_PURGE_DELETES_OLDER_THAN_MS = 30 * 60 * 1000;
/** How long `/readyz` waits for its ReadIndex round. */
const READINESS_TIMEOUT_MS = 1000;

/** The stores a node runs on, opened by the caller (see `RaftKvService.onStores`). */

/**
 * Key bytes in one page of `keysPage`: 10,000 keys of up to 1 KiB would not fit a client
 * frame (DEFAULT_MAX_FRAME_BYTES), so a page also ends after this many bytes.
 */
const KEYS_PAGE_MAX_BYTES = 256 * 1024;
export interface NodeStores {
  streamLog: StreamLog;
  /** The Raft log and hard state. */
  storage: RaftStorage;
  /** Closes what both sit on (the LevelDB), after they are closed. */
  close(): Promise<void>;
}

export interface RaftServiceOptions extends RaftServiceStoreOptions {
  /** The node's data directory: its LevelDB lives in `db/` under it. */
  dataDir: string;
}

/** Everything but where the stores live (`onStores`). */
export interface RaftServiceStoreOptions {
  id: string;
  /** The initial cluster (this node included). */
  peers: PeerAddress[];
  log: Logger;
  /** Sends an encoded Raft message to a peer (best effort). */
  send: (to: string, data: Uint8Array) => void;
  /** Called when the node must stop (a failed write, a Raft assertion). */
  onFatal: (err: unknown) => void;
  /** Wall clock by default. */
  clock?: Clock;
  /** Raft's randomness (election timeouts); seeded from the id and the time by default. */
  prng?: Prng;
  /** Raft core tuning (the simulator varies it). */
  core?: ReplicaOptions["core"];
  /** Deliberately broken behaviour: only checker tests set it (the KV simulator; STREAMKV_UNSAFE_TEST_FAULT). */
  unsafe?: ReplicaOptions["unsafe"];
  /** Told persist/apply durations, snapshot transfers and leader changes (metrics). */
  observer?: ReplicaObserver;
  /** Raft tick length (default 50 ms). */
  tickMs?: number;
  electionTimeoutTicks?: number;
  heartbeatTicks?: number;
  /** How long a read waits for a leader to be elected before NO_LEADER (default 3 s). */
  leaderWaitMs?: number;
  /**
   * A node out of touch with a working leader for longer than this ends its watches with
   * NO_LEADER, so their clients move to another node (default two election timeouts).
   */
  watchLeaderTimeoutMs?: number;
  /** How often the leader advances the TTL clock when a bucket has a ttl (default 1 s). */
  ttlTickMs?: number;
  /** Applied entries between Raft log compactions (default 10000; see compactor.ts). */
  snapshotEntries?: number;
  /** Node-wide quotas (--max-buckets, --max-stored-bytes), stamped by the leader. */
  limits?: NodeLimits;
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
   * A member's peer address given to `addServer`: known to the peer transport before
   * the node is added, so Raft can reach it at once (not yet recorded in peers.json).
   */
  onPeerAddress?: (peer: PeerAddress) => void;
  /**
   * A committed membership change carried a member's address: record it (peers.json)
   * and dial it. With `--peers`, the only source of peer addresses.
   */
  onMemberAddress?: (peer: PeerAddress) => void;
}

/** Raft's logical time on the clock: one tick every `tickMs`. */
function clockTicker(clock: Clock, tickMs: number): RaftTicker {
  let cancel: (() => void) | undefined;
  return {
    start: (onTick) => {
      cancel = clock.every(tickMs, onTick);
    },
    stop: () => cancel?.(),
  };
}

function seedOf(id: string, nowMs: number): number {
  let h = nowMs >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class RaftKvService implements KvService {
  private closing = false;
  private readonly addresses: Map<string, string>;
  /** Members' client URLs (bounded by the members: only members' hellos are kept). */
  private readonly clientUrls = new Map<string, string>();
  private readonly membership: Membership;
  private readonly clock: Clock;
  /** Nodes being added here (`addServer`): their messages are taken before they are learners. */
  private readonly pendingAdditions = new Set<string>();

  private readonly streamLog: StreamLog;
  /** Images that backups read (`streamkv snapshot save`). */
  private readonly backups: BackupImages;
  private readonly contact: LeaderContact;
  private cancelContactCheck: Cancel | undefined;

  private constructor(
    private readonly opts: RaftServiceStoreOptions,
    private readonly stores: NodeStores,
    private readonly replica: Replica,
  ) {
    this.streamLog = stores.streamLog;
    this.clock = opts.clock ?? systemClock;
    this.backups = new BackupImages({ clock: this.clock });
    const tickMs = opts.tickMs ?? 50;
    this.contact = new LeaderContact(
      opts.id,
      opts.watchLeaderTimeoutMs ?? 2 * (opts.electionTimeoutTicks ?? 10) * tickMs,
      // Elapsed time, not the wall clock: a clock stepped back must not stretch "in touch".
      this.clock.elapsedMs(),
    );
    this.addresses = new Map(opts.peers.map((p) => [p.id, `${p.host}:${p.port}`]));
    this.membership = new Membership({
      id: opts.id,
      driver: replica.driver,
      proposer: replica.proposer,
      clock: this.clock,
      onPeerAddress: (peer) => {
        this.opts.onPeerAddress?.(peer);
        this.addresses.set(peer.id, `${peer.host}:${peer.port}`);
      },
    });
  }

  /** Opens the node's LevelDB under `dataDir` (Raft log and stream log) and starts on it. */
  static async open(opts: RaftServiceOptions): Promise<RaftKvService> {
    const dbDir = join(opts.dataDir, "db");
    // Before LevelDB opens it: its recovery would drop a damaged WAL record silently
    // (log/leveldb_files.ts). A damaged file stops the start with CORRUPT_RECORD.
    const verified = await verifyLevelDbFiles(dbDir);
    opts.log.info("LevelDB files verified", { files: verified.files, bytes: verified.bytes });
    const db = new ClassicLevel<Uint8Array | string, Uint8Array>(dbDir, {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    await db.open();
    let streamLog: StreamLog | undefined;
    let storage: RaftStorage | undefined;
    try {
      streamLog = await StreamLog.open(db);
      const { index, ms } = streamLog.opened;
      // The checkpoint a clean stop writes spares the scan of every message (log/README.md).
      if (index.from === "scan" && index.rejectedCheckpoint !== undefined) {
        opts.log.warn("stream log index checkpoint not used; rebuilt by a full scan", {
          reason: index.rejectedCheckpoint,
          ms,
        });
      } else {
        opts.log.info("stream log opened", { index: index.from, ms });
      }
      // A joining node starts outside any group: the leader's log brings its membership.
      storage = await openNodeRaftStorage(db, {
        voters: opts.join ? [] : opts.peers.map((p) => p.id),
        learners: [],
      });
    } catch (err) {
      await streamLog?.close().catch(() => {});
      await db.close().catch(() => {});
      throw err;
    }
    return RaftKvService.onStores(opts, { streamLog, storage, close: () => db.close() });
  }

  /**
   * Starts on stores the caller opened: production's LevelDB (`open`), or the KV
   * simulator's memory-level and simulated Raft disk (kvsim/). On failure the stores
   * are closed.
   */
  static async onStores(opts: RaftServiceStoreOptions, stores: NodeStores): Promise<RaftKvService> {
    const clock = opts.clock ?? systemClock;
    const { streamLog, storage } = stores;
    try {
      const replica = await Replica.open({
        id: opts.id,
        streamLog,
        storage,
        ticker: clockTicker(clock, opts.tickMs ?? 50),
        prng: opts.prng ?? new Sfc32(seedOf(opts.id, clock.now())),
        clock,
        log: opts.log,
        sendRaft: encodingSender(opts.send, opts.log),
        sendForward: (to, frame) => opts.sendForward?.(to, frame) ?? false,
        onFatal: opts.onFatal,
        electionTimeoutTicks: opts.electionTimeoutTicks ?? 10,
        heartbeatTicks: opts.heartbeatTicks ?? 1,
        writeTimeoutMs: opts.writeTimeoutMs ?? opts.leaderWaitMs ?? 4000,
        ...(opts.snapshotEntries === undefined ? {} : { snapshotEntries: opts.snapshotEntries }),
        ...(opts.limits === undefined ? {} : { limits: opts.limits }),
        ...(opts.maxForwardsInFlight === undefined
          ? {}
          : { maxForwardsInFlight: opts.maxForwardsInFlight }),
        ...(opts.ttlTickMs === undefined ? {} : { ttlTickMs: opts.ttlTickMs }),
        ...(opts.core === undefined ? {} : { core: opts.core }),
        ...(opts.unsafe === undefined ? {} : { unsafe: opts.unsafe }),
        ...(opts.observer === undefined ? {} : { observer: opts.observer }),
        onMemberAddress: (id, address) => {
          const parsed = parsePeerAddress(address);
          if (!isValidNodeId(id) || "error" in parsed) {
            opts.log.warn("a membership change carried an unusable address", { id, address });
            return;
          }
          if (id === opts.id) return;
          opts.onMemberAddress?.({ id, host: parsed.host, port: parsed.port });
        },
      });
      const service = new RaftKvService(opts, stores, replica);
      replica.start();
      service.cancelContactCheck = clock.every(opts.tickMs ?? 50, () =>
        service.checkLeaderContact(),
      );
      return service;
    } catch (err) {
      await storage.close().catch(() => {});
      await streamLog.close().catch(() => {});
      await stores.close().catch(() => {});
      throw err;
    }
  }

  private get kv() {
    return this.replica.kv;
  }

  private get driver() {
    return this.replica.driver;
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
    this.contact.heard(from, this.clock.elapsedMs());
    const before = this.driver.violationCount();
    this.driver.receive(m);
    if (this.driver.violationCount() > before) {
      // A member broke Raft (two leaders in a term, a conflict with our commit): dropped,
      // counted (streamkv_raft_protocol_violations), and told to the operator.
      this.opts.log.error("raft message from a member that broke raft dropped", {
        from,
        what: this.driver.status().violations.last,
      });
    }
  }

  /**
   * Whether the peer port takes Raft messages, ReadIndex and forwarded writes from `id`:
   * a voter or learner of the latest configuration in the log, a node this leader is
   * adding, or, while this node is not a member itself (it was started with --join and
   * waits for the leader), the members named in its --peers.
   */
  isPeerMember(id: string): boolean {
    const conf = this.driver.status().conf;
    if (conf.voters.includes(id) || conf.learners.includes(id)) return true;
    if (this.pendingAdditions.has(id)) return true;
    const self = this.opts.id;
    if (!conf.voters.includes(self) && !conf.learners.includes(self)) {
      return this.opts.peers.some((p) => p.id === id);
    }
    return false;
  }

  /** A forwarded write or its answer from a peer, decoded at the edge (forward_wire.ts). */
  receiveForward(from: string, frame: ForwardFrame): void {
    if (!this.closing) this.replica.receiveForward(from, frame);
  }

  /**
   * Proposes one command through the forwarder: here when this node leads, else at the
   * leader (retried across leader changes with the same request id). A forwarded result
   * is the leader's: this node may not have applied it yet.
   */
  private propose(command: UnstampedCommand, deadlineMs?: number) {
    if (this.closing) throw new KvError("SHUTTING_DOWN", "the node is shutting down");
    return this.replica.forwarder.submit(command, deadlineMs);
  }

  /** `command` with the client's request id, when it has one. */
  private withRequest<C extends UnstampedCommand>(command: C, requestId: string | undefined): C {
    // Object.assign, not a spread: a spread of many-shaped commands is V8's slow clone.
    return requestId === undefined
      ? command
      : Object.assign({}, command, { request: { id: requestId } });
  }

  /** Linearizable unless stale: waits until this node applied the leader's commit index. */
  private async read(opts: ReadOptions): Promise<void> {
    if (this.closing) throw new KvError("SHUTTING_DOWN", "the node is shutting down");
    if (opts.stale) return;
    await this.replica.proposer.waitForLeader(this.clock.now() + (this.opts.leaderWaitMs ?? 3000));
    await this.driver.readIndex();
  }

  private info(s: BucketStatus): BucketInfo {
    const state = this.streamLog.state(streamOf(s.bucket));
    const status = this.driver.status();
    return {
      ...s,
      firstRevision: state.firstSeq,
      lastRevision: state.lastSeq,
      leader: status.leaderId ?? "",
      // Every bucket is on every voter of the one group: the truth now, also after a
      // membership change, whatever `replicas` the bucket was created with.
      replicas: status.conf.voters.length,
      replicaNodes: [...status.conf.voters],
      valueLimitBytes: valueLimitBytes(s),
    };
  }

  async createBucket(
    config: BucketConfigInput,
    requestId: string,
    opts: CallOptions = {},
  ): Promise<BucketInfo> {
    // replicas: judged at apply against the voter count the leader stamps.
    const full = normalizeBucketConfig(config);
    const { forwarded } = await this.propose(
      this.withRequest({ type: "createBucket", config: full }, requestId),
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
    await this.propose(
      this.withRequest({ type: "deleteBucket", bucket }, requestId),
      opts.deadlineMs,
    );
  }

  async listBuckets(opts: ReadOptions): Promise<BucketInfo[]> {
    await this.read(opts);
    return this.kv.listBuckets().map((s) => this.info(s));
  }

  async write(r: WriteRequest): Promise<number> {
    return (await this.propose(writeCommand(r), r.deadlineMs)).revision;
  }

  largestValueBytes(bucket: string): number | undefined {
    return this.kv.largestValueBytes(bucket);
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
    let bytes = 0;
    // Resumes after the previous page's last key (a binary search in kvapi), not from the start.
    for await (const k of this.kv.listKeys(bucket, filter, { startAfter: after })) {
      if (keys.length >= limit || bytes >= KEYS_PAGE_MAX_BYTES) return { keys, done: false };
      keys.push(k);
      bytes += Buffer.byteLength(k);
    }
    return { keys, done: true };
  }

  async history(bucket: string, key: string, opts: ReadOptions): Promise<KvEntry[]> {
    validateKey(key);
    await this.read(opts);
    return this.kv.history(bucket, key);
  }

  async historyPage(
    bucket: string,
    key: string,
    afterRevision: number,
    opts: ReadOptions & { maxBytes: number },
  ): Promise<HistoryPage> {
    validateKey(key);
    await this.read(opts);
    return this.kv.historyPage(bucket, key, afterRevision, opts.maxBytes);
  }

  /** This node's Raft role as leader_contact.ts judges it. */
  private contactView(s = this.driver.status()): ContactView {
    return { role: s.role, leaderId: s.leaderId, voters: s.conf.voters };
  }

  /** Ends every watch once this node lost touch with a leader: they move elsewhere. */
  private checkLeaderContact(): void {
    if (this.closing || this.kv.watcherCount() === 0) return;
    const status = this.driver.status();
    const view = this.contactView(status);
    if (this.contact.inTouch(view, this.clock.elapsedMs())) return;
    this.contact.forgetAllBut([...status.conf.voters, ...status.conf.learners]);
    this.kv.endWatches(this.outOfTouchError(view));
  }

  /** NO_LEADER naming how long this node has been out of touch (`view`: contactView()). */
  private outOfTouchError(view: ContactView): KvError {
    const ms = this.contact.outOfTouchMs(view, this.clock.elapsedMs());
    return new KvError(
      "NO_LEADER",
      `node ${this.opts.id} has not been in touch with a leader for ${ms} ms (limit ${this.contact.timeoutMs} ms); watch from another node`,
    );
  }

  async watch(bucket: string, filter: string, opts: WatchOptions): Promise<ServiceWatch> {
    // A node cut off from the leader could only serve an old state: the client moves on.
    const view = this.contactView();
    if (!this.contact.inTouch(view, this.clock.elapsedMs())) throw this.outOfTouchError(view);
    // Caught up with the leader's commit first (ReadIndex), so a watch started after an
    // acknowledged write has it among its initial values on every node, as a read would.
    await this.read({ stale: false });
    const w = this.kv.watch(bucket, filter, opts);
    // kvapi's boundary B, fixed when the watch started: initial entries are <= B, live
    // ones > B, so a client resuming an updatesOnly watch from B + 1 misses nothing.
    return {
      next: () => w.next(),
      takeReady: () => w.takeReady(),
      stop: () => w.stop(),
      initRevision: w.boundaryRevision,
      catchUp: w.catchUp,
      progressRevision: () => w.progressRevision(),
    };
  }

  async purgeDeletes(
    bucket: string,
    olderThanMs: number | undefined,
    requestId: string,
    opts: CallOptions = {},
  ): Promise<number> {
    const r = await this.propose(
      this.withRequest(
        {
          type: "purgeDeletes",
          bucket,
          olderThanMs: olderThanMs ?? DEFAULT_PURGE_DELETES_OLDER_THAN_MS,
        },
        requestId,
      ),
      opts.deadlineMs,
    );
    return r.count;
  }

  /** Write forwarding counts and gauges (metrics). */
  forwarding(): ForwardingView {
    const f = this.replica.forwarder;
    return {
      stats: f.forwardStats(),
      inFlight: f.forwardsInFlight(),
      serving: f.forwardsServing(),
    };
  }

  /** What every log line carries (node/log.ts withFields); cheap: no bucket list. */
  termAndRole(): { term: number; role: string } {
    const s = this.driver.status();
    return { term: s.term, role: s.role };
  }

  /** Replication, proposals and watch queues as the metrics read them at a scrape. */
  replicaView(): ReplicaView {
    const s = this.driver.status();
    // Progress is the leader's: a follower knows no one's match index but its own.
    const followers =
      s.role !== "leader"
        ? []
        : Object.entries(s.progress)
            .filter(([id]) => id !== this.opts.id)
            .map(([id, p]) => ({ id, lagEntries: Math.max(0, s.lastIndex - p.match) }));
    return {
      followers,
      proposals: this.replica.proposer.proposalStats(),
      watchQueue: this.kv.watchQueueDepth(),
    };
  }

  /** Peer addresses once the ports are bound (port 0 asks the OS for one). */
  setAddress(id: string, address: string): void {
    this.addresses.set(id, address);
  }

  /** Where member `id` serves clients (its own, or as its authenticated hello said). */
  setClientUrl(id: string, url: string): void {
    this.clientUrls.set(id, url);
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
        clientUrl: this.clientUrls.get(id) ?? "",
      })),
      buckets: this.kv.listBuckets().map((b) => b.bucket),
      replicated: true,
      ...(this.opts.clusterId === undefined ? {} : { clusterId: this.opts.clusterId }),
      snapshot: this.replica.compactor.status(),
      raftViolations: s.violations.count,
    };
  }

  async transferLeadership(to: string, opts: CallOptions = {}): Promise<NodeStatus> {
    this.assertOpen();
    await this.membership.transfer(to, opts);
    return this.status();
  }

  async addServer(id: string, address: string, opts: CallOptions = {}): Promise<NodeStatus> {
    this.assertOpen();
    this.replica.proposer.requireLeader();
    const parsed = parsePeerAddress(address);
    if (!isValidNodeId(id) || "error" in parsed) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `add needs <id>=<host:port> with a real port (got ${JSON.stringify(`${id}=${address}`)})`,
      );
    }
    this.pendingAdditions.add(id);
    try {
      await this.membership.add({ id, host: parsed.host, port: parsed.port }, opts);
    } finally {
      this.pendingAdditions.delete(id);
    }
    return this.status();
  }

  async removeServer(id: string, opts: CallOptions = {}): Promise<NodeStatus> {
    this.assertOpen();
    await this.membership.remove(id, opts);
    return this.status();
  }

  async readiness(): Promise<Readiness> {
    if (this.closing) return { ready: false, reason: "shutting down" };
    const s = this.driver.status();
    if (s.leaderId === null) return { ready: false, reason: "no leader known" };
    try {
      const index = await withDeadline(
        this.clock,
        this.driver.readIndex(),
        this.clock.now() + READINESS_TIMEOUT_MS,
        () => new KvError("TIMEOUT", "read index timed out"),
      );
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
  transferLeadershipAway(timeoutMs: number): Promise<string | undefined> {
    return this.membership.transferAway(timeoutMs);
  }

  /**
   * Freezes an image of every bucket for a backup, after a ReadIndex round: it holds
   * every write acknowledged before the call (on a follower too). Read it with
   * `readSnapshot`, release it with `closeSnapshot`.
   */
  openSnapshot(): Promise<{ id: number; header: SnapshotHeader }> {
    this.assertOpen();
    return this.backups.open(() => this.freezeImage());
  }

  readSnapshot(id: number, offset: number, maxBytes: number): Promise<ImageChunk> {
    this.assertOpen();
    return this.backups.read(id, offset, maxBytes);
  }

  closeSnapshot(id: number): void {
    this.backups.close(id);
  }

  private async freezeImage(): Promise<FrozenImage> {
    await this.read({ stale: false });
    const { reader, index } = await this.replica.store.openImage();
    try {
      const buckets = (await reader.streamNames()).flatMap((s) => bucketOfStream(s) ?? []);
      const s = this.driver.status();
      const storage = this.stores.storage;
      const term =
        storage.term(index) ??
        (storage.snapshotMeta().index === index ? storage.snapshotMeta().term : s.term);
      return {
        header: {
          formatVersion: LOG_SNAPSHOT_FORMAT,
          clusterId: this.opts.clusterId ?? "",
          nodeId: this.opts.id,
          voters: [...s.conf.voters],
          learners: [...s.conf.learners],
          raftIndex: index,
          raftTerm: term,
          createdMs: this.clock.now(),
          streamkvVersion: STREAMKV_VERSION,
          buckets,
        },
        read: (offset, maxBytes) => reader.read(offset, maxBytes),
        close: () => reader.close(),
      };
    } catch (err) {
      reader.close();
      throw err;
    }
  }

  private assertOpen(): void {
    if (this.closing) throw new KvError("SHUTTING_DOWN", "the node is shutting down");
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.cancelContactCheck?.();
    this.backups.closeAll();
    await this.replica.close();
    await this.streamLog.close();
    await this.stores.storage.close();
    await this.stores.close();
  }
}

/** A client's write as the kvapi command it asks for. */
function writeCommand(r: WriteRequest): UnstampedCommand {
  const request = { id: r.requestId };
  switch (r.op) {
    case "put":
    case "create":
      return { type: r.op, bucket: r.bucket, key: r.key, value: r.value, request };
    case "update":
      return {
        type: "update",
        bucket: r.bucket,
        key: r.key,
        value: r.value,
        last: r.last ?? 0,
        request,
      };
    case "delete":
    case "purge":
      return {
        type: r.op,
        bucket: r.bucket,
        key: r.key,
        ...(r.last === undefined ? {} : { last: r.last }),
        request,
      };
  }
}
