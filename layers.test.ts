/**
 * The dependency arrows of DESIGN.md section 2, checked on every import of every
 * source file (static, dynamic and re-exports), each violation named file:line:
 *
 *   node -> kvapi -> log, node -> nats -> kvapi, node -> raft, node -> raftstore -> raft, cli -> client,
 *   cli -> node, client -> proto only, and everything may import proto.
 *
 * So: log imports nothing of raft, raft nothing of log/kvapi/node/raftstore, node
 * never imports cli, the client only proto (it bundles for a browser), and no product
 * code imports test code (cluster-tests, bench, test_support, a package's test support).
 *
 * And a package is entered through its index.ts: `../raft/index.js`, never
 * `../raft/driver.js`. Test code too, with two kinds of exception:
 * - a package's own test support (TEST_SUPPORT: storage_contract.ts, test_cluster.ts,
 *   ...), which index.ts must not re-export, or product code would load vitest;
 * - INTERNALS: the few test files that measure or exercise a piece below a package's
 *   surface, each with its reason.
 * Test folders (cluster-tests/, bench/) have no index.ts of their own and import each
 * other's helpers by path (bench/ starts clusters with cluster-tests/harness/).
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
  // The NATS port: the node hands it its KV service and auth checks (nats/types.ts).
  nats: ["kvapi", "log", "proto"],
  node: ["kvapi", "log", "raft", "raftstore", "nats", "proto"],
  cli: ["client", "node", "proto"],
};

/**
 * Test code, which may import what it tests from anywhere (but is still never imported
 * by product code): *.test.ts, cluster-tests/, bench/, and each package's test support.
 */
const TEST_SUPPORT = new Set([
  "node/test_fixture.ts",
  "node/test_doubles.ts",
  "kvapi/test_support.ts",
  "log/test_helpers.ts",
  "log/crash_child.ts",
  "raft/test_cluster.ts",
  "raft/storage_contract.ts",
  // The Raft simulator's virtual time and disk, reused by kvsim/ (which runs the KV
  // stack on them): test tooling, so product code must not import them.
  "raft/sim/event_queue.ts",
  "raft/sim/sim_disk.ts",
]);
const TEST_FOLDERS = new Set(["cluster-tests", "bench", "kvsim", "test_support"]);

/** Packages entered only through their index.ts. */
const PACKAGES = new Set([...Object.keys(ALLOWED), "test_support"]);

/** Test code that reaches below a package's index.ts, and why. */
const INTERNALS: Record<string, readonly string[]> = {
  // The watch fan-out micro-benchmark drives the hub and a watcher without a KV state
  // machine around them, to measure the fan-out alone.
  "bench/kvapi.ts": ["kvapi/watch/hub.ts", "kvapi/watch/watcher.ts"],
  // The backup bench times `streamkv snapshot save|status|restore` as the CLI runs them,
  // in its own process so that a process start-up is not counted (cli/ has no index.ts).
  "bench/_snapshot_backup.ts": ["cli/snapshot.ts"],
  // The bit-flip tests damage a table's bloom filter block, which they find with the
  // table parser the checks use (the log does not export it: nothing else needs it).
  "cluster-tests/harness/bitflip.ts": ["log/leveldb_files.ts"],
};

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
  /** The imported file, relative to the root, `.ts` (e.g. `raft/driver.ts`). */
  target: string;
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
        const ts = target.replace(/\.js$/, ".ts");
        if (to !== from) found.push({ file: rel, line: i + 1, from, to, target: ts });
      }
    });
  return found;
}

function allImports(): Import[] {
  return sources(root).flatMap(importsOf);
}

function violations(imports: Import[] = allImports()): string[] {
  const out: string[] = [];
  for (const imp of imports) {
    const where = `${imp.file}:${imp.line}: ${imp.from} -> ${imp.to}`;
    const exempt = TEST_SUPPORT.has(imp.target) || INTERNALS[imp.file]?.includes(imp.target);
    if (PACKAGES.has(imp.to) && imp.target !== `${imp.to}/index.ts` && !exempt) {
      out.push(`${where} (${imp.target}: enter ${imp.to}/ through ${imp.to}/index.ts)`);
    }
    if (TEST_FOLDERS.has(imp.to)) {
      if (!isTestCode(imp.file)) out.push(`${where} (product code imports test code)`);
      continue;
    }
    if (TEST_SUPPORT.has(imp.target)) {
      if (!isTestCode(imp.file)) out.push(`${where} (product code imports test code)`);
      continue;
    }
    if (isTestCode(imp.file)) continue;
    const allowed = ALLOWED[imp.from];
    if (allowed === undefined) continue;
    if (!allowed.includes(imp.to)) out.push(`${where} (not an arrow of DESIGN.md section 2)`);
  }
  return out;
}

describe("layers", () => {
  it("every import follows the dependency arrows", () => {
    expect(violations()).toEqual([]);
  });

  it("every exception it allows still exists", () => {
    const seen = new Set(allImports().map((i) => `${i.file} ${i.target}`));
    const stale = Object.entries(INTERNALS).flatMap(([file, targets]) =>
      targets.filter((t) => !seen.has(`${file} ${t}`)).map((t) => `${file} ${t}`),
    );
    expect(stale).toEqual([]);
  });

  it("sees the imports it checks (a planted violation is caught)", () => {
    // The scanner itself: this very file imports nothing relative, so check a known edge.
    const found = importsOf(join(root, "node", "raft_service.ts")).map((i) => i.to);
    expect(found).toEqual(expect.arrayContaining(["kvapi", "raft", "raftstore", "proto"]));
    const client = importsOf(join(root, "client", "index.ts")).map((i) => i.to);
    expect(client.every((to) => to === "proto")).toBe(true);
  });

  it("names each kind of violation", () => {
    const imp = (file: string, target: string): Import => ({
      file,
      line: 7,
      from: file.split("/")[0]!,
      to: target.split("/")[0]!,
      target,
    });
    expect(
      violations([
        imp("log/stream_log.ts", "raft/index.ts"),
        imp("node/replica.ts", "raft/driver.ts"),
        imp("node/main.ts", "cli/index.ts"),
        imp("client/kv.ts", "node/index.ts"),
        imp("node/server.ts", "test_support/index.ts"),
        imp("kvapi/reads.ts", "log/test_helpers.ts"),
        imp("node/server.test.ts", "raft/core.ts"),
        imp("node/server.test.ts", "raft/storage_contract.ts"),
        imp("bench/node.ts", "test_support/process.ts"),
      ]),
    ).toEqual([
      "log/stream_log.ts:7: log -> raft (not an arrow of DESIGN.md section 2)",
      "node/replica.ts:7: node -> raft (raft/driver.ts: enter raft/ through raft/index.ts)",
      "node/main.ts:7: node -> cli (not an arrow of DESIGN.md section 2)",
      "client/kv.ts:7: client -> node (not an arrow of DESIGN.md section 2)",
      "node/server.ts:7: node -> test_support (product code imports test code)",
      "kvapi/reads.ts:7: kvapi -> log (product code imports test code)",
      "node/server.test.ts:7: node -> raft (raft/core.ts: enter raft/ through raft/index.ts)",
      "bench/node.ts:7: bench -> test_support (test_support/process.ts: enter test_support/ through test_support/index.ts)",
    ]);
  });
});
