import { PAGE_SIZE } from '../uapi/mman';

/** IoMemHandler - how a device answers CPU loads and stores to its MMIO pages. */
export interface IoMemHandler {
  /** Fill `out` with `out.length` bytes at byte `offset` of the region (default: zeros). */
  read?(offset: number, out: Uint8Array): void;
  /** Take the bytes of `src` stored at byte `offset` of the region (doorbells live here). */
  write?(offset: number, src: Uint8Array): void;
}

interface IoRegion {
  base: number;
  nrPages: number;
  handler: IoMemHandler;
  name: string;
}

/** First MMIO pfn: device memory lives above 2^40 bytes, far from any simulated RAM. */
export const IOMEM_BASE_PFN = 2 ** 28;

/**
 * IoMemory - device memory (MMIO BARs) that user space can map with remapPfnRange. Its pfns lie
 * above RAM; CPU accesses to them reach the owning device's handler instead of page contents.
 * Regions are registered by drivers (request_mem_region + ioremap) and released with release().
 */
export class IoMemory {
  private readonly regions: IoRegion[] = [];
  private next = IOMEM_BASE_PFN;

  /** register - a region of `nrPages` pages; returns its first pfn. Released by release(). */
  register(name: string, nrPages: number, handler: IoMemHandler): number {
    if (!Number.isInteger(nrPages) || nrPages <= 0)
      throw new RangeError(`iomem ${name}: bad size ${nrPages}`);
    const base = this.next;
    this.next += nrPages;
    this.regions.push({ base, nrPages, handler, name });
    return base;
  }

  /** release - forget the region starting at `base`; later accesses read zeros and drop stores. */
  release(base: number): void {
    const i = this.regions.findIndex((r) => r.base === base);
    if (i >= 0) this.regions.splice(i, 1);
  }

  /** isIoPfn - true for a pfn in the MMIO range (registered or not). */
  static isIoPfn(pfn: number): boolean {
    return pfn >= IOMEM_BASE_PFN;
  }

  /** read - a CPU load of `out.length` bytes at `offset` within page `pfn`. */
  read(pfn: number, offset: number, out: Uint8Array): void {
    const r = this.find(pfn);
    if (r?.handler.read) r.handler.read((pfn - r.base) * PAGE_SIZE + offset, out);
    else out.fill(0);
  }

  /** write - a CPU store of `src` at `offset` within page `pfn`. */
  write(pfn: number, offset: number, src: Uint8Array): void {
    const r = this.find(pfn);
    r?.handler.write?.((pfn - r.base) * PAGE_SIZE + offset, src);
  }

  private find(pfn: number): IoRegion | undefined {
    return this.regions.find((r) => pfn >= r.base && pfn < r.base + r.nrPages);
  }
}
