/**
 * `npm run test:containers [-- --quick | --minutes N] [vitest args]`: checks that
 * Docker, the image and root are there (saying exactly what to do when not), then
 * runs the container suite with vitest.containers.config.ts. `--quick` (the default)
 * is the CI budget; `--minutes N` spreads N minutes over the scenarios (a soak).
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { repoRoot } from "../../test_support/index.js";
import { containerSuiteUnavailable } from "./docker.js";

const args = process.argv.slice(2);
let minutes = 0;
const rest: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "--quick") minutes = 0;
  else if (a === "--minutes") {
    minutes = Number(args[++i]);
    if (!(minutes > 0)) {
      console.error("test:containers: --minutes needs a positive number");
      process.exit(2);
    }
  } else rest.push(a);
}

const missing = await containerSuiteUnavailable();
if (missing) {
  console.error(`test:containers: cannot run: ${missing}`);
  process.exit(1);
}

// vitest's bin (not in its package exports): next to its package.json.
const vitest = join(
  dirname(createRequire(import.meta.url).resolve("vitest/package.json")),
  "vitest.mjs",
);
const child = spawn(
  process.execPath,
  [vitest, "run", "--config", "vitest.containers.config.ts", ...rest],
  {
    cwd: repoRoot,
    stdio: "inherit",
    env: {
      ...process.env,
      TESTCONTAINERS_RYUK_DISABLED: "true",
      STREAMKV_CHAOS_MINUTES: String(minutes),
    },
  },
);
// Pass Ctrl-C on to vitest, whose afterEach hooks remove the containers.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
