/**
 * The only randomness raft/ uses: a seeded source handed in by whoever builds
 * the core (the node seeds it from its id and start time, the simulator from
 * the run's seed). sfc32 is small, fast and good enough for timeouts and
 * fault schedules; it is not for cryptography.
 */
export interface Prng {
  /** A uniform integer in [0, 2^32). */
  nextUint32(): number;
}

export class Sfc32 implements Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
}

/** A uniform integer in [lo, hi] (inclusive). */
export function intBetween(prng: Prng, lo: number, hi: number): number {
  return lo + (prng.nextUint32() % (hi - lo + 1));
}

/** True with probability p. */
export function chance(prng: Prng, p: number): boolean {
  return prng.nextUint32() / 4294967296 < p;
}

/** A uniform pick from a non-empty array. */
export function pick<T>(prng: Prng, items: readonly T[]): T {
  return items[prng.nextUint32() % items.length]!;
}

/** A child source whose stream does not depend on how much the parent is used later. */
export function fork(prng: Prng): Sfc32 {
  return new Sfc32(prng.nextUint32());
}
