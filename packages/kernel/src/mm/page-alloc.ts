import type { IVmstat } from '../sim/types';
import { PAGE_SHIFT } from '../uapi/mman';
import {
  ALLOC_CMA,
  ALLOC_KSWAPD,
  ALLOC_NOFRAGMENT,
  ALLOC_NON_BLOCK,
  ALLOC_NO_WATERMARKS,
  ALLOC_WMARK_LOW,
  ALLOC_WMARK_MASK,
  ALLOC_WMARK_MIN,
} from './alloc-flags';
import { CmaArea } from './cma';
import { FreeArea } from './free-area';
import {
  MAX_NR_ZONES,
  MAX_PAGE_ORDER,
  MIGRATE_CMA,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_UNMOVABLE,
  MIGRATETYPE_NAMES,
  PAGEBLOCK_NR_PAGES,
  PAGEBLOCK_ORDER,
  ZONE_DMA32,
  ZONE_MOVABLE,
  ZONE_NAMES,
  ZONE_NORMAL,
  __GFP_COMP,
  __GFP_DIRECT_RECLAIM,
  __GFP_HIGH,
  __GFP_KSWAPD_RECLAIM,
  __GFP_PIN,
  __GFP_THISNODE,
  gfpMigratetype,
  gfpZone,
} from './gfp';
import { HugetlbPools, HUGETLB_ORDER } from './hugetlb-pool';
import { formatBytes, parseMemorySize } from './memory-size';
import { PageData } from './page-data';
import { PG_anon, PG_buddy, PG_head, PG_lru, PG_reserved, PG_shmem, PG_tail, PG_zero } from './page-flags';
import { ORDER_SHIFT, PageFrames } from './page-frames';
import { Pageblocks, migratetypeIsMergeable } from './pageblock';
import type { AllocSlowpathHooks, NodeLayout, PfnPlacement, PhysMemConfig, ZoneInfo } from './phys-types';
import {
  ZONE_PROC_NAMES,
  Zone,
  calculateMinFreeKbytes,
  setupPerZoneLowmemReserve,
  setupPerZoneWmarks,
  zoneWatermarkOk,
  ZONE_TUNABLE_DEFAULTS,
} from './zone';

/** Boot-time layout defaults (the lead may override them through PhysMemConfig). */
export const PHYS_MEM_DEFAULTS = {
  /** Fraction of each node kept by the kernel (memmap: 64-byte struct page per 4 KiB page). */
  reservedFraction: 1 / 64,
  /** Pages node 0 reserves at the least: pfn 0 (as x86 keeps the BIOS page) and the zero page. */
  node0MinReservedPages: 2,
  /** Highest node count accepted (MAX_NUMNODES with the usual NODES_SHIFT of 6). */
  maxNumnodes: 64,
  /** ZONE_DMA32 ends at 4 GiB of physical address. */
  dma32LimitBytes: 2 ** 32,
  /** Pfns above RAM for ZONE_DEVICE memory (memremapPages): 64 MiB of device pages. */
  zoneDevicePages: 16384,
} as const;

/** Largest pfn space the typed arrays and 32-bit pfn arithmetic support (8 TiB). */
const MAX_PFN_LIMIT = 2 ** 31 - 1;

/**
 * The kernel's fallback order (fallbacks[]): which other free lists an allocation of each
 * ordinary migratetype may steal from, best first. CMA and ISOLATE never serve as fallbacks.
 */
const FALLBACKS: readonly (readonly number[])[] = [
  /* UNMOVABLE */ [MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE],
  /* MOVABLE */ [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE],
  /* RECLAIMABLE */ [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE],
];

/** A node as booted: NodeLayout plus the pages reserved at its bottom. */
export interface NodeBootLayout extends NodeLayout {
  /** Pages at the bottom of the node never given to the buddy (PG_reserved). */
  reservedPages: number;
}

/** A 1 GiB page carved out of memblock at boot, before the buddy saw the memory. */
export interface BootGiganticPage {
  pfn: number;
  nid: number;
}

/**
 * PageAllocator - physical memory of one simulated machine: NUMA nodes, zones, pageblocks, the
 * buddy allocator (mm/page_alloc.c), CMA areas and the hugetlb pools.
 *
 * Boot lays the nodes out contiguously in pfn space in config order. In each node, physical
 * memory below 4 GiB is ZONE_DMA32, the rest ZONE_NORMAL, and the top `movable` bytes ZONE_MOVABLE
 * (movablecore=); `cma` bytes just below ZONE_MOVABLE form the node's CMA area (MIGRATE_CMA
 * pageblocks); the bottom `reservedFraction` is PG_reserved (the memmap) and its pageblocks are
 * UNMOVABLE; every other pageblock starts MIGRATE_MOVABLE, as memmap_init leaves it. 1 GiB hugetlb
 * pages are carved out before the rest goes to the buddy in max-order blocks, of which only the
 * head pages are written, so booting 64 GiB touches a few hundred MB of host memory at most.
 *
 * Differences from the kernel: no per-cpu page lists (every order-0 allocation goes through the
 * zone's free lists), no MIGRATE_HIGHATOMIC reserve, no watermark boosting, no OOM killer.
 */
export class PageAllocator {
  /** struct page of every pfn. */
  readonly frames: PageFrames;
  /** Page contents. */
  readonly data: PageData;
  /** Per-pageblock migratetype, zone and node. */
  readonly pageblocks: Pageblocks;
  /** One past the highest pfn. */
  readonly maxPfn: number;
  /** Nodes as booted. */
  readonly nodes: NodeBootLayout[];
  /** Every zone, MAX_NR_ZONES per node in node order (absent zones have no pages). */
  readonly zones: Zone[];
  /** One CMA area per node that asked for one. */
  readonly cmaAreas: CmaArea[] = [];
  /** The shared zero page (PG_zero | PG_reserved, refcount 1, never freed). */
  readonly zeroPfn: number;
  /** hugetlb pools of both sizes, filled at boot. */
  readonly hugetlb: HugetlbPools;
  /** Boot log lines (memory layout, CMA, hugetlb) for dmesg, in the kernel's order. */
  readonly bootMessages: string[] = [];
  /** The counters this allocator reports to. */
  readonly vmstat: IVmstat;
  /**
   * CONFIG_DEBUG_VM for the free path: also refuse to free a page that lies inside a larger free
   * block (a double free after the page merged), at the cost of up to MAX_PAGE_ORDER extra reads
   * per free. Off by default, as the kernel's own free-time checks look at the page alone; tests
   * and fuzzers turn it on.
   */
  debugVm = false;

  private hooks: AllocSlowpathHooks = {};
  private minFreeKbytes_ = 0;
  private watermarkScaleFactor_: number = ZONE_TUNABLE_DEFAULTS.watermarkScaleFactor;
  /** Zones to try, by nid * MAX_NR_ZONES + highest zone: the node's zones high to low, then the other nodes'. */
  private readonly zonelists: Zone[][] = [];
  /** Written by findSuitableFallback (the kernel's *can_steal out-parameter) to avoid an allocation. */
  private canSteal = false;
  // Typed arrays cached off `frames` and `pageblocks`: the hot paths read them directly.
  private readonly flags: Uint32Array;
  private readonly pbMt: Uint8Array;
  private readonly pbZone: Uint8Array;
  private readonly vmPgalloc: number;
  private readonly vmPgfree: number;
  private readonly vmPgallocFail: number;
  private readonly vmPgallocZone: number[];

  /**
   * Boot physical memory.
   * @config: node sizes, movable and CMA parts, hugetlb pages and the reserved fraction, in bytes.
   * @vmstat: where pgalloc/pgfree and friends are counted; nr_free_pages and nr_free_cma are
   *     registered as derived counters.
   *
   * Throws RangeError naming the node and field when the config cannot be booted: a size that is
   * not a positive multiple of 2 MiB, movable + cma + reserved larger than the node, a CMA area
   * crossing the 4 GiB DMA32 boundary, more than 64 nodes or more than 8 TiB, or a
   * zoneDevicePages that is not a page count fitting above RAM.
   */
  constructor(config: PhysMemConfig, vmstat: IVmstat) {
    this.vmstat = vmstat;
    this.nodes = layoutNodes(config);
    const last = this.nodes[this.nodes.length - 1];
    this.maxPfn = last.startPfn + last.spannedPages;
    const devicePages = config.zoneDevicePages ?? PHYS_MEM_DEFAULTS.zoneDevicePages;
    if (!Number.isSafeInteger(devicePages) || devicePages < 0 || this.maxPfn + devicePages > MAX_PFN_LIMIT)
      throw new RangeError(`memory: zoneDevicePages ${devicePages} is not a page count that fits above RAM`);
    this.frames = new PageFrames(this.maxPfn, devicePages);
    this.data = new PageData(this.frames);
    this.pageblocks = new Pageblocks(this.maxPfn);
    this.flags = this.frames.flags;
    this.pbMt = this.pageblocks.migratetype;
    this.pbZone = this.pageblocks.zoneId;

    this.zones = [];
    for (const node of this.nodes) this.initNodeZones(node);
    this.zeroPfn = this.reserveBootPages();
    const gigantic = this.memblockAllocGigantic(config.hugepages?.['1GiB'] ?? 0);
    this.freeBootMemory(gigantic);

    this.minFreeKbytes_ = calculateMinFreeKbytes(this.zones);
    this.recomputeWatermarks();
    // Boot-time gigantic pages join the managed count once hugetlb takes them
    // (adjust_managed_page_count in gather_bootmem_prealloc), after the watermarks were set.
    for (const g of gigantic) this.zoneOf(g.pfn).managedPages += 1 << HUGETLB_ORDER['1GiB'];

    for (const node of this.nodes) {
      if (node.cmaPages === 0) continue;
      const base = node.startPfn + node.spannedPages - node.movablePages - node.cmaPages;
      this.cmaAreas.push(new CmaArea(`pernuma${node.nid}`, node.nid, base, node.cmaPages));
    }
    this.buildZonelists();
    this.logLayout();

    this.vmPgalloc = vmstat.register('pgalloc');
    this.vmPgfree = vmstat.register('pgfree');
    this.vmPgallocFail = vmstat.register('pgalloc_fail');
    this.vmPgallocZone = ZONE_PROC_NAMES.map((n) => vmstat.register(`pgalloc_${n.toLowerCase()}`));
    vmstat.register('cma_alloc_success');
    vmstat.register('cma_alloc_fail');
    vmstat.derive('nr_free_pages', () => this.nrFreePages());
    vmstat.derive('nr_free_cma', () => this.nrFreeCmaPages());

    this.hugetlb = new HugetlbPools(this, vmstat, gigantic, config.hugepages ?? {});
    for (const m of this.hugetlb.bootMessages) this.bootMessages.push(m);
  }

  /**
   * setHooks - install the slow-path callbacks (kswapd, direct reclaim, direct compaction).
   * Replaces any earlier set; pass {} to remove them.
   */
  setHooks(h: AllocSlowpathHooks): void {
    this.hooks = h;
  }

  /**
   * getHooks - the slow-path callbacks installed now, so a subsystem can add its own without
   * dropping another's: setHooks({ ...getHooks(), directReclaim }).
   *
   * Return: a fresh object holding the installed callbacks.
   */
  getHooks(): AllocSlowpathHooks {
    return { ...this.hooks };
  }

  /** vm.min_free_kbytes in KiB. */
  get minFreeKbytes(): number {
    return this.minFreeKbytes_;
  }

  /**
   * setMinFreeKbytes - write vm.min_free_kbytes (the sysctl, or khugepaged's recommended value)
   * and recompute every zone's watermarks and lowmem reserves.
   *
   * Throws RangeError for a negative or non-integer value.
   */
  setMinFreeKbytes(kbytes: number): void {
    if (!Number.isInteger(kbytes) || kbytes < 0)
      throw new RangeError(`min_free_kbytes: invalid value ${kbytes}`);
    this.minFreeKbytes_ = kbytes;
    this.recomputeWatermarks();
  }

  /** vm.watermark_scale_factor (1/10000 of managed pages). */
  get watermarkScaleFactor(): number {
    return this.watermarkScaleFactor_;
  }

  /**
   * setWatermarkScaleFactor - write vm.watermark_scale_factor (1..3000, as the sysctl accepts)
   * and recompute the watermarks. Throws RangeError outside that range.
   */
  setWatermarkScaleFactor(factor: number): void {
    if (!Number.isInteger(factor) || factor < 1 || factor > 3000) {
      throw new RangeError(`watermark_scale_factor: ${factor} is outside 1..3000`);
    }
    this.watermarkScaleFactor_ = factor;
    this.recomputeWatermarks();
  }

  // ---------------------------------------------------------------------------------------------
  // Allocation

  /**
   * allocPages - allocate 2^@order contiguous pages (__alloc_pages).
   * @gfp: __GFP_* flags: the zone and migratetype come from gfpZone/gfpMigratetype; __GFP_COMP
   *     makes the block a compound folio; __GFP_THISNODE forbids other nodes; __GFP_PIN keeps it out
   *     of CMA and ZONE_MOVABLE; __GFP_HIGH and the absence of __GFP_DIRECT_RECLAIM give access to
   *     part of the min reserve; __GFP_DIRECT_RECLAIM allows the compaction and reclaim hooks.
   * @order: 0..MAX_PAGE_ORDER.
   * @nid: preferred node, or -1 for node 0.
   *
   * Tries the zonelist (the preferred node's zones from the highest allowed down, then the other
   * nodes nearest first) against the low watermark, then the slow path: wake kswapd, retry against
   * the min watermark, then (may the caller sleep) compact and reclaim through the hooks and retry.
   *
   * Return: the head pfn, with refcount 1 and every other field zero (for a compound block: the
   * head has PG_head and the order, each tail PG_tail and mapping = head + 1); or -1 when no zone
   * can give the block, or @order is out of range. Released by freePages(pfn, order) or, for a
   * compound block, freeFolio(pfn), once the last reference is dropped.
   */
  allocPages(gfp: number, order: number, nid = -1): number {
    if (order < 0 || order > MAX_PAGE_ORDER) return -1;
    const pref = nid < 0 ? 0 : nid;
    if (pref >= this.nodes.length) throw new Error(`allocPages: no node ${nid}`);
    const highest = gfpZone(gfp);
    const mt = gfpMigratetype(gfp);
    const zonelist = this.zonelists[pref * MAX_NR_ZONES + highest];
    const thisNode = (gfp & __GFP_THISNODE) !== 0;
    // gfp_to_alloc_flags_cma: only movable allocations that will not be pinned may use CMA.
    const cma = mt === MIGRATE_MOVABLE && !(gfp & __GFP_PIN) ? ALLOC_CMA : 0;
    let allocFlags = ALLOC_WMARK_LOW | cma | this.allocFlagsNofragment(zonelist, gfp);
    let pfn = this.getPageFromFreelist(gfp, order, allocFlags, zonelist, highest, mt, pref, thisNode);
    if (pfn >= 0) return pfn;

    // __alloc_pages_slowpath
    allocFlags = ALLOC_WMARK_MIN | cma | (gfp & (__GFP_HIGH | __GFP_KSWAPD_RECLAIM));
    if (!(gfp & __GFP_DIRECT_RECLAIM)) allocFlags |= ALLOC_NON_BLOCK;
    if (allocFlags & ALLOC_KSWAPD) this.wakeAllKswapds(order, zonelist, pref, thisNode, gfp);
    pfn = this.getPageFromFreelist(gfp, order, allocFlags, zonelist, highest, mt, pref, thisNode);
    if (pfn >= 0) return pfn;
    if (gfp & __GFP_DIRECT_RECLAIM) {
      const h = this.hooks;
      let tried = false;
      if (order > 0 && h.directCompact) {
        tried = true;
        if (h.directCompact(gfp, order, pref)) {
          pfn = this.getPageFromFreelist(gfp, order, allocFlags, zonelist, highest, mt, pref, thisNode);
          if (pfn >= 0) return pfn;
        }
      }
      if (h.directReclaim) {
        tried = true;
        h.directReclaim(gfp, order, pref);
      }
      if (tried) {
        pfn = this.getPageFromFreelist(gfp, order, allocFlags, zonelist, highest, mt, pref, thisNode);
        if (pfn >= 0) return pfn;
      }
    }
    this.vmstat.inc(this.vmPgallocFail);
    return -1;
  }

  /**
   * freePages - give 2^@order pages at @pfn back to the buddy after their last reference was
   * dropped (__free_pages). Every page's flags, mapping, index, private data, mapcount, refcount
   * and bytes are cleared; the block then merges with free buddies up to MAX_PAGE_ORDER and goes on
   * the free list of its pageblock's migratetype. An @order above MAX_PAGE_ORDER (a gigantic page)
   * is freed as a range.
   *
   * Throws Error (a simulator bug) when @pfn is misaligned or out of range, or when a page of the
   * block is already free (PG_buddy; with debugVm, also inside a free block) or reserved.
   */
  freePages(pfn: number, order: number): void {
    if (order > PAGEBLOCK_ORDER) {
      // A block spanning pageblocks of different types or zones must not go on one list.
      const end = pfn + (1 << order);
      let uniform = end <= this.maxPfn;
      for (let p = pfn + PAGEBLOCK_NR_PAGES; uniform && p < end; p += PAGEBLOCK_NR_PAGES) {
        const a = pfn >>> PAGEBLOCK_ORDER;
        const b = p >>> PAGEBLOCK_ORDER;
        uniform = this.pbMt[a] === this.pbMt[b] && this.pbZone[a] === this.pbZone[b];
      }
      if (order > MAX_PAGE_ORDER || !uniform) {
        this.freeRange(pfn, 2 ** order);
        return;
      }
    }
    const nr = 1 << order;
    if (pfn < 0 || pfn + nr > this.maxPfn || (pfn & (nr - 1)) !== 0) {
      throw new Error(`freePages: bad block pfn ${pfn} order ${order}`);
    }
    this.checkFreeable(pfn, nr);
    this.clearPages(pfn, nr);
    this.freeOneBlock(pfn, order, this.pbMt[pfn >>> PAGEBLOCK_ORDER], false);
    this.vmstat.inc(this.vmPgfree, nr);
  }

  /**
   * freeFolio - free the compound folio headed by @head, of the order stored in its head
   * (free_compound_page); a page without PG_head is freed as order 0. Same rules as freePages.
   */
  freeFolio(head: number): void {
    const order = this.flags[head] & PG_head ? this.flags[head] >>> ORDER_SHIFT : 0;
    this.freePages(head, order);
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  /** zone - the Zone @zoneIdx of node @nid (it may be empty: spannedPages 0). */
  zone(nid: number, zoneIdx: number): Zone {
    const z = this.zones[nid * MAX_NR_ZONES + zoneIdx];
    if (!z) throw new RangeError(`zone: no zone ${zoneIdx} on node ${nid}`);
    return z;
  }

  /** zoneOf - the Zone holding @pfn (page_zone). */
  zoneOf(pfn: number): Zone {
    return this.zones[this.pbZone[pfn >>> PAGEBLOCK_ORDER]];
  }

  /** nodeOf - the node holding @pfn (page_to_nid). */
  nodeOf(pfn: number): number {
    return this.pageblocks.nid[pfn >>> PAGEBLOCK_ORDER];
  }

  /** migratetypeOf - the migratetype of @pfn's pageblock (get_pfnblock_migratetype). */
  migratetypeOf(pfn: number): number {
    return this.pbMt[pfn >>> PAGEBLOCK_ORDER];
  }

  /** isMovableZone - whether @pfn lies in ZONE_MOVABLE. */
  isMovableZone(pfn: number): boolean {
    return this.pbZone[pfn >>> PAGEBLOCK_ORDER] % MAX_NR_ZONES === ZONE_MOVABLE;
  }

  /** placement - node, zone and migratetype of @pfn, for pagemap and the invariant checker. */
  placement(pfn: number): PfnPlacement {
    const pb = pfn >>> PAGEBLOCK_ORDER;
    return {
      nid: this.pageblocks.nid[pb],
      zone: ZONE_NAMES[this.pbZone[pb] % MAX_NR_ZONES],
      migratetype: MIGRATETYPE_NAMES[this.pbMt[pb]],
    };
  }

  /** nrFreePages - free pages of every zone, isolated pageblocks excepted (NR_FREE_PAGES). */
  nrFreePages(): number {
    let n = 0;
    for (const z of this.zones) n += z.freeArea.freePages;
    return n;
  }

  /** nrFreeCmaPages - free pages in CMA pageblocks (NR_FREE_CMA_PAGES). */
  nrFreeCmaPages(): number {
    let n = 0;
    for (const z of this.zones) n += z.freeArea.freeCmaPages;
    return n;
  }

  /** zoneInfo - /proc/zoneinfo's figures for every zone that spans pages. Return: fresh objects. */
  zoneInfo(): ZoneInfo[] {
    const out: ZoneInfo[] = [];
    for (const z of this.zones) {
      if (z.spannedPages === 0) continue;
      const freeByOrder: number[] = [];
      for (let o = 0; o <= MAX_PAGE_ORDER; o++) freeByOrder.push(z.freeArea.blocks(o));
      out.push({
        nid: z.nid,
        zone: z.name,
        startPfn: z.startPfn,
        spannedPages: z.spannedPages,
        managedPages: z.managedPages,
        freePages: z.freePages,
        freeCmaPages: z.freeCmaPages,
        watermarkMin: z.watermarkMin,
        watermarkLow: z.watermarkLow,
        watermarkHigh: z.watermarkHigh,
        freeByOrder,
      });
    }
    return out;
  }

  /**
   * buddyinfo - the text of /proc/buddyinfo: per populated zone, the number of free blocks of each
   * order ("Node 0, zone   Normal      1      0 ...").
   */
  buddyinfo(): string {
    let s = '';
    for (const z of this.zones) {
      if (!z.populated) continue;
      s += `Node ${z.nid}, zone ${ZONE_PROC_NAMES[z.zoneIdx].padStart(8)} `;
      for (let o = 0; o <= MAX_PAGE_ORDER; o++) s += `${String(z.freeArea.blocks(o)).padStart(6)} `;
      s += '\n';
    }
    return s;
  }

  /** isFreeBuddy - whether @pfn is inside a free buddy block (on any list, isolated ones included). */
  isFreeBuddy(pfn: number): boolean {
    return this.findBuddyHead(pfn) >= 0;
  }

  /**
   * findBuddyHead - the head pfn of the free block containing @pfn, or -1 when @pfn is not free
   * (the search of take_page_off_buddy / is_free_buddy_page).
   */
  findBuddyHead(pfn: number): number {
    const fl = this.flags;
    for (let o = 0; o <= MAX_PAGE_ORDER; o++) {
      const h = pfn - (pfn & ((1 << o) - 1));
      const f = fl[h];
      if (f & PG_buddy && f >>> ORDER_SHIFT >= o) return h;
    }
    return -1;
  }

  // ---------------------------------------------------------------------------------------------
  // Page motion helpers (compaction, CMA, offlining)

  /**
   * setPageblockMigratetype - relabel @pfn's pageblock as @mt and move its free pages to the
   * matching lists (move_freepages_block / set_pageblock_migratetype). A larger free block
   * containing the pageblock is first split into pageblock-sized blocks on their own lists.
   * Setting MIGRATE_ISOLATE takes the free pages out of nr_free_pages; leaving it lets a wholly
   * free pageblock merge with its buddy again (unset_migratetype_isolate). Throws RangeError for a
   * pfn outside memory.
   */
  setPageblockMigratetype(pfn: number, mt: number): void {
    if (!(pfn >= 0 && pfn < this.maxPfn)) throw new RangeError(`setPageblockMigratetype: no pfn ${pfn}`);
    const start = pfn - (pfn & (PAGEBLOCK_NR_PAGES - 1));
    const pb = start >>> PAGEBLOCK_ORDER;
    const old = this.pbMt[pb];
    if (old === mt) return;
    const fa = this.zones[this.pbZone[pb]].freeArea;
    for (let o = PAGEBLOCK_ORDER + 1; o <= MAX_PAGE_ORDER; o++) {
      const h = start - (start & ((1 << o) - 1));
      const f = this.flags[h];
      if (!(f & PG_buddy) || f >>> ORDER_SHIFT < o) continue;
      // We are part of a larger buddy: split it into pageblocks, each on its own list.
      const order = f >>> ORDER_SHIFT;
      fa.del(h, order, this.pbMt[h >>> PAGEBLOCK_ORDER]);
      this.pbMt[pb] = mt;
      for (let c = h; c < h + (1 << order); c += PAGEBLOCK_NR_PAGES) {
        fa.add(c, PAGEBLOCK_ORDER, this.pbMt[c >>> PAGEBLOCK_ORDER], true);
      }
      return;
    }
    const fl = this.flags;
    for (let p = start; p < start + PAGEBLOCK_NR_PAGES;) {
      const f = fl[p];
      if (f & PG_buddy) {
        const order = f >>> ORDER_SHIFT;
        fa.move(p, order, old, mt);
        p += 1 << order;
      } else {
        p++;
      }
    }
    this.pbMt[pb] = mt;
    const f0 = fl[start];
    if (f0 & PG_buddy && f0 >>> ORDER_SHIFT === PAGEBLOCK_ORDER) {
      fa.del(start, PAGEBLOCK_ORDER, mt);
      this.freeOneBlock(start, PAGEBLOCK_ORDER, mt, true);
    }
  }

  /**
   * takeFreePage - take the single free page @pfn off the buddy, splitting the free block that
   * contains it (take_page_off_buddy).
   *
   * Return: true with the page out of the free lists, all its metadata zero (refcount 0: the
   * caller sets what it needs); false when @pfn is not free. Released by freePages(pfn, 0).
   */
  takeFreePage(pfn: number): boolean {
    const h = this.findBuddyHead(pfn);
    if (h < 0) return false;
    const order = this.flags[h] >>> ORDER_SHIFT;
    const mt = this.pbMt[h >>> PAGEBLOCK_ORDER];
    const fa = this.zones[this.pbZone[h >>> PAGEBLOCK_ORDER]].freeArea;
    fa.del(h, order, mt);
    // break_down_buddy_pages: keep halving towards the target, freeing the other halves.
    let page = h;
    let high = order;
    let size = 1 << order;
    while (high > 0) {
      high--;
      size >>= 1;
      if (pfn >= page + size) {
        fa.add(page, high, mt, false);
        page += size;
      } else {
        fa.add(page + size, high, mt, false);
      }
    }
    return true;
  }

  /**
   * firstBusyPfn - the first pfn in [@start, @end) that is not free in the buddy, or -1 when the
   * whole range is free. Walks free blocks, so a free range costs one step per block.
   */
  firstBusyPfn(start: number, end: number): number {
    let p = start;
    while (p < end) {
      const h = this.findBuddyHead(p);
      if (h < 0) return p;
      p = h + (1 << (this.flags[h] >>> ORDER_SHIFT));
    }
    return -1;
  }

  /** isRangeFree - whether every page of [@start, @start + @nrPages) is free in the buddy. */
  isRangeFree(start: number, nrPages: number): boolean {
    return this.firstBusyPfn(start, start + nrPages) < 0;
  }

  /**
   * takeFreeRange - take every page of [@start, @start + @nrPages) off the buddy at once, giving
   * the parts of straddling free blocks outside the range back (the free-page half of
   * alloc_contig_range / isolate_freepages_range). All or nothing.
   *
   * Return: true with the pages out of the free lists and all their metadata zero (refcount 0);
   * false, with nothing changed, when some page in the range is not free. Released by
   * freeRange(start, nrPages).
   */
  takeFreeRange(start: number, nrPages: number): boolean {
    const end = start + nrPages;
    if (start < 0 || end > this.maxPfn || nrPages <= 0) return false;
    if (this.firstBusyPfn(start, end) >= 0) return false;
    let p = start;
    while (p < end) {
      const h = this.findBuddyHead(p);
      const order = this.flags[h] >>> ORDER_SHIFT;
      const mt = this.pbMt[h >>> PAGEBLOCK_ORDER];
      const fa = this.zones[this.pbZone[h >>> PAGEBLOCK_ORDER]].freeArea;
      fa.del(h, order, mt);
      const blockEnd = h + (1 << order);
      if (h < start) addAlignedBlocks(fa, h, start, mt);
      if (blockEnd > end) addAlignedBlocks(fa, end, blockEnd, mt);
      p = blockEnd;
    }
    return true;
  }

  /**
   * freeRange - free every page of [@start, @start + @nrPages), each page being an order-0 page
   * whose last reference was dropped (free_contig_range). Pages are cleared as by freePages and
   * given back in the largest aligned blocks that keep to one zone and pageblock type, merging with
   * their buddies.
   *
   * Throws Error (a simulator bug) when a page is out of range, already free or reserved.
   */
  freeRange(start: number, nrPages: number): void {
    const end = start + nrPages;
    if (start < 0 || end > this.maxPfn || nrPages <= 0)
      throw new Error(`freeRange: bad range ${start}+${nrPages}`);
    this.checkFreeable(start, nrPages);
    this.clearPages(start, nrPages);
    let s = start;
    while (s < end) {
      const r = this.runEnd(s, end);
      const mt = this.pbMt[s >>> PAGEBLOCK_ORDER];
      while (s < r) {
        const order = largestAlignedOrder(s, r);
        this.freeOneBlock(s, order, mt, false);
        s += 1 << order;
      }
    }
    this.vmstat.inc(this.vmPgfree, nrPages);
  }

  /**
   * forEachFreeBlock - call @fn(pfn, order, mt, zone) for every free block of every zone (for
   * /proc, tests and the invariant checker). @fn must not change the free lists.
   */
  forEachFreeBlock(fn: (pfn: number, order: number, mt: number, zone: Zone) => void): void {
    for (const z of this.zones) z.freeArea.forEach((p, o, mt) => fn(p, o, mt, z));
  }

  // ---------------------------------------------------------------------------------------------
  // Internals: the buddy

  /** alloc_flags_nofragment: avoid fragmenting fallbacks in ZONE_NORMAL while DMA32 can help. */
  private allocFlagsNofragment(zonelist: Zone[], gfp: number): number {
    let flags = gfp & __GFP_KSWAPD_RECLAIM;
    const zone = zonelist[0];
    if (zone === undefined || zone.zoneIdx !== ZONE_NORMAL) return flags;
    if (this.nodes.length > 1 && !this.zones[zone.nid * MAX_NR_ZONES + ZONE_DMA32].populated) return flags;
    flags |= ALLOC_NOFRAGMENT;
    return flags;
  }

  /** get_page_from_freelist: the first zone of the zonelist that passes its watermark and has the block. */
  private getPageFromFreelist(
    gfp: number,
    order: number,
    allocFlags: number,
    zonelist: Zone[],
    highest: number,
    mt: number,
    pref: number,
    thisNode: boolean,
  ): number {
    const multiNode = this.nodes.length > 1;
    for (;;) {
      const noFallback = (allocFlags & ALLOC_NOFRAGMENT) !== 0;
      const localNid = zonelist.length > 0 ? zonelist[0].nid : pref;
      let retry = false;
      for (let i = 0; i < zonelist.length; i++) {
        const zone = zonelist[i];
        if (thisNode && zone.nid !== pref) break;
        if (noFallback && multiNode && zone.nid !== localNid) {
          // Locality matters more than fragmentation: fragment locally before going remote.
          retry = true;
          break;
        }
        if (!(allocFlags & ALLOC_NO_WATERMARKS)) {
          const mark = zone.watermark[allocFlags & ALLOC_WMARK_MASK];
          if (!zoneWatermarkOk(zone, order, mark, highest, allocFlags)) continue;
        }
        const pfn = this.rmqueue(zone, order, mt, allocFlags);
        if (pfn >= 0) {
          this.prepNewPage(pfn, order, gfp, zone);
          return pfn;
        }
      }
      if (retry || noFallback) {
        allocFlags &= ~ALLOC_NOFRAGMENT;
        continue;
      }
      return -1;
    }
  }

  /** prep_new_page: refcount 1, compound links, counters. */
  private prepNewPage(pfn: number, order: number, gfp: number, zone: Zone): void {
    const f = this.frames;
    f.refcount[pfn] = 1;
    const nr = 1 << order;
    if (gfp & __GFP_COMP && order > 0) {
      f.flags[pfn] |= PG_head;
      f.setOrder(pfn, order);
      const link = pfn + 1;
      for (let t = pfn + 1; t < pfn + nr; t++) {
        f.flags[t] |= PG_tail;
        f.mapping[t] = link;
      }
    }
    this.vmstat.inc(this.vmPgalloc, nr);
    this.vmstat.inc(this.vmPgallocZone[zone.zoneIdx], nr);
  }

  /** __rmqueue: the zone's lists for @mt, CMA balancing, then the fallback lists. */
  private rmqueue(zone: Zone, order: number, mt: number, allocFlags: number): number {
    const fa = zone.freeArea;
    let pfn: number;
    // Balance movable allocations between regular and CMA areas by allocating from CMA when over
    // half of the zone's free memory is in the CMA area.
    if (allocFlags & ALLOC_CMA && fa.freeCmaPages > fa.freePages >>> 1) {
      pfn = this.rmqueueSmallest(fa, order, MIGRATE_CMA);
      if (pfn >= 0) return pfn;
    }
    pfn = this.rmqueueSmallest(fa, order, mt);
    if (pfn >= 0) return pfn;
    if (allocFlags & ALLOC_CMA) {
      pfn = this.rmqueueSmallest(fa, order, MIGRATE_CMA);
      if (pfn >= 0) return pfn;
    }
    return this.rmqueueFallback(zone, order, mt, allocFlags);
  }

  /** __rmqueue_smallest: the smallest free block of @mt of at least @order, split down to @order. */
  private rmqueueSmallest(fa: FreeArea, order: number, mt: number): number {
    for (let o = order; o <= MAX_PAGE_ORDER; o++) {
      const pfn = fa.first(o, mt);
      if (pfn < 0) continue;
      fa.del(pfn, o, mt);
      expand(fa, pfn, order, o, mt);
      return pfn;
    }
    return -1;
  }

  /**
   * __rmqueue_fallback: steal from another migratetype's lists. The largest fallback block is
   * taken first (it approximates the pageblock with the most free pages); a movable allocation that
   * may not claim the block takes the smallest instead, to fragment less.
   */
  private rmqueueFallback(zone: Zone, order: number, startMt: number, allocFlags: number): number {
    if (startMt >= FALLBACKS.length) return -1;
    const fa = zone.freeArea;
    const minOrder = order < PAGEBLOCK_ORDER && allocFlags & ALLOC_NOFRAGMENT ? PAGEBLOCK_ORDER : order;
    let current = MAX_PAGE_ORDER;
    let fallbackMt = -1;
    for (; current >= minOrder; current--) {
      fallbackMt = this.findSuitableFallback(fa, current, startMt);
      if (fallbackMt < 0) continue;
      if (!this.canSteal && startMt === MIGRATE_MOVABLE && current > order) {
        // find_smallest: a movable allocation that cannot claim the block fragments less this way.
        for (current = order; current <= MAX_PAGE_ORDER; current++) {
          fallbackMt = this.findSuitableFallback(fa, current, startMt);
          if (fallbackMt >= 0) break;
        }
      }
      break;
    }
    if (fallbackMt < 0) return -1;
    const pfn = fa.first(current, fallbackMt);
    return this.stealSuitableFallback(zone, pfn, current, order, startMt, this.canSteal);
  }

  /** find_suitable_fallback: the first non-empty fallback list of @order; sets this.canSteal. */
  private findSuitableFallback(fa: FreeArea, order: number, mt: number): number {
    this.canSteal = false;
    if (fa.blocks(order) === 0) return -1;
    const fb = FALLBACKS[mt];
    for (let i = 0; i < fb.length; i++) {
      if (fa.isEmpty(order, fb[i])) continue;
      this.canSteal = canStealFallback(order, mt);
      return fb[i];
    }
    return -1;
  }

  /**
   * steal_suitable_fallback: take the fallback block at @pfn of order @current, claiming its
   * pageblock(s) for @startType when the block is a whole pageblock or more, or when enough of the
   * pageblock is free or compatible; otherwise take just the block, leaving the rest where it was.
   */
  private stealSuitableFallback(
    zone: Zone,
    pfn: number,
    current: number,
    order: number,
    startType: number,
    wholeBlock: boolean,
  ): number {
    const fa = zone.freeArea;
    const blockType = this.pbMt[pfn >>> PAGEBLOCK_ORDER];
    if (current >= PAGEBLOCK_ORDER) {
      fa.del(pfn, current, blockType);
      // change_pageblock_range: take ownership of every pageblock of the block.
      for (let p = pfn; p < pfn + (1 << current); p += PAGEBLOCK_NR_PAGES)
        this.pbMt[p >>> PAGEBLOCK_ORDER] = startType;
      expand(fa, pfn, order, current, startType);
      return pfn;
    }
    if (wholeBlock) {
      const start = pfn - (pfn & (PAGEBLOCK_NR_PAGES - 1));
      // prep_move_freepages_block: moving the whole block can fail at a zone boundary.
      if (zone.spansPfn(start) && zone.spansPfn(start + PAGEBLOCK_NR_PAGES - 1)) {
        let freePages = 0;
        let movablePages = 0;
        const f = this.frames;
        for (let p = start; p < start + PAGEBLOCK_NR_PAGES;) {
          const fl = f.flags[p];
          if (fl & PG_buddy) {
            const n = 1 << (fl >>> ORDER_SHIFT);
            freePages += n;
            p += n;
            continue;
          }
          // PageLRU / __PageMovable of the folio; svasim's anon and shmem pages live on an LRU.
          const hf = fl & PG_tail ? f.flags[f.mapping[p] - 1] : fl;
          if (hf & (PG_lru | PG_anon | PG_shmem)) movablePages++;
          p++;
        }
        let alike: number;
        if (startType === MIGRATE_MOVABLE) alike = movablePages;
        else if (blockType === MIGRATE_MOVABLE) alike = PAGEBLOCK_NR_PAGES - (freePages + movablePages);
        else alike = 0;
        if (freePages + alike >= 1 << (PAGEBLOCK_ORDER - 1)) {
          // __move_freepages_block, then allocate from our own list.
          for (let p = start; p < start + PAGEBLOCK_NR_PAGES;) {
            const fl = f.flags[p];
            if (fl & PG_buddy) {
              const o = fl >>> ORDER_SHIFT;
              fa.move(p, o, blockType, startType);
              p += 1 << o;
            } else {
              p++;
            }
          }
          this.pbMt[start >>> PAGEBLOCK_ORDER] = startType;
          return this.rmqueueSmallest(fa, order, startType);
        }
      }
    }
    // single_page: the block leaves its list; the split remainder stays with its pageblock's type.
    fa.del(pfn, current, blockType);
    expand(fa, pfn, order, current, blockType);
    return pfn;
  }

  /**
   * __free_one_page: merge the free block at @pfn of @order with its free buddies and put the
   * result on the @mt list. Blocks of different pageblock types merge only when both types are
   * ordinary, the buddy's pageblock then taking @mt; CMA and ISOLATE blocks stay apart.
   */
  private freeOneBlock(pfn: number, order: number, mt: number, toTail: boolean): void {
    const fl = this.flags;
    const zoneId = this.pbZone[pfn >>> PAGEBLOCK_ORDER];
    const fa = this.zones[zoneId].freeArea;
    const maxPfn = this.maxPfn;
    while (order < MAX_PAGE_ORDER) {
      const buddy = pfn ^ (1 << order);
      if (buddy >= maxPfn) break;
      const bf = fl[buddy];
      if (!(bf & PG_buddy) || bf >>> ORDER_SHIFT !== order) break;
      let buddyMt = mt;
      if (order >= PAGEBLOCK_ORDER) {
        const bpb = buddy >>> PAGEBLOCK_ORDER;
        if (this.pbZone[bpb] !== zoneId) break;
        buddyMt = this.pbMt[bpb];
        if (buddyMt !== mt && (!migratetypeIsMergeable(mt) || !migratetypeIsMergeable(buddyMt))) break;
      }
      fa.del(buddy, order, buddyMt);
      if (buddyMt !== mt) {
        // Match buddy type so that a later expand() puts the halves on the right lists.
        for (let p = buddy; p < buddy + (1 << order); p += PAGEBLOCK_NR_PAGES)
          this.pbMt[p >>> PAGEBLOCK_ORDER] = mt;
      }
      pfn &= buddy;
      order++;
    }
    fa.add(pfn, order, mt, toTail || this.buddyMergeLikely(pfn, order, zoneId));
  }

  /**
   * buddy_merge_likely: if the buddy of the next order up is free, this block will probably merge
   * soon, so it goes to the tail of its list to be allocated last.
   */
  private buddyMergeLikely(pfn: number, order: number, zoneId: number): boolean {
    if (order >= MAX_PAGE_ORDER - 1) return false;
    const higher = pfn & (pfn ^ (1 << order));
    const higherBuddy = higher ^ (1 << (order + 1));
    if (higherBuddy >= this.maxPfn) return false;
    const f = this.flags[higherBuddy];
    return (
      (f & PG_buddy) !== 0 &&
      f >>> ORDER_SHIFT === order + 1 &&
      this.pbZone[higherBuddy >>> PAGEBLOCK_ORDER] === zoneId
    );
  }

  /** Throws unless every page of the range may be freed (allocated, not reserved). */
  private checkFreeable(start: number, nr: number): void {
    const fl = this.flags;
    if (this.debugVm) {
      const h = this.findBuddyHead(start);
      if (h >= 0) throw new Error(`freePages: pfn ${start} is already free (in the free block at ${h})`);
    }
    for (let p = start; p < start + nr; p++) {
      const f = fl[p];
      if (f & (PG_buddy | PG_reserved)) {
        throw new Error(`freePages: pfn ${p} is ${f & PG_buddy ? 'already free' : 'reserved'}`);
      }
    }
  }

  /** Clear every field and the bytes of each page of the range. */
  private clearPages(start: number, nr: number): void {
    const f = this.frames;
    if (nr === 1) {
      // The order-0 hot path: plain stores beat six fill() calls.
      f.flags[start] = 0;
      f.mapping[start] = 0;
      f.index[start] = 0;
      f.privateData[start] = 0;
      f.mapcount[start] = 0;
      f.refcount[start] = 0;
      if (f.dataSlot[start] !== 0) this.data.clear(start);
      return;
    }
    const end = start + nr;
    f.flags.fill(0, start, end);
    f.mapping.fill(0, start, end);
    f.index.fill(0, start, end);
    f.privateData.fill(0, start, end);
    f.mapcount.fill(0, start, end);
    f.refcount.fill(0, start, end);
    const slots = f.dataSlot;
    for (let p = start; p < end; p++) if (slots[p] !== 0) this.data.clear(p);
  }

  /** The end of the run from @s (below @end) over which pageblock type and zone stay the same. */
  private runEnd(s: number, end: number): number {
    const pb0 = s >>> PAGEBLOCK_ORDER;
    const mt = this.pbMt[pb0];
    const zid = this.pbZone[pb0];
    let r = (pb0 + 1) * PAGEBLOCK_NR_PAGES;
    while (r < end && this.pbMt[r >>> PAGEBLOCK_ORDER] === mt && this.pbZone[r >>> PAGEBLOCK_ORDER] === zid) {
      r += PAGEBLOCK_NR_PAGES;
    }
    return Math.min(r, end);
  }

  /**
   * wake_all_kswapds: tell kswapd about every zone of the zonelist below its low watermark; for a
   * zone above it, a high-order allocation that may not compact itself wakes kcompactd instead
   * (wakeup_kswapd's balanced-node case).
   */
  private wakeAllKswapds(
    order: number,
    zonelist: Zone[],
    pref: number,
    thisNode: boolean,
    gfp: number,
  ): void {
    const h = this.hooks;
    if (!h.wakeKswapd && !h.wakeKcompactd) return;
    for (let i = 0; i < zonelist.length; i++) {
      const z = zonelist[i];
      if (thisNode && z.nid !== pref) break;
      if (z.freePages < z.watermarkLow) h.wakeKswapd?.(z.nid, z.zoneIdx, order);
      else if (order > 0 && !(gfp & __GFP_DIRECT_RECLAIM)) h.wakeKcompactd?.(z.nid, z.zoneIdx, order);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Internals: boot

  /** Create the node's three zones and label its pageblocks (free_area_init_node, memmap_init). */
  private initNodeZones(node: NodeBootLayout): void {
    const s = node.startPfn;
    const e = s + node.spannedPages;
    const movStart = e - node.movablePages;
    const dmaLimit = PHYS_MEM_DEFAULTS.dma32LimitBytes / 2 ** PAGE_SHIFT;
    const dmaEnd = Math.min(Math.max(dmaLimit, s), movStart);
    const bounds = [s, dmaEnd, movStart, e];
    for (let zi = 0; zi < MAX_NR_ZONES; zi++) {
      const zone = new Zone(node.nid, zi, bounds[zi], bounds[zi + 1] - bounds[zi], this.frames);
      this.zones.push(zone);
      for (let p = zone.startPfn; p < zone.endPfn; p += PAGEBLOCK_NR_PAGES) {
        const pb = p >>> PAGEBLOCK_ORDER;
        this.pbZone[pb] = zone.id;
        this.pageblocks.nid[pb] = node.nid;
        this.pbMt[pb] = MIGRATE_MOVABLE;
      }
    }
    const cmaStart = movStart - node.cmaPages;
    for (let p = cmaStart; p < movStart; p += PAGEBLOCK_NR_PAGES)
      this.pbMt[p >>> PAGEBLOCK_ORDER] = MIGRATE_CMA;
    for (let p = s; p < s + node.reservedPages; p += PAGEBLOCK_NR_PAGES) {
      this.pbMt[p >>> PAGEBLOCK_ORDER] = MIGRATE_UNMOVABLE;
    }
  }

  /** Mark each node's reserved pages (refcount 1, as memmap_init leaves them) and the zero page. */
  private reserveBootPages(): number {
    const f = this.frames;
    for (const node of this.nodes) {
      const end = node.startPfn + node.reservedPages;
      f.flags.fill(PG_reserved, node.startPfn, end);
      f.refcount.fill(1, node.startPfn, end);
    }
    // The zero page sits in node 0's reserved memory, as empty_zero_page sits in the kernel image.
    const zero = this.nodes[0].startPfn + this.nodes[0].reservedPages - 1;
    f.flags[zero] |= PG_zero;
    return zero;
  }

  /**
   * Carve 1 GiB pages out of memblock before the buddy sees the memory (alloc_bootmem_huge_page):
   * nodes in turn, each top-down from just below its CMA area (never CMA, ZONE_MOVABLE or reserved
   * memory), 1 GiB aligned. Returns what was found; hugetlb reports any shortfall.
   */
  private memblockAllocGigantic(count: number): BootGiganticPage[] {
    const out: BootGiganticPage[] = [];
    const nr = 1 << HUGETLB_ORDER['1GiB'];
    const top = this.nodes.map((n) => {
      const limit = n.startPfn + n.spannedPages - n.movablePages - n.cmaPages;
      return limit - (limit % nr);
    });
    let nid = 0;
    while (out.length < count) {
      let found = false;
      for (let k = 0; k < this.nodes.length && !found; k++) {
        const node = this.nodes[(nid + k) % this.nodes.length];
        const base = top[node.nid] - nr;
        if (base < node.startPfn + node.reservedPages) continue;
        top[node.nid] = base;
        out.push({ pfn: base, nid: node.nid });
        nid = (node.nid + 1) % this.nodes.length;
        found = true;
      }
      if (!found) break;
    }
    return out;
  }

  /** Give every page that is neither reserved nor a boot gigantic page to the buddy (memblock_free_all). */
  private freeBootMemory(gigantic: BootGiganticPage[]): void {
    const holes = gigantic.map((g) => g.pfn).sort((a, b) => a - b);
    const nr = 1 << HUGETLB_ORDER['1GiB'];
    for (const zone of this.zones) {
      if (zone.spannedPages === 0) continue;
      const node = this.nodes[zone.nid];
      let s = Math.max(zone.startPfn, node.startPfn + node.reservedPages);
      const e = zone.endPfn;
      for (const h of holes) {
        if (h + nr <= s || h >= e) continue;
        if (h > s) this.freeBootRange(zone, s, h);
        s = h + nr;
      }
      if (s < e) this.freeBootRange(zone, s, e);
    }
  }

  /** __free_pages_core for a range: max-order aligned blocks to the tail, one head write each. */
  private freeBootRange(zone: Zone, s: number, e: number): void {
    const fa = zone.freeArea;
    zone.managedPages += e - s;
    while (s < e) {
      const r = this.runEnd(s, e);
      const mt = this.pbMt[s >>> PAGEBLOCK_ORDER];
      addAlignedBlocks(fa, s, r, mt);
      s = r;
    }
  }

  private recomputeWatermarks(): void {
    setupPerZoneWmarks(this.zones, this.minFreeKbytes_, this.watermarkScaleFactor_);
    setupPerZoneLowmemReserve(this.zones);
  }

  /** build_zonelists: own node's zones high to low, then the next nodes in turn (equal distances). */
  private buildZonelists(): void {
    const n = this.nodes.length;
    for (let nid = 0; nid < n; nid++) {
      for (let highest = 0; highest < MAX_NR_ZONES; highest++) {
        const list: Zone[] = [];
        for (let k = 0; k < n; k++) {
          const other = (nid + k) % n;
          for (let zi = highest; zi >= 0; zi--) {
            const z = this.zones[other * MAX_NR_ZONES + zi];
            if (z.populated) list.push(z);
          }
        }
        this.zonelists[nid * MAX_NR_ZONES + highest] = list;
      }
    }
  }

  /** The kernel's boot lines about zones, nodes and CMA. */
  private logLayout(): void {
    const hex = (pfn: number) => `0x${(pfn * 2 ** PAGE_SHIFT).toString(16).padStart(16, '0')}`;
    const m = this.bootMessages;
    m.push('Zone ranges:');
    for (const zi of [ZONE_DMA32, ZONE_NORMAL]) {
      let lo = Infinity;
      let hi = -1;
      for (const z of this.zones) {
        if (z.zoneIdx !== zi || z.spannedPages === 0) continue;
        lo = Math.min(lo, z.startPfn);
        hi = Math.max(hi, z.endPfn);
      }
      const name = ZONE_PROC_NAMES[zi].padEnd(8);
      m.push(hi < 0 ? `  ${name} empty` : `  ${name} [mem ${hex(lo)}-${lastByte(hi)}]`);
    }
    m.push('Movable zone start for each node');
    for (const node of this.nodes) {
      if (node.movablePages > 0)
        m.push(`  Node ${node.nid}: ${hex(node.startPfn + node.spannedPages - node.movablePages)}`);
    }
    m.push('Early memory node ranges');
    for (const node of this.nodes) {
      m.push(
        `  node ${String(node.nid).padStart(3)}: [mem ${hex(node.startPfn)}-${lastByte(node.startPfn + node.spannedPages)}]`,
      );
    }
    for (const a of this.cmaAreas) {
      m.push(`cma: Reserved ${formatBytes(a.count * 2 ** PAGE_SHIFT)} at ${hex(a.basePfn)} on node ${a.nid}`);
    }
  }
}

/** The last byte address below @endPfn, as the kernel prints a range's end. */
function lastByte(endPfn: number): string {
  return `0x${(endPfn * 2 ** PAGE_SHIFT - 1).toString(16).padStart(16, '0')}`;
}

/**
 * can_steal_fallback: claiming is always right for a block of a pageblock or more; for half a
 * pageblock or more it likely gets most of one; unmovable and reclaimable allocations claim anyway,
 * since polluting a movable pageblock with them is worse.
 */
function canStealFallback(order: number, startMt: number): boolean {
  if (order >= PAGEBLOCK_ORDER) return true;
  return order >= PAGEBLOCK_ORDER >> 1 || startMt === MIGRATE_RECLAIMABLE || startMt === MIGRATE_UNMOVABLE;
}

/** expand: split a block of order @high at @pfn down to @low, freeing the upper halves. */
function expand(fa: FreeArea, pfn: number, low: number, high: number, mt: number): void {
  let size = 1 << high;
  while (high > low) {
    high--;
    size >>= 1;
    fa.add(pfn + size, high, mt, false);
  }
}

/** The largest order of a naturally aligned block at @s that ends by @e. */
function largestAlignedOrder(s: number, e: number): number {
  let order = MAX_PAGE_ORDER;
  while (order > 0 && ((s & ((1 << order) - 1)) !== 0 || s + (1 << order) > e)) order--;
  return order;
}

/** Put [@s, @e) on the @mt lists (tail) as the largest aligned blocks, without merging. */
function addAlignedBlocks(fa: FreeArea, s: number, e: number, mt: number): void {
  while (s < e) {
    const order = largestAlignedOrder(s, e);
    fa.add(s, order, mt, true);
    s += 1 << order;
  }
}

/** Validate @config and lay the nodes out in pfn space. */
function layoutNodes(config: PhysMemConfig): NodeBootLayout[] {
  const nodes = config.nodes;
  if (!Array.isArray(nodes) || nodes.length === 0)
    throw new RangeError('memory: at least one node is required');
  if (nodes.length > PHYS_MEM_DEFAULTS.maxNumnodes) {
    throw new RangeError(
      `memory: ${nodes.length} nodes exceed MAX_NUMNODES (${PHYS_MEM_DEFAULTS.maxNumnodes})`,
    );
  }
  const fraction = config.reservedFraction ?? PHYS_MEM_DEFAULTS.reservedFraction;
  if (!Number.isFinite(fraction) || fraction < 0 || fraction >= 1) {
    throw new RangeError(`memory: reservedFraction ${fraction} is outside [0, 1)`);
  }
  const pbBytes = PAGEBLOCK_NR_PAGES * 2 ** PAGE_SHIFT;
  const dmaLimit = PHYS_MEM_DEFAULTS.dma32LimitBytes / 2 ** PAGE_SHIFT;
  const out: NodeBootLayout[] = [];
  let start = 0;
  nodes.forEach((n, nid) => {
    const field = (
      name: 'size' | 'movable' | 'cma',
      v: number | string | undefined,
      positive: boolean,
    ): number => {
      let bytes: number;
      try {
        bytes = parseMemorySize(v ?? 0);
      } catch (e) {
        throw new RangeError(`memory node ${nid}: ${name}: ${(e as Error).message}`, { cause: e });
      }
      if ((positive && bytes === 0) || bytes % pbBytes !== 0) {
        throw new RangeError(
          `memory node ${nid}: ${name} ${formatBytes(bytes)} is not a ${positive ? 'positive ' : ''}multiple of the 2 MiB pageblock`,
        );
      }
      return bytes / 2 ** PAGE_SHIFT;
    };
    const spanned = field('size', n.size, true);
    const movable = field('movable', n.movable, false);
    const cma = field('cma', n.cma, false);
    let reserved = Math.ceil(spanned * fraction);
    if (nid === 0) reserved = Math.max(reserved, PHYS_MEM_DEFAULTS.node0MinReservedPages);
    if (movable + cma + reserved > spanned) {
      const pg = (p: number) => formatBytes(p * 2 ** PAGE_SHIFT);
      throw new RangeError(
        `memory node ${nid}: movable (${pg(movable)}) + cma (${pg(cma)}) + reserved (${pg(reserved)}) exceed the node size (${pg(spanned)})`,
      );
    }
    const movStart = start + spanned - movable;
    const cmaStart = movStart - cma;
    if (cma > 0 && cmaStart < dmaLimit && movStart > dmaLimit) {
      throw new RangeError(
        `memory node ${nid}: cma area crosses the 4 GiB boundary between ZONE_DMA32 and ZONE_NORMAL`,
      );
    }
    out.push({
      nid,
      startPfn: start,
      spannedPages: spanned,
      movablePages: movable,
      cmaPages: cma,
      reservedPages: reserved,
    });
    start += spanned;
    if (start > MAX_PFN_LIMIT)
      throw new RangeError('memory: more than 8 TiB of physical memory is not supported');
  });
  return out;
}
