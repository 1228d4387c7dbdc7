/**
 * Short-term page references released through a migration callback - a PROPOSAL, not upstream.
 *
 * Source: the 2021 thread on pinned pages for GPU atomics (seeds/003): a long-term pin makes a
 * page unmovable; a plain get_page() reference is "much the same as a pin" for migration because
 * of the extra refcount. Daniel Vetter's answer: "you want a) short term page reference to make
 * sure it doesn't disappear plus b) callback to make sure migrate isn't blocked", where the
 * holder, when asked, revokes the device's access, lets the page move and reinstates it ("revoking
 * the page, moving it, and then reinstating the gpu pte again"). Linux has no such callback
 * (movable_operations belongs to the page's owner, not to a reference holder); this file is one
 * way to build it.
 *
 * The model:
 * - A holder registers references on the pages of one user range (shortTermRefRegister): one
 *   get_page-style reference per 4 KiB page on its folio (not FOLL_PIN: nothing is counted in
 *   nr_foll_pin_*, folio_maybe_dma_pinned stays false, fork does not copy early), with its ops.
 * - Whoever wants to move or collapse a folio (migratePages: compaction, CMA / alloc_contig_range,
 *   memory offline, NUMA balancing, FOLL_LONGTERM's migration; khugepaged's collapse) first
 *   counts those references as movable (folioCallbackRefs), then calls migrateCallbackRevoke:
 *   each holder's revoke() runs (its device stops using the range), and the references are
 *   dropped, so the folio's refcount is what migration expects.
 * - When the move is done, migrateCallbackRestore retakes each reference on the page the old one
 *   moved to (the reference follows the page to its new pfn) and calls reinstate(); when the move
 *   failed it retakes them on the old page.
 * Nothing else changes: reclaim and split_huge_page still see an extra reference and leave the
 * folio alone, as they would with any get_page().
 *
 * State lives per MmCore (a WeakMap): a Map from pfn to the (holder, page index) pairs that hold a
 * reference there, and the pairs revoked for each folio in the middle of a move. Per-page state of
 * a holder is in typed arrays.
 */
import { ERRNO, KernelError } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import type { ExtraRefs } from './debug-vm';
import type { MmCore } from './mm-core';
import type { MmStruct } from './mm-struct';
import { PG_buddy, PG_reserved } from './page-flags';
import { folioHead, getPage, putPage } from './page-ref';

/**
 * MR_THP_COLLAPSE - the reason revoke() receives when khugepaged collapses the range into a huge
 * page. Not an enum migrate_reason value (those are MR_COMPACTION .. MR_DAMON, 0-9): collapse is
 * a copy, not a migration, in the kernel.
 */
export const MR_THP_COLLAPSE = 10;

/**
 * MigrateCallbackOps - what a short-term reference holder does when mm wants its pages.
 * Both are called synchronously, in the context of whoever moves the page; neither may fail or
 * take references.
 */
export interface MigrateCallbackOps {
  /**
   * revoke - pages [first, end) of @ref (indices into the range) are about to move: stop the
   * device using them (invalidate its IOTLB/ATC entries, or its own PTEs). The references are
   * dropped by mm right after this returns. @reason is an MR_* value or MR_THP_COLLAPSE.
   */
  revoke(ref: ShortTermRef, first: number, end: number, reason: number): void;
  /**
   * reinstate - the references on [first, end) of @ref are held again: on the new pages when
   * @moved, else (the move failed) on the old ones; ref.pfns has the current pfns. The device
   * may use them again (it re-faults or is re-programmed).
   */
  reinstate(ref: ShortTermRef, first: number, end: number, moved: boolean): void;
}

/**
 * ShortTermRef - the references one holder keeps on a page-aligned user range of one mm.
 * Made by shortTermRefRegister, released by shortTermRefRelease (the holder must release it, at
 * the latest when the mm exits: mm does not do it on its own).
 */
export class ShortTermRef {
  /** The pfn each page's reference is on now; -1 for a page that holds none (the zero page). */
  readonly pfns: Int32Array;
  /** 1 while page i's reference is held, 0 while it is revoked for a move (or never taken). */
  readonly held: Uint8Array;
  /** False once released: a move in progress will not retake its references. */
  alive = true;
  /** revoke() calls made to this holder. */
  revokes = 0;
  /** reinstate() calls made to this holder. */
  reinstates = 0;
  /** Pages whose reference moved to a new pfn. */
  pagesMoved = 0;

  constructor(
    readonly id: number,
    readonly mm: MmStruct,
    /** Page-aligned first user address. */
    readonly start: number,
    readonly nrPages: number,
    readonly ops: MigrateCallbackOps,
  ) {
    this.pfns = new Int32Array(nrPages).fill(-1);
    this.held = new Uint8Array(nrPages);
  }

  /** The user address of page @i. */
  addressOf(i: number): number {
    return this.start + i * PAGE_SIZE;
  }

  /** Pages whose reference is held right now. */
  heldPages(): number {
    let n = 0;
    for (let i = 0; i < this.nrPages; i++) n += this.held[i];
    return n;
  }
}

/** Counters of the mechanism (also in vmstat as migrate_callback_*). */
export interface MigrateCallbackStats {
  /** Live holders. */
  refs: number;
  /** References held now (pages). */
  heldPages: number;
  /** References dropped by revoke / retaken by reinstate, in pages. */
  revokedPages: number;
  reinstatedPages: number;
  /** References that ended on a new pfn. */
  movedPages: number;
}

interface CallbackState {
  readonly refs: Map<number, ShortTermRef>;
  /** pfn -> flat [refId, index, refId, index, ...] of the references held on that page. */
  readonly byPfn: Map<number, number[]>;
  /** folio head -> flat [refId, index, offset in folio, ...] revoked for its move. */
  readonly inFlight: Map<number, number[]>;
  nextId: number;
  attached: boolean;
  revokedPages: number;
  reinstatedPages: number;
  movedPages: number;
  readonly vmRevoked: number;
  readonly vmReinstated: number;
}

const states = new WeakMap<MmCore, CallbackState>();

function stateOf(core: MmCore): CallbackState {
  let s = states.get(core);
  if (!s) {
    s = {
      refs: new Map(),
      byPfn: new Map(),
      inFlight: new Map(),
      nextId: 1,
      attached: false,
      revokedPages: 0,
      reinstatedPages: 0,
      movedPages: 0,
      vmRevoked: core.vmstat.register('migrate_callback_revoked'),
      vmReinstated: core.vmstat.register('migrate_callback_reinstated'),
    };
    states.set(core, s);
  }
  return s;
}

function indexAdd(s: CallbackState, pfn: number, id: number, i: number): void {
  const e = s.byPfn.get(pfn);
  if (e) e.push(id, i);
  else s.byPfn.set(pfn, [id, i]);
}

function indexRemove(s: CallbackState, pfn: number, id: number, i: number): void {
  const e = s.byPfn.get(pfn);
  if (!e) return;
  for (let k = 0; k < e.length; k += 2) {
    if (e[k] !== id || e[k + 1] !== i) continue;
    e.splice(k, 2);
    break;
  }
  if (e.length === 0) s.byPfn.delete(pfn);
}

/**
 * shortTermRefRegister - take a short-term reference on each page of the range starting at the
 * page-aligned user address @start of @mm and register @ops as its migration callback.
 * @pfns[i] is the page currently backing @start + i pages (what get_user_pages returned: the
 * caller holds its own reference while calling, and may drop it afterwards); a negative entry or
 * the zero page (or any reserved page) gets no reference.
 *
 * Return: the holder. Throws KernelError -EINVAL for an unaligned or negative @start, an empty
 * @pfns, an exited mm, or a pfn that is not an allocated page; nothing is taken when it throws.
 * Released by shortTermRefRelease.
 * Context: process context of the caller; charges nothing.
 */
export function shortTermRefRegister(
  mm: MmStruct,
  start: number,
  pfns: ArrayLike<number>,
  ops: MigrateCallbackOps,
): ShortTermRef {
  const core = mm.core;
  const f = core.frames;
  if (!Number.isSafeInteger(start) || start < 0 || start % PAGE_SIZE !== 0)
    throw new KernelError(-ERRNO.EINVAL, `shortTermRefRegister: bad start ${String(start)}`);
  if (pfns.length === 0) throw new KernelError(-ERRNO.EINVAL, 'shortTermRefRegister: no pages');
  if (!mm.alive) throw new KernelError(-ERRNO.EINVAL, 'shortTermRefRegister: the mm has exited');
  for (let i = 0; i < pfns.length; i++) {
    const pfn = pfns[i];
    if (pfn < 0 || (Number.isInteger(pfn) && pfn < f.count && f.flags[pfn] & PG_reserved)) continue;
    if (
      !Number.isInteger(pfn) ||
      pfn >= f.count ||
      f.flags[pfn] & PG_buddy ||
      f.refcount[folioHead(core, pfn)] <= 0
    )
      throw new KernelError(
        -ERRNO.EINVAL,
        `shortTermRefRegister: pfn ${String(pfn)} is not an allocated page`,
      );
  }
  const s = stateOf(core);
  const ref = new ShortTermRef(s.nextId++, mm, start, pfns.length, ops);
  for (let i = 0; i < pfns.length; i++) {
    const pfn = pfns[i];
    if (pfn < 0 || f.flags[pfn] & PG_reserved) continue;
    getPage(core, pfn);
    ref.pfns[i] = pfn;
    ref.held[i] = 1;
    indexAdd(s, pfn, ref.id, i);
  }
  s.refs.set(ref.id, ref);
  return ref;
}

/**
 * shortTermRefRelease - drop every reference @ref holds (put_page each) and unregister its
 * callback. References revoked for a move in progress are not retaken when it completes.
 * Releasing twice does nothing. Context: any.
 */
export function shortTermRefRelease(ref: ShortTermRef): void {
  if (!ref.alive) return;
  ref.alive = false;
  const core = ref.mm.core;
  const s = stateOf(core);
  s.refs.delete(ref.id);
  for (let i = 0; i < ref.nrPages; i++) {
    if (!ref.held[i]) continue;
    ref.held[i] = 0;
    indexRemove(s, ref.pfns[i], ref.id, i);
    putPage(core, ref.pfns[i]);
  }
}

/** migrateCallbackActive - does any short-term reference exist on @core (a cheap gate for movers)? */
export function migrateCallbackActive(core: MmCore): boolean {
  const s = states.get(core);
  return s !== undefined && s.byPfn.size > 0;
}

/**
 * folioCallbackRefs - how many references on the folio headed by @head are short-term references
 * a migration callback will give up (0 when none: the common case costs one lookup).
 * Context: any; migration, compaction and khugepaged subtract it from the refcount they check.
 */
export function folioCallbackRefs(core: MmCore, head: number): number {
  const s = states.get(core);
  if (!s || s.byPfn.size === 0) return 0;
  const nr = 2 ** core.frames.getOrder(head);
  let n = 0;
  for (let p = head; p < head + nr; p++) {
    const e = s.byPfn.get(p);
    if (e) n += e.length >>> 1;
  }
  return n;
}

/** Per-holder [first, end) of the pages a batch touched, to make one callback per holder. */
function widen(spans: Map<ShortTermRef, [number, number]>, ref: ShortTermRef, i: number): void {
  const r = spans.get(ref);
  if (!r) spans.set(ref, [i, i + 1]);
  else {
    if (i < r[0]) r[0] = i;
    if (i + 1 > r[1]) r[1] = i + 1;
  }
}

/**
 * migrateCallbackRevoke - the folios headed by @heads are about to move (@reason: MR_* or
 * MR_THP_COLLAPSE): call each holder's revoke() once for the pages it holds in them, then drop
 * those references, remembering them for migrateCallbackRestore. The caller must still hold the
 * folios (isolation or a mapping), so no refcount reaches zero here.
 *
 * Return: the references dropped (0 when none: nothing else happened).
 * Context: the mover's; must be followed by migrateCallbackRestore for every folio in @heads.
 */
export function migrateCallbackRevoke(
  core: MmCore,
  heads: number | readonly number[],
  reason: number,
): number {
  const s = states.get(core);
  if (!s || s.byPfn.size === 0) return 0;
  const f = core.frames;
  const list = typeof heads === 'number' ? [heads] : heads;
  const spans = new Map<ShortTermRef, [number, number]>();
  const drops: Array<[number, number]> = [];
  let total = 0;
  for (const head of list) {
    const nr = 2 ** f.getOrder(head);
    let stash: number[] | undefined;
    let n = 0;
    for (let p = head; p < head + nr; p++) {
      const e = s.byPfn.get(p);
      if (!e) continue;
      s.byPfn.delete(p);
      stash ??= s.inFlight.get(head) ?? [];
      for (let k = 0; k < e.length; k += 2) {
        const ref = s.refs.get(e[k])!;
        ref.held[e[k + 1]] = 0;
        stash.push(e[k], e[k + 1], p - head);
        widen(spans, ref, e[k + 1]);
        n++;
      }
    }
    if (!stash) continue;
    s.inFlight.set(head, stash);
    drops.push([head, n]);
    total += n;
  }
  if (total === 0) return 0;
  // The devices stop first; only then do the references go.
  for (const [ref, [first, end]] of spans) {
    ref.revokes++;
    ref.ops.revoke(ref, first, end, reason);
  }
  for (const [head, n] of drops) {
    f.refcount[head] -= n;
    if (f.refcount[head] <= 0) throw new Error(`migrateCallbackRevoke: pfn ${head} lost its last reference`);
  }
  s.revokedPages += total;
  core.vmstat.inc(s.vmRevoked, total);
  return total;
}

/**
 * migrateCallbackRestore - the move of each folio @srcs[k] ended: retake the references
 * migrateCallbackRevoke dropped on the page each one moved to in @dsts[k] (the same page offset
 * in the folio that replaced it; @dsts[k] === @srcs[k] when the move failed), then call each
 * holder's reinstate() once. Holders released meanwhile get nothing back. A folio with nothing
 * revoked is skipped (one lookup), so movers may call it unconditionally.
 * Context: the mover's.
 */
export function migrateCallbackRestore(
  core: MmCore,
  srcs: number | readonly number[],
  dsts: number | readonly number[],
): void {
  const s = states.get(core);
  if (!s || s.inFlight.size === 0) return;
  const f = core.frames;
  const from = typeof srcs === 'number' ? [srcs] : srcs;
  const to = typeof dsts === 'number' ? [dsts] : dsts;
  const spans = new Map<ShortTermRef, [number, number]>();
  const movedTo = new Map<ShortTermRef, boolean>();
  let total = 0;
  for (let j = 0; j < from.length; j++) {
    const src = from[j];
    const stash = s.inFlight.get(src);
    if (!stash) continue;
    s.inFlight.delete(src);
    const dst = to[j];
    for (let k = 0; k < stash.length; k += 3) {
      const ref = s.refs.get(stash[k]);
      if (!ref || !ref.alive) continue;
      const i = stash[k + 1];
      const pfn = dst + stash[k + 2];
      f.refcount[folioHead(core, pfn)]++;
      ref.pfns[i] = pfn;
      ref.held[i] = 1;
      indexAdd(s, pfn, ref.id, i);
      widen(spans, ref, i);
      if (dst !== src) {
        ref.pagesMoved++;
        s.movedPages++;
        movedTo.set(ref, true);
      }
      total++;
    }
  }
  s.reinstatedPages += total;
  core.vmstat.inc(s.vmReinstated, total);
  for (const [ref, [first, end]] of spans) {
    ref.reinstates++;
    ref.ops.reinstate(ref, first, end, movedTo.get(ref) === true);
  }
}

/** migrateCallbackStats - the counters of @core's short-term references. */
export function migrateCallbackStats(core: MmCore): MigrateCallbackStats {
  const s = states.get(core);
  if (!s) return { refs: 0, heldPages: 0, revokedPages: 0, reinstatedPages: 0, movedPages: 0 };
  let held = 0;
  for (const e of s.byPfn.values()) held += e.length >>> 1;
  return {
    refs: s.refs.size,
    heldPages: held,
    revokedPages: s.revokedPages,
    reinstatedPages: s.reinstatedPages,
    movedPages: s.movedPages,
  };
}

/** shortTermRefsOf - the live holders registered on @mm, oldest first. */
export function shortTermRefsOf(mm: MmStruct): ShortTermRef[] {
  const s = states.get(mm.core);
  if (!s) return [];
  return [...s.refs.values()].filter((r) => r.mm === mm);
}

/**
 * addCallbackRefs - add to @refs (folio head -> count) the references the holders keep, so the
 * mm invariant checker balances refcounts. Revoked references (a move in progress) are not held.
 */
export function addCallbackRefs(core: MmCore, refs: ExtraRefs): void {
  const s = states.get(core);
  if (!s) return;
  for (const [pfn, e] of s.byPfn) {
    const head = folioHead(core, pfn);
    refs.set(head, (refs.get(head) ?? 0) + (e.length >>> 1));
  }
}

/**
 * checkMigrateCallbackInvariants - every held reference is on an allocated page and indexed
 * under its pfn, the index holds nothing else, and released holders hold nothing.
 * Returns the violations (empty when all hold).
 */
export function checkMigrateCallbackInvariants(core: MmCore): string[] {
  const s = states.get(core);
  if (!s) return [];
  const out: string[] = [];
  const f = core.frames;
  let indexed = 0;
  for (const e of s.byPfn.values()) indexed += e.length >>> 1;
  let held = 0;
  for (const ref of s.refs.values()) {
    if (!ref.alive) out.push(`short-term ref ${ref.id} is released but still registered`);
    for (let i = 0; i < ref.nrPages; i++) {
      if (!ref.held[i]) continue;
      held++;
      const pfn = ref.pfns[i];
      if (pfn < 0 || pfn >= f.count || f.flags[pfn] & PG_buddy || f.refcount[folioHead(core, pfn)] <= 0) {
        out.push(`short-term ref ${ref.id} page ${i} holds pfn ${pfn}, which is not allocated`);
        continue;
      }
      const e = s.byPfn.get(pfn);
      let found = false;
      for (let k = 0; e && k < e.length && !found; k += 2) found = e[k] === ref.id && e[k + 1] === i;
      if (!found) out.push(`short-term ref ${ref.id} page ${i} (pfn ${pfn}) is not indexed`);
    }
  }
  if (indexed !== held) out.push(`${indexed} short-term references indexed but ${held} held`);
  return out;
}

/** What migrateCallbackAttach needs from the kernel (Kernel has both methods). */
export interface MigrateCallbackHost {
  addRefSource(fn: (refs: ExtraRefs) => void): void;
  addInvariantCheck(name: string, check: () => string[]): void;
}

/**
 * migrateCallbackAttach - report the holders' references to the kernel's refcount check and add
 * checkMigrateCallbackInvariants as the 'migrate-callback' check, once per MmCore (a user of
 * shortTermRefRegister calls it when it is set up).
 * Return: true when it registered now, false when already attached.
 */
export function migrateCallbackAttach(core: MmCore, host: MigrateCallbackHost): boolean {
  const s = stateOf(core);
  if (s.attached) return false;
  s.attached = true;
  host.addRefSource((refs) => addCallbackRefs(core, refs));
  host.addInvariantCheck('migrate-callback', () => checkMigrateCallbackInvariants(core));
  return true;
}
