/**
 * PageFrames - the simulator's struct page, as a structure of typed arrays indexed by pfn.
 *
 * Budget: 32 bytes of metadata per 4 KiB page (Linux's struct page is 64). Fields are reused the
 * way the kernel reuses struct page's unions:
 *  - in use: `mapping` is the anon_vma / shmem object id + 1 (0 = none), `index` the virtual page
 *    number (anon) or the page offset in the object (shmem); for a tail page `mapping` is the head
 *    pfn + 1.
 *  - `flags` keeps PG_* bits in its low 27 bits and the order (buddy order of a free head,
 *    compound order of a folio head) in its top 5 bits, as the kernel packs bits into page->flags.
 *  - free buddy head (PG_buddy): `mapping` the next pfn + 1 on its
 *    free list, `index` the previous pfn (-1 = list head).
 *  - `privateData`: the first tail page of a large folio keeps the folio's pincount there (as the
 *    kernel keeps _pincount in the first tail); swap-cache pages keep their swap slot.
 *  - `dataSlot`: where the page's bytes live in PageData (0 = never written: reads as zero).
 *
 * Nothing here allocates per page: a 64 GiB machine is a handful of typed arrays whose untouched
 * parts the host OS never backs with memory.
 *
 * The arrays extend `devicePages` entries past RAM: the pfn space [count, capacity) is where
 * memremapPages (mm/memremap.ts) places ZONE_DEVICE pages, which get the same per-page state as
 * RAM but are never seen by the buddy allocator (every RAM loop stops at `count`). It is sized at
 * boot because the arrays cannot grow: the allocator, GUP and others cache them.
 */
/** The order lives in the top 5 bits of flags (orders up to 31; gigantic pages are order 18). */
export const ORDER_SHIFT = 27;
/** The PG_* part of flags. */
export const PG_FLAGS_MASK = (1 << ORDER_SHIFT) - 1;

export class PageFrames {
  /** Number of RAM page frames (the highest RAM pfn + 1); ZONE_DEVICE pfns start here. */
  readonly count: number;
  /** RAM frames plus the ZONE_DEVICE pfn space: one past the highest pfn with a struct page. */
  readonly capacity: number;
  /** PG_* bits. */
  readonly flags: Uint32Array;
  /** _refcount: references held (mappings, GUP references, pins as GUP_PIN_COUNTING_BIAS each). */
  readonly refcount: Int32Array;
  /** _mapcount + 1 in kernel terms: the number of page-table entries mapping this page. */
  readonly mapcount: Int32Array;
  /** See the class comment: anon_vma / object id + 1, tail's head + 1, or buddy next + 1. */
  readonly mapping: Uint32Array;
  /** Virtual page number or object offset; buddy prev pfn. Float64 because user VPNs exceed 2^32. */
  readonly index: Float64Array;
  /** Pincount of a large folio (on its first tail page) or swap slot + 1 of a swap-cache page. */
  readonly privateData: Int32Array;
  /** Slot in PageData holding the bytes; 0 = zero-filled. */
  readonly dataSlot: Int32Array;

  /**
   * @count: RAM page frames.
   * @devicePages: pfns reserved above RAM for ZONE_DEVICE memory (memremapPages); default none.
   */
  constructor(count: number, devicePages = 0) {
    this.count = count;
    const n = count + devicePages;
    this.capacity = n;
    this.flags = new Uint32Array(n);
    this.refcount = new Int32Array(n);
    this.mapcount = new Int32Array(n);
    this.mapping = new Uint32Array(n);
    this.index = new Float64Array(n);
    this.privateData = new Int32Array(n);
    this.dataSlot = new Int32Array(n);
  }

  /** Bytes of metadata per page frame (the benchmark's metadata_bytes_per_page). */
  static bytesPerPage(): number {
    return (
      Uint32Array.BYTES_PER_ELEMENT + // flags
      Int32Array.BYTES_PER_ELEMENT + // refcount
      Int32Array.BYTES_PER_ELEMENT + // mapcount
      Uint32Array.BYTES_PER_ELEMENT + // mapping
      Float64Array.BYTES_PER_ELEMENT + // index
      Int32Array.BYTES_PER_ELEMENT + // privateData
      Int32Array.BYTES_PER_ELEMENT // dataSlot
    );
  }

  /** getOrder - buddy order of a free head, compound order of a folio head, else 0. */
  getOrder(pfn: number): number {
    return this.flags[pfn] >>> ORDER_SHIFT;
  }

  /** setOrder - store the order of `pfn` without touching its PG_* bits. */
  setOrder(pfn: number, order: number): void {
    this.flags[pfn] = (this.flags[pfn] & PG_FLAGS_MASK) | (order << ORDER_SHIFT);
  }

  /** compoundHead - the head pfn of the folio containing `pfn` (itself for a small page). */
  compoundHead(pfn: number): number {
    return this.flags[pfn] & (1 << 3) /* PG_tail */ ? this.mapping[pfn] - 1 : pfn;
  }

  /** folioNrPages - pages in the folio headed by `head`. */
  folioNrPages(head: number): number {
    return 1 << (this.flags[head] >>> ORDER_SHIFT);
  }
}
