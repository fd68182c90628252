/**
 * The `streamkv` CLI against nodes that go away: `kv watch` across a node's crash and
 * restart, and `cluster status --all` over a three-node cluster with a member down.
 */
import { spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import {
  binPath,
  collectOutput,
  exitOf,
  freePorts,
  removeDir,
  repoRoot,
  runCli,
  type ServerProcess,
  startCluster,
  startServer,
  type TestCluster,
  waitFor,
} from "../test_support/index.js";

describe("streamkv kv watch", () => {
  const servers: ServerProcess[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop("SIGKILL");
    if (servers[0]) removeDir(servers[0].dataDir);
  });

  it("says on stderr when the node goes away and when the watch resumed", {
    timeout: 120_000,
  }, async () => {
    const [clientPort, peerPort] = await freePorts(2);
    const first = await startServer({ clientPort: clientPort!, peerPort: peerPort! });
    servers.push(first);
    const env = { STREAMKV_URL: first.url };
    await runCli(["kv", "add", "w"], { env });
    await runCli(["kv", "put", "w", "before", "0"], { env });
    const proc = spawn(process.execPath, [binPath, "kv", "watch", "w", "--json"], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    const out = collectOutput(proc);
    const exited = exitOf(proc);
    try {
      await waitFor(() => out.stdout().includes("initDone"), 20_000, "initial values");
      expect(out.stderr()).toBe("");
      await first.stop("SIGKILL");
      await waitFor(
        () => out.stderr().includes(`streamkv: watch: disconnected from ${first.url}`),
        20_000,
        `the disconnect on stderr: ${out.stderr()}`,
      );
      const again = await startServer({
        dataDir: first.dataDir,
        clientPort: clientPort!,
        peerPort: peerPort!,
      });
      servers.push(again);
      await waitFor(
        () => out.stderr().includes(`streamkv: watch: reconnected to ${first.url} (node n1)`),
        30_000,
        `the reconnect on stderr: ${out.stderr()}`,
      );
      expect((await runCli(["kv", "put", "w", "after", "1"], { env })).code).toBe(0);
      await waitFor(() => out.stdout().includes('"key":"after"'), 20_000, "the live update");
      expect(out.stderr()).toMatch(/streamkv: watch: resumed w > > from revision 2 /);
      // Every line on stderr is one of the watch's own reports.
      for (const line of out.stderr().trim().split("\n")) {
        expect(line).toMatch(/^streamkv: watch: /);
      }
    } finally {
      proc.kill("SIGINT");
    }
    expect(await exited).toBe(0);
    const keys = out
      .stdout()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).key ?? "null");
    expect(keys).toEqual(["before", "null", "after"]);
  });
});

describe("streamkv cluster status --all", () => {
  let cluster: TestCluster | undefined;
  afterAll(async () => {
    for (const n of cluster?.nodes ?? []) {
      await n.stop();
      removeDir(n.dataDir);
    }
  });

  it("shows one row per member, and the unreachable ones as such", {
    timeout: 120_000,
  }, async () => {
    cluster = await startCluster(["n1", "n2", "n3"]);
    const urls = cluster.nodes.map((n) => n.url);
    const all = ["cluster", "status", "--all", "-s", urls.join(",")];
    type Row = { endpoint: string; status?: { id: string; leader: string }; error?: unknown };
    let rows: Row[] = [];
    await waitFor(
      async () => {
        const r = await runCli([...all, "--json"]);
        if (r.code !== 0) return false;
        rows = JSON.parse(r.stdout).endpoints;
        return rows.every((row) => row.status?.leader);
      },
      30_000,
      "every member to know the leader",
    );
    expect(rows.map((r) => [r.endpoint, r.status?.id])).toEqual([
      [urls[0], "n1"],
      [urls[1], "n2"],
      [urls[2], "n3"],
    ]);
    const human = await runCli(all);
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^MEMBER\s+ENDPOINT\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      ["n1", urls[0]],
      ["n2", urls[1]],
      ["n3", urls[2]],
    ]);

    // Given one server, the others are found at the client URLs they announced.
    const one = await runCli(["cluster", "status", "--all", "-s", urls[0]!, "-j"]);
    expect(one.code, one.stderr).toBe(0);
    const found = JSON.parse(one.stdout) as { endpoints: Row[]; unreached: string[] };
    expect(found.endpoints.map((r) => [r.endpoint, r.status?.id])).toEqual([
      [urls[0], "n1"],
      [urls[1], "n2"],
      [urls[2], "n3"],
    ]);
    expect(found.unreached).toEqual([]);

    await cluster.nodes[2]!.stop();
    const down = await runCli([...all, "--timeout", "2s"]);
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(
      new RegExp(`^\\?\\s+${urls[2]}\\s+unreachable \\(CONNECTION_CLOSED: `, "m"),
    );
    expect(down.stdout).toMatch(/^n1\s/m);
    expect(down.stdout).toMatch(/^n2\s/m);
    expect(down.stderr).toBe(
      `streamkv: CONNECTION_CLOSED: 1 of 3 servers did not answer: ${urls[2]}\n`,
    );

    // A member that is down is still found (its URL is known) and shown unreachable.
    const oneDown = await runCli(["cluster", "status", "-a", "-s", urls[0]!, "--timeout", "2s"]);
    expect(oneDown.code).toBe(1);
    expect(oneDown.stdout).toMatch(/^n2\s/m);
    expect(oneDown.stdout).toMatch(new RegExp(`^\\?\\s+${urls[2]}\\s+unreachable`, "m"));
  });
});
