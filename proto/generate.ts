/**
 * Turns every `proto/*.proto` into `proto/generated/<name>.ts`, a module that
 * exports the schema as a protobufjs JSON descriptor. The `.proto` files stay
 * the one definition; the generated modules exist so that the browser client
 * can load a schema without a file system. A test fails when they are stale.
 *
 *   npm run proto:gen            regenerate
 *   npm run proto:gen -- --check exit 1 if any generated file is stale
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

const protoDir = dirname(fileURLToPath(import.meta.url));

export function protoNames(): string[] {
  return readdirSync(protoDir)
    .filter((f) => f.endsWith(".proto"))
    .map((f) => f.slice(0, -".proto".length))
    .sort();
}

export function renderGenerated(name: string): string {
  const source = readFileSync(join(protoDir, `${name}.proto`), "utf8");
  const parsed = protobuf.parse(source, { keepCase: true });
  const json = JSON.stringify(parsed.root.toJSON(), null, 2);
  return `// Generated from proto/${name}.proto by \`npm run proto:gen\`. Do not edit.\nexport const descriptor = ${json};\n`;
}

function main(): void {
  const check = process.argv.includes("--check");
  let stale = 0;
  for (const name of protoNames()) {
    const target = join(protoDir, "generated", `${name}.ts`);
    const wanted = renderGenerated(name);
    let current = "";
    try {
      current = readFileSync(target, "utf8");
    } catch {}
    if (current === wanted) continue;
    if (check) {
      console.error(`stale: proto/generated/${name}.ts (run npm run proto:gen)`);
      stale++;
    } else {
      writeFileSync(target, wanted);
      console.log(`wrote proto/generated/${name}.ts`);
    }
  }
  if (stale > 0) process.exit(1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
