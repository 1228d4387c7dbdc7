/**
 * Shared Virtual Addressing (drivers/iommu/iommu-sva.c, with the SMMUv3 SVA domain of
 * arm-smmu-v3-sva.c): binding a process address space to a device so it DMAs with user virtual
 * addresses, tagged with the mm's PASID.
 */
import type { Device } from '../base/device';
import type { MmStruct } from '../mm/mm-struct';
import { mmuNotifierPut, mmuNotifierRegister } from '../mmu-notifier/mmu-notifier';
import type { MmuNotifier, MmuNotifierOps } from '../mmu-notifier/types';
import { ERRNO, KernelError } from '../uapi/errno';
import {
  IOMMU_DOMAIN_SVA,
  IOMMU_NO_PASID,
  IommuAttachHandle,
  IommuSvaDomain,
  SvaMmuNotifier,
  atcInvalidateGroup,
  iommuDomainInvalidate,
  iommuDomainInvalidateBytes,
  type IommuDomain,
} from './domain';
import type { Iommu, IommuMmData } from './iommu';
import { devIommu, type IommuDevice } from './iommu-device';
import type { IommuGroup } from './iommu-group';
import { IOMMU_PASID_INVALID, type SvaBinding } from './types';

/**
 * IommuSvaHandle - struct iommu_sva: one bond of a device (its group) to an mm at the mm's PASID.
 * A repeat bind of the same device and mm returns the same handle with `users` incremented.
 * Made by iommuSvaBindDevice, released by iommuSvaUnbindDevice (once per bind).
 *
 * It also has the shape uacce expects of a bond (`pasid`, `unbind()`).
 */
export class IommuSvaHandle extends IommuAttachHandle {
  constructor(
    /** The device that made the bond (any device of the group shares it). */
    readonly dev: IommuDevice,
    group: IommuGroup,
    /** The SVA domain of the mm. */
    readonly svaDomain: IommuSvaDomain,
  ) {
    super(svaDomain, group, svaDomain.pasid);
  }

  /** The bond's PASID (iommuSvaGetPasid). */
  get pasid(): number {
    return iommuSvaGetPasid(this);
  }

  /** The bound address space. */
  get mm(): MmStruct {
    return this.svaDomain.mm;
  }

  /** unbind - iommuSvaUnbindDevice(this). */
  unbind(): void {
    iommuSvaUnbindDevice(this);
  }
}

/**
 * The SVA domain's MMU-notifier callbacks (arm_smmu_mmu_notifier_ops): the SMMU shares the CPU
 * page table, so it follows CPU TLB flushes (arch_invalidate_secondary_tlbs) rather than keeping
 * shadow entries.
 */
const SVA_MMU_NOTIFIER_OPS: MmuNotifierOps = {
  archInvalidateSecondaryTlbs(sub: MmuNotifier, _mm: MmStruct, start: number, end: number): void {
    const domain = (sub as SvaMmuNotifier).domain;
    if (domain.freed) return;
    iommuDomainInvalidateBytes(domain, start, end);
  },
  release(sub: MmuNotifier): void {
    // The mm is exiting and DMA may still be running: keep the PASID's context valid (no C_BAD_CD)
    // but make it fault every access, and flush what the IOTLB and ATCs hold of it.
    const domain = (sub as SvaMmuNotifier).domain;
    if (domain.freed) return;
    domain.faultAll = true;
    iommuDomainInvalidate(domain, 0, Infinity);
  },
  freeNotifier(): void {},
};

/** Is this mm data free to drop: its mm is gone and no SVA domain holds it (mmgrab)? */
function mmDataDroppable(d: IommuMmData): boolean {
  return !d.mm.alive && d.svaDomains.length === 0;
}

/**
 * mmPasidDrop - give back @mm's PASID (mm_pasid_drop, from __mmdrop): nothing while an SVA domain
 * still holds the mm (the last iommuSvaUnbindDevice drops it then) or when it has no PASID.
 * The lead may call it when a process's mm is destroyed; PASIDs of exited mms are also reclaimed
 * before every new PASID allocation, so not calling it leaks nothing.
 */
export function mmPasidDrop(iommu: Iommu, mm: MmStruct): void {
  const d = iommu.mmData.get(mm);
  if (!d || d.svaDomains.length > 0) return;
  iommu.mmData.delete(mm);
  iommu.pasidIda.free(d.pasid);
  iommu.stats.pasidsFreed++;
}

/** Drop the PASIDs of every exited mm nothing holds any more (the mmdrops that already happened). */
function reapExitedMms(iommu: Iommu): void {
  for (const d of [...iommu.mmData.values()]) if (mmDataDroppable(d)) mmPasidDrop(iommu, d.mm);
}

/** iommu_alloc_mm_data: the mm's PASID data, allocated with a new global PASID on first use. */
function iommuAllocMmData(iommu: Iommu, mm: MmStruct, dev: IommuDevice): IommuMmData {
  if (!iommu.archPgtableDmaCompat(mm))
    throw new KernelError(-ERRNO.EBUSY, 'iommu_sva_bind_device: page table not usable for DMA');
  const existing = iommu.mmData.get(mm);
  if (existing) {
    if (existing.pasid >= dev.maxPasids)
      throw new KernelError(
        -ERRNO.EOVERFLOW,
        `iommu_sva_bind_device: PASID ${existing.pasid} beyond ${dev.name}'s`,
      );
    return existing;
  }
  if (!iommu.allocOk()) throw new KernelError(-ERRNO.ENOMEM, 'iommu_sva_bind_device: iommu_mm');
  reapExitedMms(iommu);
  const pasid = dev.maxPasids > 0 ? iommu.pasidIda.alloc(dev.maxPasids - 1) : -1;
  if (pasid < 0) throw new KernelError(-ERRNO.ENOSPC, 'iommu_sva_bind_device: no free PASID');
  iommu.stats.pasidsAllocated++;
  const data: IommuMmData = { mm, pasid, svaDomains: [] };
  iommu.mmData.set(mm, data);
  return data;
}

/**
 * iommu_sva_domain_alloc: an SVA domain for @mm with a new domain id (ASID), subscribed to the mm
 * (mmu_notifier_register) so CPU TLB flushes reach the IOTLB and ATCs.
 */
function iommuSvaDomainAlloc(iommu: Iommu, mm: MmStruct, pasid: number): IommuSvaDomain {
  if (!iommu.allocOk()) throw new KernelError(-ERRNO.ENOMEM, 'iommu_sva_bind_device: SVA domain');
  const domain = new IommuSvaDomain(iommu, iommu.allocDomainId(), mm, pasid);
  const sub = new SvaMmuNotifier(SVA_MMU_NOTIFIER_OPS, domain);
  const ret = mmuNotifierRegister(sub, mm);
  if (ret < 0) {
    iommu.freeDomainId(domain);
    throw new KernelError(ret, 'iommu_sva_bind_device: mmu_notifier_register');
  }
  domain.notifier = sub;
  iommu.domains.set(domain.id, domain);
  iommu.stats.svaDomainsAllocated++;
  return domain;
}

/**
 * iommuDomainFree - free an SVA domain whose last attachment went (iommu_domain_free): flush its
 * IOTLB entries (TLBI by ASID, charged as the profile's invAllNs), drop its MMU-notifier
 * subscription and its id.
 */
function iommuSvaDomainFree(domain: IommuSvaDomain): void {
  const iommu = domain.iommu;
  iommu.iotlb.invalidateAsid(domain.id);
  domain.stats.iotlbInvAll++;
  iommu.stats.iotlbInvAll++;
  iommu.charge(iommu.profile.invAllNs);
  if (domain.notifier) mmuNotifierPut(domain.notifier);
  iommu.freeDomainId(domain);
  iommu.stats.svaDomainsFreed++;
}

/**
 * iommuSvaBindDevice - bind @mm to @dev (iommu_sva_bind_device): the device may then DMA with
 * @mm's virtual addresses tagged with iommuSvaGetPasid(handle), and its accesses fault through
 * IOPF. The mm gets one global PASID shared by every device bound to it, and one SVA domain per
 * IOMMU shared the same way. A repeat bind of the same device (group) and mm returns the same
 * handle with handle.users incremented.
 *
 * Returns the handle, or throws KernelError:
 *   -ENODEV   the device has no IOMMU group, or does not support SVA
 *   -EINVAL   the mm has already exited (the caller must hold mm_users)
 *   -EBUSY    the mm's page table cannot be shared (arch_pgtable_dma_compat), or another domain is
 *             attached at the mm's PASID in this group
 *   -EOVERFLOW the mm's PASID is beyond what the device supports
 *   -ENOSPC   no PASID (or domain id) left
 *   -ENOMEM   an allocation failed (Iommu.faultInject)
 * Context: process context. Released by iommuSvaUnbindDevice(handle), once per successful bind;
 * the PASID stays with the mm until it is destroyed (mmPasidDrop).
 */
export function iommuSvaBindDevice(dev: Device | IommuDevice, mm: MmStruct): IommuSvaHandle {
  const idev = devIommu(dev);
  if (!idev || idev.released) throw new KernelError(-ERRNO.ENODEV, 'iommu_sva_bind_device: no IOMMU group');
  if (!idev.svaSupported)
    throw new KernelError(-ERRNO.ENODEV, `iommu_sva_bind_device: ${idev.name} has no SVA`);
  if (!mm.alive) throw new KernelError(-ERRNO.EINVAL, 'iommu_sva_bind_device: mm has exited');
  const iommu = idev.iommu;
  const group = idev.group;
  const data = iommuAllocMmData(iommu, mm, idev);
  const attached = group.pasidArray.get(data.pasid);
  if (attached) {
    if (!(attached instanceof IommuSvaHandle) || attached.svaDomain.mm !== mm)
      throw new KernelError(-ERRNO.EBUSY, `iommu_sva_bind_device: PASID ${data.pasid} is in use`);
    attached.users++;
    iommu.stats.svaBinds++;
    return attached;
  }
  if (!iommu.allocOk()) throw new KernelError(-ERRNO.ENOMEM, 'iommu_sva_bind_device: handle');
  let domain = data.svaDomains.find(
    (d): d is IommuSvaDomain => d instanceof IommuSvaDomain && d.iommu === iommu,
  );
  if (domain) domain.users++;
  else {
    domain = iommuSvaDomainAlloc(iommu, mm, data.pasid);
    domain.users = 1;
    data.svaDomains.unshift(domain);
  }
  const handle = new IommuSvaHandle(idev, group, domain);
  group.pasidArray.set(data.pasid, handle);
  domain.handles.push(handle);
  iommu.stats.svaBinds++;
  return handle;
}

/**
 * iommuSvaUnbindDevice - drop one reference of a bond made by iommuSvaBindDevice
 * (iommu_sva_unbind_device). The last one detaches the PASID from the group (flushing the
 * devices' ATC entries for it, profile invAtcNs each); the domain's last attachment frees the
 * domain (IOTLB flush of its ASID, end of its MMU-notifier subscription); if the mm has already
 * exited, its PASID is then freed. Unbinding a handle that has no reference left WARNs.
 * Context: process context. The caller must have stopped the device's DMA with this PASID and
 * flushed its page requests first.
 */
export function iommuSvaUnbindDevice(handle: IommuSvaHandle): void {
  const domain = handle.svaDomain;
  const iommu = domain.iommu;
  if (handle.users <= 0) {
    iommu.warn('sva_unbind', `unbind of a released SVA handle (PASID ${domain.pasid})`);
    return;
  }
  iommu.stats.svaUnbinds++;
  if (--handle.users > 0) return;
  detachPasid(handle);
  if (--domain.users > 0) return;
  const data = iommu.mmData.get(domain.mm);
  if (data) {
    const i = data.svaDomains.indexOf(domain);
    if (i >= 0) data.svaDomains.splice(i, 1);
  }
  iommuSvaDomainFree(domain);
  if (data && mmDataDroppable(data)) mmPasidDrop(iommu, domain.mm);
}

/** iommu_detach_device_pasid for a handle: out of the group's PASID table, ATC entries flushed. */
function detachPasid(handle: IommuAttachHandle): void {
  const { group, domain, attachedPasid } = handle;
  const iommu = group.iommu;
  if (group.pasidArray.get(attachedPasid) === handle) group.pasidArray.delete(attachedPasid);
  const i = domain.handles.indexOf(handle);
  if (i >= 0) domain.handles.splice(i, 1);
  const n = atcInvalidateGroup(group, attachedPasid, 0, Infinity, true);
  domain.stats.atcInvalidations += n;
  iommu.charge(n * iommu.profile.invAtcNs);
}

/**
 * iommuSvaGetPasid - the PASID of a bond (iommu_sva_get_pasid), or IOMMU_PASID_INVALID for a
 * handle with no reference left.
 */
export function iommuSvaGetPasid(handle: IommuSvaHandle): number {
  return handle.users > 0 ? handle.svaDomain.pasid : IOMMU_PASID_INVALID;
}

/**
 * iommuGetDomainForDevPasid - the domain attached to @dev's group at @pasid
 * (iommu_get_domain_for_dev_pasid): the default DMA domain for IOMMU_NO_PASID, null when nothing
 * is attached or (with @type) the domain is of another type.
 */
export function iommuGetDomainForDevPasid(
  dev: Device | IommuDevice,
  pasid: number,
  type?: number,
): IommuDomain | null {
  const idev = devIommu(dev);
  if (!idev || idev.released) return null;
  const domain =
    pasid === IOMMU_NO_PASID ? idev.group.domain : (idev.group.pasidArray.get(pasid)?.domain ?? null);
  if (!domain || (type !== undefined && domain.type !== type)) return null;
  return domain;
}

/**
 * iommuSvaFindBinding - the address space a page request from @dev with @pasid must be resolved
 * in (what the IOPF handler gets as its domain's fault_data): the SVA domain bound at @pasid in
 * the device's group, or null when none is (no bond, or a non-SVA domain). The binding's mm may
 * have exited (then the fault must be answered INVALID, as mmget_not_zero fails).
 */
export function iommuSvaFindBinding(dev: Device | IommuDevice, pasid: number): SvaBinding | null {
  const d = iommuGetDomainForDevPasid(dev, pasid, IOMMU_DOMAIN_SVA);
  return d instanceof IommuSvaDomain ? d : null;
}

/**
 * iommuAllocGlobalPasid - a PASID from the global allocator for a driver's own use (kernel DMA
 * with PASID, iommu_alloc_global_pasid): the lowest free one below @dev's maxPasids, or
 * IOMMU_PASID_INVALID. Released by iommuFreeGlobalPasid.
 */
export function iommuAllocGlobalPasid(dev: Device | IommuDevice): number {
  const idev = devIommu(dev);
  if (!idev || idev.maxPasids === 0) return IOMMU_PASID_INVALID;
  reapExitedMms(idev.iommu);
  const pasid = idev.iommu.pasidIda.alloc(idev.maxPasids - 1);
  if (pasid < 0) return IOMMU_PASID_INVALID;
  idev.iommu.stats.pasidsAllocated++;
  return pasid;
}

/** iommuFreeGlobalPasid - give back a PASID from iommuAllocGlobalPasid (WARN for IOMMU_PASID_INVALID). */
export function iommuFreeGlobalPasid(iommu: Iommu, pasid: number): void {
  if (pasid === IOMMU_PASID_INVALID) {
    iommu.warn('pasid', 'iommu_free_global_pasid(IOMMU_PASID_INVALID)');
    return;
  }
  if (iommu.pasidIda.free(pasid)) iommu.stats.pasidsFreed++;
}

/**
 * iommuAttachDevicePasid - attach a paging @domain (not SVA: binds do that) to @dev's group at
 * @pasid (iommu_attach_device_pasid), as a driver doing kernel DMA with a PASID does.
 * Returns 0; -ENODEV (no group), -EINVAL (SVA domain, PASID 0 or beyond the device, a domain of
 * another IOMMU), -EBUSY (something is attached at @pasid already).
 * Released by iommuDetachDevicePasid.
 */
export function iommuAttachDevicePasid(
  domain: IommuDomain,
  dev: Device | IommuDevice,
  pasid: number,
): number {
  const idev = devIommu(dev);
  if (!idev || idev.released) return -ERRNO.ENODEV;
  if (domain.type === IOMMU_DOMAIN_SVA || domain.freed || domain.iommu !== idev.iommu) return -ERRNO.EINVAL;
  if (!Number.isInteger(pasid) || pasid === IOMMU_NO_PASID || pasid >= idev.maxPasids) return -ERRNO.EINVAL;
  if (idev.group.pasidArray.has(pasid)) return -ERRNO.EBUSY;
  const handle = new IommuAttachHandle(domain, idev.group, pasid);
  idev.group.pasidArray.set(pasid, handle);
  domain.handles.push(handle);
  return 0;
}

/**
 * iommuDetachDevicePasid - undo iommuAttachDevicePasid (iommu_detach_device_pasid): the devices'
 * ATC entries for @pasid are flushed. WARNs and does nothing when @domain is not attached there.
 */
export function iommuDetachDevicePasid(domain: IommuDomain, dev: Device | IommuDevice, pasid: number): void {
  const idev = devIommu(dev);
  const handle = idev?.group.pasidArray.get(pasid);
  if (!idev || !handle || handle.domain !== domain || handle instanceof IommuSvaHandle) {
    domain.iommu.warn('detach', `detach of PASID ${pasid}: domain ${domain.id} is not attached there`);
    return;
  }
  detachPasid(handle);
}

/**
 * iommuSvaOps - the bind/supported pair uacce programs against (its UacceSvaOps), backed by this
 * IOMMU: bind(parent, mm) is iommuSvaBindDevice (the handle has `pasid` and `unbind()`),
 * supported(parent) is whether the parent was probed with SVA.
 */
export function iommuSvaOps(iommu: Iommu): {
  bind(parent: Device, mm: MmStruct): IommuSvaHandle;
  supported(parent: Device): boolean;
} {
  return {
    bind: (parent, mm) => iommuSvaBindDevice(parent, mm),
    supported: (parent) => {
      const idev = devIommu(parent);
      return !!idev && idev.iommu === iommu && !idev.released && idev.svaSupported;
    },
  };
}
