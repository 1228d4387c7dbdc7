/**
 * ZONE_DEVICE wiring: the fault, zap and fork handlers for device-private entries,
 * device-exclusive entries and device migrations in flight (installed into mm's FaultHooks and
 * ZapHooks, chained with the ones installed before), and the invariant checks of device pages.
 */
import { PAGE_SIZE } from '../uapi/mman';
import { setFaultHooks } from './fault';
import {
  copyDeviceExclusiveEntry,
  copyPresentForFork,
  removeDeviceExclusiveEntry,
  zapDeviceExclusiveEntry,
} from './device-exclusive';
import {
  copyDevicePrivateEntry,
  devicePagemaps,
  doDevicePrivateFault,
  isDevicePrivatePage,
  pagePgmap,
  zapDevicePrivateEntry,
} from './memremap';
import { migrateDeviceCancel, migrateDeviceExtraRefs, inflightDeviceMigrations } from './migrate-device';
import type { MmCore } from './mm-core';
import { PG_anon, PG_anon_exclusive, PG_device_private } from './page-flags';
import { LEVEL_PTE } from './page-table';
import {
  PTE_DEVICE_EXCLUSIVE,
  PTE_DEVICE_PRIVATE,
  PTE_MIGRATION,
  PTE_MIGRATION_WRITE,
  PTE_PRESENT,
} from './pte';
import { setZapHooks } from './zap';
import { VM_SHARED, VM_WRITE } from './vm-flags';

const initialized = new WeakSet<MmCore>();

/**
 * initZoneDevice - install the handlers of device entries for one kernel (idempotent; the Kernel
 * calls it at boot, after reclaim installed the swap handlers it chains to):
 *  - fault: a device-private entry calls its pagemap's migrateToRam; a device-exclusive entry is
 *    restored; a migration entry of a device migration in flight cancels that page's migration;
 *  - zap (munmap, exit, MADV_DONTNEED): the entry's mapping, RSS and reference go;
 *  - fork: device-private entries are shared (read-only in a COW mapping), device-exclusive
 *    entries are restored and copied as present PTEs, device-migration entries are cancelled
 *    and then copied.
 */
export function initZoneDevice(core: MmCore): void {
  if (initialized.has(core)) return;
  initialized.add(core);
  const prevFault = core.faultHooks.nonPresent;
  setFaultHooks(core, {
    nonPresent(vma, address, flags, tableId, slot) {
      const t = vma.mm.pgtable.table(tableId);
      const hi = t[slot + 1];
      if (hi & PTE_DEVICE_PRIVATE) return doDevicePrivateFault(vma, address, flags, tableId, slot);
      if (hi & PTE_DEVICE_EXCLUSIVE) return removeDeviceExclusiveEntry(vma, address, flags, tableId, slot);
      if (hi & PTE_MIGRATION && migrateDeviceCancel(core, t[slot])) return 0;
      return prevFault ? prevFault(vma, address, flags, tableId, slot) : -1;
    },
  });
  const prevZap = core.zapHooks.zapNonPresent;
  const prevCopy = core.zapHooks.copyNonPresent;
  setZapHooks(core, {
    zapNonPresent(mm, va, lo, hi, level) {
      if (level === LEVEL_PTE) {
        if (zapDevicePrivateEntry(core, mm, lo, hi)) return true;
        if (zapDeviceExclusiveEntry(core, mm, lo, hi)) return true;
      }
      return prevZap ? prevZap(mm, va, lo, hi, level) : false;
    },
    copyNonPresent(src, dst, va, lo, hi, level) {
      const mine = PTE_DEVICE_PRIVATE | PTE_DEVICE_EXCLUSIVE | PTE_MIGRATION;
      if (level !== LEVEL_PTE || !(hi & mine)) return prevCopy ? prevCopy(src, dst, va, lo, hi, level) : -1;
      const pt = src.pgtable;
      const t = pt.walk(va, false);
      const vma = src.vmaLookup(va);
      if (!t || pt.level !== LEVEL_PTE || !vma) return -1;
      const tableId = pt.tableId;
      const slot = pt.slot;
      const cow = !(vma.flags & VM_SHARED);
      if (hi & PTE_MIGRATION) {
        if (!migrateDeviceCancel(core, lo)) return prevCopy ? prevCopy(src, dst, va, lo, hi, level) : -1;
        hi = t[slot + 1];
        if (hi & PTE_PRESENT) return copyPresentForFork(src, dst, va, tableId, slot, cow);
      }
      if (hi & PTE_DEVICE_PRIVATE) return copyDevicePrivateEntry(core, t, slot, dst, cow);
      if (hi & PTE_DEVICE_EXCLUSIVE) return copyDeviceExclusiveEntry(src, dst, va, tableId, slot);
      return 0;
    },
  });
}

/**
 * withZoneDeviceRefs - @refs plus the references device migrations in flight hold (a copy when
 * there are any, else @refs itself), for the refcount checks.
 */
export function withZoneDeviceRefs(core: MmCore, refs: Map<number, number>): Map<number, number> {
  if (inflightDeviceMigrations(core) === 0) return refs;
  const out = new Map(refs);
  migrateDeviceExtraRefs(core, out);
  return out;
}

/**
 * checkZoneDeviceInvariants - the device-page part of checkMmInvariants, run when pagemaps
 * exist: every device-private entry maps an in-use page of a live private pagemap, in an
 * anonymous VMA, reachable through its anon_vma at its index, writable only in a VM_WRITE VMA
 * and for an exclusive page; every page's mapcount equals its entries and its refcount its
 * entries plus @refs (drivers' and migrations' references), so a leaked or missing reference
 * shows; free pages (refcount 0) are unmapped and keep PG_device_private.
 * Return: violations (empty when all hold).
 */
export function checkZoneDeviceInvariants(core: MmCore, refs: Map<number, number>): string[] {
  const maps = devicePagemaps(core);
  if (maps.length === 0) return [];
  const out: string[] = [];
  const f = core.frames;
  const mapped = new Map<number, number>();
  for (const mm of core.mms) {
    for (const vma of mm.vmas) {
      mm.pgtable.forEachEntry(vma.start, vma.end, (va, tableId, slot, level) => {
        const t = mm.pgtable.table(tableId);
        const hi = t[slot + 1];
        if (hi & PTE_PRESENT || !(hi & PTE_DEVICE_PRIVATE)) return;
        const pfn = t[slot];
        const where = `mm ${mm.id}: device-private entry at 0x${va.toString(16)}`;
        if (level !== LEVEL_PTE) out.push(`${where} above PTE level`);
        if (!pagePgmap(core, pfn) || !isDevicePrivatePage(core, pfn)) {
          out.push(`${where} maps pfn ${pfn}, which no private pagemap holds`);
          return;
        }
        if (f.refcount[pfn] <= 0) out.push(`${where} maps free device pfn ${pfn}`);
        mapped.set(pfn, (mapped.get(pfn) ?? 0) + 1);
        if (!vma.isAnonymous()) out.push(`${where} in a VMA that is not anonymous`);
        if (!(f.flags[pfn] & PG_anon)) out.push(`${where} maps pfn ${pfn} without PG_anon`);
        else {
          if (f.mapping[pfn] - 1 !== vma.anonVma || !core.anonVmas.get(vma.anonVma)?.vmas.has(vma))
            out.push(`${where}: pfn ${pfn} not reachable through its anon_vma`);
          if (f.index[pfn] * PAGE_SIZE !== va) out.push(`${where}: pfn ${pfn} has index ${f.index[pfn]}`);
        }
        if (hi & PTE_MIGRATION_WRITE) {
          if (!(vma.flags & VM_WRITE)) out.push(`${where} is writable in a read-only VMA`);
          if (!(f.flags[pfn] & PG_anon_exclusive))
            out.push(`${where} is writable but pfn ${pfn} is not exclusive`);
        }
      });
    }
  }
  for (const pgmap of maps) {
    for (let pfn = pgmap.range.start; pfn < pgmap.range.end; pfn++) {
      const ref = f.refcount[pfn];
      const n = mapped.get(pfn) ?? 0;
      if (!(f.flags[pfn] & PG_device_private)) out.push(`device pfn ${pfn} lost PG_device_private`);
      if (ref < 0) out.push(`device pfn ${pfn}: refcount ${ref}`);
      if (f.mapcount[pfn] !== n)
        out.push(`device pfn ${pfn}: mapcount ${f.mapcount[pfn]} but mapped ${n} times`);
      if (ref === 0) continue;
      const expected = n + (refs.get(pfn) ?? 0);
      if (ref !== expected)
        out.push(`device pfn ${pfn}: refcount ${ref} but ${expected} references accounted`);
      if (f.flags[pfn] & PG_anon_exclusive && n > 1)
        out.push(`device pfn ${pfn}: anon-exclusive but mapped ${n} times`);
    }
  }
  return out.slice(0, 50);
}
