/**
 * The dependency arrows of DESIGN.md section 2, checked on every import of every
 * non-test source file (test files and test support may reach further, see TEST_CODE):
 *
 *   node -> kvapi -> log, node -> raft, node -> raftstore -> raft, cli -> client,
 *   cli -> node, client -> proto only, and everything may import proto.
 *
 * So: log imports nothing of raft, raft nothing of log/kvapi/node/raftstore, node
 * never imports cli, the client only proto (it bundles for a browser), and no product
 * code imports cluster-tests or bench. A violation names file:line and the arrow.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL(".", import.meta.url));

/** What each product package may import (besides itself and npm packages). */
const ALLOWED: Record<string, readonly string[]> = {
  proto: [],
  log: ["proto"],
  raft: ["proto"],
  raftstore: ["raft", "proto"],
  kvapi: ["log", "proto"],
  client: ["proto"],
  node: ["kvapi", "log", "raft", "raftstore", "proto"],
  cli: ["client", "node", "proto"],
};

/**
 * Test code, which may import what it tests from anywhere (but is still never imported
 * by product code): *.test.ts, cluster-tests/, bench/, and each package's test support.
 */
const TEST_SUPPORT = new Set([
  "node/test_process.ts",
  "node/test_fixture.ts",
  "kvapi/test_support.ts",
  "log/test_helpers.ts",
  "log/crash_child.ts",
  "raft/test_cluster.ts",
  "raft/storage_contract.ts",
]);
const TEST_FOLDERS = new Set(["cluster-tests", "bench", "kvsim"]);

function isTestCode(rel: string): boolean {
  return (
    rel.endsWith(".test.ts") ||
    TEST_SUPPORT.has(rel) ||
    TEST_FOLDERS.has(rel.split("/")[0]!) ||
    rel.startsWith("client/browser_fixture/")
  );
}

function sources(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(sources(path));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

interface Import {
  file: string;
  line: number;
  from: string;
  to: string;
}

/** Relative imports (static, dynamic and re-exports) resolved to their top-level folder. */
function importsOf(path: string): Import[] {
  const rel = relative(root, path).split(sep).join("/");
  const from = rel.split("/")[0]!;
  const found: Import[] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((text, i) => {
      if (/^\s*(\*|\/\/)/.test(text)) return;
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
        const target = relative(root, resolve(path, "..", m[1]!))
          .split(sep)
          .join("/");
        const to = target.split("/")[0]!;
        if (to !== from) found.push({ file: rel, line: i + 1, from, to });
      }
    });
  return found;
}

function violations(): string[] {
  const out: string[] = [];
  for (const path of sources(root)) {
    for (const imp of importsOf(path)) {
      const where = `${imp.file}:${imp.line}: ${imp.from} -> ${imp.to}`;
      if (TEST_FOLDERS.has(imp.to)) {
        if (!isTestCode(imp.file)) out.push(`${where} (product code imports test code)`);
        continue;
      }
      if (isTestCode(imp.file)) continue;
      const allowed = ALLOWED[imp.from];
      if (allowed === undefined) continue;
      if (!allowed.includes(imp.to)) out.push(`${where} (not an arrow of DESIGN.md section 2)`);
    }
  }
  return out;
}

describe("layers", () => {
  it("every import follows the dependency arrows", () => {
    expect(violations()).toEqual([]);
  });

  it("sees the imports it checks (a planted violation is caught)", () => {
    // The scanner itself: this very file imports nothing relative, so check a known edge.
    const found = importsOf(join(root, "node", "raft_service.ts")).map((i) => i.to);
    expect(found).toEqual(expect.arrayContaining(["kvapi", "raft", "raftstore", "proto"]));
    const client = importsOf(join(root, "client", "index.ts")).map((i) => i.to);
    expect(client.every((to) => to === "proto")).toBe(true);
  });
});
