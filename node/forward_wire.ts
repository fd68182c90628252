/**
 * Forwarded writes on the peer port (ForwardRequest / ForwardResponse in
 * proto/peer.proto), decoded once at the edge into typed frames with every field
 * checked, so the forwarder never sees a partial or ill-typed object.
 *
 * A request whose id and session are sound but whose command is not (undecodable, a
 * time advance, a time set by the follower) still gets an answer: it decodes to a
 * `refused` frame that the leader answers with the error. Anything else malformed is
 * dropped by the transport with a log line, like a lost message (the follower's try
 * then ends unanswered and is retried).
 */
import {
  decodeUnstampedCommand,
  encodeUnstampedCommand,
  type UnstampedCommand,
} from "../kvapi/index.js";
import { errorFromWire, errorToWire, KvError, type WireError } from "../proto/index.js";
import type { ProposalResult } from "./leader_proposer.js";

/** An answer to a forwarded write: the leader's result, or its error. */
export type ForwardOutcome = { ok: true; result: ProposalResult } | { ok: false; error: KvError };

export type ForwardFrame =
  | { kind: "request"; id: number; session: string; command: UnstampedCommand }
  /** A request the leader answers with `error` without proposing it. */
  | { kind: "refused"; id: number; session: string; error: KvError }
  | { kind: "response"; id: number; session: string; outcome: ForwardOutcome };

interface WireForwardRequest {
  id?: number;
  session?: string;
  command?: Uint8Array;
}

interface WireForwardResponse {
  id?: number;
  session?: string;
  revision?: number;
  count?: number;
  index?: number;
  error?: WireError | null;
}

/** The PeerFrame body of a forward, as protobufjs encodes and decodes it. */
export type WireForwardBody =
  | { forward_request: WireForwardRequest }
  | { forward_response: WireForwardResponse };

export function forwardToWire(frame: ForwardFrame): WireForwardBody {
  switch (frame.kind) {
    case "request":
      return {
        forward_request: {
          id: frame.id,
          session: frame.session,
          command: encodeUnstampedCommand(frame.command),
        },
      };
    case "refused":
      return {
        forward_response: { id: frame.id, session: frame.session, error: errorToWire(frame.error) },
      };
    case "response": {
      const { outcome } = frame;
      return {
        forward_response: outcome.ok
          ? { id: frame.id, session: frame.session, ...outcome.result }
          : { id: frame.id, session: frame.session, error: errorToWire(outcome.error) },
      };
    }
  }
}

/** A decoded forward; MALFORMED_FRAME when it has no usable id and session (drop it). */
export function forwardFromWire(body: WireForwardBody): ForwardFrame {
  if ("forward_request" in body) {
    const r = body.forward_request;
    const { id, session } = address(r.id, r.session);
    try {
      return {
        kind: "request",
        id,
        session,
        command: decodeUnstampedCommand(r.command ?? new Uint8Array(0)),
      };
    } catch (err) {
      const error =
        err instanceof KvError
          ? err
          : new KvError("MALFORMED_FRAME", `cannot decode a forwarded command: ${String(err)}`);
      return { kind: "refused", id, session, error };
    }
  }
  const r = body.forward_response;
  const { id, session } = address(r.id, r.session);
  if (r.error && (r.error.code ?? "") !== "") {
    return { kind: "response", id, session, outcome: { ok: false, error: errorFromWire(r.error) } };
  }
  const revision = r.revision ?? 0;
  const count = r.count ?? 0;
  const index = r.index ?? 0;
  if (![revision, count, index].every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new KvError("MALFORMED_FRAME", "a forwarded answer with a malformed revision or index");
  }
  return {
    kind: "response",
    id,
    session,
    outcome: { ok: true, result: { revision, count, index } },
  };
}

function address(id: unknown, session: unknown): { id: number; session: string } {
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0) {
    throw new KvError("MALFORMED_FRAME", "a forwarded write without a valid id");
  }
  if (typeof session !== "string" || session === "") {
    throw new KvError("MALFORMED_FRAME", "a forwarded write without a session");
  }
  return { id, session };
}
