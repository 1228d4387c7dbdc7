/**
 * Memory sizes as users write them ('4GiB', '512M', 1073741824) and as logs print them.
 *
 * Units are binary whatever their spelling, as the kernel's memparse() reads "mem=4G": K, KB and
 * KiB all mean 1024 bytes.
 */

/** Bytes per unit letter; '' is plain bytes. */
const UNIT_SHIFT: Readonly<Record<string, number>> = { '': 0, K: 10, M: 20, G: 30, T: 40, P: 50 };

const SIZE_RE = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgtp]?)(i?b)?\s*$/i;

/**
 * parseMemorySize - the number of bytes @v stands for.
 * @v: a number of bytes, or a string: digits (a decimal fraction is allowed) optionally followed
 *     by a unit K, M, G, T or P, spelled bare ('64G'), with B ('64GB') or with iB ('64GiB'), in
 *     either case; 'B' alone and no unit mean bytes.
 *
 * Return: the size in bytes, a non-negative safe integer. Whether it suits its use (a multiple of
 * the page or pageblock size, say) is the caller's to check.
 *
 * Throws RangeError, naming the offending value, for a negative, fractional or non-finite number,
 * for a string that is not a size or has an unknown unit, and for a size that is not a whole
 * number of bytes ('0.3K') or exceeds Number.MAX_SAFE_INTEGER.
 */
export function parseMemorySize(v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0 || !Number.isInteger(v) || v > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`invalid memory size ${v}: expected a whole, non-negative number of bytes`);
    }
    return v;
  }
  if (typeof v !== 'string')
    throw new RangeError(`invalid memory size ${String(v)}: expected a number or a string`);
  const m = SIZE_RE.exec(v);
  if (!m) {
    throw new RangeError(
      `invalid memory size '${v}': expected digits and an optional unit (B, K/KB/KiB, M, G, T, P), e.g. '4GiB'`,
    );
  }
  const shift = UNIT_SHIFT[m[2].toUpperCase()];
  // 'iB' only qualifies a unit letter: '12iB' is not a size.
  if (m[3] !== undefined && m[3].length === 2 && m[2] === '') {
    throw new RangeError(`invalid memory size '${v}': 'iB' needs a unit letter (KiB, MiB, GiB, ...)`);
  }
  const bytes = Number(m[1]) * 2 ** shift;
  if (!Number.isInteger(bytes))
    throw new RangeError(`invalid memory size '${v}': not a whole number of bytes`);
  if (bytes > Number.MAX_SAFE_INTEGER) throw new RangeError(`invalid memory size '${v}': too large`);
  return bytes;
}

const UNIT_NAMES = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/**
 * formatBytes - @n bytes for a log line: '1 GiB', '2 MiB', '4 KiB', '1.5 GiB', '512 B'.
 *
 * Return: the largest binary unit not above @n, with at most two decimals (trailing zeros
 * dropped). Never throws; negative sizes keep their sign.
 */
export function formatBytes(n: number): string {
  const sign = n < 0 ? '-' : '';
  let abs = Math.abs(n);
  let unit = 0;
  while (abs >= 1024 && unit < UNIT_NAMES.length - 1) {
    abs /= 1024;
    unit++;
  }
  const text = unit === 0 ? String(abs) : String(Math.round(abs * 100) / 100);
  return `${sign}${text} ${UNIT_NAMES[unit]}`;
}
