#!/usr/bin/env node
// The `streamkv` command. `npm ci` builds it into dist/ (cli/build_bin.js), and while no
// source bundled there has changed since, that build runs in plain Node. Otherwise
// (no build, or an edited or checked-out source) tsx compiles the TypeScript sources
// on load, so a clone needs only `npm ci`, and never runs stale code.
import { readFileSync, statSync } from "node:fs";

const root = new URL("../", import.meta.url);

/** Whether dist/streamkv.js was built from the sources as they are now. */
function buildIsFresh() {
  try {
    const { sourcesAtMs, sources } = JSON.parse(
      readFileSync(new URL("dist/streamkv.json", root), "utf8"),
    );
    return (
      sources.length > 0 && sources.every((s) => statSync(new URL(s, root)).mtimeMs <= sourcesAtMs)
    );
  } catch {
    return false; // no build, or a source gone
  }
}

if (buildIsFresh()) {
  await import(new URL("dist/streamkv.js", root).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../cli/main.ts");
}
