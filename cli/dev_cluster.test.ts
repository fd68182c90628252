/**
 * `streamkv dev-cluster` as a user runs it: a real parent process with real server
 * children. A child killed with SIGKILL is reported at once; with `--restart` it comes
 * back and serves, and the survivors log the leader change and the lost and regained
 * peer at info.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../client/index.js";
import {
  binPath,
  collectOutput,
  exitOf,
  freePorts,
  type Output,
  removeDir,
  repoRoot,
  tempDir,
  waitFor,
} from "../test_support/index.js";

/** A base port with `count` free consecutive ports above it. */
async function freeRange(count: number): Promise<number> {
  const probe = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
  for (const candidate of await freePorts(20)) {
    const base = Math.min(candidate, 65535 - count);
    let free = true;
    for (let p = base; p < base + count && free; p++) free = await probe(p);
    if (free) return base;
  }
  throw new Error(`no ${count} free consecutive ports`);
}

interface DevCluster {
  proc: ChildProcess;
  out: Output;
  base: number;
  exited: Promise<number | string>;
  /** The pid the parent printed for node `id`, the latest one after a restart. */
  pidOf(id: string): number;
}

const started: { proc: ChildProcess; dir: string }[] = [];

afterEach(async () => {
  for (const { proc, dir } of started.splice(0)) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGINT");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    await exitOf(proc);
    clearTimeout(timer);
    removeDir(dir);
  }
});

async function startDevCluster(nodes: number, flags: string[]): Promise<DevCluster> {
  const base = await freeRange(nodes * 2);
  const dir = tempDir();
  const proc = spawn(
    process.execPath,
    [
      binPath,
      "dev-cluster",
      "--nodes",
      String(nodes),
      "--data",
      dir,
      "--base-port",
      String(base),
      ...flags,
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, STREAMKV_LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  started.push({ proc, dir });
  const out = collectOutput(proc);
  const pidOf = (id: string) => {
    const all = [
      ...`${out.stdout()}${out.stderr()}`.matchAll(
        new RegExp(`${id} (?:ws://\\S+ \\(pid|restarted \\(pid) (\\d+)\\)`, "g"),
      ),
    ];
    return Number(all.at(-1)?.[1] ?? Number.NaN);
  };
  const listening = () => (out.stdout().match(/\] streamkv listening client=/g) ?? []).length;
  await waitFor(() => listening() === nodes, 30_000, `${nodes} nodes listening`);
  return { proc, out, base, exited: exitOf(proc), pidOf };
}

/** The info lines node `id` logged with message `msg`, as objects. */
function logged(out: Output, id: string, msg: string, since = 0): Record<string, unknown>[] {
  return out
    .stderr()
    .slice(since)
    .split("\n")
    .filter((l) => l.startsWith(`[${id}] {`))
    .map((l) => JSON.parse(l.slice(id.length + 3)) as Record<string, unknown>)
    .filter((r) => r.msg === msg && r.level === "info");
}

describe("streamkv dev-cluster", () => {
  it("reports a node killed with SIGKILL at once and, without --restart, leaves it down", async () => {
    const c = await startDevCluster(1, []);
    const pid = c.pidOf("n1");
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, "SIGKILL");
    await waitFor(
      () => c.out.stderr().includes(`dev cluster: n1 (pid ${pid}) exited with signal SIGKILL\n`),
      5000,
      "the exit line",
    );
    expect(await c.exited).toBe(1);
    expect(c.out.stderr()).not.toContain("restarting");
  });

  it("with --restart brings a killed leader back; the others log the failover at info", async () => {
    const c = await startDevCluster(3, ["--restart"]);
    expect(c.out.stdout()).toContain("a node that exits is restarted");
    const urls = [0, 1, 2].map((i) => `ws://127.0.0.1:${c.base + 2 * i}`);
    const nc = await connect({ servers: urls, timeoutMs: 10_000 });
    const kv = await nc.createKeyValue({ bucket: "devc" });
    await kv.putString("k", "before");
    const leader = (await nc.clusterStatus()).leader;
    await nc.close();
    expect(leader).toMatch(/^n[123]$/);
    const survivors = ["n1", "n2", "n3"].filter((id) => id !== leader);
    const pid = c.pidOf(leader);
    const killedAt = c.out.stderr().length;
    process.kill(pid, "SIGKILL");

    await waitFor(
      () =>
        c.out.stderr().includes(`dev cluster: ${leader} (pid ${pid}) exited with signal SIGKILL\n`),
      5000,
      "the exit line",
    );
    await waitFor(() => c.pidOf(leader) !== pid, 10_000, `${leader} restarted`);
    for (const id of survivors) {
      await waitFor(
        () =>
          logged(c.out, id, "leader lost", killedAt).some((r) => r.previous === leader) ||
          logged(c.out, id, "leader changed", killedAt).some(
            (r) => r.previous === leader || r.leader !== leader,
          ),
        10_000,
        `${id} logging the leader change`,
      );
      await waitFor(
        () => logged(c.out, id, "peer link regained", killedAt).some((r) => r.peer === leader),
        15_000,
        `${id} regaining ${leader}`,
      );
      // Once per transition: the failed dials while it was down are not logged at info.
      expect(
        logged(c.out, id, "peer link lost", killedAt).filter((r) => r.peer === leader),
      ).toHaveLength(1);
    }
    // The restarted node serves, with the data written before it was killed.
    const back = urls[Number(leader.slice(1)) - 1]!;
    const nc2 = await connect({ servers: [back], timeoutMs: 10_000 });
    const kv2 = await nc2.keyValue("devc");
    await kv2.putString("k", "after");
    expect(new TextDecoder().decode((await kv2.get("k"))?.value)).toBe("after");
    await nc2.close();

    c.proc.kill("SIGINT");
    expect(await c.exited).toBe(0);
  });
});
