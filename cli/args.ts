/**
 * A small, strict flag parser for the CLI: `--name value`, `--name=value`, boolean
 * `--flag`, and positionals. Unknown flags and values of the wrong type are
 * `UsageError`s (exit code 2) naming the flag.
 */

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export type FlagType = "string" | "int" | "bool";

export interface FlagSpec {
  name: string;
  type: FlagType;
  help: string;
  /** Environment variable consulted when the flag is absent. */
  env?: string;
  default?: string | number | boolean;
  /** Integer flags: the smallest accepted value. */
  min?: number;
  short?: string;
}

export interface Parsed {
  flags: Map<string, string | number | boolean>;
  positionals: string[];
  help: boolean;
}

export function parseArgs(
  argv: readonly string[],
  specs: readonly FlagSpec[],
  env: Readonly<Record<string, string | undefined>> = {},
): Parsed {
  const flags = new Map<string, string | number | boolean>();
  const positionals: string[] = [];
  let help = false;
  let rest = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (rest || !arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      rest = true;
      continue;
    }
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") ? arg.slice(2, eq > 0 ? eq : undefined) : undefined;
    const spec = specs.find(
      (s) => s.name === name || (s.short !== undefined && `-${s.short}` === arg),
    );
    if (!spec) throw new UsageError(`unknown flag ${arg.split("=")[0]}`);
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (spec.type !== "bool") {
      value = argv[i + 1];
      if (value === undefined) throw new UsageError(`--${spec.name} needs a value`);
      i++;
    }
    flags.set(spec.name, convert(spec, value));
  }
  for (const spec of specs) {
    if (flags.has(spec.name)) continue;
    const fromEnv = spec.env ? env[spec.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== "") flags.set(spec.name, convert(spec, fromEnv));
    else if (spec.default !== undefined) flags.set(spec.name, spec.default);
  }
  return { flags, positionals, help };
}

function convert(spec: FlagSpec, value: string | undefined): string | number | boolean {
  switch (spec.type) {
    case "bool":
      if (value === undefined || value === "true" || value === "1") return true;
      if (value === "false" || value === "0") return false;
      throw new UsageError(`--${spec.name} is a switch; got ${JSON.stringify(value)}`);
    case "int": {
      const v = value ?? "";
      if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
        throw new UsageError(`--${spec.name} expects an integer, got ${JSON.stringify(v)}`);
      }
      const n = Number(v);
      if (spec.min !== undefined && n < spec.min) {
        throw new UsageError(`--${spec.name} must be >= ${spec.min}, got ${n}`);
      }
      return n;
    }
    default:
      return value ?? "";
  }
}

export function flagHelp(specs: readonly FlagSpec[]): string {
  return specs
    .map((s) => {
      const left = `  --${s.name}${s.type === "bool" ? "" : s.type === "int" ? " <n>" : " <value>"}`;
      const extra = [
        s.default !== undefined && s.default !== false ? `default ${String(s.default)}` : "",
        s.env ? `env ${s.env}` : "",
      ]
        .filter(Boolean)
        .join(", ");
      return `${left.padEnd(28)} ${s.help}${extra ? ` (${extra})` : ""}`;
    })
    .join("\n");
}
