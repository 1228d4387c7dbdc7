/**
 * Reading the kernel's own counters and structures for the metrics: the IOMMU's translation
 * statistics, GUP's pin counters, page tables (THP coverage), NUMA placement and Committed_AS.
 * Everything here only reads: a probe never changes what the simulation does next.
 */
import {
  LEVEL_PMD,
  LEVEL_SIZE,
  PAGE_SIZE,
  PTE_PRESENT,
  PTE_SPECIAL,
  committedAsPages,
  pfnToNid,
  totalRamPages,
  type Kernel,
  type Process,
} from '@svasim/kernel';

/** IommuRates - ATC and IOTLB hit rates over every device behind the IOMMU, null without data. */
export interface IommuRates {
  atcHitRate: number | null;
  iotlbHitRate: number | null;
  translations: number;
}

/** TranslationTotals - translation counters summed over the IOMMU's devices. */
export interface TranslationTotals {
  /** Translations of devices that have an ATC. */
  atcTranslations: number;
  atcHits: number;
  /** Translations that reached the IOTLB (IOTLB hits plus walks). */
  iotlbLookups: number;
  iotlbHits: number;
}

/**
 * translationTotals - the IOMMU devices' translation counters now (IommuDevice.stats), summed;
 * the caller subtracts a baseline to get a run's share.
 */
export function translationTotals(k: Kernel): TranslationTotals {
  const t: TranslationTotals = { atcTranslations: 0, atcHits: 0, iotlbLookups: 0, iotlbHits: 0 };
  for (const dev of k.iommu.devices.values()) {
    const s = dev.stats;
    if (dev.atc) {
      t.atcTranslations += s.translations;
      t.atcHits += s.atcHits;
    }
    t.iotlbLookups += s.iotlbHits + s.walks;
    t.iotlbHits += s.iotlbHits;
  }
  return t;
}

/**
 * iommuRates - ATC and IOTLB hit rates between two totals (@base taken at the start).
 *
 * Return: rates in [0, 1], null where nothing was looked up.
 */
export function iommuRates(now: TranslationTotals, base: TranslationTotals): IommuRates {
  const atcN = now.atcTranslations - base.atcTranslations;
  const iotlbN = now.iotlbLookups - base.iotlbLookups;
  return {
    atcHitRate: atcN > 0 ? (now.atcHits - base.atcHits) / atcN : null,
    iotlbHitRate: iotlbN > 0 ? (now.iotlbHits - base.iotlbHits) / iotlbN : null,
    translations: atcN + iotlbN,
  };
}

/** pinnedBytes - bytes held by FOLL_PIN pins now (nr_foll_pin_acquired - nr_foll_pin_released). */
export function pinnedBytes(k: Kernel): number {
  const c = k.counters;
  return (c.read('nr_foll_pin_acquired') - c.read('nr_foll_pin_released')) * PAGE_SIZE;
}

/** lockedBytes - VmLck summed over the live processes in @procs. */
export function lockedBytes(procs: readonly Process[]): number {
  let sum = 0;
  for (const p of procs) if (p.state === 'running') sum += p.mm.lockedVm * PAGE_SIZE;
  return sum;
}

/** overcommitRatio - Committed_AS as a share of RAM (totalram_pages). */
export function overcommitRatio(k: Kernel): number {
  const ram = totalRamPages(k.mmCore);
  return ram > 0 ? committedAsPages(k.mmCore) / ram : 0;
}

/** Pages of @procs' anonymous (non-hugetlb) memory: resident, and mapped by 2 MiB PMDs. */
function anonPlacement(k: Kernel, procs: readonly Process[]): { pages: number; huge: number; local: number } {
  const core = k.mmCore;
  let pages = 0;
  let huge = 0;
  let local = 0;
  for (const p of procs) {
    if (p.state !== 'running') continue;
    const mm = p.mm;
    const pt = mm.pgtable;
    for (const vma of mm.vmas) {
      if (!vma.isAnonymous() || vma.hugeSize !== 0) continue;
      pt.forEachEntry(vma.start, vma.end, (_va, tableId, slot, level) => {
        const t = pt.table(tableId);
        if ((t[slot + 1] & (PTE_PRESENT | PTE_SPECIAL)) !== PTE_PRESENT) return;
        const n = LEVEL_SIZE[level] / PAGE_SIZE;
        pages += n;
        if (level === LEVEL_PMD) huge += n;
        if (pfnToNid(core, t[slot]) === mm.node) local += n;
      });
    }
  }
  return { pages, huge, local };
}

/**
 * thpCoverage - share of @procs' resident anonymous pages (hugetlb excluded) mapped by a 2 MiB
 * PMD, as AnonHugePages / AnonPages of /proc/PID/smaps_rollup.
 *
 * Return: a fraction, null when nothing is resident.
 */
export function thpCoverage(k: Kernel, procs: readonly Process[]): number | null {
  const r = anonPlacement(k, procs);
  return r.pages > 0 ? r.huge / r.pages : null;
}

/**
 * numaLocalFraction - share of @procs' resident anonymous pages on the node each process runs
 * on (numa_maps N<nid>= against mm.node).
 *
 * Return: a fraction, null when nothing is resident.
 */
export function numaLocalFraction(k: Kernel, procs: readonly Process[]): number | null {
  const r = anonPlacement(k, procs);
  return r.pages > 0 ? r.local / r.pages : null;
}
