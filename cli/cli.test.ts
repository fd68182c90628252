/** The `streamkv` CLI, run as the real binary against a real node. */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  binPath,
  removeDir,
  repoRoot,
  runCli,
  runCommand,
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
    expect((await kv(["keys", "ops", "--json"])).stdout).toBe('["a.x","a.y","k"]\n');
    expect((await kv(["keys", "ops", "zz.>", "--json"])).stdout).toBe("[]\n");
    expect((await kv(["del", "ops", "a.x", "-f"])).code).toBe(0);
    const missing = await kv(["get", "ops", "a.x"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^streamkv: KEY_NOT_FOUND: key a.x has no value in bucket ops\n$/,
    );
    const hist = JSON.parse((await kv(["history", "ops", "a.x", "--json"])).stdout);
    expect(hist.map((e: { operation: string }) => e.operation)).toEqual(["PUT", "DEL"]);
    await kv(["purge", "ops", "k", "--force"]);
    const purged = JSON.parse((await kv(["history", "ops", "k", "--json"])).stdout);
    expect(purged.map((e: { operation: string }) => e.operation)).toEqual(["PURGE"]);
  });

  it("lists and removes buckets", async () => {
    await kv(["add", "tmp1"]);
    const ls = await kv(["ls"]);
    expect(ls.stdout).toMatch(/BUCKET[\s\S]*tmp1/);
    const json = JSON.parse((await kv(["ls", "--json"])).stdout);
    expect(json.map((b: { bucket: string }) => b.bucket)).toContain("tmp1");
    expect((await kv(["rm", "tmp1", "-f"])).stdout).toBe("deleted bucket tmp1\n");
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

/** Runs `streamkv args` on a pseudo-terminal (util-linux `script`), typing `typed`. */
const onTerminal = (args: string[], typed = "") => {
  const line = [process.execPath, binPath, ...args].map((a) => `'${a}'`).join(" ");
  return runCommand("script", ["-qec", line, "/dev/null"], { env, stdin: typed });
};

describe("streamkv kv: asking first, terminals, durations, info and compact", () => {
  it("del, purge, rm and compact refuse without -f when stdin is not a terminal", async () => {
    await kv(["add", "ask", "--history", "5"]);
    await kv(["put", "ask", "k", "v"]);
    const cases = [
      ["del", "ask", "k"],
      ["purge", "ask", "k"],
      ["rm", "ask"],
      ["compact", "ask"],
    ];
    // Even a "y" on a pipe is no answer: a script must say -f.
    const results = await Promise.all(cases.map((c) => kv(c, "y\n")));
    results.forEach((r, i) => {
      expect(r.code, cases[i]!.join(" ")).toBe(2);
      expect(r.stderr).toMatch(
        /^streamkv: USAGE: stdin is not a terminal, so nobody can confirm: add -f to /,
      );
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    });
    expect((await kv(["get", "ask", "k"])).stdout).toBe("v");
    expect((await kv(["del", "ask", "k", "--force"])).stdout).toBe("2\n");
    expect((await kv(["purge", "ask", "k", "-f"])).stdout).toBe("3\n");
    const compacted = await kv(["compact", "ask", "-f", "--older-than", "0"]);
    expect(compacted.stdout).toBe("compacted bucket ask: 1 entry removed\n");
    expect((await kv(["rm", "ask", "-f"])).stdout).toBe("deleted bucket ask\n");
  });

  it("asks on a terminal: y does it, anything else is CANCELLED and changes nothing", async () => {
    await kv(["add", "tty"]);
    await kv(["put", "tty", "k", "v"]);
    const no = await onTerminal(["kv", "del", "tty", "k"], "n\n");
    expect(no.code, no.stdout).toBe(1);
    expect(no.stdout).toContain("Delete key k of bucket tty? [y/N]");
    expect(no.stdout).toMatch(/streamkv: CANCELLED: not confirmed: did not delete key k/);
    expect((await kv(["get", "tty", "k"])).code).toBe(0);
    const yes = await onTerminal(["kv", "rm", "tty"], "y\n");
    expect(yes.code, yes.stdout).toBe(0);
    expect(yes.stdout).toMatch(
      /Delete bucket tty and all its data\? \[y\/N\] [\s\S]*deleted bucket tty/,
    );
    expect((await kv(["status", "tty"])).stderr).toMatch(/BUCKET_NOT_FOUND/);
  });

  it("get ends with a newline on a terminal and stays raw in a pipe", async () => {
    await kv(["add", "nl"]);
    await kv(["put", "nl", "k", "no newline"]);
    await kv(["put", "nl", "lf"], "has one\n");
    const shown = await onTerminal(["kv", "get", "nl", "k"]);
    expect(shown.stdout).toBe("no newline\r\n"); // the terminal turns \n into \r\n
    expect((await onTerminal(["kv", "get", "nl", "lf"])).stdout).toBe("has one\r\n");
    expect((await kv(["get", "nl", "k"])).stdout).toBe("no newline");
  });

  it("takes durations for --ttl, and refuses a bad one naming it", async () => {
    const ttls: [string, number][] = [
      ["30s", 30_000],
      ["1h30m", 5_400_000],
      ["500ms", 500],
      ["1500", 1500],
      ["0", 0],
    ];
    const added = await Promise.all(
      ttls.map(([ttl], i) => kv(["add", `ttl${i}`, "--ttl", ttl, "-j"])),
    );
    added.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).ttl, ttls[i]![0]).toBe(ttls[i]![1]);
    });
    for (const bad of ["30x", "1.5s", "-1s", "s"]) {
      const r = await kv(["add", "ttlbad", `--ttl=${bad}`]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toContain(`--ttl expects a duration`);
      expect(r.stderr).toContain(`got ${JSON.stringify(bad)}`);
    }
    expect((await kv(["ls", "--timeout", "2s"])).code).toBe(0);
  });

  it("info is status; -s and -j are --server and --json", async () => {
    await kv(["add", "inf", "--history", "3"]);
    const info = await runCli(["kv", "info", "inf", "-j", "-s", server.url]);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ bucket: "inf", history: 3 });
    expect((await kv(["info", "inf"])).stdout).toBe((await kv(["status", "inf"])).stdout);
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

  it("prints the version", async () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
    const r = await runCli(["--version"]);
    expect(r).toMatchObject({ code: 0, stdout: `streamkv ${version}\n`, stderr: "" });
  });

  it("rejects bad usage with one line, code USAGE and exit code 2", async () => {
    const cases: [string[], RegExp][] = [
      [[], /missing command: server, kv, cluster/],
      [["kv"], /missing command: add, put, /],
      [["cluster"], /missing command: status, transfer/],
      [["token"], /missing command: create, hash/],
      [["kv", "get", "b", "k", "-s"], /-s needs a value/],
      [["kv", "watch", "b", "--timeout", "soon"], /--timeout expects a duration/],
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
      expect(r.stderr).toMatch(/^streamkv: USAGE: /);
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
