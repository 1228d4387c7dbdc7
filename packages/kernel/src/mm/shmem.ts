import { PG_head, PG_shmem, PG_swapbacked, PG_lru, PG_dirty } from './page-flags';
import type { MmCore } from './mm-core';
import type { VmAreaStruct } from './vma';
import type { HugepageSize } from './phys-types';
import { GFP_HIGHUSER_MOVABLE } from './gfp';
import { putPage } from './page-ref';

/**
 * ShmemObject - a shared-memory object (shmem/tmpfs inode, or hugetlbfs for huge pages) backing
 * MAP_SHARED|MAP_ANONYMOUS mappings and shared hugetlb mappings. Its page cache holds one
 * reference on each page; every PTE mapping a page holds another.
 * Created by shmemObjectCreate (mmap), released when its last user (VMA or fd) puts it.
 */
export class ShmemObject {
  /** Page offset -> head pfn. For hugetlb objects, offsets are in base pages of the huge page's start. */
  readonly pages = new Map<number, number>();
  /** VMAs mapping this object (i_mmap), for reverse mapping. */
  readonly vmas = new Set<VmAreaStruct>();
  /** References: VMAs plus open files. */
  users = 1;
  /** hugetlbfs reservations not yet consumed, by huge page number. */
  hugeResv: Set<number> | null = null;

  constructor(
    readonly id: number,
    /** Size in pages. */
    readonly nrPages: number,
    /** hugetlbfs page size, or null for tmpfs. */
    readonly hugeSize: HugepageSize | null,
  ) {}
}

/** ShmemRegistry - shmem objects by id (page `mapping` = id + 1 with PG_shmem). */
export class ShmemRegistry {
  private readonly objects = new Map<number, ShmemObject>();
  private nextId = 1;

  constructor(private readonly core: MmCore) {}

  /** create - a new object of `nrPages` pages with one user; released by put(). */
  create(nrPages: number, hugeSize: HugepageSize | null): ShmemObject {
    const obj = new ShmemObject(this.nextId++, nrPages, hugeSize);
    this.objects.set(obj.id, obj);
    return obj;
  }

  get(id: number): ShmemObject | undefined {
    return this.objects.get(id);
  }

  /** get a reference (a new VMA or fd). */
  hold(obj: ShmemObject): void {
    obj.users++;
  }

  /** put - drop a reference; the last one frees every page the object holds. */
  put(obj: ShmemObject): void {
    if (--obj.users > 0) return;
    for (const pfn of obj.pages.values()) putPage(this.core, pfn);
    obj.pages.clear();
    if (obj.hugeResv && obj.hugeResv.size > 0) {
      this.core.hugetlb.unreserve(obj.hugeSize as HugepageSize, obj.hugeResv.size);
      obj.hugeResv.clear();
    }
    this.objects.delete(obj.id);
  }

  /**
   * findOrAlloc - the page at `pgoff` of a tmpfs object, allocating a zeroed one on first use
   * (shmem_get_folio). Returns the pfn, or -1 when memory is exhausted. The object's reference
   * is taken here; the caller takes its own for the mapping.
   */
  findOrAlloc(obj: ShmemObject, pgoff: number, nid: number): number {
    const have = obj.pages.get(pgoff);
    if (have !== undefined) return have;
    const pfn = this.core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0, nid);
    if (pfn < 0) return -1;
    const f = this.core.frames;
    f.flags[pfn] |= PG_shmem | PG_swapbacked | PG_lru | PG_dirty;
    f.mapping[pfn] = obj.id + 1;
    f.index[pfn] = pgoff;
    obj.pages.set(pgoff, pfn);
    return pfn;
  }

  /**
   * findOrAllocHuge - the huge page at (huge-aligned) `pgoff` of a hugetlbfs object, taken from
   * the pool on first use. Returns the head pfn, or -1 when the pool is empty.
   */
  findOrAllocHuge(obj: ShmemObject, pgoff: number, nid: number): number {
    const have = obj.pages.get(pgoff);
    if (have !== undefined) return have;
    const head = this.core.hugetlb.allocHugetlbFolio(obj.hugeSize as HugepageSize, nid);
    if (head < 0) return -1;
    const f = this.core.frames;
    f.flags[head] |= PG_shmem | PG_head;
    f.mapping[head] = obj.id + 1;
    f.index[head] = pgoff;
    obj.pages.set(pgoff, head);
    return head;
  }

  /** Live objects (leak checking). */
  get size(): number {
    return this.objects.size;
  }

  /** Every live object. */
  all(): IterableIterator<ShmemObject> {
    return this.objects.values();
  }
}
