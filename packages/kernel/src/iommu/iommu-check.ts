/**
 * Invariants of the IOMMU model (the simulator's CONFIG_DEBUG_VM for translations): no cached
 * translation outlives or disagrees with the page table it came from.
 */
import { PTE_WRITE } from '../mm/pte';
import { PAGE_SIZE } from '../uapi/mman';
import { IOMMU_DOMAIN_SVA, IOMMU_NO_PASID, IommuDmaDomain, IommuSvaDomain, type IommuDomain } from './domain';
import type { Iommu } from './iommu';
import { ioPageWalk, ioWalkResult } from './translate';
import { TLB_PERM_WRITE, type SetAssocTlb } from './tlb-cache';

const hex = (n: number) => `0x${n.toString(16)}`;

/** One cached entry against the domain's current page table; a message when it is stale or too wide. */
function checkEntry(
  where: string,
  domain: IommuDomain,
  vpn: number,
  pfn: number,
  perm: number,
): string | null {
  if (domain.type === IOMMU_DOMAIN_SVA) {
    const d = domain as IommuSvaDomain;
    if (d.faultAll || !d.mm.alive)
      return `${where}: entry for ${hex(vpn * PAGE_SIZE)} of exited mm ${d.mm.id} (PASID ${d.pasid})`;
  }
  const cur = ioPageWalk(domain.pgtable, vpn * PAGE_SIZE, false, false);
  if (cur < 0)
    return `${where}: stale entry ${hex(vpn * PAGE_SIZE)} -> pfn ${pfn}: no usable mapping any more`;
  if (cur !== pfn)
    return `${where}: stale entry ${hex(vpn * PAGE_SIZE)} -> pfn ${pfn}, page table has pfn ${cur}`;
  if (perm & TLB_PERM_WRITE && !(ioWalkResult.hi & PTE_WRITE))
    return `${where}: entry ${hex(vpn * PAGE_SIZE)} -> pfn ${pfn} is writable, the page table's is not`;
  return null;
}

function checkCache(
  out: string[],
  name: string,
  cache: SetAssocTlb,
  domainOf: (tag: number) => IommuDomain | null,
): void {
  for (let i = 0; i < cache.entries; i++) {
    const tag = cache.tag[i];
    if (tag < 0) continue;
    const domain = domainOf(tag);
    const where = `${name} ${tag}`;
    if (!domain || domain.freed) {
      out.push(`${where}: entry ${hex(cache.vpn[i] * PAGE_SIZE)} of no live domain`);
      continue;
    }
    const msg = checkEntry(where, domain, cache.vpn[i], cache.pfn[i], cache.perm[i]);
    if (msg) out.push(msg);
  }
}

/**
 * checkIommuInvariants - every rule the IOMMU model keeps, as violation messages (empty when all
 * hold):
 *   - every valid IOTLB and ATC entry belongs to a live domain and matches that domain's current
 *     page table: same pfn, permissions no wider (no stale translation after munmap, mprotect,
 *     COW, migration, compaction or reclaim);
 *   - an exited mm (or a fault-all PASID) has no valid entry anywhere;
 *   - PASID bookkeeping: each bound mm's PASID is allocated, each SVA domain is on its mm's list,
 *     subscribed to its live mm, and counts its attachments; handles hold references;
 *   - DMA-mapped RAM pages are not free (refcount > 0): callers pin before mapping.
 * Context: read-only; walks do not touch accessed/dirty bits. The lead registers it with
 * kernel.addInvariantCheck('iommu', () => checkIommuInvariants(iommu)).
 */
export function checkIommuInvariants(iommu: Iommu): string[] {
  const out: string[] = [];
  checkCache(out, 'IOTLB domain', iommu.iotlb, (tag) => iommu.domains.get(tag) ?? null);
  for (const dev of iommu.devices.values()) {
    const atc = dev.atc;
    if (!atc) continue;
    const group = dev.group;
    checkCache(out, `ATC ${dev.name} PASID`, atc, (pasid) =>
      pasid === IOMMU_NO_PASID ? group.domain : (group.pasidArray.get(pasid)?.domain ?? null),
    );
  }

  for (const data of iommu.mmData.values()) {
    if (!iommu.pasidIda.has(data.pasid)) out.push(`mm ${data.mm.id}: PASID ${data.pasid} is not allocated`);
    for (const d of data.svaDomains) {
      if (!(d instanceof IommuSvaDomain) || d.mm !== data.mm || d.pasid !== data.pasid)
        out.push(`mm ${data.mm.id}: foreign domain ${d.id} on its SVA domain list`);
    }
  }
  for (const domain of iommu.domains.values()) {
    if (domain.iommu !== iommu || iommu.domains.get(domain.id) !== domain)
      out.push(`domain ${domain.id}: misfiled`);
    if (domain instanceof IommuSvaDomain) {
      const data = iommu.mmData.get(domain.mm);
      if (!data || !data.svaDomains.includes(domain))
        out.push(`SVA domain ${domain.id}: not on mm ${domain.mm.id}'s list (PASID ${domain.pasid})`);
      if (domain.users !== domain.handles.length)
        out.push(`SVA domain ${domain.id}: ${domain.users} users but ${domain.handles.length} attachments`);
      if (domain.users <= 0) out.push(`SVA domain ${domain.id}: alive with no users`);
      if (domain.mm.alive && !domain.faultAll && !domain.notifier?.hashed)
        out.push(`SVA domain ${domain.id}: not subscribed to live mm ${domain.mm.id}'s invalidations`);
    }
    for (const h of domain.handles) {
      if (h.users <= 0)
        out.push(`domain ${domain.id}: attachment at PASID ${h.attachedPasid} with no reference`);
      if (h.group.pasidArray.get(h.attachedPasid) !== h)
        out.push(
          `domain ${domain.id}: attachment at PASID ${h.attachedPasid} missing from group ${h.group.id}`,
        );
    }
  }

  const frames = iommu.core.frames;
  for (const group of iommu.groups)
    if (group.domain.freed || iommu.domains.get(group.domain.id) !== group.domain)
      out.push(`group ${group.id}: default domain ${group.domain.id} is not live`);
  for (const domain of iommu.domains.values()) {
    if (!(domain instanceof IommuDmaDomain)) continue;
    let mapped = 0;
    domain.pgtable.forEachEntry(0, (domain.iovad.endPfn + 1) * PAGE_SIZE, (va, tableId, slot) => {
      mapped++;
      const pfn = domain.pgtable.table(tableId)[slot];
      if (pfn < frames.count && frames.refcount[pfn] <= 0)
        out.push(`domain ${domain.id}: IOVA ${hex(va)} maps free page pfn ${pfn} (DMA into a freed page)`);
    });
    if (mapped !== domain.mappedPages)
      out.push(`domain ${domain.id}: ${mapped} IOVA pages mapped, ${domain.mappedPages} accounted`);
  }
  return out;
}
