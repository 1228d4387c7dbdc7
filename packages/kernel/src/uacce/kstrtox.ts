import { ERRNO } from '../uapi/errno';

/** Largest value of a 64-bit unsigned long. */
const ULONG_MAX = (1n << 64n) - 1n;

function digitValue(c: string): number {
  const code = c.toLowerCase().charCodeAt(0);
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return 99;
}

/**
 * kstrtoul - parse an unsigned long as the kernel's kstrtoul does (lib/kstrtox.c): an optional
 * '+', then digits in `base`; base 0 picks 16 for "0x" followed by a hex digit, 8 for a leading
 * "0", else 10. One trailing newline is allowed, nothing else (no spaces, no '-').
 *
 * Returns the value as a bigint, or -EINVAL (no digits, junk) or -ERANGE (above 2^64 - 1) as a
 * number. Nothing to release.
 */
export function kstrtoul(s: string, base = 0): bigint | number {
  let i = 0;
  if (s[0] === '+') i++;
  let b = base;
  if (b === 0) {
    if (s[i] === '0') b = s[i + 1]?.toLowerCase() === 'x' && digitValue(s[i + 2] ?? '') < 16 ? 16 : 8;
    else b = 10;
  }
  if (b === 16 && s[i] === '0' && s[i + 1]?.toLowerCase() === 'x') i += 2;
  let value = 0n;
  let digits = 0;
  let overflow = false;
  for (; i < s.length; i++, digits++) {
    const d = digitValue(s[i]);
    if (d >= b) break;
    value = value * BigInt(b) + BigInt(d);
    if (value > ULONG_MAX) overflow = true;
  }
  if (overflow) return -ERRNO.ERANGE;
  if (digits === 0) return -ERRNO.EINVAL;
  if (s[i] === '\n') i++;
  if (i !== s.length) return -ERRNO.EINVAL;
  return value;
}
