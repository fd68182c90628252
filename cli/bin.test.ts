/**
 * bin/streamkv.js runs the esbuild build of cli/build_bin.js only while it is fresh,
 * else the sources through tsx; and that build is the same CLI, server included.
 * The real build goes to .tmp/ (git ignores it; one level below the root, as dist/ is),
 * never to the dist/ that other tests' processes may be running.
 */
import { spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  binPath,
  collectOutput,
  exitOf,
  removeDir,
  repoRoot,
  runCli,
  runCommand,
  waitFor,
} from "../test_support/index.js";

const scratch = join(repoRoot, ".tmp", `bin-test-${process.pid}`);
afterAll(() => {
  removeDir(scratch);
  for (const name of readdirSync(join(repoRoot, ".tmp"))) {
    if (/^streamkv[.-]/.test(name)) rmSync(join(repoRoot, ".tmp", name));
  }
});

describe("bin/streamkv.js", () => {
  it("runs dist/ while no bundled source changed, else the sources with tsx", async () => {
    // A stand-in checkout: the real bin, a "build" and "sources" that say which ran.
    const root = join(scratch, "choice");
    for (const dir of ["bin", "dist", "cli"]) mkdirSync(join(root, dir), { recursive: true });
    copyFileSync(binPath, join(root, "bin", "streamkv.js"));
    writeFileSync(join(root, "dist", "streamkv.js"), 'console.log("build");\n');
    writeFileSync(
      join(root, "cli", "main.ts"),
      'const from: string = "sources";\nconsole.log(from);\n',
    );
    const sourcesAtMs = Date.now();
    const manifest = (sources: string[]) =>
      writeFileSync(join(root, "dist", "streamkv.json"), JSON.stringify({ sourcesAtMs, sources }));
    const setMtime = (ms: number) => utimesSync(join(root, "cli", "main.ts"), ms / 1000, ms / 1000);
    const ran = async () => {
      const r = await runCommand(process.execPath, [join(root, "bin", "streamkv.js")]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    manifest(["cli/main.ts"]);
    setMtime(sourcesAtMs - 60_000);
    expect(await ran()).toBe("build");
    setMtime(sourcesAtMs + 60_000); // edited (or checked out) after the build
    expect(await ran()).toBe("sources");
    setMtime(sourcesAtMs - 60_000);
    manifest(["cli/main.ts", "cli/gone.ts"]); // a bundled source was removed
    expect(await ran()).toBe("sources");
    manifest([]);
    expect(await ran()).toBe("sources");
  });

  it("builds a CLI that answers as the sources do, and runs a server", {
    timeout: 120_000,
  }, async () => {
    const outdir = ".tmp";
    const build = await runCommand(process.execPath, ["cli/build_bin.js", outdir], {
      timeoutMs: 60_000,
    });
    expect(build.code, build.stderr).toBe(0);
    const built = join(repoRoot, outdir, "streamkv.js");
    const viaBuild = (args: string[], env: Record<string, string> = {}) =>
      runCommand(process.execPath, [built, ...args], { env: { STREAMKV_URL: "", ...env } });
    for (const args of [["--version"], ["kv", "--help"], ["cluster", "status", "--help"]]) {
      const [a, b] = await Promise.all([viaBuild(args), runCli(args)]);
      expect(a, args.join(" ")).toEqual(b);
    }
    const proc = spawn(
      process.execPath,
      [built, "server", "--data", join(scratch, "data"), "--client-port", "0", "--peer-port", "0"],
      { cwd: repoRoot, env: { ...process.env, STREAMKV_LOG_LEVEL: "warn" } },
    );
    const out = collectOutput(proc);
    const exited = exitOf(proc);
    try {
      await waitFor(() => /client=(\d+)/.test(out.stdout()), 30_000, "the built server");
      const url = `ws://127.0.0.1:${/client=(\d+)/.exec(out.stdout())![1]}`;
      const add = await viaBuild(["kv", "add", "b", "-j"], { STREAMKV_URL: url });
      expect(add.code, add.stderr).toBe(0);
      expect(JSON.parse(add.stdout)).toMatchObject({ bucket: "b" });
    } finally {
      proc.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});

describe("cli/build_bin.js", () => {
  it("leaves no build behind when it fails, so the bin falls back to tsx", async () => {
    const root = join(scratch, "failing");
    mkdirSync(join(root, "cli"), { recursive: true });
    mkdirSync(join(root, "dist"), { recursive: true });
    copyFileSync(join(repoRoot, "cli", "build_bin.js"), join(root, "cli", "build_bin.js"));
    writeFileSync(join(root, "dist", "streamkv.json"), "{}");
    writeFileSync(join(root, "dist", "streamkv.js"), "old");
    writeFileSync(join(root, "cli", "main.ts"), 'import { nothing } from "./nowhere.js";\n');
    const r = await runCommand(process.execPath, [join(root, "cli", "build_bin.js")]);
    expect(r.code).not.toBe(0);
    expect(existsSync(join(root, "dist", "streamkv.json"))).toBe(false);
    expect(existsSync(join(root, "dist", "streamkv.js"))).toBe(false);
  });
});
