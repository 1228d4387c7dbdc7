import { PAGE_SIZE } from '../uapi/mman';
import type { MigratetypeName, ZoneName } from './gfp';
import type { MmStruct } from './mm-struct';
import { PG_device_private, PG_mlocked } from './page-flags';
import { folioHead, folioMaybeDmaPinned } from './page-ref';
import { LEVEL_PMD, LEVEL_PTE, LEVEL_PUD, LEVEL_SIZE } from './page-table';
import { PTE_DEVICE_PRIVATE, PTE_PRESENT } from './pte';

/** PagemapEntry - what /proc/PID/pagemap and kpageflags tell of one virtual page. */
export interface PagemapEntry {
  present: boolean;
  pfn?: number;
  zone?: ZoneName;
  node?: number;
  migratetype?: MigratetypeName;
  pinned: boolean;
  mlocked: boolean;
  huge?: '2MiB' | '1GiB';
  devicePrivate?: boolean;
  /** The entry is the shared zero page. */
  zeroPage?: boolean;
}

/**
 * pagemapEntry - inspect the page mapped at `addr` in `mm` without faulting it in.
 * A swapped-out or migrating page is not present.
 */
export function pagemapEntry(mm: MmStruct, addr: number): PagemapEntry {
  const core = mm.core;
  const pt = mm.pgtable;
  const t = pt.walk(addr, false);
  const hi = t ? t[pt.slot + 1] : 0;
  if (!t || !(hi & PTE_PRESENT)) {
    if (hi & PTE_DEVICE_PRIVATE)
      return { present: false, pinned: false, mlocked: false, devicePrivate: true };
    return { present: false, pinned: false, mlocked: false };
  }
  const level = pt.level;
  const pfn = t[pt.slot] + (level === LEVEL_PTE ? 0 : Math.floor((addr % LEVEL_SIZE[level]) / PAGE_SIZE));
  const place = core.alloc.placement(pfn);
  const head = folioHead(core, pfn);
  const f = core.frames;
  const entry: PagemapEntry = {
    present: true,
    pfn,
    zone: place.zone,
    node: place.nid,
    migratetype: place.migratetype,
    pinned: pfn !== core.alloc.zeroPfn && folioMaybeDmaPinned(core, head),
    mlocked: (f.flags[head] & PG_mlocked) !== 0,
    devicePrivate: (f.flags[head] & PG_device_private) !== 0,
  };
  if (pfn === core.alloc.zeroPfn) entry.zeroPage = true;
  if (level === LEVEL_PMD) entry.huge = '2MiB';
  else if (level === LEVEL_PUD) entry.huge = '1GiB';
  return entry;
}
