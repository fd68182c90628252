/**
 * The scale suite's code path at a very small N, so CI keeps `npm run bench -- scale`
 * working: one real `streamkv server`, 2,000 keys, history 1, no etcd. It asserts that
 * every figure was measured and checked (counts of keys, prefix, watch), that the
 * results files are written, and that no process or temp dir outlives the run. It
 * asserts no speed: benchmarks are not timed tests.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isAlive as alive, removeDir, tempDir } from "../test_support/index.js";
import {
  mergeReports,
  parseScaleArgs,
  renderMarkdown,
  renderSvg,
  runScale,
  type ScaleReport,
  type ScaleResult,
  startedPids,
} from "./scale.js";

describe("bench scale", () => {
  it("parses its flags: defaults, --quick, --full, lists; refuses unknown flags", () => {
    const d = parseScaleArgs([]);
    expect(d.sizes).toEqual([100_000, 300_000, 1_000_000]);
    expect(d.topologies).toEqual(["single", "cluster"]);
    expect(d.restIdleMs).toBe(120_000);
    expect(parseScaleArgs(["--rest-idle=5"]).restIdleMs).toBe(5000);
    expect(() => parseScaleArgs(["--rest-idle=0"])).toThrow(/--rest-idle/);
    expect(d.histories).toEqual([
      { history: 1, writesPerKey: 1 },
      { history: 16, writesPerKey: 8 },
    ]);
    expect(d.inFlight).toBe(256);
    const q = parseScaleArgs(["--quick"]);
    expect([q.sizes, q.topologies, q.histories.length]).toEqual([[100_000], ["single"], 1]);
    const qf = parseScaleArgs(["--quick", "--full"]);
    expect([qf.sizes, qf.topologies, qf.histories.length]).toEqual([
      [100_000],
      ["single", "cluster"],
      2,
    ]);
    const k = parseScaleArgs([
      "--keys=5000",
      "--histories=4:2",
      "--systems=streamkv",
      "--no-write",
    ]);
    expect([k.sizes, k.histories, k.systems, k.outDir]).toEqual([
      [5000],
      [{ history: 4, writesPerKey: 2 }],
      ["streamkv"],
      undefined,
    ]);
    expect(() => parseScaleArgs(["--kyes=5"])).toThrow(/unknown flag/);
    expect(() => parseScaleArgs(["--keys=0"])).toThrow(/positive integer/);
    expect(() => parseScaleArgs(["--topologies=ring"])).toThrow(/unknown ring/);
  });

  it("merges runs: a configuration measured twice keeps the later result; targets at the largest N", () => {
    const result = (keys: number, keysMs: number, system: "streamkv" | "etcd" = "streamkv") =>
      ({
        system,
        topology: "single",
        history: 1,
        writesPerKey: 1,
        keys,
        figures: { keysMs, rssRestMb: 100 },
        errors: {},
        seconds: 1,
        loadAverage: [1, 1],
      }) satisfies ScaleResult;
    const report = (startedAt: string, results: ScaleResult[]) =>
      ({
        startedAt,
        machine: { cpus: 2, memTotalMb: 1, serverBuild: "x" },
        options: parseScaleArgs(["--no-write"]),
        results,
        targets: [],
        files: [],
        seconds: 60,
      }) as ScaleReport;
    const merged = mergeReports([
      report("a", [result(300_000, 9000), result(100_000, 500), result(100_000, 800, "etcd")]),
      report("b", [result(1_000_000, 2500), result(300_000, 4000)]),
    ]);
    expect(merged.results.map((r) => [r.system, r.keys, r.figures.keysMs])).toEqual([
      ["streamkv", 100_000, 500],
      ["etcd", 100_000, 800],
      ["streamkv", 300_000, 4000],
      ["streamkv", 1_000_000, 2500],
    ]);
    const keysTarget = merged.targets.find((t) => t.target === "keys() of all keys <= 3 s")!;
    expect([keysTarget.measured, keysTarget.pass]).toEqual(["2.50 s", true]);
    expect(merged.targets.find((t) => t.target.includes("etcd"))).toMatchObject({ pass: true });
    const md = renderMarkdown(merged);
    expect(md).toContain("| figure | streamkv 100k | etcd 100k | streamkv 300k | streamkv 1M |");
    expect(md).toMatch(/\| keys\(\) all, s .*\| 0\.50 \| 0\.80 \| 4\.00 \| 2\.50 \|/);
    expect(renderSvg(merged)).toMatch(/^<svg [^>]*>\n<title>/);
  });

  it("runs one node at 2,000 keys, writes its results and leaves nothing behind", async () => {
    const out = tempDir("streamkv-scale-test-");
    try {
      const opts = parseScaleArgs([
        "--keys=2000",
        "--topologies=single",
        "--histories=1",
        "--systems=streamkv",
        "--get-samples=200",
        "--phase-timeout=60",
        // The default 120 s of idling before "at rest" is for real sizes, not 2,000 keys.
        "--rest-idle=2",
        `--out=${out}`,
      ]);
      const lines: string[] = [];
      opts.log = (l) => lines.push(l);
      const report = await runScale(opts);
      expect(report.results).toHaveLength(1);
      const r = report.results[0]!;
      expect(r.failed, lines.join("\n")).toBeUndefined();
      expect(r.errors).toEqual({});
      const f = r.figures;
      for (const v of [
        f.loadOpsPerSec,
        f.rssEmptyMb,
        f.rssRestMb,
        f.rssPeakLoadMb,
        f.rssRestAfterRestartMb,
        f.getP50Ms,
        f.getP99Ms,
        f.keysMs,
        f.keysFirstPageMs,
        f.listKeysMs,
        f.listKeysClientPeakMb,
        f.prefixKeysMs,
        f.watchInitialMs,
        f.restartListenMs,
        f.restartReadyMs,
        f.dataDirMb,
      ]) {
        expect(v).toBeGreaterThan(0);
      }
      expect(f.restartReadyMs!).toBeGreaterThanOrEqual(f.restartListenMs!);
      expect(report.targets.map((t) => t.target)).toContain("keys() of all keys <= 3 s");

      expect(report.files).toHaveLength(5);
      for (const file of report.files) expect(existsSync(file)).toBe(true);
      const md = readFileSync(join(out, "scale-latest.md"), "utf8");
      expect(md).toMatch(/\| keys\(\) all, s .*\| \d/);
      expect(md).toContain("## targets of issue 10");
      const json = JSON.parse(readFileSync(report.files[0]!, "utf8"));
      expect(json.results[0].figures.keysMs).toBe(f.keysMs);
      expect(readFileSync(join(out, "scale-latest.svg"), "utf8")).toBe(renderSvg(report));

      expect(startedPids.length).toBeGreaterThanOrEqual(3); // server, restart, lister
      for (const pid of startedPids) expect(alive(pid)).toBe(false);
      expect(lines.some((l) => l.includes("load:"))).toBe(true);
    } finally {
      removeDir(out);
    }
  }, 180_000);
});
