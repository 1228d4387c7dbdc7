import type { MmStruct } from './mm-struct';
import type { MmuNotifierRange } from './notifier-hooks';

/** MMU_NOTIFIER_RANGE_BLOCKABLE. */
export const MMU_NOTIFIER_RANGE_BLOCKABLE = 1;

/**
 * mmuNotifierInvalidateRangeStart - tell secondary MMUs that entries in [start, end) of `mm` are
 * about to change. Returns the range to pass to the matching end call, or null when nobody
 * subscribed to this mm (the common case: no allocation then).
 */
export function mmuNotifierInvalidateRangeStart(
  mm: MmStruct,
  start: number,
  end: number,
  event: number,
  owner: unknown = null,
): MmuNotifierRange | null {
  const n = mm.notifier;
  if (!n) return null;
  const range: MmuNotifierRange = { mm, start, end, event, flags: MMU_NOTIFIER_RANGE_BLOCKABLE, owner };
  n.invalidateRangeStart(range);
  return range;
}

/** mmuNotifierInvalidateRangeEnd - the pair of a start call (a null range is a no-op). */
export function mmuNotifierInvalidateRangeEnd(range: MmuNotifierRange | null): void {
  if (range) range.mm.notifier?.invalidateRangeEnd(range);
}
