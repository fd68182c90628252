/**
 * The node's Prometheus metrics (`/metrics`), all prefixed `streamkv_`. One registry per
 * node so several nodes can live in one process (tests) without clashing.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { BucketLabels } from "./bucket_labels.js";
import type { DiskUsage } from "./disk_usage.js";
import type { ForwardStats } from "./forwarding.js";
import type { NodeStatus } from "./kv_service.js";
import type { ProposalStats } from "./leader_proposer.js";
import type { ReplicaObserver } from "./replica_observer.js";
import type { ScrubStats } from "./scrub.js";
import { STREAMKV_VERSION } from "./version.js";

/** Replication as the leader sees it, proposals and watch queues (RaftKvService.replicaView). */
export interface ReplicaView {
  /** Empty unless this node leads. */
  followers: Array<{ id: string; lagEntries: number }>;
  proposals: ProposalStats;
  watchQueue: { total: number; max: number };
}

/** Where the scrape-time values beyond the status come from (each optional: tests). */
export interface MetricsSources {
  replica?: () => ReplicaView;
  diskUsage?: () => DiskUsage;
  /** The background scrub's counts (node/scrub.ts); undefined while none runs. */
  scrub?: () => ScrubStats | undefined;
  /** Distinct `bucket` label values before the rest are `_other` (default 100). */
  maxBucketLabels?: number;
}

/**
 * Members shown in the follower lag series: a cluster has 3 or 5, a change adds one;
 * the bound only matters if something went wrong with membership.
 */
const FOLLOWER_LABELS_MAX = 16;
/** Raft persist and apply latency: from a fast SSD's fsync to a disk in trouble. */
const DISK_SECONDS_BUCKETS = [
  0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
];

/** Write forwarding as the metrics read it (node/forwarding.ts). */
export interface ForwardingView {
  stats: ForwardStats;
  /** Writes this node is forwarding to the leader now. */
  inFlight: number;
  /** Forwarded writes this node proposes for followers now. */
  serving: number;
}

export class NodeMetrics {
  readonly registry = new Registry();
  readonly kvOps: Counter<"bucket" | "op" | "result">;
  readonly bucketLabels: BucketLabels;
  /** Handed to the replica (node/replica_observer.ts). */
  readonly observer: ReplicaObserver;
  readonly kvOpSeconds: Histogram<"op">;
  readonly watchers: Gauge;
  /** 1 while the node is halted because its data directory is full (node/disk_full.ts). */
  readonly diskFull: Gauge;
  /** 1 once the node stopped serving and voting on damaged data (node/scrub.ts). */
  readonly dataCorrupt: Gauge;
  readonly clientConnections: Gauge;
  readonly clientFrames: Counter<"direction">;
  readonly clientBytes: Counter<"direction">;
  readonly badFrames: Counter<"port" | "code">;
  readonly authFailures: Counter<"port">;
  readonly peerConnections: Gauge;
  readonly peerMessages: Counter<"direction" | "result">;
  readonly peerBytes: Counter<"direction">;
  readonly peerReconnects: Counter;
  readonly peerMessagesDropped: Counter<"reason">;
  readonly peerSocketsRefused: Counter<"reason">;
  /** What the client port holds unsent (set by the ClientServer that owns the budget). */
  clientBufferedBytes: () => number = () => 0;

  constructor(
    status: () => NodeStatus,
    forwarding?: () => ForwardingView,
    sources: MetricsSources = {},
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "streamkv_" });
    this.bucketLabels = new BucketLabels(sources.maxBucketLabels);
    this.kvOps = new Counter({
      name: "streamkv_kv_ops_total",
      help: `KV requests by bucket (the first ${this.bucketLabels.max} buckets seen in a successful request, the rest "_other", "" for none), operation and result (ok or error code)`,
      labelNames: ["bucket", "op", "result"],
      registers,
    });
    this.observer = this.replicaMetrics(registers, sources);
    this.kvOpSeconds = new Histogram({
      name: "streamkv_kv_op_seconds",
      help: "KV request latency at the client port",
      labelNames: ["op"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    // One series per process: the labels are this build's, never a client's.
    new Gauge({
      name: "streamkv_build_info",
      help: "Always 1; the labels say which streamkv version runs on which Node.js",
      labelNames: ["version", "node_version"],
      registers,
    }).set({ version: STREAMKV_VERSION, node_version: process.version }, 1);
    this.watchers = new Gauge({ name: "streamkv_watchers", help: "Open watches", registers });
    this.diskFull = new Gauge({
      name: "streamkv_disk_full",
      help: "1 while the node serves nothing because its data directory is full (every request answers DISK_FULL); it serves again by itself once space is freed",
      registers,
    });
    this.diskFull.set(0);
    this.dataCorrupt = new Gauge({
      name: "streamkv_data_corrupt",
      help: "1 once the node found damage in its data files while it ran and stopped serving and voting (every request answers CORRUPT_RECORD, a restart refuses): reset the member",
      registers,
    });
    this.dataCorrupt.set(0);
    const buffered = () => this.clientBufferedBytes();
    new Gauge({
      name: "streamkv_client_buffered_bytes",
      help: "Bytes the client port holds for its clients: frames not yet flushed plus answers reserved by requests in flight (the node-wide budget, --node-max-buffered-bytes)",
      registers,
      collect() {
        this.set(buffered());
      },
    });
    this.clientConnections = new Gauge({
      name: "streamkv_client_connections",
      help: "Open client connections",
      registers,
    });
    this.clientFrames = new Counter({
      name: "streamkv_client_frames_total",
      help: "Client-port frames",
      labelNames: ["direction"],
      registers,
    });
    this.clientBytes = new Counter({
      name: "streamkv_client_bytes_total",
      help: "Client-port frame bytes",
      labelNames: ["direction"],
      registers,
    });
    this.badFrames = new Counter({
      name: "streamkv_bad_frames_total",
      help: "Frames refused (connection closed) by port and error code",
      labelNames: ["port", "code"],
      registers,
    });
    this.authFailures = new Counter({
      name: "streamkv_auth_failures_total",
      help: "Requests refused for a missing or wrong token (client hello, HTTP) or client certificate (TLS handshake)",
      labelNames: ["port"],
      registers,
    });
    this.peerConnections = new Gauge({
      name: "streamkv_peer_connections",
      help: "Open peer connections (both directions)",
      registers,
    });
    this.peerMessages = new Counter({
      name: "streamkv_peer_messages_total",
      help: "Raft messages on the peer port (sent, received, dropped)",
      labelNames: ["direction", "result"],
      registers,
    });
    this.peerBytes = new Counter({
      name: "streamkv_peer_bytes_total",
      help: "Peer-port frame bytes",
      labelNames: ["direction"],
      registers,
    });
    this.peerReconnects = new Counter({
      name: "streamkv_peer_reconnects_total",
      help: "Peer connection attempts after a loss",
      registers,
    });
    this.peerMessagesDropped = new Counter({
      name: "streamkv_peer_messages_dropped_total",
      help: "Peer messages received and dropped: not_member (the sender is no voter, learner or pending addition), malformed",
      labelNames: ["reason"],
      registers,
    });
    this.peerSocketsRefused = new Counter({
      name: "streamkv_peer_sockets_refused_total",
      help: "Inbound peer sockets refused or closed: unauthorized, hello_timeout, socket_cap, pending_cap, tls_name, client_hello (a client at the peer port)",
      labelNames: ["reason"],
      registers,
    });
    new Gauge({
      name: "streamkv_raft_protocol_violations",
      help: "Raft messages dropped because a member broke Raft (two leaders in a term, a conflict with committed entries); 0 in a healthy cluster",
      registers,
      collect() {
        this.set(status().raftViolations ?? 0);
      },
    });
    const roles = ["leader", "follower", "candidate", "learner", "unknown"];
    new Gauge({
      name: "streamkv_raft_term",
      help: "Current Raft term",
      registers,
      collect() {
        this.set(status().term);
      },
    });
    new Gauge({
      name: "streamkv_raft_commit_index",
      help: "Raft commit index",
      registers,
      collect() {
        this.set(status().commitIndex);
      },
    });
    new Gauge({
      name: "streamkv_raft_applied_index",
      help: "Index of the last entry applied to the KV state",
      registers,
      collect() {
        this.set(status().appliedIndex);
      },
    });
    new Gauge({
      name: "streamkv_raft_role",
      help: "1 for this node's current role",
      labelNames: ["role"],
      registers,
      collect() {
        const role = status().role;
        for (const r of roles) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new Gauge({
      name: "streamkv_raft_has_leader",
      help: "1 when this node knows a leader",
      registers,
      collect() {
        this.set(status().leader === "" ? 0 : 1);
      },
    });
    new Gauge({
      name: "streamkv_raft_snapshot_index",
      help: "Index of the newest snapshot on this node (log compacted to it, or installed)",
      registers,
      collect() {
        this.set(status().snapshot?.index ?? 0);
      },
    });
    // Counters whose values live in the Raft driver: copied in at each scrape.
    const snapshotCounters: Array<
      [string, string, "sent" | "installed" | "failed" | "compactions"]
    > = [
      ["streamkv_raft_snapshots_sent_total", "Snapshot transfers sent as leader", "sent"],
      ["streamkv_raft_snapshots_installed_total", "Snapshots installed as follower", "installed"],
      ["streamkv_raft_snapshots_failed_total", "Snapshot transfers abandoned", "failed"],
      ["streamkv_raft_log_compactions_total", "Compactions of the Raft log", "compactions"],
    ];
    for (const [name, help, field] of snapshotCounters) {
      new Counter({
        name,
        help,
        registers,
        collect() {
          const value = status().snapshot?.[field] ?? 0;
          this.reset();
          if (value > 0) this.inc(value);
        },
      });
    }
    if (forwarding) {
      const byResult = (name: string, help: string, kind: keyof ForwardStats) =>
        new Counter({
          name,
          help,
          labelNames: ["result"],
          registers,
          collect() {
            this.reset();
            for (const [result, n] of forwarding().stats[kind]) this.inc({ result }, n);
          },
        });
      byResult(
        "streamkv_forwards_sent_total",
        "Writes sent to the leader by this node, per send, by outcome (ok, an error code, unanswered, not_sent)",
        "sent",
      );
      byResult(
        "streamkv_forwards_received_total",
        "Forwarded writes this node served as leader, by result (ok or an error code)",
        "received",
      );
      new Gauge({
        name: "streamkv_forwards_in_flight",
        help: "Writes forwarded from this node awaiting the leader's answer",
        registers,
        collect() {
          this.set(forwarding().inFlight);
        },
      });
      new Gauge({
        name: "streamkv_forwards_serving",
        help: "Forwarded writes this node is proposing for followers",
        registers,
        collect() {
          this.set(forwarding().serving);
        },
      });
    }
    if (sources.diskUsage) diskMetrics(registers, sources.diskUsage);
    if (sources.scrub) scrubMetrics(registers, sources.scrub);
    new Gauge({
      name: "streamkv_buckets",
      help: "Buckets on this node",
      registers,
      collect() {
        this.set(status().buckets.length);
      },
    });
  }

  /** Counts one KV request; `bucket` is "" for requests that name none. */
  countOp(op: string, bucket: string, result: string): void {
    this.kvOps.inc({ bucket: this.bucketLabels.labelOf(bucket, result === "ok"), op, result });
  }

  /** Raft series fed by the replica as it works, and the ones read from it at a scrape. */
  private replicaMetrics(registers: Registry[], sources: MetricsSources): ReplicaObserver {
    const leaderChanges = new Counter({
      name: "streamkv_raft_leader_changes_total",
      help: "Leaders this node came to know (a new leader after an election, or after none was known)",
      registers,
    });
    const persistSeconds = new Histogram({
      name: "streamkv_raft_persist_seconds",
      help: "Time to make a Raft Ready durable: one synced LevelDB write (the fsync; concurrent Readies share one by group commit)",
      buckets: DISK_SECONDS_BUCKETS,
      registers,
    });
    const applySeconds = new Histogram({
      name: "streamkv_raft_apply_seconds",
      help: "Time to apply a batch of committed entries to the KV state (one atomic LevelDB batch)",
      buckets: DISK_SECONDS_BUCKETS,
      registers,
    });
    const appliedEntries = new Counter({
      name: "streamkv_raft_applied_entries_total",
      help: "Committed entries applied to the KV state on this node",
      registers,
    });
    const snapshotSeconds = new Histogram({
      name: "streamkv_raft_snapshot_seconds",
      help: "Snapshot transfers: send = a leader's image open for a follower, install = a follower's receive and synced install",
      labelNames: ["kind"],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    // Six series read it: one reading serves the whole scrape (it walks the watchers).
    const replica = sources.replica && recentFor(SCRAPE_MS, sources.replica);
    if (replica) {
      new Gauge({
        name: "streamkv_raft_follower_lag_entries",
        help: `On the leader: entries each follower lacks (last index - match index), at most ${FOLLOWER_LABELS_MAX} followers; absent on followers`,
        labelNames: ["peer"],
        registers,
        collect() {
          this.reset();
          for (const f of replica().followers.slice(0, FOLLOWER_LABELS_MAX)) {
            this.set({ peer: f.id }, f.lagEntries);
          }
        },
      });
      new Gauge({
        name: "streamkv_raft_proposals_pending",
        help: "Proposals made by this node as leader, not yet applied nor failed",
        registers,
        collect() {
          this.set(replica().proposals.pending);
        },
      });
      const proposalCounter = (name: string, help: string, field: "committed" | "failed") =>
        new Counter({
          name,
          help,
          registers,
          collect() {
            const value = replica().proposals[field];
            this.reset();
            if (value > 0) this.inc(value);
          },
        });
      proposalCounter(
        "streamkv_raft_proposals_committed_total",
        "Proposals made by this node as leader and applied (a refused compare-and-set included)",
        "committed",
      );
      proposalCounter(
        "streamkv_raft_proposals_failed_total",
        "Proposals made by this node as leader that were never applied (lost leadership, timeout, too many in flight, shutdown)",
        "failed",
      );
      new Gauge({
        name: "streamkv_watch_queue_entries",
        help: "Entries queued on this node for its watchers, all watchers together",
        registers,
        collect() {
          this.set(replica().watchQueue.total);
        },
      });
      new Gauge({
        name: "streamkv_watch_queue_max_entries",
        help: "Entries queued for the watcher that is furthest behind (at --watch-max-pending it ends SLOW_CONSUMER)",
        registers,
        collect() {
          this.set(replica().watchQueue.max);
        },
      });
    }
    return {
      persisted: (seconds) => persistSeconds.observe(seconds),
      applied: (seconds, entries) => {
        applySeconds.observe(seconds);
        appliedEntries.inc(entries);
      },
      leaderChanged: (leader) => {
        if (leader !== null) leaderChanges.inc();
      },
      snapshotTransfer: (kind, seconds) => snapshotSeconds.observe({ kind }, seconds),
    };
  }
}

/** How long one reading of the replica serves the series of a scrape. */
const SCRAPE_MS = 100;

/** `read`, called at most once per `ms`: later calls within it get the same value. */
function recentFor<T>(ms: number, read: () => T): () => T {
  let last: { at: number; value: T } | undefined;
  return () => {
    const now = performance.now();
    if (last === undefined || now - last.at >= ms) last = { at: now, value: read() };
    return last.value;
  };
}

/** The data directory's size and its file system's room (node/disk_usage.ts). */
function diskMetrics(registers: Registry[], usage: () => DiskUsage): void {
  const gauges: Array<[string, string, (u: DiskUsage) => number]> = [
    [
      "streamkv_data_dir_bytes",
      "Bytes of the files under --data (LevelDB: Raft log and stream log), measured at most every 10 s",
      (u) => u.dataDirBytes,
    ],
    ["streamkv_disk_size_bytes", "Size of the file system that holds --data", (u) => u.fsSizeBytes],
    [
      "streamkv_disk_available_bytes",
      "Bytes still available to the node on the file system that holds --data",
      (u) => u.fsAvailableBytes,
    ],
  ];
  for (const [name, help, read] of gauges) {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read(usage()));
      },
    });
  }
}

function scrubMetrics(registers: Registry[], stats: () => ScrubStats | undefined): void {
  const counters: Array<[string, string, (s: ScrubStats) => number]> = [
    [
      "streamkv_scrub_verified_bytes_total",
      "Bytes of LevelDB tables the background scrub read and verified (every block's CRC)",
      (s) => s.verifiedBytes,
    ],
    [
      "streamkv_scrub_verified_tables_total",
      "LevelDB tables the background scrub verified whole",
      (s) => s.verifiedTables,
    ],
    [
      "streamkv_scrub_corruptions_total",
      "Damaged files the background scrub found (the node then stops serving and voting)",
      (s) => s.corruptions,
    ],
  ];
  for (const [name, help, read] of counters) {
    new Counter({
      name,
      help,
      registers,
      collect() {
        const s = stats();
        this.reset();
        if (s !== undefined && read(s) > 0) this.inc(read(s));
      },
    });
  }
  new Gauge({
    name: "streamkv_scrub_last_cycle_completed_seconds",
    help: "Unix time at which the background scrub last finished verifying every live table (0 before the first cycle, or with --scrub-bytes-per-second 0)",
    registers,
    collect() {
      const at = stats()?.lastCycleCompletedMs;
      this.set(at === undefined ? 0 : at / 1000);
    },
  });
}
