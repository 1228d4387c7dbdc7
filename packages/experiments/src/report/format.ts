/**
 * Number formatting for tables and charts: bytes, durations, rates, shares. Never throws; null
 * and non-finite values print as 'n/a'.
 */
import { formatBytes } from '@svasim/kernel';
import { formatDuration } from '../scenario';

/** NA - what a missing value prints as. */
export const NA = 'n/a';

function ok(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** fmtNs - a duration in ns ('12.5 us'). */
export function fmtNs(v: number | null | undefined): string {
  return ok(v) ? formatDuration(v) : NA;
}

/** fmtBytes - a size ('1.5 MiB'). */
export function fmtBytes(v: number | null | undefined): string {
  return ok(v) ? formatBytes(Math.round(v)) : NA;
}

/** fmtRate - bytes per second ('1.9 GB/s', decimal units as throughput is quoted). */
export function fmtRate(v: number | null | undefined): string {
  if (!ok(v)) return NA;
  const units = ['B/s', 'kB/s', 'MB/s', 'GB/s', 'TB/s'];
  let x = v;
  let i = 0;
  while (Math.abs(x) >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return `${Number(x.toPrecision(3))} ${units[i]}`;
}

/** fmtPct - a share in [0, 1] as a percentage ('97.3%'). */
export function fmtPct(v: number | null | undefined): string {
  return ok(v) ? `${Number((v * 100).toPrecision(4))}%` : NA;
}

/** fmtCount - a count, with thousands separators; fractions (means over seeds) keep one decimal. */
export function fmtCount(v: number | null | undefined): string {
  if (!ok(v)) return NA;
  const r = Math.round(v * 10) / 10;
  return Number.isInteger(r)
    ? r.toLocaleString('en-US')
    : r.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
}

/** fmtRatio - a plain ratio with 3 significant digits. */
export function fmtRatio(v: number | null | undefined): string {
  return ok(v) ? String(Number(v.toPrecision(3))) : NA;
}
