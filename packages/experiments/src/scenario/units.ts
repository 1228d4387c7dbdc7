/**
 * Units of scenario files: durations of simulated time ('200ms', '1.5s', '500us', or a number of
 * ns) and memory sizes ('4GiB', '512M', or a number of bytes, read as the kernel's memparse()
 * reads them).
 */
import { parseMemorySize } from '@svasim/kernel';

/** DURATION_PATTERN - what a duration string looks like: digits (a fraction allowed) and a unit. */
export const DURATION_PATTERN = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ns|us|µs|ms|s)\s*$/;

/**
 * SIZE_PATTERN - what a size string looks like (the grammar of the kernel's parseMemorySize):
 * digits, then optionally K, M, G, T or P, bare or followed by B or iB, in either case.
 */
export const SIZE_PATTERN = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgtpKMGTP]?)([iI]?[bB])?\s*$/;

const NS_PER_UNIT: Readonly<Record<string, number>> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 };

/**
 * parseDuration - the simulated nanoseconds @v stands for.
 * @v: a whole number of ns, or a string matching DURATION_PATTERN ('200ms', '1.5s', '10us').
 *
 * Return: a non-negative safe integer (fractions of a ns are rounded). Throws RangeError naming
 * the value for anything else (negative, fractional number, unknown unit, too large).
 */
export function parseDuration(v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`invalid duration ${v}: expected a whole, non-negative number of ns`);
    return v;
  }
  const m = typeof v === 'string' ? DURATION_PATTERN.exec(v) : null;
  if (!m)
    throw new RangeError(
      `invalid duration '${String(v)}': expected digits and a unit (ns, us, ms, s), e.g. '200ms'`,
    );
  const ns = Math.round(Number(m[1]) * NS_PER_UNIT[m[2]]);
  if (!Number.isSafeInteger(ns)) throw new RangeError(`invalid duration '${v}': too large`);
  return ns;
}

/**
 * parseSize - the bytes @v stands for (the kernel's parseMemorySize).
 *
 * Return: a non-negative safe integer. Throws RangeError naming the value when it is not a size.
 */
export function parseSize(v: number | string): number {
  return parseMemorySize(v);
}

/**
 * formatDuration - @ns for a table or a chart axis: '850 ns', '12.5 us', '3.2 ms', '1.5 s'.
 *
 * Return: the largest unit not above @ns with at most three significant decimals. Never throws.
 */
export function formatDuration(ns: number): string {
  const abs = Math.abs(ns);
  if (abs < 1e3) return `${round3(ns)} ns`;
  if (abs < 1e6) return `${round3(ns / 1e3)} us`;
  if (abs < 1e9) return `${round3(ns / 1e6)} ms`;
  return `${round3(ns / 1e9)} s`;
}

function round3(x: number): string {
  return String(Number(x.toPrecision(4)));
}
