/**
 * A small, strict flag parser for the CLI: `--name value`, `--name=value`, boolean
 * `--flag`, short `-s value` / `-j`, and positionals. Unknown flags and values of the
 * wrong type are `UsageError`s (exit code 2) naming the flag and the value.
 */

export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * An operation that failed in a way that is not a KvError, with a code of its own for
 * the `streamkv: CODE: message` line (KEY_NOT_FOUND for `kv get` of a missing key).
 */
export class CliFailure extends Error {
  override readonly name = "CliFailure";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** `duration`: `500ms`, `30s`, `5m`, `1h`, `2d`, `1h30m`; a plain integer is milliseconds. */
export type FlagType = "string" | "int" | "bool" | "duration";

export interface FlagSpec {
  name: string;
  type: FlagType;
  help: string;
  /** Environment variable consulted when the flag is absent. */
  env?: string;
  default?: string | number | boolean;
  /** Integer and duration flags: the smallest accepted value (ms for a duration). */
  min?: number;
  /** One letter: `-s` for `--server`. */
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
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
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
      return atLeastMin(spec, Number(v), v);
    }
    case "duration": {
      const v = value ?? "";
      const ms = parseDurationMs(v);
      if (ms === undefined) {
        throw new UsageError(
          `--${spec.name} expects a duration (500ms, 30s, 5m, 1h, 2d, 1h30m; a plain integer is ms), got ${JSON.stringify(v)}`,
        );
      }
      return atLeastMin(spec, ms, v);
    }
    default:
      return value ?? "";
  }
}

function atLeastMin(spec: FlagSpec, n: number, given: string): number {
  if (spec.min !== undefined && n < spec.min) {
    const unit = spec.type === "duration" ? " ms" : "";
    throw new UsageError(
      `--${spec.name} must be >= ${spec.min}${unit}, got ${JSON.stringify(given)}`,
    );
  }
  return n;
}

const DURATION_UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Milliseconds of `500ms`, `30s`, `1h30m` (integer amounts with units ms s m h d, as
 * `nats kv add --ttl` takes them), or of a plain integer (ms, what the flags took
 * before durations); undefined for anything else.
 */
export function parseDurationMs(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number.isSafeInteger(Number(text)) ? Number(text) : undefined;
  if (!/^(?:\d+(?:ms|s|m|h|d))+$/.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    total += Number(amount) * DURATION_UNIT_MS[unit!]!;
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

export function flagHelp(specs: readonly FlagSpec[]): string {
  return specs
    .map((s) => {
      const arg = { bool: "", int: " <n>", duration: " <duration>", string: " <value>" }[s.type];
      const left = `  ${s.short === undefined ? "" : `-${s.short}, `}--${s.name}${arg}`;
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
