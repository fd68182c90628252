/**
 * `npm run bench [-- <suite> ...]`: runs benchmark suites and prints figures,
 * each next to a reference measured in the same run. A suite is a module
 * `bench/<name>.ts` exporting `run(args: string[]): Promise<void>`; file names
 * are snake_case and suites are named in kebab-case (`raft_storage.ts` is
 * `raft-storage`).
 * With no suite named, every suite runs.
 */
import { readdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const benchDir = dirname(fileURLToPath(import.meta.url));

function suites(): string[] {
  return readdirSync(benchDir)
    .filter(
      (f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && f !== "main.ts" && !f.startsWith("_"),
    )
    .map((f) => f.slice(0, -3).replaceAll("_", "-"))
    .sort();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const available = suites();
  const named = args.filter((a) => !a.startsWith("-"));
  const flags = args.filter((a) => a.startsWith("-"));
  const help = flags.includes("--help") || flags.includes("-h");
  const usage = `usage: npm run bench [-- <suite> ...]\nsuites: ${available.join(", ")}`;
  if (help && named.length === 0) {
    console.log(usage);
    return;
  }
  const unknown = named.filter((n) => !available.includes(n));
  if (unknown.length > 0) {
    console.error(
      `unknown bench suite: ${unknown.join(", ")} (available: ${available.join(", ")})`,
    );
    process.exit(2);
  }
  for (const name of named.length > 0 ? named : available) {
    console.log(`\n== bench ${name} ==`);
    const mod = (await import(
      pathToFileURL(`${benchDir}/${name.replaceAll("-", "_")}.ts`).href
    )) as {
      run(args: string[]): Promise<void>;
      /** A suite with flags of its own explains them for `--help`. */
      USAGE?: string;
    };
    if (help) {
      console.log(mod.USAGE ?? usage);
      continue;
    }
    await mod.run(flags);
  }
}

await main();
