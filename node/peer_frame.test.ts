/**
 * The peer frame decoder is the peer port's trust boundary: on any bytes it returns a
 * typed frame or throws a KvError MALFORMED_FRAME, nothing else. 10,000 cases in CI
 * (PEER_FUZZ_RUNS for more).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isKvError, messageType, peerSchema } from "../proto/index.js";
import { decodePeerFrame } from "./peer_transport.js";

const PeerFrame = messageType(peerSchema, "streamkv.peer.PeerFrame");
const runs = Number(process.env.PEER_FUZZ_RUNS ?? 10_000);

function check(bytes: Uint8Array): void {
  try {
    const f = decodePeerFrame(bytes);
    expect(typeof f.body).toBe("string");
  } catch (err) {
    expect(isKvError(err, "MALFORMED_FRAME")).toBe(true);
  }
}

describe("peer frame decoder (fuzzed)", () => {
  it("random bytes: a typed frame or MALFORMED_FRAME", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (b) => check(b)),
      { numRuns: runs },
    );
  });

  it("mutated valid frames: a typed frame or MALFORMED_FRAME", () => {
    const seeds = [
      PeerFrame.encode({
        hello: {
          protocol_version: 2,
          from: "a",
          to: "b",
          cluster_id: "c",
          nonce: new Uint8Array(32),
        },
      }).finish(),
      PeerFrame.encode({ auth: { proof: new Uint8Array(32) } }).finish(),
      PeerFrame.encode({ raft: new Uint8Array([1, 2, 3]) }).finish(),
      PeerFrame.encode({
        forward_request: { id: 1, session: "s", command: new Uint8Array([1]) },
      }).finish(),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        (seed, edits) => {
          const b = new Uint8Array(seed);
          for (const [at, v] of edits) if (b.length > 0) b[at % b.length] = v;
          check(b);
        },
      ),
      { numRuns: runs },
    );
  });
});
