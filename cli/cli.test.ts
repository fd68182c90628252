/** The `streamkv` CLI, run as the real binary against a real node. */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  binPath,
  removeDir,
  repoRoot,
  runCli,
  type ServerProcess,
  startServer,
  waitFor,
} from "../test_support/index.js";

let server: ServerProcess;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startServer();
  env = { STREAMKV_URL: server.url };
});

afterAll(async () => {
  await server?.stop();
  removeDir(server.dataDir);
});

const kv = (args: string[], stdin?: string) =>
  runCli(["kv", ...args], { env, ...(stdin === undefined ? {} : { stdin }) });

describe("streamkv kv", () => {
  it("adds a bucket, puts, gets raw, and reports status", async () => {
    const add = await kv(["add", "cfg", "--history", "5", "--description", "demo"]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/history\s+5/);
    expect((await kv(["put", "cfg", "a.b", "hello"])).stdout).toBe("1\n");
    const piped = await kv(["put", "cfg", "bin"], "line1\nline2\n");
    expect(piped.stdout).toBe("2\n");
    expect((await kv(["get", "cfg", "a.b"])).stdout).toBe("hello");
    expect((await kv(["get", "cfg", "bin"])).stdout).toBe("line1\nline2\n");
    const json = JSON.parse((await kv(["get", "cfg", "a.b", "--json"])).stdout);
    expect(json).toMatchObject({ key: "a.b", revision: 1, operation: "PUT", value: "hello" });
    const status = JSON.parse((await kv(["status", "cfg", "--json"])).stdout);
    expect(status).toMatchObject({ bucket: "cfg", values: 2, history: 5, description: "demo" });
  });

  it("create, update, del, purge, keys, history", async () => {
    await kv(["add", "ops", "--history", "10"]);
    expect((await kv(["create", "ops", "k", "v1"])).stdout).toBe("1\n");
    const again = await kv(["create", "ops", "k", "v2"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^streamkv: KEY_EXISTS: /);
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect((await kv(["update", "ops", "k", "v2", "--last", "1"])).stdout).toBe("2\n");
    const stale = await kv(["update", "ops", "k", "v3", "--last", "1"]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/WRONG_LAST_REVISION/);
    await kv(["put", "ops", "a.x", "1"]);
    await kv(["put", "ops", "a.y", "2"]);
    expect((await kv(["keys", "ops"])).stdout).toBe("a.x\na.y\nk\n");
    expect((await kv(["del", "ops", "a.x"])).code).toBe(0);
    const missing = await kv(["get", "ops", "a.x"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/has no value/);
    const hist = JSON.parse((await kv(["history", "ops", "a.x", "--json"])).stdout);
    expect(hist.map((e: { operation: string }) => e.operation)).toEqual(["PUT", "DEL"]);
    await kv(["purge", "ops", "k"]);
    const purged = JSON.parse((await kv(["history", "ops", "k", "--json"])).stdout);
    expect(purged.map((e: { operation: string }) => e.operation)).toEqual(["PURGE"]);
  });

  it("lists and removes buckets", async () => {
    await kv(["add", "tmp1"]);
    const ls = await kv(["ls"]);
    expect(ls.stdout).toMatch(/BUCKET[\s\S]*tmp1/);
    const json = JSON.parse((await kv(["ls", "--json"])).stdout);
    expect(json.map((b: { bucket: string }) => b.bucket)).toContain("tmp1");
    expect((await kv(["rm", "tmp1"])).stdout).toBe("deleted bucket tmp1\n");
    const gone = await kv(["status", "tmp1"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/BUCKET_NOT_FOUND/);
  });

  it("watches until Ctrl-C", async () => {
    await kv(["add", "wch"]);
    await kv(["put", "wch", "before", "0"]);
    const proc = spawn(process.execPath, [binPath, "kv", "watch", "wch", "--json"], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
    await waitFor(() => out.includes("initDone"), 10_000, "initial values");
    await kv(["put", "wch", "after", "1"]);
    await waitFor(() => out.includes('"key":"after"'), 10_000, "live update");
    proc.kill("SIGINT");
    expect(await exited).toBe(0);
    const lines = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.key ?? "null")).toEqual(["before", "null", "after"]);
  });

  it("shows cluster status", async () => {
    const human = await runCli(["cluster", "status"], { env });
    expect(human.stdout).toMatch(/node\s+n1[\s\S]*role\s+leader/);
    const json = JSON.parse((await runCli(["cluster", "status", "--json"], { env })).stdout);
    expect(json).toMatchObject({ id: "n1", leader: "n1", replicated: true });
    expect(json.clusterId).toMatch(/^c-[0-9a-f]{16}$/);
    expect(human.stdout).toMatch(/cluster\s+c-[0-9a-f]{16}/);
  });

  it("transfers leadership of a lone node to itself and refuses unknown ids", async () => {
    const ok = await runCli(["cluster", "transfer", "n1"], { env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^leader n1 \(term \d+\)\n$/);
    const bad = await runCli(["cluster", "transfer", "n9"], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^streamkv: INVALID_ARGUMENT: "n9" is not a voter/);
    const last = await runCli(["cluster", "remove", "n1"], { env });
    expect(last.code).toBe(1);
    expect(last.stderr).toMatch(/last voter/);
  });

  it("takes --server over STREAMKV_URL", async () => {
    const r = await runCli(["kv", "ls", "--server", server.url, "--json"], {
      env: { STREAMKV_URL: "ws://127.0.0.1:1" },
    });
    expect(r.code, r.stderr).toBe(0);
  });
});

describe("streamkv usage errors", () => {
  // Independent processes: run them side by side to keep the suite short.
  it("prints --help everywhere", async () => {
    const runs = [["--help"], ["kv", "put", "--help"], ["cluster", "--help"]];
    const results = await Promise.all(runs.map((args) => runCli(args)));
    results.forEach((r, i) => {
      expect(r.code, runs[i]!.join(" ")).toBe(0);
      expect(r.stdout).toMatch(/usage: streamkv/);
    });
  });

  it("rejects bad usage with one line and exit code 2", async () => {
    const cases: [string[], RegExp][] = [
      [["kv", "add", "x", "--history", "abc"], /--history expects an integer, got "abc"/],
      [["kv", "put"], /usage: streamkv kv put/],
      [["kv", "bogus"], /unknown command "kv bogus"/],
      [["kv", "ls", "--nope"], /unknown flag --nope/],
      [["kv", "update", "b", "k", "v"], /needs --last/],
      [["frobnicate"], /unknown command "frobnicate"/],
      [["cluster", "add", "n4"], /usage: streamkv cluster add <id>=<host:port>/],
      [["cluster", "transfer"], /usage: streamkv cluster transfer <id>/],
      [["cluster", "remove", "a", "b"], /usage: streamkv cluster remove <id>/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args, { env })));
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(" ")).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    });
  });

  it("reports an unreachable server in one line", async () => {
    const r = await runCli(["kv", "ls", "--server", "ws://127.0.0.1:1", "--timeout", "500"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^streamkv: CONNECTION_CLOSED: /);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
