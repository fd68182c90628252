/**
 * The client must bundle for a browser: no Node built-ins, no server folders, and `ws`
 * only through the dynamic import in socket.ts.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const clientDir = dirname(fileURLToPath(import.meta.url));
const sources = readdirSync(clientDir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
// proto's index.ts re-exports only browser-safe modules (checked below).
const allowed = ["../proto/index.js"];

describe("client sources", () => {
  it.each(sources)("%s imports only browser-safe modules", (file) => {
    const text = readFileSync(join(clientDir, file), "utf8");
    const bad: string[] = [];
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm)) {
      const spec = m[1]!;
      const ok = spec.startsWith("./") || allowed.includes(spec) || spec === "protobufjs";
      if (!ok) bad.push(spec);
    }
    for (const m of text.matchAll(/\bimport\(\s*(?:\/\*[^*]*\*\/\s*)?"([^"]+)"\s*\)/g)) {
      if (!(file === "socket.ts" && m[1] === "ws")) bad.push(`import("${m[1]}")`);
    }
    if (/\bBuffer\b|\bprocess\.|require\(/.test(text))
      bad.push("Node global (Buffer/process/require)");
    expect(bad).toEqual([]);
  });

  it.each([
    "index.ts",
    "schema.ts",
    "assert.ts",
    "backoff.ts",
    "bucket_config.ts",
    "errors.ts",
    "hosts.ts",
    "client_codec.ts",
    "client_requests.ts",
    "client_responses.ts",
    "wire_errors.ts",
    "types.ts",
    "snapshot_header.ts",
    "turn_cork.ts",
    "entry_frames.ts",
  ])("the shared proto/%s imports only browser-safe modules", (file) => {
    const text = readFileSync(join(clientDir, "../proto", file), "utf8");
    const specs = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm)].map(
      (m) => m[1]!,
    );
    const ok = [
      "protobufjs",
      "./assert.js",
      "./backoff.js",
      "./bucket_config.js",
      "./errors.js",
      "./hosts.js",
      "./schema.js",
      "./generated/client.js",
      "./generated/kv.js",
      "./generated/log.js",
      "./generated/peer.js",
      "./generated/raft.js",
      "./generated/raftlog.js",
      "./client_codec.js",
      "./client_requests.js",
      "./client_responses.js",
      "./wire_errors.js",
      "./types.js",
      "./snapshot_header.js",
      "./turn_cork.js",
      "./entry_frames.js",
    ];
    expect(specs.filter((s) => !ok.includes(s))).toEqual([]);
    expect(/\bBuffer\b|\bprocess\.|require\(|import\(/.test(text)).toBe(false);
  });
});
