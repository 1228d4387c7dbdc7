/**
 * GUP's bookkeeping: which folios GUP holds references on, how many of them are FOLL_GET
 * references, how many are FOLL_PIN pins and how many of the pins are FOLL_LONGTERM, so that
 *  - the mm invariant checker can balance every refcount (addRefs),
 *  - a release of something GUP never took is caught (WARN, nothing corrupted),
 *  - the GUP invariants can be checked (checkGupInvariants).
 *
 * The counts live in typed-array chunks of CHUNK_PAGES pfns, allocated on the first reference in
 * a chunk, so a machine with no pins spends nothing and pinning 1 GiB costs 3 MiB; nothing is
 * allocated per page or per call. Counts are kept on the folio head.
 *
 * The kernel itself keeps only _refcount and _pincount; the tracker is the simulator's
 * CONFIG_DEBUG_VM. It does not know which caller holds which pin: when a folio has both long-term
 * and short-term pins and one is released, the long-term count only drops once the pins fall
 * below it (the long-term pins are assumed to go last, the conservative choice for the check).
 */
import { ERRNO } from '../uapi/errno';
import { VM } from '../sim/vmstat';
import type { ExtraRefs } from '../mm/debug-vm';
import type { MmCore } from '../mm/mm-core';
import { PG_buddy, PG_dirty, PG_head, PG_tail } from '../mm/page-flags';
import { ORDER_SHIFT } from '../mm/page-frames';
import { GUP_PIN_COUNTING_BIAS, putPage } from '../mm/page-ref';
import { FOLL_GET, FOLL_LONGTERM, FOLL_PIN } from './foll-flags';
import { gupCostDefaults, type GupCosts } from './gup-config';
import { folioIsLongtermPinnable, pinnableChecker, type PinnableCheck } from './pinnable';

/** pfns per tracker chunk (a power of two). */
const CHUNK_SHIFT = 12;
const CHUNK_PAGES = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_PAGES - 1;
/** Int32 words per pfn: pins, gets, long-term pins. */
const STRIDE = 3;
const PINS = 0;
const GETS = 1;
const LONGTERM = 2;

/** Counters of what GUP did, for tests, benchmarks and experiments. */
export interface GupStats {
  /** Pages taken by the lockless GUP-fast walk. */
  fastPages: number;
  /** Pages taken by the slow path (including GUP-fast's fallback). */
  slowPages: number;
  /** GUP-fast calls that left pages to the slow path. */
  fastFallbacks: number;
  /** Folios FOLL_LONGTERM migrated out of CMA / ZONE_MOVABLE. */
  longtermMigrated: number;
  /** FOLL_LONGTERM calls that failed because migration failed. */
  longtermFailures: number;
}

/**
 * GupState - GUP's per-kernel state: the reference tracker, the cost figures and counters.
 * One per MmCore, made on first use by gupState(core).
 */
export class GupState {
  /** Cost figures charged by GUP (a fresh copy of GUP_COST_DEFAULTS; edit per experiment). */
  costs: GupCosts = gupCostDefaults();
  /** What GUP did. */
  readonly stats: GupStats = {
    fastPages: 0,
    slowPages: 0,
    fastFallbacks: 0,
    longtermMigrated: 0,
    longtermFailures: 0,
  };
  /** Pages currently pinned (FOLL_PIN references, counted per 4 KiB page as vmstat counts them). */
  pinnedPages = 0;
  /** True once gupAttach registered the ref source and invariant check with the kernel. */
  attached = false;
  /** folioIsLongtermPinnable on this kernel's arrays. */
  readonly isPinnable: PinnableCheck;
  private readonly chunks: Array<Int32Array | undefined> = [];
  private readonly refcount: Int32Array;
  private readonly flags: Uint32Array;
  private readonly pincount: Int32Array;
  private readonly zeroPfn: number;

  constructor(readonly core: MmCore) {
    this.refcount = core.frames.refcount;
    this.flags = core.frames.flags;
    this.pincount = core.frames.privateData;
    this.zeroPfn = core.alloc.zeroPfn;
    this.isPinnable = pinnableChecker(core);
  }

  /** The chunk holding `pfn`'s counts, allocated on first use. */
  private chunk(pfn: number): Int32Array {
    const c = pfn >>> CHUNK_SHIFT;
    let ch = this.chunks[c];
    if (ch === undefined) {
      ch = new Int32Array(CHUNK_PAGES * STRIDE);
      this.chunks[c] = ch;
    }
    return ch;
  }

  private read(head: number, field: number): number {
    const ch = this.chunks[head >>> CHUNK_SHIFT];
    return ch === undefined ? 0 : ch[(head & CHUNK_MASK) * STRIDE + field];
  }

  /** pins - FOLL_PIN pins GUP holds on the folio headed by `head` (per 4 KiB page taken). */
  pins(head: number): number {
    return this.read(head, PINS);
  }

  /** gets - FOLL_GET references GUP holds on the folio headed by `head`. */
  gets(head: number): number {
    return this.read(head, GETS);
  }

  /** longtermPins - how many of the pins on `head` are (assumed to be) FOLL_LONGTERM. */
  longtermPins(head: number): number {
    return this.read(head, LONGTERM);
  }

  /**
   * tryGrabFolio - take `refs` references of the kind `flags` selects on the folio headed by
   * `head` (try_grab_folio): FOLL_GET adds `refs` to the refcount; FOLL_PIN adds `refs` to the
   * refcount and the pincount of a large folio, `refs` * GUP_PIN_COUNTING_BIAS to the refcount of
   * a small one, and counts nr_foll_pin_acquired; the zero page is never pinned; neither flag:
   * nothing. Returns 0, or -ENOMEM (with a warning) for a folio whose refcount is not positive.
   * Released by putFolio with the same flags.
   */
  tryGrabFolio(head: number, refs: number, flags: number): number {
    const rc = this.refcount;
    if (rc[head] <= 0) {
      this.core.dmesg.printkRatelimited(
        'try_grab_folio',
        `WARNING: mm/gup.c: try_grab_folio: pfn ${head} has refcount ${rc[head]}`,
      );
      return -ERRNO.ENOMEM;
    }
    if (flags & FOLL_GET) {
      rc[head] += refs;
      this.chunk(head)[(head & CHUNK_MASK) * STRIDE + GETS] += refs;
    } else if (flags & FOLL_PIN) {
      if (head === this.zeroPfn) return 0;
      if (this.flags[head] & PG_head) {
        rc[head] += refs;
        this.pincount[head + 1] += refs;
      } else rc[head] += refs * GUP_PIN_COUNTING_BIAS;
      const ch = this.chunk(head);
      const o = (head & CHUNK_MASK) * STRIDE;
      ch[o + PINS] += refs;
      if (flags & FOLL_LONGTERM) ch[o + LONGTERM] += refs;
      this.pinnedPages += refs;
      this.core.vmstat.inc(VM.nr_foll_pin_acquired, refs);
    }
    return 0;
  }

  /**
   * putFolio - drop `refs` references of the kind `flags` selects (FOLL_PIN: pins, else FOLL_GET
   * references) on the folio headed by `head` (gup_put_folio). The zero page's pins are not
   * counted, so they are ignored. The last reference frees the folio. Releasing more than GUP
   * holds WARNs (rate-limited dmesg) and releases only what is held, so counts never go wrong.
   * FOLL_PIN | FOLL_LONGTERM says the caller knows it releases long-term pins it took itself (the
   * FOLL_LONGTERM loop dropping its own pins): the long-term count drops with them, where a plain
   * FOLL_PIN release keeps assuming the long-term pins go last.
   * Returns the number of references released.
   */
  putFolio(head: number, refs: number, flags: number): number {
    const pin = (flags & FOLL_PIN) !== 0;
    if (pin && head === this.zeroPfn) return refs;
    const ch = this.chunks[head >>> CHUNK_SHIFT];
    const o = (head & CHUNK_MASK) * STRIDE;
    const field = pin ? PINS : GETS;
    const have = ch === undefined ? 0 : ch[o + field];
    if (have < refs) {
      this.core.dmesg.printkRatelimited(
        pin ? 'unpin_user_page' : 'put_page',
        `WARNING: mm/gup.c: ${pin ? 'unpin_user_page' : 'put_page'}: pfn ${head} holds ${have} ` +
          `GUP ${pin ? 'pins' : 'references'}, ${refs} released`,
      );
      if (have === 0) return 0;
      refs = have;
    }
    const c = ch as Int32Array;
    c[o + field] -= refs;
    let dec = refs;
    if (pin) {
      if (flags & FOLL_LONGTERM) c[o + LONGTERM] -= Math.min(refs, c[o + LONGTERM]);
      if (c[o + LONGTERM] > c[o + PINS]) c[o + LONGTERM] = c[o + PINS];
      this.pinnedPages -= refs;
      this.core.vmstat.inc(VM.nr_foll_pin_released, refs);
      if (this.flags[head] & PG_head) this.pincount[head + 1] -= refs;
      else dec = refs * GUP_PIN_COUNTING_BIAS;
    }
    // The last reference frees the folio: let putPage do that part, as folio_put_refs would.
    this.refcount[head] -= dec - 1;
    putPage(this.core, head);
    return refs;
  }

  /**
   * grabFast - tryGrabFolio for GUP-fast, which has checked the refcount already and counts
   * nr_foll_pin_acquired once per call (countAcquired): the same references, fewer calls.
   */
  grabFast(head: number, refs: number, flags: number): void {
    const rc = this.refcount;
    const ch = this.chunk(head);
    const o = (head & CHUNK_MASK) * STRIDE;
    if (flags & FOLL_PIN) {
      if (this.flags[head] & PG_head) {
        rc[head] += refs;
        this.pincount[head + 1] += refs;
      } else rc[head] += refs * GUP_PIN_COUNTING_BIAS;
      ch[o + PINS] += refs;
      if (flags & FOLL_LONGTERM) ch[o + LONGTERM] += refs;
      this.pinnedPages += refs;
    } else {
      rc[head] += refs;
      ch[o + GETS] += refs;
    }
  }

  /** countAcquired - add `pages` to nr_foll_pin_acquired (after grabFast pins). */
  countAcquired(pages: number): void {
    if (pages) this.core.vmstat.inc(VM.nr_foll_pin_acquired, pages);
  }

  /** Small pages released by the last releasePins call. */
  releasedSmall = 0;
  /** Subpages of large folios released by the last releasePins call. */
  releasedLarge = 0;

  /**
   * releasePins - the unpin_user_pages loop over pages[0 .. npages) (FOLL_PIN), with the small-page
   * case inline: negative entries (NULL) are skipped, consecutive pages of one large folio are
   * released together (putFolio), clean folios are dirtied first if `makeDirty`, releases of
   * what GUP does not hold WARN and change nothing. Leaves the counts in releasedSmall /
   * releasedLarge for the caller's cost.
   */
  releasePins(pages: ArrayLike<number>, npages: number, makeDirty: boolean): void {
    const core = this.core;
    const pf = this.flags;
    const rc = this.refcount;
    const mapping = core.frames.mapping;
    const count = core.frames.count;
    const chunks = this.chunks;
    const zero = this.zeroPfn;
    let released = 0;
    let small = 0;
    let large = 0;
    for (let i = 0; i < npages;) {
      const p = pages[i];
      if (p < 0 || p >= count) {
        if (p >= count)
          core.dmesg.printkRatelimited(
            'unpin_bad_pfn',
            `WARNING: mm/gup.c: unpin of pfn ${p}, which has no struct page`,
          );
        i++;
        continue;
      }
      let fl = pf[p];
      const head = fl & PG_tail ? mapping[p] - 1 : p;
      if (head !== p) fl = pf[head];
      if (fl & PG_head) {
        let n = i + 1;
        while (n < npages) {
          const q = pages[n];
          if (q < 0 || q >= count || (pf[q] & PG_tail ? mapping[q] - 1 : q) !== head) break;
          n++;
        }
        if (makeDirty && !(fl & PG_dirty)) pf[head] = fl | PG_dirty;
        large += n - i;
        this.putFolio(head, n - i, FOLL_PIN);
        i = n;
        continue;
      }
      i++;
      small++;
      if (head === zero) continue;
      if (makeDirty && !(fl & PG_dirty)) pf[head] = fl | PG_dirty;
      const ch = chunks[head >>> CHUNK_SHIFT];
      const o = (head & CHUNK_MASK) * STRIDE;
      if (ch === undefined || ch[o + PINS] === 0) {
        this.putFolio(head, 1, FOLL_PIN); // WARNs and releases nothing
        continue;
      }
      const left = --ch[o + PINS];
      if (ch[o + LONGTERM] > left) ch[o + LONGTERM] = left;
      released++;
      if ((rc[head] -= GUP_PIN_COUNTING_BIAS) <= 0) {
        // The last reference: let putPage free it, as folio_put_refs would.
        rc[head] += 1;
        putPage(core, head);
      }
    }
    if (released) {
      this.pinnedPages -= released;
      core.vmstat.inc(VM.nr_foll_pin_released, released);
    }
    this.releasedSmall = small;
    this.releasedLarge = large;
  }

  /**
   * forEachTracked - call `fn(head, pins, gets, longterm)` for every folio GUP holds references
   * on, in pfn order.
   */
  forEachTracked(fn: (head: number, pins: number, gets: number, longterm: number) => void): void {
    const chunks = this.chunks;
    for (let c = 0; c < chunks.length; c++) {
      const ch = chunks[c];
      if (ch === undefined) continue;
      for (let i = 0; i < CHUNK_PAGES; i++) {
        const o = i * STRIDE;
        if (ch[o + PINS] === 0 && ch[o + GETS] === 0) continue;
        fn((c << CHUNK_SHIFT) + i, ch[o + PINS], ch[o + GETS], ch[o + LONGTERM]);
      }
    }
  }

  /**
   * addRefs - add to `refs` (pfn -> count) the refcount GUP's references account for on each
   * folio head: pins * GUP_PIN_COUNTING_BIAS + gets for a small folio, pins + gets for a large
   * one, so checkMmInvariants(core, refs) balances. Adds to what is already there.
   */
  addRefs(refs: ExtraRefs): void {
    const flags = this.flags;
    this.forEachTracked((head, pins, gets) => {
      const large = (flags[head] & PG_head) !== 0;
      const n = (large ? pins : pins * GUP_PIN_COUNTING_BIAS) + gets;
      refs.set(head, (refs.get(head) ?? 0) + n);
    });
  }
}

const states = new WeakMap<MmCore, GupState>();

/** gupState - the GUP state of `core`, made on first use (the same object on every call). */
export function gupState(core: MmCore): GupState {
  let s = states.get(core);
  if (!s) {
    s = new GupState(core);
    states.set(core, s);
  }
  return s;
}

/** What gupAttach needs from the kernel (Kernel has both methods). */
export interface GupHost {
  addRefSource(fn: (refs: ExtraRefs) => void): void;
  addInvariantCheck(name: string, check: () => string[]): void;
}

/**
 * gupAttach - register GUP's references with the kernel's refcount check (addRefSource) and its
 * invariants as the 'gup' check (addInvariantCheck), once per MmCore: later calls do nothing.
 * Returns true when it registered now, false when already attached.
 */
export function gupAttach(core: MmCore, host: GupHost): boolean {
  const s = gupState(core);
  if (s.attached) return false;
  s.attached = true;
  host.addRefSource((refs) => s.addRefs(refs));
  host.addInvariantCheck('gup', () => checkGupInvariants(core));
  return true;
}

/** The most violations reported. */
const MAX_REPORTS = 50;

/**
 * checkGupInvariants - GUP's part of the invariant checker:
 *  - no folio holding a FOLL_LONGTERM pin is in ZONE_MOVABLE or a CMA / ISOLATE pageblock;
 *  - the pincount of every large folio equals the pins GUP holds on it, and a small folio's
 *    refcount covers its pins * GUP_PIN_COUNTING_BIAS + references;
 *  - nr_foll_pin_acquired - nr_foll_pin_released equals the pinned pages GUP holds;
 *  - no folio GUP holds is free (refcount 0, in the buddy, or a tail page).
 * Returns human-readable violations (empty when all hold).
 */
export function checkGupInvariants(core: MmCore): string[] {
  const out: string[] = [];
  const report = (msg: string) => {
    if (out.length < MAX_REPORTS) out.push(msg);
  };
  const s = gupState(core);
  const f = core.frames;
  let pinned = 0;
  s.forEachTracked((head, pins, gets, longterm) => {
    pinned += pins;
    const flags = f.flags[head];
    if (f.refcount[head] <= 0 || flags & (PG_buddy | PG_tail))
      report(`pfn ${head}: GUP holds ${pins} pins and ${gets} references but the folio is free`);
    if (flags & PG_head) {
      if (f.privateData[head + 1] !== pins)
        report(`pfn ${head}: pincount ${f.privateData[head + 1]} but GUP holds ${pins} pins`);
    } else if (f.refcount[head] < pins * GUP_PIN_COUNTING_BIAS + gets)
      report(`pfn ${head}: refcount ${f.refcount[head]} below ${pins} pins and ${gets} references`);
    if (longterm > 0 && !folioIsLongtermPinnable(core, head)) {
      const p = core.alloc.placement(head);
      report(`pfn ${head}: FOLL_LONGTERM pin in ${p.zone} ${p.migratetype} (not long-term pinnable)`);
    }
  });
  for (let pfn = 0; pfn < f.count; pfn++) {
    if (!(f.flags[pfn] & PG_head) || f.privateData[pfn + 1] === 0) continue;
    if (s.pins(pfn) === 0)
      report(
        `pfn ${pfn} (order ${f.flags[pfn] >>> ORDER_SHIFT}): pincount ${f.privateData[pfn + 1]} not held by GUP`,
      );
  }
  const acquired = core.vmstat.get(VM.nr_foll_pin_acquired);
  const released = core.vmstat.get(VM.nr_foll_pin_released);
  if (acquired - released !== pinned)
    report(`nr_foll_pin_acquired ${acquired} - nr_foll_pin_released ${released} != ${pinned} pinned pages`);
  if (pinned !== s.pinnedPages) report(`pinnedPages ${s.pinnedPages} but ${pinned} pins tracked`);
  return out;
}
