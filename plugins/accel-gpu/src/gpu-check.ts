/**
 * The GPU's invariants, run by kernel.checkInvariants() (as 'gpu'): the device page table never
 * holds a translation the CPU page table does not back (the property every MMU notifier exists
 * for), the pages held for atomics really are pinned, and device memory adds up.
 */
import {
  LEVEL_PTE,
  LEVEL_SIZE,
  PAGE_SIZE,
  PTE_DEVICE_EXCLUSIVE,
  PTE_DEVICE_PRIVATE,
  PTE_DEVICE_PRIVATE_WRITE,
  PTE_PRESENT,
  PTE_WRITE,
  folioMaybeDmaPinned,
  folioOf,
} from '@svasim/kernel';
import type { GpuContext } from './context';
import { TAG_ATOMIC, TAG_WRITE } from './mirror';
import type { GpuVram } from './vram';

const TAG_NAMES = ['READ', 'WRITE', 'ATOMIC'];

/**
 * checkGpuContext - every mirror entry of @ctx against the CPU page table: READ needs the page
 * mapped (present, or this device-private page); WRITE needs it mapped writable; ATOMIC needs
 * the device-exclusive entry of that page. Pages held in longterm-pin mode must be pinned.
 * Return: the violations (empty when all hold).
 */
export function checkGpuContext(ctx: GpuContext, label: string): string[] {
  const out: string[] = [];
  const mm = ctx.mm;
  if (ctx.released) {
    if (ctx.mirror.pt.size) out.push(`${label}: released but its mirror holds ${ctx.mirror.pt.size} entries`);
    return out;
  }
  if (!mm.alive) {
    if (ctx.mirror.pt.size)
      out.push(`${label}: its mm exited but the mirror holds ${ctx.mirror.pt.size} entries`);
    return out;
  }
  const pt = mm.pgtable;
  for (const [vpn, e] of ctx.mirror.pt) {
    const va = vpn * PAGE_SIZE;
    const pfn = Math.floor(e / 4);
    const tag = e % 4;
    const t = pt.walk(va, false);
    const hi = t ? t[pt.slot + 1] : 0;
    const lo = t ? t[pt.slot] : 0;
    const page = t ? lo + Math.floor((va % LEVEL_SIZE[pt.level]) / PAGE_SIZE) : -1;
    const devPrivate = t !== null && pt.level === LEVEL_PTE && (hi & PTE_DEVICE_PRIVATE) !== 0 && lo === pfn;
    let good: boolean;
    if (tag === TAG_ATOMIC)
      good = t !== null && pt.level === LEVEL_PTE && (hi & PTE_DEVICE_EXCLUSIVE) !== 0 && lo === pfn;
    else if (tag === TAG_WRITE)
      good =
        (t !== null && (hi & (PTE_PRESENT | PTE_WRITE)) === (PTE_PRESENT | PTE_WRITE) && page === pfn) ||
        (devPrivate && (hi & PTE_DEVICE_PRIVATE_WRITE) !== 0);
    else good = (t !== null && (hi & PTE_PRESENT) !== 0 && page === pfn) || devPrivate;
    if (!good)
      out.push(
        `${label}: GPU maps 0x${va.toString(16)} ${TAG_NAMES[tag]} -> pfn ${pfn}, but the CPU entry is hi=0x${hi.toString(16)} lo=${lo}`,
      );
  }
  if (ctx.mode === 'longterm-pin') {
    const core = mm.core;
    for (const vpn of ctx.holds.vpns()) {
      const pfn = ctx.holds.heldPfn(vpn);
      if (!folioMaybeDmaPinned(core, folioOf(core, pfn)))
        out.push(
          `${label}: holds 0x${(vpn * PAGE_SIZE).toString(16)} (pfn ${pfn}) in longterm-pin mode, but the page is not pinned`,
        );
    }
  }
  return out;
}

/** checkVram - free + used pages equal the mapped chunks' pages. */
export function checkVram(vram: GpuVram, label: string): string[] {
  const s = vram.stats();
  if (s.freePages + s.usedPages === s.totalPages) return [];
  return [`${label}: device memory has ${s.freePages} free + ${s.usedPages} used pages in ${s.totalPages}`];
}
