/**
 * Forwarded writes, fuzzed: peer frame bytes (mutated ForwardRequests carrying every
 * kind of kvapi command, mutated ForwardResponses, random bytes) through the peer frame
 * decoder, `forwardFromWire` and a live leader (a lone RaftKvService on memory stores:
 * Forwarder, LeaderProposer, Raft, kvapi).
 *
 * - The edge only ever yields a typed frame or throws MALFORMED_FRAME (the transport
 *   drops it); a request's command is a typed, unstamped command, or the request is
 *   `refused` with a KvError the leader sends back.
 * - The leader answers every request and refusal exactly once, with a result of safe
 *   integers or a KvError of a stable code, and never stops (onFatal).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalizeBucketConfig, type UnstampedCommand } from "../kvapi/index.js";
import { ERROR_CODES, isKvError, KvError, messageType, peerSchema } from "../proto/index.js";
import { fuzz, fuzzBytes } from "../test_support/index.js";
import { type ForwardFrame, forwardFromWire, forwardToWire } from "./forward_wire.js";
import { decodePeerFrame } from "./peer_transport.js";
import type { RaftKvService } from "./raft_service.js";
import { memoryService } from "./test_doubles.js";

const PeerFrame = messageType(peerSchema, "streamkv.peer.PeerFrame");
const bytes = (s: string) => new TextEncoder().encode(s);
const config = normalizeBucketConfig({ bucket: "f", history: 3 });
const request = { id: "q" };

const commands: UnstampedCommand[] = [
  { type: "createBucket", config, request },
  { type: "updateBucket", config, request },
  { type: "deleteBucket", bucket: "gone", request },
  { type: "put", bucket: "b", key: "k", value: bytes("v"), request },
  { type: "create", bucket: "b", key: "k.new", value: bytes("v"), request },
  { type: "update", bucket: "b", key: "k", value: bytes("w"), last: 1, request },
  { type: "delete", bucket: "b", key: "k", last: 2, request },
  { type: "purge", bucket: "b", key: "k.x" },
  { type: "purgeDeletes", bucket: "b", olderThanMs: 5, request },
];
const frames: ForwardFrame[] = [
  ...commands.map((command, i) => ({ kind: "request" as const, id: i + 1, session: "s", command })),
  {
    kind: "response",
    id: 1,
    session: "s",
    outcome: { ok: true, result: { revision: 3, count: 1, index: 9 } },
  },
  {
    kind: "refused",
    id: 2,
    session: "s",
    error: new KvError("WRONG_LAST_REVISION", "stale", { currentRevision: 4 }),
  },
];
const seeds = frames.map((f) => PeerFrame.encode(forwardToWire(f)).finish());

/** What the peer port does with the bytes: a typed forward, or undefined (dropped). */
function atTheEdge(b: Uint8Array): ForwardFrame | undefined {
  try {
    const f = decodePeerFrame(b);
    if (f.body === "forward_request")
      return forwardFromWire({ forward_request: f.forward_request });
    if (f.body === "forward_response") {
      return forwardFromWire({ forward_response: f.forward_response });
    }
    return undefined;
  } catch (err) {
    expect(isKvError(err, "MALFORMED_FRAME"), String(err)).toBe(true);
    return undefined;
  }
}

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);

function checkTyped(f: ForwardFrame): void {
  expect(Number.isSafeInteger(f.id) && f.id > 0).toBe(true);
  expect(f.session).not.toBe("");
  if (f.kind === "request") {
    expect(commands.map((c) => c.type)).toContain(f.command.type);
    expect(f.command).not.toHaveProperty("timestampMs");
  } else if (f.kind === "refused") {
    expect(CODES.has(f.error.code)).toBe(true);
  } else if (f.outcome.ok) {
    const r = f.outcome.result;
    expect([r.revision, r.count, r.index].every((n) => Number.isSafeInteger(n) && n >= 0)).toBe(
      true,
    );
  } else {
    expect(CODES.has(f.outcome.error.code)).toBe(true);
  }
}

describe("forwarded writes at the edge (fuzzed)", () => {
  it("a typed frame, or MALFORMED_FRAME and dropped", () => {
    fuzz(
      fc.property(fuzzBytes(seeds), (b) => {
        const f = atTheEdge(b);
        if (f) checkTyped(f);
      }),
    );
  });
});

describe("forwarded writes on a live leader (fuzzed)", () => {
  let service: RaftKvService;
  let fatals: unknown[];
  const answers = new Map<string, ForwardFrame[]>();

  beforeAll(async () => {
    ({ service, fatals } = await memoryService({
      sendForward: (to, frame) => {
        expect(to).toBe("n2");
        const key = `${frame.session}/${frame.id}`;
        answers.set(key, [...(answers.get(key) ?? []), frame]);
        return true;
      },
    }));
    await service.createBucket({ bucket: "b", history: 4 }, "setup-1");
  });

  afterAll(async () => {
    await service.close();
  });

  it("answers every request once, typed, and never stops", async () => {
    let session = 0;
    await fuzz(
      fc.asyncProperty(
        fc.array(fuzzBytes(seeds), { minLength: 1, maxLength: 4 }),
        async (batch) => {
          // A session of its own per case, so answers are matched to this case's requests.
          const s = `s${++session}`;
          const sent: ForwardFrame[] = [];
          for (const b of batch) {
            const f = atTheEdge(b);
            if (f === undefined) continue;
            const mine = { ...f, session: s, id: sent.length + 1 } as ForwardFrame;
            sent.push(mine);
            service.receiveForward("n2", mine);
          }
          const asked = sent.filter((f) => f.kind !== "response");
          const answered = () => asked.every((f) => answers.has(`${s}/${f.id}`));
          // Turns of the event loop first (a proposal is a few awaits away), then time.
          for (let i = 0; i < 200 && !answered(); i++) await new Promise((r) => setImmediate(r));
          for (let i = 0; i < 2000 && !answered(); i++) await new Promise((r) => setTimeout(r, 1));
          for (const f of asked) {
            const got = answers.get(`${s}/${f.id}`) ?? [];
            expect(got.length, `answers to ${f.kind} ${f.id}`).toBe(1);
            expect(got[0]!.kind).toBe("response");
            checkTyped(got[0]!);
          }
          // Answers to requests never sent from here are ignored, not answered.
          for (const f of sent.filter((x) => x.kind === "response")) {
            expect(answers.has(`${s}/${f.id}`)).toBe(false);
          }
          expect(fatals).toEqual([]);
        },
      ),
    );
  });
});
