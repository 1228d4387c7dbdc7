/**
 * A set-associative translation cache: the IOMMU's IOTLB and a device's ATC (PCIe ATS device TLB)
 * are both one of these, sized from the IOMMU profile.
 */

/** Permission bits of a cached translation. A writable entry is always readable too. */
export const TLB_PERM_READ = 1 << 0;
export const TLB_PERM_WRITE = 1 << 1;

/** The tag of an empty way. Tags (ASID, domain id or PASID) are never negative. */
const TLB_INVALID = -1;

/**
 * SetAssocTlb - a set-associative cache of (tag, virtual page number) -> (pfn, permissions), with
 * LRU replacement inside each set.
 *
 * The tag is whatever address-space identifier the cache is indexed by: an ASID / domain id in the
 * IOTLB, a PASID (0 for requests without one) in a device's ATC. A page's set is `vpn % sets`, as
 * hardware indexes by the low bits of the page number; the tag takes no part in the index, so two
 * address spaces touching the same page numbers compete for the same set.
 *
 * Everything lives in typed arrays indexed by way number (set * ways + way): nothing is allocated
 * per entry or per lookup. Page numbers above 2^32 (48-bit and 57-bit address spaces) are kept in
 * a Float64Array; pfns are too, so MMIO pfns above 2^32 fit.
 *
 * Entries cache one 4 KiB page each; a 2 MiB or 1 GiB mapping takes one entry per page touched.
 */
export class SetAssocTlb {
  /** Total entries (sets * ways). */
  readonly entries: number;
  /** Ways per set (associativity). */
  readonly ways: number;
  /** Number of sets. */
  readonly sets: number;
  /** Tag of each way; -1 when the way is empty. Read-only for callers. */
  readonly tag: Int32Array;
  /** Virtual page number of each way. Read-only for callers. */
  readonly vpn: Float64Array;
  /** Cached pfn of each way. Read-only for callers. */
  readonly pfn: Float64Array;
  /** TLB_PERM_* bits of each way. Read-only for callers. */
  readonly perm: Uint8Array;
  /** Last use of each way (a per-cache clock): the smallest in a set is the LRU way. */
  private readonly stamp: Float64Array;
  private clock = 0;
  private valid = 0;
  /** Lookups that found a usable entry. */
  hits = 0;
  /** Lookups that did not (absent, or present without the permission asked for). */
  misses = 0;
  /** Valid entries replaced by insert to make room (capacity and conflict misses). */
  evictions = 0;
  /** Entries dropped by invalidateRange / invalidateAsid / invalidateAll. */
  invalidatedEntries = 0;

  /**
   * @entries: total entries, a positive multiple of @ways.
   * @ways: associativity (1 = direct mapped, @entries = fully associative).
   * Throws RangeError for sizes that do not make a cache.
   */
  constructor(entries: number, ways: number) {
    if (!Number.isInteger(entries) || !Number.isInteger(ways) || entries <= 0 || ways <= 0)
      throw new RangeError(`SetAssocTlb: entries and ways must be positive integers (${entries}, ${ways})`);
    if (entries % ways !== 0)
      throw new RangeError(`SetAssocTlb: ${entries} entries is not a multiple of ${ways} ways`);
    this.entries = entries;
    this.ways = ways;
    this.sets = entries / ways;
    this.tag = new Int32Array(entries).fill(TLB_INVALID);
    this.vpn = new Float64Array(entries);
    this.pfn = new Float64Array(entries);
    this.perm = new Uint8Array(entries);
    this.stamp = new Float64Array(entries);
  }

  /** validEntries - how many ways hold a translation. */
  get validEntries(): number {
    return this.valid;
  }

  /** setOf - the set a virtual page number maps to. */
  setOf(vpn: number): number {
    return vpn % this.sets;
  }

  /**
   * lookup - find the entry of (@tag, @vpn) that grants @perm (TLB_PERM_READ or TLB_PERM_WRITE),
   * counting a hit or a miss and making the entry most recently used.
   * Returns the way index (read pfn[i] / perm[i]) or -1. An entry present with fewer permissions
   * is a miss: the hardware must translate again (and may then fault).
   */
  lookup(tag: number, vpn: number, perm: number = TLB_PERM_READ): number {
    const i = this.find(tag, vpn);
    if (i >= 0 && (this.perm[i] & perm) === perm) {
      this.hits++;
      this.stamp[i] = ++this.clock;
      return i;
    }
    this.misses++;
    return -1;
  }

  /** peek - the way index of (@tag, @vpn) regardless of permission, without counting or touching LRU; -1 if absent. */
  peek(tag: number, vpn: number): number {
    return this.find(tag, vpn);
  }

  /**
   * insert - cache (@tag, @vpn) -> (@pfn, @perm): an existing entry for the key is updated in
   * place; otherwise an empty way of the set is used, or else its least recently used way is
   * evicted. Returns the way index.
   */
  insert(tag: number, vpn: number, pfn: number, perm: number): number {
    const base = (vpn % this.sets) * this.ways;
    const end = base + this.ways;
    let same = -1;
    let empty = -1;
    let lru = base;
    let oldest = Infinity;
    for (let i = base; i < end; i++) {
      const t = this.tag[i];
      if (t === TLB_INVALID) {
        if (empty < 0) empty = i;
      } else if (t === tag && this.vpn[i] === vpn) {
        same = i;
        break;
      } else if (this.stamp[i] < oldest) {
        oldest = this.stamp[i];
        lru = i;
      }
    }
    const victim = same >= 0 ? same : empty >= 0 ? empty : lru;
    if (this.tag[victim] === TLB_INVALID) this.valid++;
    else if (this.tag[victim] !== tag || this.vpn[victim] !== vpn) this.evictions++;
    this.tag[victim] = tag;
    this.vpn[victim] = vpn;
    this.pfn[victim] = pfn;
    this.perm[victim] = perm;
    this.stamp[victim] = ++this.clock;
    return victim;
  }

  /**
   * invalidateRange - drop every entry of @tag with startVpn <= vpn < endVpn (a TLBI by VA range,
   * an ATS invalidation request of a range). Returns the number of entries dropped.
   * Probes the sets of the range when it is shorter than the cache has sets, else scans the cache.
   */
  invalidateRange(tag: number, startVpn: number, endVpn: number): number {
    if (!(endVpn > startVpn) || this.valid === 0) return 0;
    let n = 0;
    if (endVpn - startVpn <= this.sets) {
      for (let vpn = startVpn; vpn < endVpn; vpn++) {
        const i = this.find(tag, vpn);
        if (i >= 0) {
          this.drop(i);
          n++;
        }
      }
    } else {
      for (let i = 0; i < this.entries; i++) {
        if (this.tag[i] !== tag) continue;
        const v = this.vpn[i];
        if (v >= startVpn && v < endVpn) {
          this.drop(i);
          n++;
        }
      }
    }
    this.invalidatedEntries += n;
    return n;
  }

  /** invalidateAsid - drop every entry of @tag (TLBI ASID, a PASID-selective flush). Returns the count. */
  invalidateAsid(tag: number): number {
    if (this.valid === 0) return 0;
    let n = 0;
    for (let i = 0; i < this.entries; i++) {
      if (this.tag[i] === tag) {
        this.drop(i);
        n++;
      }
    }
    this.invalidatedEntries += n;
    return n;
  }

  /** invalidateAll - drop every entry (a global flush). Returns the count. */
  invalidateAll(): number {
    const n = this.valid;
    this.tag.fill(TLB_INVALID);
    this.valid = 0;
    this.invalidatedEntries += n;
    return n;
  }

  /** resetStats - zero the hit, miss, eviction and invalidation counters. */
  resetStats(): void {
    this.hits = 0;
    this.misses = 0;
    this.evictions = 0;
    this.invalidatedEntries = 0;
  }

  private find(tag: number, vpn: number): number {
    const base = (vpn % this.sets) * this.ways;
    const end = base + this.ways;
    for (let i = base; i < end; i++) if (this.tag[i] === tag && this.vpn[i] === vpn) return i;
    return -1;
  }

  private drop(i: number): void {
    this.tag[i] = TLB_INVALID;
    this.valid--;
  }
}
