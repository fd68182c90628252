/**
 * A streamkv bucket seen as the JetStream stream `KV_<bucket>` a NATS KV client expects:
 * the stream config and info JSON of nats-server (server/stream.go StreamConfig and
 * StreamInfo field names), and the reverse, a stream config a client sends turned into a
 * bucket config or refused with the reason. Only the KV shape is served: one subject
 * `$KV.<bucket>.>`, limits retention, discard new.
 */
import type { BucketConfigInput, Entry } from "../kvapi/index.js";
import { isValidBucketName } from "../kvapi/index.js";
import type { BucketInfo } from "../proto/index.js";
import { JS_ERRORS, type JsApiError } from "./js_errors.js";

export const KV_STREAM_PREFIX = "KV_";

/** nats-server's duplicate window for a KV bucket without a TTL (2 minutes). */
const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
const NS_PER_MS = 1_000_000;
/** Go's zero time.Time, which nats-server reports for "never". */
export const ZERO_TIME = "0001-01-01T00:00:00Z";

export function bucketOfStreamName(stream: string): string | undefined {
  if (!stream.startsWith(KV_STREAM_PREFIX)) return undefined;
  const bucket = stream.slice(KV_STREAM_PREFIX.length);
  return isValidBucketName(bucket) ? bucket : undefined;
}

export function kvSubject(bucket: string, key: string): string {
  return `$KV.${bucket}.${key}`;
}

export function streamConfigOf(b: BucketInfo): Record<string, unknown> {
  const ttlNs = b.ttlMs * NS_PER_MS;
  return {
    name: `${KV_STREAM_PREFIX}${b.bucket}`,
    ...(b.description === "" ? {} : { description: b.description }),
    subjects: [`$KV.${b.bucket}.>`],
    retention: "limits",
    max_consumers: -1,
    max_msgs: -1,
    max_bytes: b.maxBytes,
    max_age: ttlNs,
    max_msgs_per_subject: b.history,
    max_msg_size: b.maxValueSize,
    discard: "new",
    storage: "file",
    num_replicas: b.replicas,
    duplicate_window:
      (b.ttlMs > 0 ? Math.min(b.ttlMs, DEFAULT_DUPLICATE_WINDOW_MS) : DEFAULT_DUPLICATE_WINDOW_MS) *
      NS_PER_MS,
    sealed: false,
    deny_delete: true,
    deny_purge: false,
    allow_rollup_hdrs: true,
    allow_direct: true,
    mirror_direct: false,
    compression: "none",
  };
}

export function streamInfoOf(b: BucketInfo, consumers: number): Record<string, unknown> {
  const others = b.replicaNodes.filter((n) => n !== b.leader);
  return {
    config: streamConfigOf(b),
    created: ZERO_TIME,
    state: {
      messages: b.values,
      bytes: b.bytes,
      first_seq: b.firstRevision,
      first_ts: ZERO_TIME,
      last_seq: b.lastRevision,
      last_ts: ZERO_TIME,
      consumer_count: consumers,
    },
    cluster: {
      name: "streamkv",
      leader: b.leader,
      replicas: others.map((name) => ({ name, current: true, active: 0 })),
    },
    ts: new Date().toISOString(),
  };
}

const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;

/**
 * The bucket config a STREAM.CREATE body asks for, or the error nats-server-speaking
 * clients understand. Settings streamkv has no equivalent for are refused by name, not
 * silently dropped.
 */
export function bucketConfigOf(
  bucket: string,
  sc: Record<string, unknown>,
): BucketConfigInput | JsApiError {
  const name = sc.name;
  if (name !== undefined && name !== `${KV_STREAM_PREFIX}${bucket}`) {
    return JS_ERRORS.streamMismatch();
  }
  const subjects = sc.subjects;
  const want = `$KV.${bucket}.>`;
  if (
    subjects !== undefined &&
    !(Array.isArray(subjects) && subjects.length === 1 && subjects[0] === want)
  ) {
    return JS_ERRORS.invalidConfig(
      `streamkv serves KV buckets only: stream ${KV_STREAM_PREFIX}${bucket} must have the one subject ${want}`,
    );
  }
  const unsupported: string[] = [];
  const present = (k: string) => sc[k] !== undefined && sc[k] !== null;
  for (const k of ["mirror", "sources", "republish", "subject_transform", "consumer_limits"]) {
    if (present(k)) unsupported.push(k);
  }
  if (sc.retention !== undefined && sc.retention !== "limits") unsupported.push("retention");
  if (sc.allow_msg_ttl === true) unsupported.push("allow_msg_ttl");
  if ((num(sc.subject_delete_marker_ttl) ?? 0) > 0) unsupported.push("subject_delete_marker_ttl");
  if (sc.compression !== undefined && sc.compression !== "none") unsupported.push("compression");
  if (sc.sealed === true) unsupported.push("sealed");
  if ((num(sc.max_msgs) ?? -1) > 0) unsupported.push("max_msgs");
  const placement = sc.placement as { cluster?: unknown; tags?: unknown } | undefined;
  if (
    placement &&
    ((typeof placement.cluster === "string" && placement.cluster !== "") ||
      (Array.isArray(placement.tags) && placement.tags.length > 0))
  ) {
    unsupported.push("placement");
  }
  if (unsupported.length > 0) {
    return JS_ERRORS.invalidConfig(
      `streamkv does not support ${unsupported.join(", ")} on a KV stream`,
    );
  }
  const history = num(sc.max_msgs_per_subject) ?? 1;
  const maxAgeNs = num(sc.max_age) ?? 0;
  const maxValue = num(sc.max_msg_size) ?? -1;
  const maxBytes = num(sc.max_bytes) ?? -1;
  const replicas = num(sc.num_replicas) ?? 0;
  const config: BucketConfigInput = {
    bucket,
    history: history <= 0 ? 1 : history,
    // Nanoseconds to milliseconds, rounded up so a short TTL does not become "never".
    ttlMs: maxAgeNs <= 0 ? 0 : Math.ceil(maxAgeNs / NS_PER_MS),
    maxValueSize: maxValue <= 0 ? -1 : maxValue,
    maxBytes: maxBytes <= 0 ? -1 : maxBytes,
    // Every bucket lives on every voter: 1 (the clients' default) means "the cluster's".
    replicas: replicas <= 1 ? 0 : replicas,
  };
  if (typeof sc.description === "string" && sc.description !== "") {
    config.description = sc.description;
  }
  return config;
}

/** The headers nats-server stores with a KV message of this operation. */
export function entryHeaders(e: Entry): [string, string][] {
  if (e.operation === "DEL") return [["KV-Operation", "DEL"]];
  if (e.operation === "PURGE") {
    return [
      ["KV-Operation", "PURGE"],
      ["Nats-Rollup", "sub"],
    ];
  }
  return [];
}

/** Nanoseconds since the epoch as a decimal string (too large for a double). */
export function nanosOf(d: Date): string {
  return (BigInt(d.getTime()) * 1_000_000n).toString();
}
