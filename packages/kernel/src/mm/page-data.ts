import { PAGE_SIZE } from '../uapi/mman';
import type { PageFrames } from './page-frames';

/** Pages per backing chunk: 1 MiB chunks keep the number of ArrayBuffers small. */
const CHUNK_PAGES = 256;

/**
 * PageData - sparse page contents. A page owns bytes only once something writes a non-zero
 * byte to it; until then it reads as zero, like a freshly zeroed page. Slots are recycled
 * when pages are freed, and always handed out zero-filled.
 */
export class PageData {
  private readonly chunks: Uint8Array[] = [];
  private readonly freeSlots: number[] = [];
  private nextSlot = 1; // slot 0 means "no data"
  private used = 0;

  constructor(private readonly frames: PageFrames) {}

  /** Number of pages currently holding bytes. */
  get pagesWithData(): number {
    return this.used;
  }

  /** view - the 4 KiB of `pfn` if it holds bytes, else undefined (it reads as zero). */
  view(pfn: number): Uint8Array | undefined {
    const slot = this.frames.dataSlot[pfn];
    if (slot === 0) return undefined;
    return this.slotView(slot);
  }

  /** writable - the 4 KiB of `pfn`, allocating a zero-filled slot if it has none. */
  writable(pfn: number): Uint8Array {
    let slot = this.frames.dataSlot[pfn];
    if (slot === 0) {
      slot = this.allocSlot();
      this.frames.dataSlot[pfn] = slot;
    }
    return this.slotView(slot);
  }

  /** read - copy `len` bytes at `offset` of page `pfn` into `out` at `outOffset`. */
  read(pfn: number, offset: number, len: number, out: Uint8Array, outOffset: number): void {
    const v = this.view(pfn);
    if (v) out.set(v.subarray(offset, offset + len), outOffset);
    else out.fill(0, outOffset, outOffset + len);
  }

  /** write - copy `len` bytes of `src` from `srcOffset` into page `pfn` at `offset`. */
  write(pfn: number, offset: number, src: Uint8Array, srcOffset: number, len: number): void {
    if (this.frames.dataSlot[pfn] === 0 && isZero(src, srcOffset, len)) return;
    this.writable(pfn).set(src.subarray(srcOffset, srcOffset + len), offset);
  }

  /** copyPage - make `dst` hold exactly the bytes of `src` (COW, migration). */
  copyPage(dst: number, src: number): void {
    const s = this.view(src);
    if (!s) {
      this.clear(dst);
      return;
    }
    this.writable(dst).set(s);
  }

  /** clear - drop the bytes of `pfn` (it reads as zero again) and recycle its slot. */
  clear(pfn: number): void {
    const slot = this.frames.dataSlot[pfn];
    if (slot === 0) return;
    this.frames.dataSlot[pfn] = 0;
    this.slotView(slot).fill(0);
    this.freeSlots.push(slot);
    this.used--;
  }

  /** moveData - hand the bytes of `src` to `dst` without copying (src then reads as zero). */
  moveData(dst: number, src: number): void {
    this.clear(dst);
    this.frames.dataSlot[dst] = this.frames.dataSlot[src];
    this.frames.dataSlot[src] = 0;
  }

  private allocSlot(): number {
    this.used++;
    const recycled = this.freeSlots.pop();
    if (recycled !== undefined) return recycled;
    const slot = this.nextSlot++;
    const chunk = Math.floor(slot / CHUNK_PAGES);
    if (chunk >= this.chunks.length) this.chunks.push(new Uint8Array(CHUNK_PAGES * PAGE_SIZE));
    return slot;
  }

  private slotView(slot: number): Uint8Array {
    const chunk = this.chunks[Math.floor(slot / CHUNK_PAGES)];
    const off = (slot % CHUNK_PAGES) * PAGE_SIZE;
    return chunk.subarray(off, off + PAGE_SIZE);
  }
}

function isZero(buf: Uint8Array, off: number, len: number): boolean {
  for (let i = off, e = off + len; i < e; i++) if (buf[i] !== 0) return false;
  return true;
}
