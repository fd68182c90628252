/**
 * The README cannot rot: its examples run here against real `streamkv server`
 * processes, and its tables are checked against the code they describe.
 *
 * - Every ```ts block is a complete program: `ws://127.0.0.1:7420` becomes a fresh
 *   node's URL, and it runs as the README says to run it, saved inside the clone
 *   (where `from "streamkv"` is the package itself) with `tsx`. It must exit 0 (it
 *   asserts what it shows), twice in a row on the same node: a reader runs an example
 *   again on a node that has seen it. All blocks are also type-checked in one `tsc` run.
 * - ```sh blocks whose first command is `streamkv kv` or `streamkv cluster` run in
 *   order against one node, each line in bash with `streamkv` meaning this
 *   checkout's bin (`printf x | streamkv kv put b k` works). A trailing comment
 *   says what to expect: `# => text` (stdout, whitespace collapsed; `...` matches
 *   anything), `# exit N` or `# exit N: text` (exit code, stderr contains text);
 *   none means exit 0. `# not run` skips a line. `streamkv kv watch` runs until it
 *   prints the initial-done marker, then gets SIGINT and must exit 0.
 * - A ```text output block right after such an sh block is the stdout of its last
 *   command, line by line (`...` matches anything within a line).
 * - The server flag table equals `streamkv server --help` (flag, argument, env,
 *   default), the error table equals ERROR_CODES, every `kv` subcommand of
 *   `streamkv kv --help` has a run example, every HTTP endpoint answers 200, every
 *   `npm run` script exists, and the quick start is exactly its two commands.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES } from "./proto/index.js";
import {
  binPath,
  type CommandResult,
  collectOutput,
  exitOf,
  removeDir,
  repoRoot,
  runCommand,
  type ServerProcess,
  startServer,
  tempDir,
  waitFor,
} from "./test_support/index.js";

const README = readFileSync(join(repoRoot, "README.md"), "utf8");
const DOC_URL = "ws://127.0.0.1:7420";
const CLIENT_PATH = join(repoRoot, "client", "index.ts");
const TSX_CLI = join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs");
const SNIPPET_TIMEOUT_MS = 20_000;
const COMMAND_TIMEOUT_MS = 15_000;

interface Block {
  lang: string;
  /** The info string after the language (```text output -> "output"). */
  info: string;
  body: string;
  /** 1-based line of the opening fence. */
  line: number;
}

function parseBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith("```"); i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`README.md:${start + 1}: unclosed code block`);
    blocks.push({ lang: open[1]!, info: open[2]!, body: body.join("\n"), line: start + 1 });
  }
  return blocks;
}

const blocks = parseBlocks(README);

/** The README lines from `## heading` to the next `## `. */
function section(heading: string): string[] {
  const lines = README.split("\n");
  const start = lines.indexOf(`## ${heading}`);
  if (start < 0) throw new Error(`README.md has no "## ${heading}" section`);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => l.startsWith("## "));
  return end < 0 ? rest : rest.slice(0, end);
}

/** Table rows (cells trimmed) of the lines given, header and separator left out. */
function tableRows(lines: string[]): string[][] {
  const rows = lines
    .filter((l) => l.startsWith("|"))
    .map((l) =>
      l
        .slice(1, l.endsWith("|") ? -1 : undefined)
        .split("|")
        .map((c) => c.trim()),
    );
  return rows.filter((r, i) => i > 0 && !r.every((c) => /^:?-+:?$/.test(c)));
}

const stripTicks = (cell: string) => cell.replace(/^`|`$/g, "");

/** `...` matches anything; everything else literally. */
function wildcard(pattern: string): RegExp {
  const parts = pattern.split("...").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("[\\s\\S]*")}$`);
}

const collapse = (text: string) => text.trim().replace(/\s+/g, " ");

type Run = CommandResult;

/** Runs to completion, SIGKILLed after `timeoutMs` (then the code is "timeout"). */
function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<Run> {
  return runCommand(command, args, { env, timeoutMs });
}

/** `bash -c` with `streamkv` bound to this checkout's bin and `url` as the server. */
function shell(line: string, url: string): { args: string[]; env: Record<string, string> } {
  const script = `set -o pipefail\nstreamkv() { exec "$STREAMKV_NODE" "$STREAMKV_BIN" "$@"; }\n${line}`;
  return {
    args: ["-c", script],
    env: {
      STREAMKV_URL: url,
      STREAMKV_BIN: binPath,
      STREAMKV_NODE: process.execPath,
      STREAMKV_TOKEN: "",
    },
  };
}

// ---------------------------------------------------------------- ts snippets

const tsBlocks = blocks.filter((b) => b.lang === "ts");

describe("README ```ts examples", () => {
  it("has examples, each connecting to the documented URL and importing streamkv", () => {
    expect(tsBlocks.length).toBeGreaterThan(0);
    for (const b of tsBlocks) {
      expect(b.body, `README.md:${b.line}`).toContain(DOC_URL);
      expect(b.body, `README.md:${b.line}`).toContain('from "streamkv"');
    }
  });

  // Inside the clone, as a reader saves an example (.tmp/ is git-ignored).
  // Made by the tests themselves: a run that filters them out leaves nothing behind.
  const dir = join(repoRoot, ".tmp", `readme-ts-${process.pid}`);
  afterAll(() => removeDir(dir));

  for (const [i, block] of tsBlocks.entries()) {
    it(`README.md:${block.line} runs twice on the same node (npx tsx, inside the clone)`, {
      timeout: 90_000,
    }, async () => {
      const server = await startServer();
      try {
        mkdirSync(dir, { recursive: true });
        const file = join(dir, `snippet_${i}_line_${block.line}.ts`);
        writeFileSync(file, block.body.replaceAll(DOC_URL, server.url));
        for (const attempt of ["first", "second"]) {
          const r = await run(process.execPath, [TSX_CLI, file], {}, SNIPPET_TIMEOUT_MS);
          const where = `README.md:${block.line}, ${attempt} run`;
          expect(r.code, `${where}\n${r.stderr}${r.stdout}`).toBe(0);
        }
      } finally {
        await server.stop();
        removeDir(server.dataDir);
      }
    });
  }

  it("type-checks (strict) against the client's types", { timeout: 120_000 }, async () => {
    const checkDir = tempDir("streamkv-readme-tsc-");
    try {
      const files = tsBlocks.map((b, i) => {
        const name = `snippet_${i}_line_${b.line}.mts`;
        writeFileSync(join(checkDir, name), b.body);
        return name;
      });
      const compilerOptions = {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        lib: ["ES2022", "DOM"],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ["node"],
        typeRoots: [join(repoRoot, "node_modules", "@types")],
        paths: { streamkv: [CLIENT_PATH] },
      };
      writeFileSync(join(checkDir, "tsconfig.json"), JSON.stringify({ compilerOptions, files }));
      const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");
      const r = await run(
        process.execPath,
        [tsc, "-p", join(checkDir, "tsconfig.json")],
        {},
        110_000,
      );
      // tsc names the snippet file and line; the file name carries the README line.
      expect(r.code, r.stdout + r.stderr).toBe(0);
    } finally {
      removeDir(checkDir);
    }
  });
});

// ---------------------------------------------------------------- sh examples

interface ShCommand {
  command: string;
  /** README line. */
  line: number;
  expectStdout?: string;
  expectExit: number;
  expectStderr?: string;
}

const ANNOTATION =
  /\s+#\s*(?:=>\s*(?<out>.*)|exit\s+(?<code>\d+)(?::\s*(?<err>.*))?|(?<skip>not run))\s*$/;
const isCommand = (line: string) => /^(?:[^|#]*\|\s*)?streamkv\s/.test(line);
const isRunnable = (b: Block) => {
  if (b.lang !== "sh") return false;
  const first = b.body.split("\n").find((l) => l.trim() !== "" && !l.trim().startsWith("#"));
  return first !== undefined && /^streamkv (kv|cluster)\b/.test(first);
};

function parseSh(block: Block): ShCommand[] {
  const out: ShCommand[] = [];
  for (const [i, raw] of block.body.split("\n").entries()) {
    const line = block.line + 1 + i;
    if (raw.trim() === "" || raw.trim().startsWith("#")) continue;
    if (!isCommand(raw)) throw new Error(`README.md:${line}: not a streamkv command: ${raw}`);
    const m = ANNOTATION.exec(raw);
    if (m?.groups?.skip) continue;
    if (!m && raw.includes(" #")) throw new Error(`README.md:${line}: unknown comment: ${raw}`);
    const command = m ? raw.slice(0, m.index) : raw;
    const g = m?.groups ?? {};
    const cmd: ShCommand = { command: command.trim(), line, expectExit: Number(g.code ?? 0) };
    if (g.out !== undefined) cmd.expectStdout = g.out.trim();
    if (g.err !== undefined) cmd.expectStderr = g.err.trim();
    out.push(cmd);
  }
  return out;
}

/** A watch runs until it has printed the initial values, then gets Ctrl-C. */
async function runWatch(cmd: ShCommand, url: string): Promise<Run> {
  const { args, env } = shell(cmd.command, url);
  const proc = spawn("bash", args, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = collectOutput(proc);
  const io = { out: output.stdout, err: output.stderr };
  const done = exitOf(proc);
  let ended = false;
  void done.then(() => {
    ended = true;
  });
  try {
    await waitFor(
      () => ended || /^# initial values done$|^\{"initDone":true\}$/m.test(io.out()),
      COMMAND_TIMEOUT_MS,
      `README.md:${cmd.line}: the watch's initial values`,
    );
  } catch (err) {
    proc.kill("SIGKILL");
    await done;
    throw new Error(`${(err as Error).message}\nstdout: ${io.out()}\nstderr: ${io.err()}`);
  }
  // Watch output after the marker is not part of the example; stop it here.
  const stdout = io.out();
  proc.kill("SIGINT");
  const timer = setTimeout(() => proc.kill("SIGKILL"), COMMAND_TIMEOUT_MS);
  const code = await done;
  clearTimeout(timer);
  return { code, stdout, stderr: io.err() };
}

function checkOutput(block: Block, stdout: string): void {
  const actual = stdout.split("\n").map((l) => l.trimEnd());
  while (actual.length > 0 && actual[actual.length - 1] === "") actual.pop();
  const expected = block.body.split("\n").map((l) => l.trimEnd());
  const where = `README.md:${block.line} (output block)\nactual:\n${actual.join("\n")}`;
  expect(actual.length, where).toBe(expected.length);
  for (const [i, e] of expected.entries()) {
    expect(actual[i], `${where}\nline ${i + 1}`).toMatch(wildcard(e));
  }
}

describe("README ```sh CLI examples", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
    if (server) removeDir(server.dataDir);
  });

  it("runs every streamkv kv / cluster line, in order, with the output shown", {
    timeout: 180_000,
  }, async () => {
    const runnable = blocks.filter(isRunnable);
    expect(runnable.length).toBeGreaterThan(0);
    let ran = 0;
    for (const [index, block] of blocks.entries()) {
      if (!isRunnable(block)) continue;
      let last: Run | undefined;
      for (const cmd of parseSh(block)) {
        const where = `README.md:${cmd.line}: ${cmd.command}`;
        const isWatch = /^streamkv kv watch\b/.test(cmd.command);
        const r = isWatch
          ? await runWatch(cmd, server.url)
          : await (async () => {
              const { args, env } = shell(cmd.command, server.url);
              return run("bash", args, env, COMMAND_TIMEOUT_MS);
            })();
        const detail = `${where}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
        expect(r.code, detail).toBe(isWatch ? 0 : cmd.expectExit);
        if (cmd.expectExit === 0) expect(r.stderr.trim(), detail).toBe("");
        if (cmd.expectStdout !== undefined) {
          expect(collapse(r.stdout), detail).toMatch(wildcard(collapse(cmd.expectStdout)));
        }
        if (cmd.expectStderr !== undefined) expect(r.stderr, detail).toContain(cmd.expectStderr);
        last = r;
        ran++;
      }
      const next = blocks[index + 1];
      if (next?.lang === "text" && next.info === "output") {
        expect(last, `README.md:${next.line}: output block after an empty sh block`).toBeDefined();
        checkOutput(next, last!.stdout);
      }
    }
    expect(ran).toBeGreaterThan(0);
  });

  it("every output block follows a run sh block", () => {
    for (const [i, b] of blocks.entries()) {
      if (b.lang === "text" && b.info === "output") {
        const previous = blocks[i - 1];
        expect(previous && isRunnable(previous), `README.md:${b.line}`).toBe(true);
      }
    }
  });

  it("no streamkv kv line hides in a block that is not run", () => {
    for (const b of blocks) {
      if (isRunnable(b)) continue;
      for (const l of b.body.split("\n")) {
        expect(/^(?:[^|#]*\|\s*)?streamkv kv\b/.test(l), `README.md:${b.line}: ${l}`).toBe(false);
      }
    }
  });

  it("shows every subcommand of `streamkv kv --help` and `cluster status`", async () => {
    const help = await run(process.execPath, [binPath, "kv", "--help"], {}, COMMAND_TIMEOUT_MS);
    expect(help.code).toBe(0);
    const commandsSection = help.stdout.split(/\n\s*\n/).find((p) => p.startsWith("commands:"));
    const subcommands = (commandsSection ?? "")
      .split("\n")
      .slice(1)
      .map((l) => /^\s+(\S+)/.exec(l)?.[1])
      .filter((s): s is string => s !== undefined);
    expect(subcommands.length).toBeGreaterThan(5);
    const runLines = blocks
      .filter(isRunnable)
      .flatMap((b) => parseSh(b))
      .map((c) => c.command.replace(/^[^|]*\|\s*/, ""));
    for (const sub of subcommands) {
      expect(
        runLines.some((l) => l.startsWith(`streamkv kv ${sub} `) || l === `streamkv kv ${sub}`),
        `no run example of streamkv kv ${sub}`,
      ).toBe(true);
    }
    expect(runLines.some((l) => l.startsWith("streamkv cluster status"))).toBe(true);
    expect(runLines.some((l) => / --json\b/.test(l))).toBe(true);
  });
});

// ---------------------------------------------------------------- tables

describe("README tables and sections", () => {
  it("the quick start comes first and is exactly two commands", () => {
    const first = blocks[0]!;
    expect(first.lang).toBe("sh");
    const commands = first.body
      .split("\n")
      .map((l) => l.replace(/\s+#.*$/, "").trim())
      .filter((l) => l !== "");
    expect(commands).toEqual(["npm ci && npm start", "npm ci && npm test"]);
    expect(README.indexOf("## Quick start")).toBeLessThan(README.indexOf("```"));
  });

  it("the server flag table is `streamkv server --help` (flag, argument, env, default)", async () => {
    const help = await run(process.execPath, [binPath, "server", "--help"], {}, COMMAND_TIMEOUT_MS);
    expect(help.code).toBe(0);
    const parsed = help.stdout
      .split("\n")
      .map((l) => /^ {2}(--[a-z0-9-]+)( <\w+>)?\s{2,}(.*?)(?:\s+\[(STREAMKV_\w+)\])?$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => {
        const d = /\s*\(default ([^()]*)\)$/.exec(m[3]!);
        const meaning = d ? m[3]!.slice(0, d.index) : m[3]!;
        return { flag: `${m[1]}${m[2] ?? ""}`, env: m[4] ?? "", def: d?.[1] ?? "", meaning };
      });
    const fromHelp = parsed.map((f) => [f.flag, f.env, f.def].join(" | "));
    const fromTable = tableRows(section("Server flags"))
      .filter((r) => r[0]!.startsWith("`--"))
      .map((r) => [stripTicks(r[0]!), stripTicks(r[1]!), stripTicks(r[2]!)].join(" | "));
    expect(fromHelp.length).toBeGreaterThan(5);
    // Each flag once (a merge once printed every line twice, and the table followed).
    const flags = parsed.map((f) => f.flag);
    expect(flags.filter((f, i) => flags.indexOf(f) !== i)).toEqual([]);
    // On a mismatch, the message holds the rows to paste into the README.
    const tick = (s: string) => (s === "" ? "" : `\`${s}\``);
    const rows = parsed.map(
      (f) => `| ${tick(f.flag)} | ${tick(f.env)} | ${tick(f.def)} | ${f.meaning} |`,
    );
    expect(fromTable, `README server flag rows from --help:\n${rows.join("\n")}`).toEqual(fromHelp);
  });

  it("the error table lists exactly ERROR_CODES", () => {
    const lines = README.split("\n");
    const header = lines.findIndex((l) => /^\| code \| meaning \|/.test(l));
    expect(header).toBeGreaterThan(0);
    const end = lines.findIndex((l, i) => i > header && !l.startsWith("|"));
    const codes = tableRows(lines.slice(header, end)).flatMap((r) =>
      [...r[0]!.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!),
    );
    expect([...codes].sort()).toEqual([...ERROR_CODES].sort());
  });

  it("every `npm run` script it mentions exists", () => {
    const scripts = Object.keys(
      JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).scripts,
    );
    const used = [...README.matchAll(/npm run ([a-z:-]+)/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(0);
    for (const name of used) expect(scripts, `npm run ${name}`).toContain(name);
  });

  it("every HTTP endpoint it lists answers on a node's client port", {
    timeout: 60_000,
  }, async () => {
    const endpoints = tableRows(section("Ports and HTTP endpoints"))
      .map((r) => /^`GET (\/\S*)`$/.exec(r[0]!)?.[1])
      .filter((p): p is string => p !== undefined);
    expect(endpoints).toEqual(
      expect.arrayContaining(["/healthz", "/readyz", "/v1/status", "/metrics"]),
    );
    const server = await startServer();
    try {
      const base = `http://127.0.0.1:${server.clientPort}`;
      // /readyz is 503 until the lone node has elected itself and applied.
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, 15_000, "readyz");
      for (const path of endpoints) {
        const res = await fetch(base + path);
        await res.text();
        expect(res.status, path).toBe(200);
      }
    } finally {
      await server.stop();
      removeDir(server.dataDir);
    }
  });
});
