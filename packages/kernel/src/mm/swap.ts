/**
 * The swap device (struct swap_info_struct, mm/swapfile.c and mm/page_io.c): an array of page
 * slots with a reference count each (swap_map), slot allocation, and the slots' bytes.
 *
 * Slot 0 holds the swap header, as on a real swap partition, and is never handed out, so a swap
 * entry's slot is never 0. A slot's count is the number of swap entries (non-present PTEs) that
 * refer to it, plus one while reclaim holds it between allocation and the end of the swap-out (the
 * kernel's SWAP_HAS_CACHE). Bytes are kept sparsely: a page that reads as zero stores nothing
 * (the kernel's swap zeromap, Linux 6.12+), any other page keeps an exact 4 KiB copy. There is
 * no swap cache holding pages; a slot read ahead is only marked, so that the swap-in that
 * consumes it costs no IO.
 */
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import type { MmCore } from './mm-core';
import type { SwapTunables } from './reclaim-config';

/** Pages per backing chunk of the slot store (1 MiB chunks, as PageData uses). */
const CHUNK_PAGES = 256;

/** SwapUsage - what /proc/swaps and /proc/meminfo tell of the device. */
export interface SwapUsage {
  /** Usable slots (the header excluded): SwapTotal in pages. */
  totalPages: number;
  /** Slots with a non-zero count: the "Used" column of /proc/swaps, in pages. */
  inusePages: number;
  /** SwapFree in pages. */
  freePages: number;
  /** Slots whose page was not all zero, so bytes are stored. */
  pagesWithData: number;
}

/**
 * SwapInfo - one swap area (swap_info_struct). Created by initReclaim when the kernel has swap
 * (KernelOptions.swap); there is at most one per kernel.
 */
export class SwapInfo {
  /** Slots including the header slot 0 (si->max). */
  readonly maxPages: number;
  /** swap_map: references to each slot; 0 = free. Slot 0 (the header) is never free. */
  readonly swapMap: Int32Array;
  /** Where each slot's bytes live in the store (0 = none: the page reads as zero). */
  private readonly dataIndex: Int32Array;
  /** 1 when the slot's page was read ahead and still counts as in the swap cache. */
  private readonly readahead: Uint8Array;
  private readonly chunks: Uint8Array[] = [];
  private readonly freeData: number[] = [];
  private nextData = 1;
  private dataUsed = 0;
  private inuse = 0;
  /** Next-fit allocation cursor (si->cluster_next). */
  private cursor = 1;

  /**
   * @bytes: size of the swap area; rounded down to whole pages, the first page being the header.
   * @io: the device's IO profile (SWAP_TUNABLE_DEFAULTS).
   *
   * Throws RangeError when the area is smaller than io.minPages pages.
   */
  constructor(
    bytes: number,
    readonly io: SwapTunables,
  ) {
    const pages = Math.floor(bytes / PAGE_SIZE);
    if (!Number.isSafeInteger(pages) || pages < io.minPages)
      throw new RangeError(`swap: ${bytes} bytes is less than the minimum of ${io.minPages} pages`);
    this.maxPages = pages;
    this.swapMap = new Int32Array(pages);
    this.dataIndex = new Int32Array(pages);
    this.readahead = new Uint8Array(pages);
    this.swapMap[0] = 1; // the header: never allocated
  }

  /** Usable slots (si->pages): the header is not counted. */
  get totalPages(): number {
    return this.maxPages - 1;
  }

  /** Slots in use (si->inuse_pages). */
  get inusePages(): number {
    return this.inuse;
  }

  /** Free slots (get_nr_swap_pages). */
  get freePages(): number {
    return this.maxPages - 1 - this.inuse;
  }

  /** usage - /proc/swaps figures. Return: a fresh object. */
  usage(): SwapUsage {
    return {
      totalPages: this.totalPages,
      inusePages: this.inuse,
      freePages: this.freePages,
      pagesWithData: this.dataUsed,
    };
  }

  /**
   * getSwapPage - allocate a free slot for a page about to be swapped out (folio_alloc_swap /
   * get_swap_page), next-fit from where the last allocation stopped so consecutive swap-outs get
   * consecutive slots. The slot starts with one reference, the swap-out's own (SWAP_HAS_CACHE).
   *
   * Return: the slot (>= 1), or 0 when the device is full. Released by swapFree once every
   * swap entry made from it and the swap-out's own reference are gone.
   */
  getSwapPage(): number {
    if (this.inuse >= this.maxPages - 1) return 0;
    const map = this.swapMap;
    const max = this.maxPages;
    let s = this.cursor;
    for (let n = 0; n < max; n++, s++) {
      if (s >= max) s = 1;
      if (map[s] === 0) {
        map[s] = 1;
        this.inuse++;
        this.cursor = s + 1;
        return s;
      }
    }
    return 0;
  }

  /**
   * swapDuplicate - one more reference to an allocated slot (swap_duplicate): a swap entry was
   * installed (swap-out) or copied (fork).
   *
   * Return: 0, or -EINVAL when @slot is out of range or free (a bad swap entry). Released by
   * swapFree.
   */
  swapDuplicate(slot: number): number {
    if (!this.valid(slot) || this.swapMap[slot] === 0) return -ERRNO.EINVAL;
    this.swapMap[slot]++;
    return 0;
  }

  /**
   * swapFree - drop one reference to @slot (swap_free / put_swap_folio). The last one frees the
   * slot and its bytes.
   *
   * Return: the references left, or -EINVAL when @slot is out of range or already free.
   */
  swapFree(slot: number): number {
    if (!this.valid(slot) || this.swapMap[slot] === 0) return -ERRNO.EINVAL;
    const left = --this.swapMap[slot];
    if (left === 0) {
      this.inuse--;
      this.dropData(slot);
    }
    return left;
  }

  /** swapCount - references to @slot (__swap_count); 0 when free or out of range. */
  swapCount(slot: number): number {
    return this.valid(slot) ? this.swapMap[slot] : 0;
  }

  /**
   * writePage - store a page's bytes in @slot (the data half of swap_writeout). @src is the page's
   * 4 KiB, or undefined for a page that never held bytes.
   *
   * Return: true when bytes were stored (a real write), false for an all-zero page, which only
   * marks the slot zero-filled (swap_zeromap_folio_set) and needs no IO.
   */
  writePage(slot: number, src: Uint8Array | undefined): boolean {
    this.dropData(slot);
    if (!src || isZeroPage(src)) return false;
    const idx = this.allocData();
    this.dataIndex[slot] = idx;
    this.dataView(idx).set(src.subarray(0, PAGE_SIZE));
    return true;
  }

  /**
   * readPage - the bytes stored in @slot (swap_read_folio).
   *
   * Return: a view of the 4 KiB (valid until the slot is freed), or undefined when the page was
   * zero-filled (swap_read_folio_zeromap: no IO).
   */
  readPage(slot: number): Uint8Array | undefined {
    const idx = this.valid(slot) ? this.dataIndex[slot] : 0;
    return idx === 0 ? undefined : this.dataView(idx);
  }

  /**
   * markReadahead - @slot was read along with a neighbour (swap readahead): a later swap-in of
   * it finds the page already read and needs no IO.
   *
   * Return: true when this read is new (the slot is allocated, holds bytes and was not already
   * read ahead), so the caller counts the IO (pswpin, swap_ra); false otherwise.
   */
  markReadahead(slot: number): boolean {
    if (!this.valid(slot) || this.swapMap[slot] === 0 || this.dataIndex[slot] === 0 || this.readahead[slot])
      return false;
    this.readahead[slot] = 1;
    return true;
  }

  /**
   * takeReadahead - a swap-in of @slot: was its page read ahead (a swap-cache hit)? The mark is
   * consumed.
   *
   * Return: true for a hit (no IO needed), else false.
   */
  takeReadahead(slot: number): boolean {
    if (!this.valid(slot) || !this.readahead[slot]) return false;
    this.readahead[slot] = 0;
    return true;
  }

  /**
   * writeTimeNs - simulated time for @nr 4 KiB writes submitted together (one reclaim batch): the
   * first completes after the write latency, each further one a device service time later, since
   * consecutive slots stream to the device.
   *
   * Return: ns; 0 when @nr is 0.
   */
  writeTimeNs(nr: number): number {
    return nr <= 0 ? 0 : this.io.writeLatencyNs + (nr - 1) * this.io.writeServiceNs;
  }

  /**
   * readTimeNs - simulated time for one synchronous 4 KiB read (a swap-in fault waits for it).
   *
   * Return: ns.
   */
  readTimeNs(): number {
    return this.io.readLatencyNs;
  }

  /**
   * checkInvariants - compare the swap map with the swap entries found in page tables.
   * @entries: slot -> number of swap entries referring to it, over every live mm.
   *
   * Return: violations (empty when every allocated slot is referred to by exactly its count of
   * entries, no entry refers to a free slot, free slots hold no bytes and the in-use count adds
   * up).
   */
  checkInvariants(entries: ReadonlyMap<number, number>): string[] {
    const out: string[] = [];
    const report = (m: string) => {
      if (out.length < 50) out.push(m);
    };
    let inuse = 0;
    let withData = 0;
    for (let s = 1; s < this.maxPages; s++) {
      const count = this.swapMap[s];
      const refs = entries.get(s) ?? 0;
      if (count !== 0) inuse++;
      if (this.dataIndex[s] !== 0) withData++;
      if (count !== refs) report(`swap slot ${s}: count ${count} but ${refs} swap entries refer to it`);
      if (count === 0 && this.dataIndex[s] !== 0) report(`swap slot ${s}: free but still holds bytes`);
    }
    for (const s of entries.keys())
      if (!this.valid(s)) report(`swap entry refers to slot ${s} outside the device`);
    if (inuse !== this.inuse) report(`swap: inuse_pages ${this.inuse} but ${inuse} slots in use`);
    if (withData !== this.dataUsed)
      report(`swap: ${this.dataUsed} data pages but ${withData} slots hold bytes`);
    return out;
  }

  private valid(slot: number): boolean {
    return Number.isInteger(slot) && slot >= 1 && slot < this.maxPages;
  }

  private allocData(): number {
    this.dataUsed++;
    const recycled = this.freeData.pop();
    if (recycled !== undefined) return recycled;
    const idx = this.nextData++;
    const chunk = Math.floor(idx / CHUNK_PAGES);
    if (chunk >= this.chunks.length) this.chunks.push(new Uint8Array(CHUNK_PAGES * PAGE_SIZE));
    return idx;
  }

  private dropData(slot: number): void {
    this.readahead[slot] = 0;
    const idx = this.dataIndex[slot];
    if (idx === 0) return;
    this.dataIndex[slot] = 0;
    this.freeData.push(idx);
    this.dataUsed--;
  }

  private dataView(idx: number): Uint8Array {
    const off = (idx % CHUNK_PAGES) * PAGE_SIZE;
    return this.chunks[Math.floor(idx / CHUNK_PAGES)].subarray(off, off + PAGE_SIZE);
  }
}

/** is_folio_zero_filled for one page. */
function isZeroPage(p: Uint8Array): boolean {
  for (let i = 0; i < PAGE_SIZE; i++) if (p[i] !== 0) return false;
  return true;
}

const swapOf = new WeakMap<MmCore, SwapInfo>();

/**
 * swapInfoOf - the swap area of the kernel owning @core (swap_info[0]).
 *
 * Return: the SwapInfo, or null when the kernel has no swap (KernelOptions.swap 0 or
 * initReclaim not called).
 */
export function swapInfoOf(core: MmCore): SwapInfo | null {
  return swapOf.get(core) ?? null;
}

/**
 * setSwapInfo - attach @si as the swap area of @core (swapon). Called once by initReclaim.
 *
 * Return: nothing. Throws Error if @core already has a swap area (svasim models one).
 */
export function setSwapInfo(core: MmCore, si: SwapInfo): void {
  if (swapOf.has(core)) throw new Error('setSwapInfo: this kernel already has a swap area');
  swapOf.set(core, si);
}
