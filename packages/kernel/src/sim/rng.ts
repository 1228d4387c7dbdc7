import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import type { IRng, IRngStreams } from './types';

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const TWO_POW_32 = 2 ** 32;

/**
 * fnv1a32 - the 32-bit FNV-1a hash of the UTF-8 bytes of @text.
 *
 * Return: an unsigned 32-bit integer. Stable across runs, platforms and Node versions, which is
 * the point: stream seeds derive from it.
 */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET_BASIS;
  for (const byte of new TextEncoder().encode(text)) {
    hash = Math.imul(hash ^ byte, FNV_PRIME);
  }
  return hash >>> 0;
}

/** murmur3's fmix32 finalizer: spreads every input bit over the whole word. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) | 0;
}

/**
 * Rng - one deterministic stream of pseudo-random numbers (xoroshiro128+ from pure-rand).
 *
 * The generator is mutated in place (pure-rand's next()), so drawing allocates nothing.
 */
export class Rng implements IRng {
  /** @generator: the stream's generator; this Rng becomes its only user. */
  constructor(private readonly generator: RandomGenerator) {}

  /**
   * int - a uniform integer in [@from, @to], both inclusive.
   *
   * Return: the integer. Throws RangeError when the bounds are not safe integers or @from > @to.
   */
  int(from: number, to: number): number {
    if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from <= to)) {
      throw new RangeError(`rng.int(${from}, ${to}): bounds must be safe integers with from <= to`);
    }
    return uniformInt(this.generator, from, to);
  }

  /** float - a uniform float in [0, 1), a multiple of 2^-53. */
  float(): number {
    return uniformFloat64(this.generator);
  }

  /**
   * exponential - an exponentially distributed value with mean @mean, by inverse CDF.
   *
   * Return: a value >= 0 (finite: the uniform is drawn from (0, 1], so the log never sees 0).
   */
  exponential(mean: number): number {
    return -mean * Math.log(1 - uniformFloat64(this.generator));
  }

  /** chance - true with probability @p (always false for p <= 0, always true for p >= 1). */
  chance(p: number): boolean {
    return uniformFloat64(this.generator) < p;
  }
}

/**
 * RngStreams - named random streams derived from one kernel seed.
 *
 * A stream's generator is seeded from (seed, FNV-1a of its name) alone, so a stream's sequence
 * does not depend on which other streams exist, in which order they were created, or how many
 * numbers they drew: adding a draw in one device never perturbs another.
 */
export class RngStreams implements IRngStreams {
  private readonly streams = new Map<string, Rng>();

  /** @seed: the kernel seed, any safe integer; log it with every report so runs can be replayed. */
  constructor(readonly seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`rng seed ${seed} is not a safe integer`);
  }

  /**
   * stream - the stream called @name, created on first use.
   *
   * Return: the same Rng object for the same name on every call; nothing to release.
   */
  stream(name: string): Rng {
    let rng = this.streams.get(name);
    if (rng === undefined) {
      rng = new Rng(xoroshiro128plusFromState(streamState(this.seed, fnv1a32(name))));
      this.streams.set(name, rng);
    }
    return rng;
  }
}

/** The 128-bit xoroshiro state for (seed, name hash): the four words, never all zero. */
function streamState(seed: number, nameHash: number): number[] {
  const lo = seed | 0;
  const hi = Math.floor(seed / TWO_POW_32) | 0;
  const a = mix32(mix32(lo ^ 0x243f6a88) ^ hi);
  const b = mix32(nameHash ^ 0x85a308d3);
  const state = [
    mix32((a + 0x9e3779b9) | 0),
    mix32((b + 0x3c6ef372) | 0),
    mix32((a ^ b) + 0xdaa66d2b),
    mix32(((a + b) | 0) ^ 0x78dde6e4),
  ];
  if ((state[0] | state[1] | state[2] | state[3]) === 0) state[3] = 1;
  return state;
}
