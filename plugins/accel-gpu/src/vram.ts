/**
 * The GPU's device memory: MEMORY_DEVICE_PRIVATE ZONE_DEVICE pages (memremapPages), added one
 * chunk at a time as migrations need them (as lib/test_hmm.c and nouveau's dmem do), handed out
 * by the driver's own allocator, given back through dev_pagemap_ops.page_free, and brought back
 * to system memory by dev_pagemap_ops.migrate_to_ram when the CPU touches one.
 */
import {
  ERRNO,
  GFP_HIGHUSER_MOVABLE,
  MEMORY_DEVICE_PRIVATE,
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  PAGE_SIZE,
  VM_FAULT_SIGBUS,
  folioTrylock,
  isDevicePrivatePage,
  memremapPages,
  memunmapPages,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDeviceRange,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
  pagePgmap,
  releaseMemRegion,
  requestFreeMemRegion,
  zoneDevicePageInit,
  type DevPagemap,
  type DevPagemapFault,
  type MigrateVma,
  type MmCore,
  type PfnRange,
} from '@svasim/kernel';
import type { GpuTiming } from './gpu-config';

/** One chunk of device memory (a dev_pagemap over a requested pfn region). */
interface VramChunk {
  pagemap: DevPagemap;
  region: PfnRange;
  /** Being removed: pages freed now do not go back on the free list. */
  removing: boolean;
}

/** VramStats - the device memory's counters. */
export interface VramStats {
  /** Chunks mapped now, and their pages. */
  chunks: number;
  totalPages: number;
  /** Pages on the free list. */
  freePages: number;
  /** Pages handed out and not yet given back. */
  usedPages: number;
  /** CPU faults served by migrate_to_ram, and those that failed (VM_FAULT_SIGBUS). */
  cpuFaults: number;
  cpuFaultFailures: number;
  /** Pages moved back to system memory by eviction (EVICT, hot removal). */
  evicted: number;
}

/** What GpuVram needs from its device: the pagemap owner and a way to charge time. */
export interface VramHost {
  /** The pagemap owner (hmm_range_fault's dev_private_owner, migrate_vma's pgmap_owner). */
  readonly owner: object;
  readonly timing: GpuTiming;
  /** Device time spent on behalf of nobody in particular (CPU faults, eviction). */
  addBackgroundNs(ns: number): void;
}

/**
 * GpuVram - one GPU's device-private memory. Not an allocator of the kernel: the buddy never
 * sees these pfns. Pages handed out are referenced and locked (zoneDevicePageInit), as
 * migrate_vma wants its destination pages.
 */
export class GpuVram {
  private chunks: VramChunk[] = [];
  private free: number[] = [];
  private used = 0;
  private cpuFaults = 0;
  private cpuFaultFailures = 0;
  private evicted = 0;

  constructor(
    readonly core: MmCore,
    readonly host: VramHost,
    /** Pages per chunk. */
    readonly chunkPages: number,
    /** Most pages the device has (whole chunks). */
    readonly maxPages: number,
    /** Name of the requested regions (dmesg, /proc/iomem). */
    readonly name: string,
  ) {}

  /** isOurs - is @pfn a page of this device's memory? */
  isOurs(pfn: number): boolean {
    return pagePgmap(this.core, pfn)?.owner === this.host.owner;
  }

  /**
   * allocPage - a free device page for a migration destination (dmirror_devmem_alloc_page):
   * referenced once and locked. Adds a chunk when the free list is empty.
   * Return: the pfn, or -ENOMEM when the device memory (or the ZONE_DEVICE pfn space) is full.
   */
  allocPage(): number {
    if (this.free.length === 0) {
      const r = this.addChunk();
      if (r < 0) return -ERRNO.ENOMEM;
    }
    const pfn = this.free.pop()!;
    if (zoneDevicePageInit(this.core, pfn) < 0) return -ERRNO.ENOMEM;
    this.used++;
    return pfn;
  }

  private addChunk(): number {
    const have = this.chunks.length * this.chunkPages;
    if (have + this.chunkPages > this.maxPages) return -ERRNO.ENOMEM;
    const region = requestFreeMemRegion(this.core, this.chunkPages, this.name);
    if (typeof region === 'number') return region;
    const chunk: VramChunk = {
      pagemap: {
        type: MEMORY_DEVICE_PRIVATE,
        range: region,
        ops: {
          pageFree: (pfn) => this.pageFree(chunk, pfn),
          migrateToRam: (vmf) => this.migrateToRam(vmf),
        },
        owner: this.host.owner,
      },
      region,
      removing: false,
    };
    const r = memremapPages(this.core, chunk.pagemap);
    if (r < 0) {
      releaseMemRegion(this.core, region);
      return r;
    }
    this.chunks.push(chunk);
    // Popped from the end: the lowest pfn goes first.
    for (let pfn = region.end - 1; pfn >= region.start; pfn--) this.free.push(pfn);
    this.core.dmesg.printk(
      `${this.name}: added ${(this.chunkPages * PAGE_SIZE) / 2 ** 20} MiB of device memory, PFNs [0x${region.start.toString(16)} 0x${region.end.toString(16)})`,
    );
    return 0;
  }

  /** dev_pagemap_ops.page_free: the page's last reference went. */
  private pageFree(chunk: VramChunk, pfn: number): void {
    this.used--;
    if (!chunk.removing) this.free.push(pfn);
  }

  /**
   * dev_pagemap_ops.migrate_to_ram: the CPU (or GUP, or an IOMMU fault) touched one of our pages;
   * migrate it back to a new system page (nouveau_dmem_migrate_to_ram / dmirror_devmem_fault).
   * Return: 0 (the access retries) or VM_FAULT_SIGBUS (the access fails with EFAULT).
   */
  private migrateToRam(vmf: DevPagemapFault): number {
    const src = new Float64Array(1);
    const dst = new Float64Array(1);
    const args: MigrateVma = {
      vma: vmf.vma,
      start: vmf.address - (vmf.address % PAGE_SIZE),
      end: vmf.address - (vmf.address % PAGE_SIZE) + PAGE_SIZE,
      src,
      dst,
      cpages: 0,
      npages: 0,
      pgmapOwner: this.host.owner,
      flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
      faultPage: vmf.page,
    };
    if (migrateVmaSetup(args)) {
      this.cpuFaultFailures++;
      return VM_FAULT_SIGBUS;
    }
    const moved = this.copyToSystem(args, vmf.vma.mm.node);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    this.cpuFaults++;
    const t = this.host.timing;
    // The faulting CPU waits for the driver's service and the copy.
    const ns = t.devmemFaultNs + (moved * PAGE_SIZE) / t.migrateBytesPerNs;
    this.core.charge(ns);
    this.host.addBackgroundNs(ns);
    return 0;
  }

  /**
   * copyToSystem - for each collected device page of @args, a locked system page with its bytes
   * as the destination (dmirror_devmem_fault_alloc_and_copy). Pages without memory stay put.
   * Return: the pages given a destination.
   */
  copyToSystem(args: MigrateVma, node: number): number {
    const core = this.core;
    const src = args.src!;
    const dst = args.dst!;
    let n = 0;
    for (let i = 0; i < args.npages; i++) {
      const spage = migratePfnToPage(src[i]);
      if (spage < 0 || !(src[i] & MIGRATE_PFN_MIGRATE) || !isDevicePrivatePage(core, spage)) continue;
      const dpage = core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0, node);
      if (dpage < 0) continue;
      folioTrylock(core, dpage);
      core.data.copyPage(dpage, spage);
      dst[i] = migratePfn(dpage) + (src[i] & MIGRATE_PFN_WRITE ? MIGRATE_PFN_WRITE : 0);
      n++;
    }
    return n;
  }

  /**
   * evictAll - move every page in use back to system memory (migrate_device_range over each
   * chunk), then unmap the chunks and release their regions. A chunk whose pages could not all
   * move (no system memory) stays mapped and is reported in dmesg.
   * Return: the pages that remain in device memory (0 when everything came back).
   */
  evictAll(): number {
    const core = this.core;
    const keep: VramChunk[] = [];
    let remaining = 0;
    let copied = 0;
    for (const chunk of this.chunks) {
      chunk.removing = true;
      this.free = this.free.filter((p) => p < chunk.region.start || p >= chunk.region.end);
      const npages = chunk.region.end - chunk.region.start;
      const src = new Float64Array(npages);
      const dst = new Float64Array(npages);
      migrateDeviceRange(core, src, chunk.region.start, npages);
      for (let i = 0; i < npages; i++) {
        const spage = migratePfnToPage(src[i]);
        if (spage < 0 || !(src[i] & MIGRATE_PFN_MIGRATE)) continue;
        const dpage = core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0);
        if (dpage < 0) continue;
        folioTrylock(core, dpage);
        core.data.copyPage(dpage, spage);
        dst[i] = migratePfn(dpage) + (src[i] & MIGRATE_PFN_WRITE ? MIGRATE_PFN_WRITE : 0);
        copied++;
      }
      migrateDevicePages(core, src, dst, npages);
      migrateDeviceFinalize(core, src, dst, npages);
      if (memunmapPages(core, chunk.pagemap) < 0) {
        let busy = 0;
        for (let p = chunk.region.end - 1; p >= chunk.region.start; p--) {
          if (core.frames.refcount[p] > 0) busy++;
          else this.free.push(p);
        }
        remaining += busy;
        core.dmesg.printk(
          `${this.name}: ${busy} pages of the chunk at PFN 0x${chunk.region.start.toString(16)} still in use`,
        );
        chunk.removing = false;
        keep.push(chunk);
        continue;
      }
      releaseMemRegion(core, chunk.region);
    }
    this.chunks = keep;
    this.evicted += copied;
    const t = this.host.timing;
    if (copied) this.host.addBackgroundNs(t.migrateSetupNs + (copied * PAGE_SIZE) / t.migrateBytesPerNs);
    return remaining;
  }

  /** stats - the device memory's counters. */
  stats(): VramStats {
    return {
      chunks: this.chunks.length,
      totalPages: this.chunks.length * this.chunkPages,
      freePages: this.free.length,
      usedPages: this.used,
      cpuFaults: this.cpuFaults,
      cpuFaultFailures: this.cpuFaultFailures,
      evicted: this.evicted,
    };
  }
}
