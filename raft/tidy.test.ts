/**
 * raft/ and kvapi/ have no clock, timers, randomness, file system or network
 * of their own (TigerBeetle's tidy.zig): that is what makes the simulator
 * deterministic. Scans every non-test .ts file and names file:line.
 * raft/sim/main.ts is exempt: the CLI reads argv and reports wall time.
 *
 * And raft/driver.ts, the one place the Ready ordering contract is enforced, stays
 * short enough to read in one sitting: the driver's other jobs have their own files
 * (snapshot_transfer.ts, pending.ts, fail_points.ts), and new ones should too.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = join(fileURLToPath(new URL(".", import.meta.url)), "..");
const EXEMPT = new Set(["raft/sim/main.ts"]);
/** raft/driver.ts was 940 lines before it was split by job (issue 8); it is about 560 now. */
const DRIVER_LINES_MAX = 600;

const FORBIDDEN: { name: string; pattern: RegExp }[] = [
  { name: "Date.now", pattern: /\bDate\.now\s*\(/ },
  { name: "new Date()", pattern: /\bnew\s+Date\s*\(\s*\)/ },
  { name: "performance.now", pattern: /\bperformance\.now\s*\(/ },
  { name: "setTimeout", pattern: /\bsetTimeout\s*\(/ },
  { name: "setInterval", pattern: /\bsetInterval\s*\(/ },
  { name: "setImmediate", pattern: /\bsetImmediate\s*\(/ },
  { name: "Math.random", pattern: /\bMath\.random\s*\(/ },
  { name: "process.hrtime", pattern: /\bprocess\.hrtime\b/ },
  {
    name: "forbidden import",
    pattern:
      /\b(?:from|import)\s*\(?\s*["'](?:node:)?(?:fs|fs\/promises|net|http|https|child_process|dgram)["']|["'](?:ws|classic-level|level)["']/,
  },
];

function sources(dir: string): string[] {
  let out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(sources(path));
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

function scanText(rel: string, text: string): string[] {
  const found: string[] = [];
  text.split("\n").forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, "");
    if (/^\s*\*/.test(code)) return;
    for (const f of FORBIDDEN) {
      if (f.pattern.test(code)) found.push(`${rel}:${i + 1}: ${f.name}: ${line.trim()}`);
    }
  });
  return found;
}

function findForbidden(files: string[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const rel = relative(root, file);
    if (EXEMPT.has(rel)) continue;
    found.push(...scanText(rel, readFileSync(file, "utf8")));
  }
  return found;
}

describe("tidy", () => {
  it("raft/ and kvapi/ use no clock, timers, randomness, fs or network", () => {
    const files = [...sources(join(root, "raft")), ...sources(join(root, "kvapi"))];
    expect(files.length).toBeGreaterThan(5);
    expect(findForbidden(files)).toEqual([]);
  });

  it(`raft/driver.ts stays under ${DRIVER_LINES_MAX} lines`, () => {
    const lines = readFileSync(join(root, "raft", "driver.ts"), "utf8").split("\n").length;
    expect(lines).toBeLessThan(DRIVER_LINES_MAX);
  });

  it("names file:line for each forbidden use", () => {
    const sample = [
      'import { readFileSync } from "node:fs";',
      "const t = Date.now();",
      "// setTimeout( in a comment is fine",
      "setTimeout(() => {}, 1);",
      'import WebSocket from "ws";',
      "const r = Math.random();",
      "queueMicrotask(() => {});",
    ].join("\n");
    expect(scanText("raft/x.ts", sample).map((f) => f.split(": ")[0])).toEqual([
      "raft/x.ts:1",
      "raft/x.ts:2",
      "raft/x.ts:4",
      "raft/x.ts:5",
      "raft/x.ts:6",
    ]);
  });
});
