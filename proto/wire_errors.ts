/**
 * A `KvError` on the wire, one mapping for both ports: the client protocol's `Error`
 * (proto/client.proto) and the peer port's `PeerError` (proto/peer.proto) have the same
 * fields and numbers, so one shape and one rule serve both.
 *
 * The rule for what arrives: the code decides. An unknown code becomes INTERNAL with the
 * code in the text; a detail that is not what it claims (a revision that is not a safe
 * integer >= 0, an empty leader id) is dropped and the error kept, because an error
 * answer is still the answer even when a detail is unusable. Browser-safe: imports
 * errors.ts only.
 */
import { isErrorCode, KvError, type KvErrorDetails } from "./errors.js";

/** ErrorDetails / PeerErrorDetails as protobufjs objects carry them. */
export interface WireErrorDetails {
  current_revision?: number;
  first_revision?: number;
  last_revision?: number;
  leader_id?: string;
}

/** Error (client.proto) / PeerError (peer.proto) as protobufjs objects carry them. */
export interface WireError {
  code?: string;
  message?: string;
  details?: WireErrorDetails | null;
}

export function errorToWire(e: KvError): WireError {
  const d: WireErrorDetails = {};
  if (e.details.currentRevision !== undefined) d.current_revision = e.details.currentRevision;
  if (e.details.firstRevision !== undefined) d.first_revision = e.details.firstRevision;
  if (e.details.lastRevision !== undefined) d.last_revision = e.details.lastRevision;
  if (e.details.leaderId !== undefined) d.leader_id = e.details.leaderId;
  return { code: e.code, message: e.message, details: d };
}

export function errorFromWire(w: WireError): KvError {
  const rawCode = typeof w.code === "string" ? w.code : "";
  const text = typeof w.message === "string" ? w.message : "";
  const d: WireErrorDetails = w.details ?? {};
  const details: KvErrorDetails = {};
  const current = revisionOrUndefined(d.current_revision);
  const first = revisionOrUndefined(d.first_revision);
  const last = revisionOrUndefined(d.last_revision);
  if (current !== undefined) details.currentRevision = current;
  if (first !== undefined) details.firstRevision = first;
  if (last !== undefined) details.lastRevision = last;
  if (typeof d.leader_id === "string" && d.leader_id !== "") details.leaderId = d.leader_id;
  if (!isErrorCode(rawCode)) {
    return new KvError("INTERNAL", `unknown error code ${JSON.stringify(rawCode)}: ${text}`);
  }
  return new KvError(rawCode, text || rawCode, details);
}

function revisionOrUndefined(n: unknown): number | undefined {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
