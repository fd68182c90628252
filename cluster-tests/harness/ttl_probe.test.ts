import { describe, expect, it } from "vitest";
import { checkTtlProbe, type TtlProbeFacts } from "./ttl_probe.js";

const TTL = 60_000;

function facts(seen: TtlProbeFacts["seen"], acked: [string, number][]): TtlProbeFacts {
  return { ttlMs: TTL, acked: new Map(acked), putsFailed: 0, seen, watchError: undefined };
}

const put = (key: string, revision: number, createdMs: number, at = createdMs) => ({
  key,
  revision,
  operation: "PUT",
  createdMs,
  at,
});
const purge = (key: string, revision: number, createdMs: number, at: number) => ({
  key,
  revision,
  operation: "PURGE",
  createdMs,
  at,
});

describe("checkTtlProbe", () => {
  it("accepts expiry by the replicated clock, and counts what expired early by real time", () => {
    // The leader's clock jumped a day ahead: t0 expires a second later in real time.
    const v = checkTtlProbe(
      facts(
        [put("t0", 1, 1000), put("t1", 2, 2000), purge("t0", 3, 86_400_000, 3000)],
        [
          ["t0", 1000],
          ["t1", 2000],
        ],
      ),
    );
    expect(v).toEqual({
      anomalies: [],
      expired: 1,
      expiredEarlyRealTime: 1,
      unmatched: 0,
      unseen: 0,
    });
  });

  it("reports a key expired before its ttl by the replicated clock, and a clock going back", () => {
    const v = checkTtlProbe(
      facts(
        [put("t0", 1, 10_000), purge("t0", 2, 10_000 + TTL - 1, 70_000), put("t1", 3, 5000)],
        [["t0", 10_000]],
      ),
    );
    expect(v.anomalies).toEqual([
      "ttl bucket: t0 (revision 1) expired 59999 ms after it was written by the replicated clock, ttl 60000 ms",
      "ttl bucket: created time went back 64999 ms at revision 3",
    ]);
  });

  it("counts markers without their PUT and acked keys never seen (a watcher that failed over)", () => {
    const v = checkTtlProbe(
      facts(
        [purge("t0", 2, 90_000, 90_000)],
        [
          ["t0", 1],
          ["t1", 2],
        ],
      ),
    );
    expect(v).toMatchObject({ anomalies: [], expired: 0, unmatched: 1, unseen: 1 });
  });
});
