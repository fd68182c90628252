/**
 * Test-file ownership of server processes and client connections: what a test
 * file records here is closed, killed and removed after its tests, even when they
 * fail. Separate from test_process.ts because that module is also used by the
 * benchmarks, which run outside vitest.
 */
import { afterAll } from "vitest";
import type { KvConnection } from "../client/index.js";
import { removeDir, type ServerProcess } from "../test_support/index.js";

export interface ProcessFixture {
  /** Servers to kill (SIGKILL) and whose data dirs to remove afterwards; tests may replace entries. */
  nodes: ServerProcess[];
  /** Connections to close afterwards. */
  conns: KvConnection[];
}

/** Call at the top level of a test file; registers its own afterAll. */
export function processFixture(): ProcessFixture {
  const fx: ProcessFixture = { nodes: [], conns: [] };
  afterAll(async () => {
    await Promise.all(fx.conns.map((c) => c.close()));
    await Promise.all(fx.nodes.map((n) => n.stop("SIGKILL")));
    for (const n of fx.nodes) removeDir(n.dataDir);
  });
  return fx;
}
