/**
 * Address translation of one device access: the device's ATC, then the IOMMU's IOTLB, then a walk
 * of the domain's page table (the bound mm's for SVA, the IOVA table for DMA), as PCIe ATS and an
 * SMMU/VT-d walker do it.
 */
import type { PageTable } from '../mm/page-table';
import { LEVEL_PTE, LEVEL_SIZE } from '../mm/page-table';
import { PTE_DIRTY, PTE_PRESENT, PTE_PROTNONE, PTE_WRITE, PTE_YOUNG } from '../mm/pte';
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { IOMMU_DOMAIN_SVA, IOMMU_NO_PASID, type IommuDomain, type IommuSvaDomain } from './domain';
import type { IommuDevice } from './iommu-device';
import { TLB_PERM_READ, TLB_PERM_WRITE } from './tlb-cache';

/**
 * TRANSLATION_FAULT - the translation is missing or lacks the permission asked for, and the
 * device may ask for it with a page request (SVA: ATS answers "no translation", PRI follows; a
 * stalled SMMU transaction waits for the fault handler). Retry after the page response.
 */
export const TRANSLATION_FAULT = -ERRNO.EFAULT;
/**
 * TRANSLATION_ABORT - the access is refused with no page request: nothing is attached at the PASID,
 * the PASID's mm has exited (its context faults every access), the device was released, or a DMA
 * (IOVA) domain has no such mapping. Retrying does not help.
 */
export const TRANSLATION_ABORT = -ERRNO.EACCES;

/**
 * IoWalkResult - what the last ioPageWalk found, in place of a returned object (no allocation per
 * walk): the entry's flag word and the number of table levels read.
 */
export interface IoWalkResult {
  /** The leaf entry's hi word (PTE_* bits) after any accessed/dirty update; 0 when none. */
  hi: number;
  /** Table levels read (4 for a PTE, fewer for a huge leaf; 4 when the walk fell off a hole). */
  levels: number;
}

/** The registers of the last ioPageWalk. */
export const ioWalkResult: IoWalkResult = { hi: 0, levels: 0 };

/**
 * ioPageWalk - the IOMMU's page-table walk of @va in @pt for a read or a @write: the pfn, or -1
 * when the entry is missing, not present (swap, migration, device-private or -exclusive entries),
 * PROT_NONE, or read-only for a write. Huge leaves translate to the right subpage.
 * With @update (a walk of a CPU page table sharing its A/D bits, as SMMU HTTU and VT-d first-level
 * walks do) a successful walk sets PTE_YOUNG, and PTE_DIRTY for a write; a failed walk changes
 * nothing and never faults. Leaves ioWalkResult set.
 */
export function ioPageWalk(pt: PageTable, va: number, write: boolean, update: boolean): number {
  const t = pt.walk(va, false);
  if (!t) {
    ioWalkResult.hi = 0;
    ioWalkResult.levels = LEVEL_PTE + 1;
    return -1;
  }
  const s = pt.slot;
  const level = pt.level;
  let hi = t[s + 1];
  ioWalkResult.levels = level + 1;
  ioWalkResult.hi = hi;
  if ((hi & (PTE_PRESENT | PTE_PROTNONE)) !== PTE_PRESENT) return -1;
  if (write && !(hi & PTE_WRITE)) return -1;
  if (update) {
    const nhi = hi | PTE_YOUNG | (write ? PTE_DIRTY : 0);
    if (nhi !== hi) t[s + 1] = hi = nhi;
    ioWalkResult.hi = hi;
  }
  if (level === LEVEL_PTE) return t[s];
  return t[s] + Math.floor((va % LEVEL_SIZE[level]) / PAGE_SIZE);
}

/**
 * cachePerm - the TLB permission a walked entry may be cached with: writable only when the entry
 * is writable and already dirty, so the first write to a clean page walks again and sets the dirty
 * bit (as a CPU TLB keeps the dirty state with the entry).
 */
function cachePerm(hi: number): number {
  return hi & PTE_WRITE && hi & PTE_DIRTY ? TLB_PERM_READ | TLB_PERM_WRITE : TLB_PERM_READ;
}

function finish(dev: IommuDevice, ns: number, levels: number, ret: number): number {
  dev.lastTranslationNs = ns;
  dev.lastTranslationLevels = levels;
  dev.stats.translationNs += ns;
  return ret;
}

function abort(dev: IommuDevice, ns: number, pasid: number, va: number, why: string): number {
  dev.stats.aborts++;
  const iommu = dev.iommu;
  iommu.core.dmesg.printkRatelimited(
    'iommu_translation_abort',
    `iommu: ${dev.name}: DMA aborted, PASID ${pasid} address 0x${va.toString(16)}: ${why}`,
  );
  return finish(dev, ns, 0, TRANSLATION_ABORT);
}

/**
 * iommuTranslate - translate one access by @dev to address @va (a user virtual address with an
 * SVA @pasid, an IOVA with IOMMU_NO_PASID or a PASID carrying a DMA domain) for a read or a
 * @write: the device's ATC (with ATS), the IOTLB, then a walk of the domain's page table, filling
 * both caches on the way back.
 *
 * Returns the pfn (>= 0), TRANSLATION_FAULT (SVA: issue a page request and retry after its
 * response) or TRANSLATION_ABORT (refused; see the constant). dev.lastTranslationNs holds the
 * simulated latency of the path taken (profile atcHitNs, iotlbHitNs, walkPerLevelNs per level
 * read), and dev.stats counts it. Nothing is charged to a CPU: this is the device's time.
 * Allocates nothing.
 * Context: any (a device model's DMA engine).
 */
export function iommuTranslate(dev: IommuDevice, pasid: number, va: number, write: boolean): number {
  const iommu = dev.iommu;
  const p = iommu.profile;
  const st = dev.stats;
  st.translations++;
  const need = write ? TLB_PERM_WRITE : TLB_PERM_READ;
  const vpn = Math.floor(va / PAGE_SIZE);
  let ns = 0;
  const atc = dev.atc;
  if (atc) {
    ns += p.atcHitNs;
    const i = atc.lookup(pasid, vpn, need);
    if (i >= 0) {
      st.atcHits++;
      return finish(dev, ns, 0, atc.pfn[i]);
    }
  }
  if (dev.released) return abort(dev, ns, pasid, va, 'device released');
  const group = dev.group;
  let domain: IommuDomain | null;
  if (pasid === IOMMU_NO_PASID) domain = group.domain;
  else {
    const h = pasid < dev.maxPasids ? group.pasidArray.get(pasid) : undefined;
    domain = h ? h.domain : null;
  }
  if (!domain) return abort(dev, ns, pasid, va, 'nothing attached at this PASID');
  const sva = domain.type === IOMMU_DOMAIN_SVA;
  if (sva) {
    const d = domain as IommuSvaDomain;
    if (d.faultAll || !d.mm.alive) return abort(dev, ns, pasid, va, 'address space has exited');
  }
  ns += p.iotlbHitNs;
  const iotlb = iommu.iotlb;
  const j = iotlb.lookup(domain.id, vpn, need);
  if (j >= 0) {
    st.iotlbHits++;
    const pfn = iotlb.pfn[j];
    if (atc) atc.insert(pasid, vpn, pfn, iotlb.perm[j]);
    return finish(dev, ns, 0, pfn);
  }
  st.walks++;
  const pfn = ioPageWalk(domain.pgtable, va, write, sva);
  const levels = ioWalkResult.levels;
  ns += levels * p.walkPerLevelNs;
  if (pfn < 0) {
    if (!sva) return abort(dev, ns, pasid, va, 'no IOVA mapping');
    st.faults++;
    return finish(dev, ns, levels, TRANSLATION_FAULT);
  }
  const perm = cachePerm(ioWalkResult.hi);
  iotlb.insert(domain.id, vpn, pfn, perm);
  if (atc) atc.insert(pasid, vpn, pfn, perm);
  return finish(dev, ns, levels, pfn);
}
