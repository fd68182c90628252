/**
 * The SDK's side of the client protocol: the shared codec (proto/client_codec.ts, which
 * the server uses too) plus the mapping to the SDK's public types where they differ
 * (`ttl` instead of the wire's `ttlMs`). Browser-safe like the codec.
 */

import {
  type CodecBucketStatus,
  clusterStatusFromWire as codecClusterStatusFromWire,
  configToWire as codecConfigToWire,
  statusFromWire as codecStatusFromWire,
  type WireObject,
} from "../proto/client_codec.js";
import type { ClusterStatus, KeyValueConfig, KeyValueStatus } from "./types.js";

export {
  bytesOf,
  decodeServerFrame,
  encodeClientFrame,
  entryFromWire,
  errorFromWire,
  PROTOCOL_VERSION,
  safeInt,
  type WireObject,
  WriteOp,
} from "../proto/client_codec.js";

export function configToWire(c: KeyValueConfig): WireObject {
  const { ttl, ...rest } = c;
  return codecConfigToWire(ttl === undefined ? rest : { ...rest, ttlMs: ttl });
}

export function statusFromWire(w: WireObject): KeyValueStatus {
  const { ttlMs, ...rest }: CodecBucketStatus = codecStatusFromWire(w);
  return { ...rest, ttl: ttlMs };
}

export function clusterStatusFromWire(w: WireObject): ClusterStatus {
  const s = codecClusterStatusFromWire(w);
  return { ...s, clusterId: s.clusterId ?? "" };
}
