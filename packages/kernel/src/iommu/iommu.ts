/**
 * The IOMMU core of one kernel (drivers/iommu/iommu.c): its profile, the IOTLB, the global PASID
 * and domain-id allocators, groups and the devices probed behind it.
 */
import type { Device } from '../base/device';
import type { MmCore } from '../mm/mm-core';
import type { MmStruct } from '../mm/mm-struct';
import { PAGE_SIZE } from '../uapi/mman';
import { ERRNO, KernelError } from '../uapi/errno';
import { IOMMU_FIRST_GLOBAL_PASID, IommuDmaDomain, type IommuDomain } from './domain';
import { IommuDevice, devIommu, setDevIommu } from './iommu-device';
import { IommuGroup } from './iommu-group';
import { IovaDomain } from './iova';
import { DEFAULT_IOMMU_PROFILE, iommuProfile } from './profiles';
import { SetAssocTlb } from './tlb-cache';
import type { IommuProfile } from './types';

/** DI token of the kernel's Iommu (the lead registers the instance initIommu returns). */
export const IOMMU = Symbol.for('@svasim/kernel/iommu/Iommu');

/**
 * IdAllocator - an IDA (lib/idr.c ida_alloc_range): always hands out the lowest free id in the
 * range asked for, so allocation order is deterministic.
 */
export class IdAllocator {
  private next: number;
  /** Freed ids below `next`, ascending. */
  private readonly freed: number[] = [];
  private inUse = 0;

  constructor(
    /** Lowest id. */
    readonly min: number,
    /** Highest id (inclusive). */
    readonly max: number,
  ) {
    this.next = min;
  }

  /** Ids handed out and not freed. */
  get count(): number {
    return this.inUse;
  }

  /** alloc - the lowest free id <= @max (default: the allocator's max), or -1 (the kernel's -ENOSPC). */
  alloc(max: number = this.max): number {
    const limit = Math.min(max, this.max);
    if (this.freed.length && this.freed[0] <= limit) {
      this.inUse++;
      return this.freed.shift()!;
    }
    if (this.next > limit) return -1;
    this.inUse++;
    return this.next++;
  }

  /** has - whether @id is allocated. */
  has(id: number): boolean {
    if (!Number.isInteger(id) || id < this.min || id >= this.next) return false;
    return this.bsearch(id) < 0;
  }

  /** free - give @id back (ida_free). Returns false (nothing done) when it was not allocated. */
  free(id: number): boolean {
    if (!this.has(id)) return false;
    this.inUse--;
    if (id === this.next - 1) {
      this.next--;
      // Fold freed ids that now touch the top back into `next`.
      while (this.freed.length && this.freed[this.freed.length - 1] === this.next - 1) {
        this.freed.pop();
        this.next--;
      }
      return true;
    }
    this.freed.splice(~this.bsearch(id), 0, id);
    return true;
  }

  /** Index of @id in `freed`, or ~insertion point when absent. */
  private bsearch(id: number): number {
    let lo = 0;
    let hi = this.freed.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.freed[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    return this.freed[lo] === id ? lo : ~lo;
  }
}

/** Options of Iommu.iommuProbeDevice: the device's capabilities (defaults from the profile). */
export interface IommuProbeOptions {
  /** PASID width the device supports, bits (default and cap: the profile's pasidBits; 0 = none). */
  pasidBits?: number;
  /** PCIe ATS (the device caches translations in an ATC). Default: the profile's atsDefault. */
  ats?: boolean;
  /** SVA support (PASID + IO page faults). Default: true when the device has PASIDs. */
  sva?: boolean;
  /** DMA mask width in bits (dma_set_mask). Default 64. */
  dmaMaskBits?: number;
  /** Put the device in this existing group (devices that cannot be isolated). Default: a new group. */
  group?: IommuGroup;
}

/** The largest DMA mask (DMA_BIT_MASK(64)). */
const DMA_MASK_BITS_MAX = 64;

/** IOMMU-wide counters. */
export interface IommuStats {
  iotlbInvRange: number;
  iotlbInvAll: number;
  atcInvalidations: number;
  /** Simulated time charged for invalidations, ns. */
  invalidationNs: number;
  /** Successful iommuSvaBindDevice calls (repeat binds included) and their unbinds. */
  svaBinds: number;
  svaUnbinds: number;
  /** SVA domains allocated and freed. */
  svaDomainsAllocated: number;
  svaDomainsFreed: number;
  /** Global PASIDs allocated and freed. */
  pasidsAllocated: number;
  pasidsFreed: number;
}

/**
 * IommuMmData - struct iommu_mm_data (mm->iommu_mm): the mm's global PASID and the SVA domains
 * sharing its page table. Made by the first SVA bind of the mm; dropped (PASID freed) by
 * mmPasidDrop once the mm is gone and no SVA domain holds it.
 */
export interface IommuMmData {
  readonly mm: MmStruct;
  readonly pasid: number;
  /** SVA domains of this mm, newest first (list_add). At most one per IOMMU. */
  readonly svaDomains: IommuDomain[];
}

/**
 * Iommu - the IOMMU of one kernel: its latency/size profile, the IOTLB (shared by every domain,
 * tagged by domain id), the global PASID allocator (one PASID per mm), domain ids, groups and the
 * device registry. Made by initIommu (one per kernel); never freed.
 */
export class Iommu {
  /** The IOTLB, sized from the profile, tagged by domain id (ASID). */
  readonly iotlb: SetAssocTlb;
  /** iommu_global_pasid_ida: PASIDs [IOMMU_FIRST_GLOBAL_PASID, 2^pasidBits - 1]. */
  readonly pasidIda: IdAllocator;
  /** Domain ids / ASIDs [1, 2^domainIdBits - 1]. */
  readonly domainIda: IdAllocator;
  /** Probed devices (dev->iommu), in probe order. */
  readonly devices = new Map<Device, IommuDevice>();
  /** Live groups, in creation order. */
  readonly groups: IommuGroup[] = [];
  /** Live domains by id. */
  readonly domains = new Map<number, IommuDomain>();
  /** mm->iommu_mm of every mm that has (or had, until dropped) a PASID. */
  readonly mmData = new Map<MmStruct, IommuMmData>();
  readonly stats: IommuStats = {
    iotlbInvRange: 0,
    iotlbInvAll: 0,
    atcInvalidations: 0,
    invalidationNs: 0,
    svaBinds: 0,
    svaUnbinds: 0,
    svaDomainsAllocated: 0,
    svaDomainsFreed: 0,
    pasidsAllocated: 0,
    pasidsFreed: 0,
  };
  /**
   * Fault injection (the kernel's failslab) for the allocations the IOMMU core makes (iommu_mm
   * data, an SVA handle, a domain): the next `afterAllocs` succeed, then the following
   * `failAllocs` fail with -ENOMEM; both count down.
   */
  readonly faultInject = { failAllocs: 0, afterAllocs: 0 };
  /**
   * arch_pgtable_dma_compat(mm): can a device walk this mm's page table? (x86 answers false for
   * an mm using LAM unless it forced tagged SVA; the bind then fails -EBUSY.) Replace to model it.
   */
  archPgtableDmaCompat: (mm: MmStruct) => boolean = () => true;
  private nextGroupId = 0;

  constructor(
    /** The memory-management core of the kernel (charging, dmesg, vmstat, frames). */
    readonly core: MmCore,
    /** Latency and size figures. */
    readonly profile: Readonly<IommuProfile>,
  ) {
    this.iotlb = new SetAssocTlb(profile.iotlbEntries, profile.iotlbWays);
    this.pasidIda = new IdAllocator(IOMMU_FIRST_GLOBAL_PASID, 2 ** profile.pasidBits - 1);
    this.domainIda = new IdAllocator(1, 2 ** profile.domainIdBits - 1);
  }

  /** charge - account @ns of simulated CPU time to whoever caused it (the current task). */
  charge(ns: number): void {
    if (ns > 0) this.core.charge(ns);
  }

  /** warn - a WARN_ON: logged (rate limited per @key), and the simulation continues. */
  warn(key: string, msg: string): void {
    this.core.dmesg.printkRatelimited(`iommu_${key}`, `WARNING: iommu: ${msg}`);
  }

  /** @internal kzalloc under fault injection: false when this allocation must fail (-ENOMEM). */
  allocOk(): boolean {
    if (this.faultInject.failAllocs > 0) {
      if (this.faultInject.afterAllocs > 0) {
        this.faultInject.afterAllocs--;
        return true;
      }
      this.faultInject.failAllocs--;
      return false;
    }
    return true;
  }

  /**
   * allocDomainId - a free domain id / ASID for a new domain. Returns it, or throws KernelError
   * -ENOSPC when every id is taken. Released by freeDomainId.
   */
  allocDomainId(): number {
    const id = this.domainIda.alloc();
    if (id < 0) throw new KernelError(-ERRNO.ENOSPC, 'iommu: no free domain id');
    return id;
  }

  /** freeDomainId - forget @domain: its id (and IOTLB tag) may be reused. Call after flushing its IOTLB entries. */
  freeDomainId(domain: IommuDomain): void {
    domain.freed = true;
    this.domains.delete(domain.id);
    this.domainIda.free(domain.id);
  }

  /**
   * iommuGroupAlloc - a new, empty group with its default DMA domain (iommu_group_alloc +
   * iommu_setup_default_domain): IOVAs from page 1 (iommu_dma_init_domain's base_pfn) to the top
   * of the profile's iovaBits aperture.
   * Returns the group; throws KernelError -ENOSPC when no domain id is free. Freed when its last
   * device is released.
   */
  iommuGroupAlloc(): IommuGroup {
    const id = this.allocDomainId();
    const domain = new IommuDmaDomain(
      this,
      id,
      new IovaDomain(1, 2 ** this.profile.iovaBits / PAGE_SIZE - 1),
    );
    this.domains.set(id, domain);
    const group = new IommuGroup(this, this.nextGroupId++, domain);
    domain.groups.push(group);
    this.groups.push(group);
    return group;
  }

  /**
   * iommuPagingDomainAlloc - a new paging domain with its own I/O page table and IOVA space, not
   * attached anywhere (iommu_paging_domain_alloc): for a driver that manages its own mappings
   * (iommuMap) and attaches it at a PASID (iommuAttachDevicePasid).
   * Returns it; throws KernelError -ENOSPC (no domain id) or -ENOMEM (Iommu.faultInject).
   * Released by iommuDomainFree.
   */
  iommuPagingDomainAlloc(): IommuDmaDomain {
    if (!this.allocOk()) throw new KernelError(-ERRNO.ENOMEM, 'iommu_paging_domain_alloc');
    const id = this.allocDomainId();
    const domain = new IommuDmaDomain(
      this,
      id,
      new IovaDomain(1, 2 ** this.profile.iovaBits / PAGE_SIZE - 1),
    );
    this.domains.set(id, domain);
    return domain;
  }

  /**
   * iommuDomainFree - free a domain from iommuPagingDomainAlloc (iommu_domain_free): its IOTLB
   * entries are flushed (charged as the profile's invAllNs) and its id released. Freeing a domain
   * that is still attached, or still maps pages, WARNs and does nothing.
   */
  iommuDomainFree(domain: IommuDmaDomain): void {
    if (domain.freed || domain.iommu !== this) return;
    if (domain.groups.length || domain.handles.length || domain.mappedPages) {
      this.warn(
        'domain_free',
        `domain ${domain.id} freed while attached or mapping ${domain.mappedPages} page(s)`,
      );
      return;
    }
    this.iotlb.invalidateAsid(domain.id);
    this.charge(this.profile.invAllNs);
    this.freeDomainId(domain);
  }

  /**
   * iommuProbeDevice - put @dev behind this IOMMU (iommu_probe_device): give it a group (a new one
   * unless @opts.group) and describe its capabilities. Probing a device twice returns the first
   * IommuDevice unchanged.
   * Returns the IommuDevice; throws RangeError for impossible options (a PASID width the IOMMU
   * does not have, a group of another IOMMU) and KernelError -ENOSPC when no domain id is left
   * for a new group. Released by iommuReleaseDevice.
   */
  iommuProbeDevice(dev: Device, opts: IommuProbeOptions = {}): IommuDevice {
    const existing = this.devices.get(dev);
    if (existing) return existing;
    const p = this.profile;
    const pasidBits = opts.pasidBits ?? p.pasidBits;
    if (!Number.isInteger(pasidBits) || pasidBits < 0 || pasidBits > p.pasidBits)
      throw new RangeError(
        `iommuProbeDevice ${dev.name}: pasidBits must be 0..${p.pasidBits}, got ${pasidBits}`,
      );
    const dmaMaskBits = opts.dmaMaskBits ?? DMA_MASK_BITS_MAX;
    if (!Number.isInteger(dmaMaskBits) || dmaMaskBits < 12 || dmaMaskBits > DMA_MASK_BITS_MAX)
      throw new RangeError(`iommuProbeDevice ${dev.name}: dmaMaskBits must be 12..64, got ${dmaMaskBits}`);
    if (opts.group && (opts.group.iommu !== this || !this.groups.includes(opts.group)))
      throw new RangeError(`iommuProbeDevice ${dev.name}: the group is not a live group of this IOMMU`);
    const group = opts.group ?? this.iommuGroupAlloc();
    const idev = new IommuDevice(this, dev, group, {
      pasidBits,
      ats: opts.ats ?? p.atsDefault,
      sva: opts.sva ?? pasidBits > 0,
      dmaMaskBits,
    });
    group.devices.push(idev);
    this.devices.set(dev, idev);
    setDevIommu(dev, idev);
    return idev;
  }

  /**
   * iommuReleaseDevice - take @dev away from the IOMMU (iommu_release_device): its ATC is
   * discarded and it leaves its group; the last device to leave frees the group and its default
   * domain (flushing the domain's IOTLB entries). Releasing a device whose group still has PASID
   * attachments, or whose default domain still has DMA mappings, is a driver bug: WARN, and they
   * are left as they are. Releasing an unknown device does nothing.
   */
  iommuReleaseDevice(dev: Device | IommuDevice): void {
    const idev = devIommu(dev);
    if (!idev || idev.iommu !== this || idev.released) return;
    const group = idev.group;
    if (group.devices.length === 1 && group.pasidArray.size > 0)
      this.warn('release', `${idev.name} released with ${group.pasidArray.size} PASID attachment(s)`);
    group.devices.splice(group.devices.indexOf(idev), 1);
    idev.released = true;
    idev.atc?.invalidateAll();
    this.devices.delete(idev.dev);
    setDevIommu(idev.dev, null);
    if (group.devices.length > 0) return;
    const domain = group.domain;
    if (domain.mappedPages > 0)
      this.warn('release', `group ${group.id} freed with ${domain.mappedPages} page(s) still DMA-mapped`);
    this.iotlb.invalidateAsid(domain.id);
    this.freeDomainId(domain);
    this.groups.splice(this.groups.indexOf(group), 1);
  }
}

const iommuOfCore = new WeakMap<MmCore, Iommu>();

/** Options of initIommu. */
export interface InitIommuOptions {
  /** A shipped profile's name ('smmuv3' by default) or a whole profile. */
  profile?: string | Readonly<IommuProfile>;
}

/**
 * initIommu - the kernel's IOMMU, made on first call for @core and returned by later calls
 * (idempotent per kernel). The lead calls it from the Kernel constructor with
 * KernelOptions.iommu.profile.
 * Returns the Iommu; throws RangeError for an unknown profile name, or when a later call names a
 * different profile than the one in use.
 */
export function initIommu(core: MmCore, opts: InitIommuOptions = {}): Iommu {
  const want = opts.profile ?? DEFAULT_IOMMU_PROFILE;
  const existing = iommuOfCore.get(core);
  if (existing) {
    const name = typeof want === 'string' ? want : want.name;
    if (opts.profile !== undefined && name !== existing.profile.name)
      throw new RangeError(`initIommu: this kernel's IOMMU already uses profile '${existing.profile.name}'`);
    return existing;
  }
  const profile = typeof want === 'string' ? iommuProfile(want) : want;
  const iommu = new Iommu(core, profile);
  iommuOfCore.set(core, iommu);
  return iommu;
}

/** iommuOf - the Iommu initIommu made for @core, or null. */
export function iommuOf(core: MmCore): Iommu | null {
  return iommuOfCore.get(core) ?? null;
}
