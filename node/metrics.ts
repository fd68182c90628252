/**
 * The node's Prometheus metrics (`/metrics`), all prefixed `streamkv_`. One registry per
 * node so several nodes can live in one process (tests) without clashing.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { ForwardStats } from "./forwarding.js";
import type { NodeStatus } from "./kv_service.js";
import { STREAMKV_VERSION } from "./version.js";

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
  readonly kvOps: Counter<"op" | "result">;
  readonly kvOpSeconds: Histogram<"op">;
  readonly watchers: Gauge;
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

  constructor(status: () => NodeStatus, forwarding?: () => ForwardingView) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "streamkv_" });
    this.kvOps = new Counter({
      name: "streamkv_kv_ops_total",
      help: "KV requests by operation and result (ok or error code)",
      labelNames: ["op", "result"],
      registers,
    });
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
    new Gauge({
      name: "streamkv_buckets",
      help: "Buckets on this node",
      registers,
      collect() {
        this.set(status().buckets.length);
      },
    });
  }
}
