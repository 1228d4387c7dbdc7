/**
 * DMA in flight, per page frame: how many device requests are accessing each pfn right now.
 *
 * The kernel has no such count. A pin (FOLL_PIN) says "someone may DMA into this page", never
 * "a device is doing it now", and that gap is what the uacce_ctrl review pointed at: "unpinning
 * without guaranteeing there is no ongoing DMA is really weird" (seeds/002). svasim keeps the
 * count so an unpin can tell whether a device still has DMA in flight on the pages it releases
 * (pinned-ranges.ts reports it) and, with a non-SVA mapping, show the use-after-free that follows.
 *
 * Device models take a reference when their DMA engine translates a page for a request
 * (dmaInflightBegin) and drop it when the request completes, fails or is cancelled
 * (dmaInflightEnd), so the count covers a request's whole life on the device, not only the
 * instant its bytes move.
 *
 * Storage: Int32Array chunks of CHUNK_PAGES pfns allocated on the first DMA into a chunk, as the
 * GUP pin tracker does: nothing per page or per call; a machine without devices spends nothing.
 */
import type { MmCore } from '../mm/mm-core';

const CHUNK_SHIFT = 12;
const CHUNK_PAGES = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_PAGES - 1;

/**
 * DmaInflight - the per-pfn count of device requests with DMA in flight on one kernel's memory.
 * One per MmCore, made on first use by dmaInflight(core).
 */
export class DmaInflight {
  private readonly chunks: Array<Int32Array | undefined> = [];
  /** Sum of every count: references held by device requests. */
  total = 0;

  constructor(readonly core: MmCore) {}

  /**
   * begin - a device request starts accessing @pfn (its DMA engine translated the page).
   * Context: any (a device model's DMA path); allocates only the first time a chunk is touched.
   * Released by end(@pfn) when the request finishes.
   */
  begin(pfn: number): void {
    const c = pfn >>> CHUNK_SHIFT;
    let ch = this.chunks[c];
    if (ch === undefined) {
      ch = new Int32Array(CHUNK_PAGES);
      this.chunks[c] = ch;
    }
    ch[pfn & CHUNK_MASK]++;
    this.total++;
  }

  /**
   * end - a request that began on @pfn is done with it. Ending more than began WARNs (rate-limited
   * dmesg) and changes nothing, so a device model bug cannot drive a count negative.
   */
  end(pfn: number): void {
    const ch = this.chunks[pfn >>> CHUNK_SHIFT];
    if (ch === undefined || ch[pfn & CHUNK_MASK] <= 0) {
      this.core.dmesg.printkRatelimited(
        'dma_inflight_end',
        `WARNING: dma-inflight: end of DMA on pfn ${pfn}, which has none in flight`,
      );
      return;
    }
    ch[pfn & CHUNK_MASK]--;
    this.total--;
  }

  /** count - device requests with DMA in flight on @pfn (0 for a pfn no device touched). */
  count(pfn: number): number {
    if (!(pfn >= 0)) return 0;
    const ch = this.chunks[pfn >>> CHUNK_SHIFT];
    return ch === undefined ? 0 : ch[pfn & CHUNK_MASK];
  }

  /**
   * busyPages - how many of pages[0 .. @npages) have DMA in flight; negative entries are skipped.
   * The first busy pfn is left in firstBusy (-1 when none), for a report.
   */
  busyPages(pages: ArrayLike<number>, npages: number): number {
    let busy = 0;
    this.firstBusy = -1;
    if (this.total === 0) return 0;
    for (let i = 0; i < npages; i++) {
      const p = pages[i];
      if (p < 0) continue;
      const ch = this.chunks[p >>> CHUNK_SHIFT];
      if (ch === undefined || ch[p & CHUNK_MASK] === 0) continue;
      if (busy === 0) this.firstBusy = p;
      busy++;
    }
    return busy;
  }

  /** The first busy pfn the last busyPages call found, or -1. */
  firstBusy = -1;
}

const states = new WeakMap<MmCore, DmaInflight>();

/** dmaInflight - the DMA-in-flight counts of @core's memory, made on first use (same object each call). */
export function dmaInflight(core: MmCore): DmaInflight {
  let s = states.get(core);
  if (!s) {
    s = new DmaInflight(core);
    states.set(core, s);
  }
  return s;
}
