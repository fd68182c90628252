/**
 * deploy/prometheus/ and deploy/grafana/ against the real tools of Debian's
 * `prometheus` package:
 * - promtool checks the scrape config and the rules, and runs the rules' unit tests,
 *   where every alert has a case that fires and one that stays silent;
 * - a real Prometheus (loopback, a temporary data dir, 1 s scrapes) scrapes a running
 *   three-node cluster, sees every target up, loads the rules, and answers every query
 *   of the Grafana dashboard (read from its JSON) with data.
 *
 * Without the binaries the tests are skipped, unless CI is set: CI installs the package
 * (.ci/run), so there a missing promtool is a failure.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { connect } from "../client/index.js";
import { LocalCluster } from "../cluster-tests/harness/cluster.js";
import {
  collectOutput,
  exitOf,
  freePort,
  removeDir,
  repoRoot,
  runCommand,
  tempDir,
  waitFor,
} from "../test_support/index.js";

const promDir = join(repoRoot, "deploy", "prometheus");
const dashboardPath = join(repoRoot, "deploy", "grafana", "dashboards", "streamkv.json");
const bin = (name: string) =>
  process.env[`STREAMKV_${name.toUpperCase()}`] ??
  ["/usr/bin", "/usr/local/bin"].map((d) => join(d, name)).find((p) => existsSync(p));
const promtool = bin("promtool");
const prometheus = bin("prometheus");
const ciValue = process.env.CI ?? "";
const inCi = ciValue !== "" && ciValue !== "0" && ciValue.toLowerCase() !== "false";
const skip = (promtool === undefined || prometheus === undefined) && !inCi;
if (skip) {
  console.warn(
    "deploy/prometheus.test.ts skipped: no promtool/prometheus in /usr/bin (or $STREAMKV_PROMTOOL, $STREAMKV_PROMETHEUS); install them with `apt-get install -y prometheus` (CI is not set)",
  );
}

async function tool(path: string | undefined, args: string[], cwd = promDir) {
  expect(
    path,
    "the prometheus package is not installed (apt-get install -y prometheus)",
  ).toBeDefined();
  const r = await runCommand(path!, args, { cwd, timeoutMs: 60_000 });
  return { code: r.code, output: `${r.stdout}${r.stderr}` };
}

/** Every expression of the dashboard, with the title of its panel. */
function dashboardQueries(): Array<{ panel: string; expr: string }> {
  const dashboard = JSON.parse(readFileSync(dashboardPath, "utf8"));
  const out: Array<{ panel: string; expr: string }> = [];
  for (const panel of dashboard.panels) {
    for (const t of panel.targets ?? []) out.push({ panel: panel.title, expr: t.expr });
  }
  return out;
}

describe.skipIf(skip)("deploy/prometheus with promtool", () => {
  it("the scrape config and the rules pass promtool check", async () => {
    const config = await tool(promtool, ["check", "config", "prometheus.yml"]);
    expect(config.output).toContain("SUCCESS");
    expect(config.code, config.output).toBe(0);
    const rules = await tool(promtool, ["check", "rules", "rules/streamkv.rules.yml"]);
    expect(rules.code, rules.output).toBe(0);
  });

  it("every alert rule has a unit test that fires it and one that does not, and they pass", async () => {
    const rules = parse(readFileSync(join(promDir, "rules", "streamkv.rules.yml"), "utf8"));
    const alerts: string[] = rules.groups.flatMap((g: { rules: Array<{ alert?: string }> }) =>
      g.rules.map((r) => r.alert).filter((a) => a !== undefined),
    );
    expect(alerts.sort()).toEqual([
      "StreamkvDataCorrupt",
      "StreamkvDiskFull",
      "StreamkvDiskNearlyFull",
      "StreamkvFollowerLagging",
      "StreamkvFrequentLeaderChanges",
      "StreamkvFsyncSlow",
      "StreamkvNoLeader",
      "StreamkvNodeDown",
      "StreamkvProposalsFailing",
      "StreamkvWatchersSlow",
    ]);
    const tests = parse(readFileSync(join(promDir, "tests", "streamkv.rules.test.yml"), "utf8"));
    const cases = tests.tests.flatMap(
      (t: { alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }) =>
        t.alert_rule_test,
    );
    for (const alert of alerts) {
      const mine = cases.filter((c: { alertname: string }) => c.alertname === alert);
      expect(
        mine.some((c: { exp_alerts: unknown[] }) => c.exp_alerts.length > 0),
        alert,
      ).toBe(true);
      expect(
        mine.some((c: { exp_alerts: unknown[] }) => c.exp_alerts.length === 0),
        alert,
      ).toBe(true);
    }
    const run = await tool(promtool, ["test", "rules", "tests/streamkv.rules.test.yml"]);
    expect(run.output).toContain("SUCCESS");
    expect(run.code, run.output).toBe(0);
  });
});

describe.skipIf(skip)("a real Prometheus scraping a three-node cluster", () => {
  let cluster: LocalCluster | undefined;
  let server: ChildProcess | undefined;
  let output: ReturnType<typeof collectOutput> | undefined;
  let dir = "";
  let base = "";

  beforeAll(async () => {
    expect(prometheus, "the prometheus package is not installed").toBeDefined();
    cluster = await LocalCluster.start();
    dir = tempDir("streamkv-prometheus-");
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = {
      global: { scrape_interval: "1s", scrape_timeout: "900ms", evaluation_interval: "1s" },
      rule_files: [join(promDir, "rules", "streamkv.rules.yml")],
      scrape_configs: [
        {
          job_name: "streamkv",
          static_configs: cluster.nodes.map((n) => ({
            targets: [`127.0.0.1:${n.clientPort}`],
            labels: { node: n.id },
          })),
        },
      ],
    };
    writeFileSync(join(dir, "prometheus.yml"), JSON.stringify(config));
    server = spawn(
      prometheus!,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--storage.tsdb.retention.time=1h",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    output = collectOutput(server);
  }, 60_000);

  afterAll(async () => {
    if (server?.pid !== undefined && server.exitCode === null) {
      const exited = exitOf(server);
      server.kill("SIGTERM");
      const timer = setTimeout(() => server?.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await cluster?.destroy();
    if (dir !== "") removeDir(dir);
  }, 60_000);

  async function api<T>(path: string): Promise<T> {
    const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`${path}: ${body.error ?? res.status}`);
    return body.data;
  }

  it("sees every node up, loads the rules, and answers every dashboard query with data", async () => {
    const c = cluster!;
    interface Target {
      labels: Record<string, string>;
      health: string;
      lastError: string;
    }
    const targets = async () =>
      (await api<{ activeTargets: Target[] }>("/api/v1/targets").catch(() => undefined))
        ?.activeTargets ?? [];
    await waitFor(
      async () => {
        const t = await targets();
        return t.length === 3 && t.every((x) => x.health === "up");
      },
      30_000,
      `every target up (prometheus: ${output?.stderr().slice(-500)})`,
      250,
    );
    const up = await targets();
    console.log(
      `prometheus targets: ${up.map((t) => `${t.labels.node}=${t.labels.instance} ${t.health}`).join(", ")}`,
    );

    // Traffic for the rate() panels, an error for the errors panel, a watcher.
    const leader = await c.waitForLeader();
    const nc = await connect({ servers: c.nodes[leader]!.url, timeoutMs: 10_000 });
    try {
      const kv = await nc.createKeyValue({ bucket: "dash" });
      const w = await kv.watch(">", { updatesOnly: true });
      await kv.create("exists", new TextEncoder().encode("x"));
      await kv.create("exists", new TextEncoder().encode("y")).catch(() => {});
      const queries = dashboardQueries();
      expect(queries.length).toBeGreaterThanOrEqual(20);
      const empty = new Set(queries.map((q) => q.expr));
      // Writes go on until every query has data (rate() needs two scrapes with samples).
      const deadline = Date.now() + 45_000;
      let i = 0;
      while (empty.size > 0 && Date.now() < deadline && i < 20_000) {
        for (let n = 0; n < 20; n++) await kv.put(`k.${i++ % 50}`, new TextEncoder().encode("v"));
        for (const expr of [...empty]) {
          const data = await api<{ result: unknown[] }>(
            `/api/v1/query?query=${encodeURIComponent(expr)}`,
          );
          if (data.result.length > 0) empty.delete(expr);
        }
      }
      const failing = queries.filter((q) => empty.has(q.expr));
      expect(failing, "dashboard queries without data").toEqual([]);
      w.stop();
    } finally {
      await nc.close();
    }

    // The alert rules load and evaluate against the live series without errors.
    const groups = await api<{
      groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }>;
    }>("/api/v1/rules");
    const rules = groups.groups.flatMap((g) => g.rules);
    expect(rules).toHaveLength(10);
    await waitFor(
      async () =>
        (await api<typeof groups>("/api/v1/rules")).groups
          .flatMap((g) => g.rules)
          .every((r) => r.health === "ok"),
      10_000,
      "every rule evaluated",
      250,
    );
  }, 120_000);
});
