/**
 * A write in flight when its token is revoked (issue 9): the server ends the session,
 * the SDK's reconnect is refused UNAUTHORIZED, and the write must not be reported as
 * refused, because the leader may still commit it. Three real nodes: the followers are
 * SIGSTOPped so the put cannot commit while the token is revoked on the leader; after
 * SIGCONT it commits, which is exactly why the SDK answers CONNECTION_CLOSED (outcome
 * unknown) and never UNAUTHORIZED (not applied) for it.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../client/index.js";
import { newToken, sha256Hex } from "../node/index.js";
import { removeDir, tempDir, waitFor } from "../test_support/index.js";
import { LocalCluster } from "./harness/cluster.js";

const root = newToken();
const writer = newToken();
const dir = tempDir("streamkv-revoke-");
const tokensFile = join(dir, "tokens.json");
const rootEntry = { name: "root", sha256: sha256Hex(root), admin: true, read: ["*"], write: ["*"] };
const writerEntry = { name: "writer", sha256: sha256Hex(writer), read: ["*"], write: ["app"] };

function writeTokens(entries: object[]): void {
  writeFileSync(tokensFile, JSON.stringify({ tokens: entries }), { mode: 0o600 });
}

let cluster: LocalCluster;

/** One sample of node `i`'s /metrics, 0 when absent. */
async function metric(series: string, i: number): Promise<number> {
  const text = (await cluster.http(i, "/metrics", 2000))?.body ?? "";
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

beforeAll(async () => {
  writeTokens([rootEntry, writerEntry]);
  cluster = await LocalCluster.start({
    args: ["--tokens-file", tokensFile],
    adminToken: root,
    env: { STREAMKV_LOG_LEVEL: "info" },
  });
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
  removeDir(dir);
});

describe("a token revoked with a write in flight", () => {
  it("fails the write as outcome-unknown (CONNECTION_CLOSED), and the write may still land", async () => {
    const leader = await cluster.waitForLeader();
    const admin = await connect({ servers: cluster.urls, token: root, timeoutMs: 10_000 });
    try {
      await admin.createKeyValue({ bucket: "app", history: 1 });
      const nc = await connect({
        servers: cluster.nodes[leader]!.url,
        token: writer,
        timeoutMs: 10_000,
        reconnectDelayMaxMs: 200,
      });
      try {
        const app = await nc.keyValue("app");
        await app.putString("k", "before");
        const followers = cluster.nodes.filter((n) => n.index !== leader).map((n) => n.index);
        for (const f of followers) cluster.pause(f);
        const framesIn = () => metric('streamkv_client_frames_total{direction="in"}', leader);
        const before = await framesIn();
        let settled: { code: string; message: string } | undefined;
        const put = app.putString("k", "in flight").then(
          () => {
            settled = { code: "ok", message: "" };
          },
          (err: { code: string; message: string }) => {
            settled = { code: err.code, message: err.message };
          },
        );
        // The put reached the leader (appended there, uncommitted: no follower runs);
        // then its token goes away and the leader ends the session.
        await waitFor(async () => (await framesIn()) > before, 5000);
        const leaderProc = cluster.nodes[leader]!.proc!;
        writeTokens([rootEntry]);
        leaderProc.proc.kill("SIGHUP");
        await waitFor(() => leaderProc.stderr().includes('"msg":"tokens reloaded"'), 5000);
        await put;
        expect(settled?.code).toBe("CONNECTION_CLOSED");
        expect(settled?.message).toMatch(/may or may not have been applied/);
        // A call made after the revocation is refused outright.
        await expect(app.get("k", { timeoutMs: 2000 })).rejects.toMatchObject({
          code: "UNAUTHORIZED",
        });
        for (const f of followers) cluster.resume(f);
        // The leader kept the entry and commits it once a follower answers: the outcome
        // was indeed unknown, not refused.
        const kv = await admin.keyValue("app");
        await waitFor(async () => (await kv.get("k"))?.value.length === "in flight".length, 15_000);
      } finally {
        await nc.close();
      }
    } finally {
      await admin.close();
    }
  }, 60_000);
});
