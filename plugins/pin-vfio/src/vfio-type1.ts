/**
 * VfioType1 - the kernel part of the 'vfio' strategy: the DMA mapping table of VFIO's type1 IOMMU
 * backend (drivers/vfio/vfio_iommu_type1.c), reached through two system calls that stand for its
 * container ioctls:
 *
 *   vfio_iommu_map_dma(device, vaddr, iova, size, flags)    VFIO_IOMMU_MAP_DMA
 *   vfio_iommu_unmap_dma(device, iova, size)  -> bytes      VFIO_IOMMU_UNMAP_DMA
 *
 * where `device` names the uacce device whose parent (the PCI function) does the DMA. A map pins
 * the pages with FOLL_LONGTERM (pin_user_pages_remote, FOLL_WRITE for a writable mapping: what
 * vaddr_get_pfns does), charges them to locked_vm against RLIMIT_MEMLOCK unless the caller has
 * CAP_IPC_LOCK (vfio_lock_acct -> account_locked_vm: ENOMEM over the limit) and maps IOVA -> page
 * in the device group's DMA domain (iommu_map). No SVA, no PASID, no page faults: the device
 * reaches exactly what is mapped, and the pinned pages can never move (FOLL_LONGTERM first moved
 * them out of CMA and ZONE_MOVABLE).
 *
 * Errors as vfio_dma_do_map / vfio_dma_do_unmap give them: EINVAL for a zero, unaligned or
 * wrapping range, an IOVA outside the aperture or no READ/WRITE flag; EEXIST when the IOVA range
 * overlaps a mapping of this container (or, svasim: another process's mapping in the shared
 * domain); the pin's errno (EFAULT for unmapped memory); ENOMEM over RLIMIT_MEMLOCK. An unmap
 * must not bisect a mapping (EINVAL, type1 v2 rules); an unmap of a range with no mapping
 * succeeds with 0 bytes unmapped, as the ioctl reports it. A failed map leaves nothing behind.
 *
 * svasim's model of the container: one per (process, device). Real VFIO gives a group to one
 * container at a time; uacce lets several processes use one device, so here their containers
 * share the device's one DMA domain (the non-PASID limitation of IOMMU v1 the ODP thread
 * describes): IOVA == VA mappings of two processes at the same address collide (EEXIST). The
 * mappings of a process go when it releases them or when its address space is torn down
 * (an MMU-notifier release stands for the container fd's close at exit).
 */
import {
  ERRNO,
  FOLL_LONGTERM,
  FOLL_WRITE,
  IOMMU_READ,
  IOMMU_WRITE,
  MmuNotifier,
  PAGE_SIZE,
  accountLockedVm,
  devIommu,
  folioHead,
  folioMaybeDmaPinned,
  iommuIovaToPhys,
  iommuMap,
  iommuUnmap,
  isProcessContext,
  mmuNotifierGet,
  mmuNotifierPut,
  pinUserPagesRemote,
  unpinUserPagesDirtyLock,
  type Current,
  type IommuDevice,
  type Kernel,
  type MmStruct,
  type MmuNotifierOps,
  type ProcessContext,
} from '@svasim/kernel';

/** VFIO_DMA_MAP_FLAG_READ - the device may read the mapping (include/uapi/linux/vfio.h). */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** VFIO_DMA_MAP_FLAG_WRITE - the device may write the mapping. */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;

/** The syscall standing for VFIO_IOMMU_MAP_DMA. */
export const VFIO_MAP_DMA_SYSCALL = 'vfio_iommu_map_dma';
/** The syscall standing for VFIO_IOMMU_UNMAP_DMA. */
export const VFIO_UNMAP_DMA_SYSCALL = 'vfio_iommu_unmap_dma';

/** VfioDma - struct vfio_dma: one mapping. */
export interface VfioDma {
  readonly iova: number;
  readonly vaddr: number;
  /** Pages mapped. */
  readonly npages: number;
  /** The pinned page of each IOVA page (pfn). */
  readonly pfns: Int32Array;
  /** IOMMU_READ | IOMMU_WRITE. */
  readonly prot: number;
  /** Pages charged to the owner's locked_vm. */
  readonly charged: number;
}

/** VfioContainer - the mappings of one process for one device, sorted by IOVA. */
export interface VfioContainer {
  readonly mm: MmStruct;
  readonly idev: IommuDevice;
  readonly dmas: VfioDma[];
}

/** Per address space: its containers and the MMU-notifier subscription that tears them down. */
interface MmState {
  sub: MmuNotifier;
  containers: Map<IommuDevice, VfioContainer>;
}

const ok = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/**
 * VfioType1 - the type1 backend of one kernel. realize() registers its syscalls, unrealize()
 * removes them; checkInvariants() is added to the kernel's.
 */
export class VfioType1 {
  private readonly mms = new Map<MmStruct, MmState>();
  private registered = false;
  private readonly notifierOps: MmuNotifierOps = {
    allocNotifier: () => new MmuNotifier(this.notifierOps),
    // exit_mmap: the process is gone, and with it (in real VFIO: its container fd) every mapping.
    release: (_sub, mm) => this.releaseMm(mm),
  };

  constructor(private readonly kernel: Kernel) {}

  /** realize - register the two syscalls and the invariant check. Returns 0 or -EEXIST. */
  realize(): number {
    const k = this.kernel;
    let r = k.registerSyscall(VFIO_MAP_DMA_SYSCALL, (cur, ...a) => this.sysMap(cur, a));
    if (r < 0) return r;
    r = k.registerSyscall(VFIO_UNMAP_DMA_SYSCALL, (cur, ...a) => this.sysUnmap(cur, a));
    if (r < 0) {
      k.syscalls.unregister(VFIO_MAP_DMA_SYSCALL);
      return r;
    }
    if (!this.registered) k.addInvariantCheck('vfio', () => this.checkInvariants());
    this.registered = true;
    return 0;
  }

  /**
   * unrealize - remove the syscalls and tear down every mapping left (the backend goes away, at
   * kernel shutdown before the devices it maps for: plugins unrealize in reverse order).
   */
  unrealize(): void {
    this.kernel.syscalls.unregister(VFIO_MAP_DMA_SYSCALL);
    this.kernel.syscalls.unregister(VFIO_UNMAP_DMA_SYSCALL);
    for (const [mm, st] of [...this.mms]) {
      this.releaseMm(mm);
      mmuNotifierPut(st.sub);
    }
  }

  /** device - the IOMMU side of the parent of uacce device @name, or null (no such device, removed). */
  device(name: unknown): IommuDevice | null {
    if (typeof name !== 'string' || name === '') return null;
    const u = this.kernel.uacce.deviceList().find((d) => d.name === name);
    if (!u || u.removed || !u.parent) return null;
    const idev = devIommu(u.parent);
    return idev && !idev.released ? idev : null;
  }

  /** container - @mm's container for @idev, if it has one. */
  container(mm: MmStruct, idev: IommuDevice): VfioContainer | undefined {
    return this.mms.get(mm)?.containers.get(idev);
  }

  /** Mappings of @mm over every device. */
  mappings(mm: MmStruct): VfioDma[] {
    const st = this.mms.get(mm);
    return st ? [...st.containers.values()].flatMap((c) => c.dmas) : [];
  }

  /**
   * dmaMap - vfio_dma_do_map for @cur's address space on @idev: pin [vaddr, vaddr + size),
   * charge, map at @iova. Returns 0 or -errno (see the file comment). Context: the caller's
   * syscall; pinning and mapping costs are charged to it.
   */
  dmaMap(
    cur: ProcessContext,
    idev: IommuDevice,
    vaddr: number,
    iova: number,
    size: number,
    flags: number,
  ): number {
    const prot =
      (flags & VFIO_DMA_MAP_FLAG_READ ? IOMMU_READ : 0) | (flags & VFIO_DMA_MAP_FLAG_WRITE ? IOMMU_WRITE : 0);
    if (!ok(vaddr) || !ok(iova) || !ok(size) || !Number.isInteger(flags) || !prot) return -ERRNO.EINVAL;
    if (flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) return -ERRNO.EINVAL;
    if (!size || size % PAGE_SIZE || vaddr % PAGE_SIZE || iova % PAGE_SIZE) return -ERRNO.EINVAL;
    if (!Number.isSafeInteger(vaddr + size) || !Number.isSafeInteger(iova + size)) return -ERRNO.EINVAL;
    const mm = cur.mm;
    const domain = idev.group.domain;
    const c = this.container(mm, idev);
    if (c && c.dmas.some((d) => d.iova < iova + size && iova < d.iova + d.npages * PAGE_SIZE))
      return -ERRNO.EEXIST;
    // vfio_iommu_iova_dma_valid: inside the domain's aperture.
    if ((iova + size) / PAGE_SIZE - 1 > domain.iovad.endPfn) return -ERRNO.EINVAL;

    // The pin would stop with -EFAULT at the first hole; finding it first also bounds the page
    // array by what is mapped, whatever size a caller passes.
    for (let cursor = vaddr; cursor < vaddr + size;) {
      const vma = mm.findVma(cursor);
      if (!vma || vma.start > cursor) return -ERRNO.EFAULT;
      cursor = vma.end;
    }
    const cont = c ?? this.newContainer(mm, idev);
    const r = this.pinAndMap(cur, cont, vaddr, iova, size / PAGE_SIZE, prot);
    if (r < 0 && !cont.dmas.length) this.dropContainer(cont);
    return r;
  }

  /** vfio_pin_map_dma: pin, charge, map; on failure undo all of it. Returns 0 or -errno. */
  private pinAndMap(
    cur: ProcessContext,
    cont: VfioContainer,
    vaddr: number,
    iova: number,
    npages: number,
    prot: number,
  ): number {
    const mm = cont.mm;
    const domain = cont.idev.group.domain;
    const core = mm.core;
    const pfns = new Int32Array(npages).fill(-1);
    const gup = FOLL_LONGTERM | (prot & IOMMU_WRITE ? FOLL_WRITE : 0);
    let pinned = 0;
    while (pinned < npages) {
      const r = pinUserPagesRemote(
        mm,
        vaddr + pinned * PAGE_SIZE,
        npages - pinned,
        gup,
        pfns.subarray(pinned),
      );
      if (r <= 0) {
        unpinUserPagesDirtyLock(core, pfns, pinned, false);
        return r < 0 ? r : -ERRNO.EFAULT;
      }
      pinned += r;
    }
    // vfio_lock_acct after the pin, as vfio_pin_pages_remote checks the limit page by page.
    const caller = cur.mmCaller();
    const acct = accountLockedVm(mm, npages, true, caller);
    if (acct < 0) {
      unpinUserPagesDirtyLock(core, pfns, npages, false);
      return acct;
    }
    // iommu_map runs of physically consecutive pages.
    for (let i = 0; i < npages;) {
      let n = 1;
      while (i + n < npages && pfns[i + n] === pfns[i] + n) n++;
      const r = iommuMap(domain, iova + i * PAGE_SIZE, pfns[i] * PAGE_SIZE, n * PAGE_SIZE, prot);
      if (r < 0) {
        if (i) iommuUnmap(domain, iova, i * PAGE_SIZE);
        accountLockedVm(mm, npages, false, caller);
        unpinUserPagesDirtyLock(core, pfns, npages, false);
        return r;
      }
      i += n;
    }
    cont.dmas.push({ iova, vaddr, npages, pfns, prot, charged: npages });
    cont.dmas.sort((a, b) => a.iova - b.iova);
    return 0;
  }

  /**
   * dmaUnmap - vfio_dma_do_unmap (type1 v2) for @cur's container on @idev: remove every mapping
   * inside [iova, iova + size): unmap it from the domain (IOTLB and ATC invalidated), unpin its
   * pages (dirtying written ones), uncharge locked_vm. Returns the bytes unmapped (0 when the
   * range holds no mapping), or -EINVAL: zero, unaligned or wrapping range, or one that bisects
   * a mapping (nothing is unmapped then).
   */
  dmaUnmap(cur: ProcessContext, idev: IommuDevice, iova: number, size: number): number {
    if (!ok(iova) || !ok(size) || !size || iova % PAGE_SIZE || size % PAGE_SIZE) return -ERRNO.EINVAL;
    if (!Number.isSafeInteger(iova + size)) return -ERRNO.EINVAL;
    const c = this.container(cur.mm, idev);
    if (!c) return 0;
    const end = iova + size;
    const dmaEnd = (d: VfioDma) => d.iova + d.npages * PAGE_SIZE;
    for (const d of c.dmas) {
      if (d.iova < iova && dmaEnd(d) > iova) return -ERRNO.EINVAL;
      if (d.iova < end && dmaEnd(d) > end) return -ERRNO.EINVAL;
    }
    let bytes = 0;
    for (const d of c.dmas.filter((x) => x.iova >= iova && dmaEnd(x) <= end)) bytes += this.removeDma(c, d);
    if (!c.dmas.length) this.dropContainer(c);
    return bytes;
  }

  /**
   * releaseMm - tear down every mapping of @mm (its exit, or unrealize). The MMU-notifier
   * subscription is left to the caller (exit_mmap drops it itself).
   */
  releaseMm(mm: MmStruct): void {
    const st = this.mms.get(mm);
    if (!st) return;
    for (const c of st.containers.values()) for (const d of [...c.dmas]) this.removeDma(c, d);
    this.mms.delete(mm);
  }

  /**
   * checkInvariants - every mapping's pages are still pinned and the domain maps each of its IOVA
   * pages to them; each address space's charges are within its driver-accounted locked_vm.
   */
  checkInvariants(): string[] {
    const out: string[] = [];
    for (const [mm, st] of this.mms) {
      let charged = 0;
      for (const c of st.containers.values())
        for (const d of c.dmas) {
          charged += d.charged;
          const domain = c.idev.group.domain;
          for (let i = 0; i < d.npages; i++) {
            const pfn = d.pfns[i];
            // The zero page (a read-only pin of untouched anonymous memory) is never counted.
            if (pfn !== mm.core.alloc.zeroPfn && !folioMaybeDmaPinned(mm.core, folioHead(mm.core, pfn)))
              out.push(
                `mm ${mm.id}: IOVA 0x${(d.iova + i * PAGE_SIZE).toString(16)} maps unpinned pfn ${pfn}`,
              );
            if (iommuIovaToPhys(domain, d.iova + i * PAGE_SIZE) !== pfn * PAGE_SIZE)
              out.push(
                `mm ${mm.id}: IOVA 0x${(d.iova + i * PAGE_SIZE).toString(16)} is not mapped to pfn ${pfn}`,
              );
          }
        }
      if (mm.alive && charged > mm.accountedLockedVm)
        out.push(`mm ${mm.id}: ${charged} pages mapped for DMA but ${mm.accountedLockedVm} accounted`);
    }
    return out;
  }

  private newContainer(mm: MmStruct, idev: IommuDevice): VfioContainer {
    let st = this.mms.get(mm);
    if (!st) {
      st = { sub: mmuNotifierGet(this.notifierOps, mm), containers: new Map() };
      this.mms.set(mm, st);
    }
    const c: VfioContainer = { mm, idev, dmas: [] };
    st.containers.set(idev, c);
    return c;
  }

  private dropContainer(c: VfioContainer): void {
    const st = this.mms.get(c.mm);
    if (!st) return;
    st.containers.delete(c.idev);
    if (st.containers.size) return;
    this.mms.delete(c.mm);
    mmuNotifierPut(st.sub);
  }

  /** vfio_remove_dma: unmap, unpin, uncharge one mapping. Returns its size in bytes. */
  private removeDma(c: VfioContainer, d: VfioDma): number {
    const bytes = d.npages * PAGE_SIZE;
    iommuUnmap(c.idev.group.domain, d.iova, bytes);
    unpinUserPagesDirtyLock(c.mm.core, d.pfns, d.npages, (d.prot & IOMMU_WRITE) !== 0);
    accountLockedVm(c.mm, d.charged, false, { ipcLock: true, memlockLimit: Infinity });
    c.dmas.splice(c.dmas.indexOf(d), 1);
    return bytes;
  }

  private sysMap(cur: Current, a: unknown[]): number {
    if (!isProcessContext(cur)) return -ERRNO.EINVAL;
    const idev = this.device(a[0]);
    if (!idev) return -ERRNO.ENODEV;
    return this.dmaMap(cur, idev, a[1] as number, a[2] as number, a[3] as number, a[4] as number);
  }

  private sysUnmap(cur: Current, a: unknown[]): number {
    if (!isProcessContext(cur)) return -ERRNO.EINVAL;
    const idev = this.device(a[0]);
    if (!idev) return -ERRNO.ENODEV;
    return this.dmaUnmap(cur, idev, a[1] as number, a[2] as number);
  }
}
