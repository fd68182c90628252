/**
 * What the fuzz suites share: how many cases (`STREAMKV_FUZZ_RUNS`, default 10,000), a
 * seed fixed per run and printed on failure with the command that replays it, and
 * arbitraries for decoder input. Random bytes alone rarely get past a decoder's first
 * check, so most cases are valid encodings with bytes flipped, set, inserted, deleted or
 * cut off.
 */
import fc from "fast-check";

/** Cases per property (`STREAMKV_FUZZ_RUNS=1000000 npx vitest run <files>` for a long run). */
export const FUZZ_RUNS = positiveInt(process.env.STREAMKV_FUZZ_RUNS, 10_000);

/** One seed for the whole run, so a failure replays with `STREAMKV_FUZZ_SEED`. */
export const FUZZ_SEED = positiveInt(
  process.env.STREAMKV_FUZZ_SEED,
  (Date.now() ^ (process.pid << 16)) >>> 0,
);

// A longer run takes longer: the test timeout grows with the cases (30 s per 10,000).
// Only inside vitest: bench/ loads test_support too, and vitest cannot load outside it.
if (process.env.VITEST) {
  const { vi } = await import("vitest");
  vi.setConfig({ testTimeout: Math.max(30_000, Math.ceil(FUZZ_RUNS / 10_000) * 30_000) });
}

function positiveInt(text: string | undefined, fallback: number): number {
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${text}`);
  return n;
}

/**
 * Checks `property` on `FUZZ_RUNS` cases from `FUZZ_SEED` (`STREAMKV_FUZZ_PATH` replays
 * one shrunk case). A failure names the seed and path and how to replay it.
 */
export function fuzz<Ts>(property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>): void | Promise<void> {
  const numRuns = FUZZ_RUNS;
  const path = process.env.STREAMKV_FUZZ_PATH;
  const params = {
    numRuns,
    seed: FUZZ_SEED,
    includeErrorInReport: true,
    ...(path ? { path } : {}),
  };
  try {
    const run = fc.assert(property as fc.IProperty<Ts>, params) as void | Promise<void>;
    return run instanceof Promise ? run.catch(rethrowWithReplay) : run;
  } catch (err) {
    rethrowWithReplay(err);
  }
}

function rethrowWithReplay(err: unknown): never {
  const text = String((err as Error)?.message ?? err);
  const path = /path: "([^"]*)"/.exec(text)?.[1] ?? "";
  const replay = `replay: STREAMKV_FUZZ_SEED=${FUZZ_SEED} STREAMKV_FUZZ_PATH=${path} npx vitest run <this file>`;
  throw new Error(`${text}\n${replay}`);
}

/** One edit of a byte string; positions are taken modulo its length. */
export type Edit =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; byte: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number }
  | { kind: "truncate"; at: number };

export const edit: fc.Arbitrary<Edit> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("set" as const),
      at: fc.nat(),
      byte: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 8, 0x10, 0x12, 0x1a),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("insert" as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }) },
);

/** `bytes` with `edits` applied in order (a copy). */
export function applyEdits(bytes: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(bytes);
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % b.length;
    switch (e.kind) {
      case "flip":
        if (b.length > 0) b[at]! ^= 1 << e.bit;
        break;
      case "set":
        if (b.length > 0) b[at] = e.byte;
        break;
      case "insert":
        b = concat(b.subarray(0, at), e.bytes, b.subarray(at));
        break;
      case "delete":
        b = concat(b.subarray(0, at), b.subarray(at + e.length));
        break;
      case "truncate":
        b = b.subarray(0, at).slice();
        break;
    }
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A valid encoding from `seeds` with 1 to `editsMax` edits: never the seed itself. */
export function mutatedBytes(seeds: readonly Uint8Array[], editsMax = 4): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.constantFrom(...seeds), fc.array(edit, { minLength: 1, maxLength: editsMax }))
    .map(([seed, edits]) => applyEdits(seed, edits));
}

/** A single bit of a valid encoding flipped: what a checksum must always catch. */
export function bitFlipped(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.constantFrom(...seeds), fc.nat(), fc.nat(7))
    .map(([seed, at, bit]) => applyEdits(seed, [{ kind: "flip", at, bit }]));
}

/** Decoder input: mostly mutated `seeds`, some seeds as they are, some random bytes. */
export function fuzzBytes(seeds: readonly Uint8Array[], maxLength = 256): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 6, arbitrary: mutatedBytes(seeds) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength }) },
  );
}
