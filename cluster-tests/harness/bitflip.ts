/**
 * Damage for the bit-flip tests (cluster-tests/bitflip.test.ts and its container
 * twin): one bit flipped inside a known stored value, found by its bytes in a node's
 * LevelDB files (values are random, so incompressible: LevelDB stores them as they are),
 * or inside the bloom filter block of the table that holds it.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkTableFile } from "../../log/leveldb_files.js";

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

/**
 * Flips one bit inside the bloom filter block of the table in `dir` holding `needle`:
 * damage no record checksum sees (LevelDB reads a filter only to answer a lookup, and
 * wrongly then), found by the table's block CRC.
 */
export function flipInFilter(dir: string, needle: Uint8Array): Flipped {
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".ldb"))) {
    const file = join(dir, f);
    const bytes = readFileSync(file);
    if (bytes.indexOf(needle) < 0) continue;
    const filter = checkTableFile(bytes).filter[0];
    if (filter === undefined) throw new Error(`${file} has no filter block`);
    return flipAt(file, filter.offset + (filter.size >> 1));
  }
  throw new Error(`no table in ${dir} holds the value`);
}
