/**
 * Builds the `streamkv` command into dist/ with esbuild (`npm run build:cli`; `npm ci`
 * runs it as `prepare`), so that bin/streamkv.js starts in plain Node instead of
 * compiling the TypeScript sources with tsx on every call (about 0.3 s each).
 *
 * dist/streamkv.js and its chunks (the server, token and dev-cluster code load only
 * when asked for); npm packages stay imports of node_modules. dist/streamkv.json lists
 * the sources bundled and when they were read: bin/streamkv.js uses the build only
 * while none of them has changed since, so an edit or a `git checkout` never runs old
 * code. Without esbuild (`npm ci --omit=dev`) there is no build and the bin uses tsx.
 *
 * `node cli/build_bin.js [outdir]` (default dist); the outdir must sit one level below
 * the repository root, as dist/ does (dev-cluster finds ../bin/streamkv.js from it).
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = join(root, process.argv[2] ?? "dist");

let esbuild;
try {
  esbuild = await import("esbuild");
} catch {
  console.warn("streamkv: no esbuild (a dev dependency), no build: bin/streamkv.js uses tsx");
  process.exit(0);
}

mkdirSync(outdir, { recursive: true });
for (const name of readdirSync(outdir)) {
  if (/^streamkv[.-]/.test(name)) rmSync(join(outdir, name));
}
const sourcesAtMs = Date.now();
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { streamkv: "cli/main.ts" },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  chunkNames: "streamkv-[hash]",
  metafile: true,
  logLevel: "warning",
});
const sources = Object.keys(result.metafile.inputs);
writeFileSync(join(outdir, "streamkv.json"), `${JSON.stringify({ sourcesAtMs, sources })}\n`);
