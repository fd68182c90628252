/**
 * Damage for the bit-flip tests (cluster-tests/bitflip.test.ts and its container
 * twin): one bit flipped inside a known stored value, found by its bytes in a node's
 * LevelDB files (values are random, so incompressible: LevelDB stores them as they are).
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Flipped {
  file: string;
  offset: number;
  /** Flips the bit back. */
  undo(): void;
}

/** Flips one bit of `file` at `offset`. */
export function flipAt(file: string, offset: number): Flipped {
  const toggle = () => {
    const now = readFileSync(file);
    now[offset]! ^= 0x08;
    writeFileSync(file, now);
  };
  toggle();
  return { file, offset, undo: toggle };
}

/** Flips one bit in the middle of the first copy of `needle` in the files of `dir` named like `name`. */
export function flipInside(dir: string, name: RegExp, needle: Uint8Array): Flipped {
  for (const f of readdirSync(dir).filter((n) => name.test(n))) {
    const file = join(dir, f);
    const bytes = readFileSync(file);
    const at = bytes.indexOf(needle);
    if (at < 0) continue;
    return flipAt(file, at + (needle.length >> 1));
  }
  throw new Error(`no ${name} file in ${dir} holds the value`);
}
