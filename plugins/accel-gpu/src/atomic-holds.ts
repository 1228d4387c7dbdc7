/**
 * How a GPU context keeps the system pages its atomics work on: the three answers of the 2021
 * thread on GPU atomics to system memory (seeds/003, KERNEL-FACTS sections 3 and 6).
 *
 * In every mode the GPU's atomic access itself is a device-exclusive entry
 * (make_device_exclusive): the CPU's PTE is replaced while the GPU works on the page, and the
 * first CPU access restores it and revokes the GPU's access through the MMU notifier. The modes
 * differ in what else the driver keeps on the page:
 *
 * - 'notifier-only': nothing. Migration (compaction, CMA, memory offline, NUMA balancing) moves
 *   the page like any mapped page (Linux 6.15+ migrates device-exclusive entries); the
 *   MMU_NOTIFY_MIGRATE invalidation revokes the GPU, which takes a fault and re-acquires.
 * - 'short-term': a short-term page reference (get_page, not FOLL_PIN) plus a migration callback
 *   (Daniel Vetter: "short term page reference to make sure it doesn't disappear plus b) callback
 *   to make sure migrate isn't blocked"; the kernel side is @svasim/kernel's migrate-callback).
 *   When mm moves the page, revoke() drops the GPU's mapping, the page moves, reinstate() hands
 *   the reference over to the new page and the driver re-installs the atomic mapping itself
 *   before the next command ("revoking the page, moving it, and then reinstating the gpu pte").
 * - 'longterm-pin': pin_user_pages(FOLL_LONGTERM | FOLL_WRITE) for as long as the context uses
 *   the page. FOLL_LONGTERM first migrates the page out of ZONE_MOVABLE and CMA (memalloc_pin),
 *   so offlining ZONE_MOVABLE still works, but the pinned page never moves again (compaction
 *   and alloc_contig_range fail on it). With pinInPlace (no FOLL_LONGTERM: what Alistair
 *   Popple's 2021 series asked for, "allows pinned pages to be created in ZONE_MOVABLE") the page
 *   stays where it is and blocks the offline of its memory block.
 */
import {
  ERRNO,
  FOLL_LONGTERM,
  FOLL_WRITE,
  KernelError,
  LEVEL_PTE,
  LEVEL_SIZE,
  PAGE_SIZE,
  PTE_DEVICE_EXCLUSIVE,
  PTE_PRESENT,
  makeDeviceExclusive,
  pinUserPagesRemote,
  putDeviceExclusiveFolio,
  shortTermRefRegister,
  shortTermRefRelease,
  unpinUserPage,
  type MigrateCallbackOps,
  type MmStruct,
  type ShortTermRef,
} from '@svasim/kernel';

/** GpuAtomicMode - how a context keeps the pages of its atomics. */
export type GpuAtomicMode = 'notifier-only' | 'short-term' | 'longterm-pin';

/** Every mode, in the order of GPU_ATOMIC_MODE_* (uapi.ts). */
export const GPU_ATOMIC_MODES: readonly GpuAtomicMode[] = ['notifier-only', 'short-term', 'longterm-pin'];

/** One page a context holds. */
interface Hold {
  /** The pfn the pin or reference is on. */
  pfn: number;
  /** Short-term mode: the reference with its callback. */
  ref: ShortTermRef | null;
}

/** What AtomicHolds tells its context. */
export interface AtomicHoldsHost {
  readonly mm: MmStruct;
  /** The owner make_device_exclusive announces (the context, so its own notifier knows it). */
  readonly exclusiveOwner: object;
  /**
   * The migration callback revoked page @vpn: the GPU must stop using it now.
   * Return: whether the GPU had it mapped (then it wants it back after the move).
   */
  callbackRevoke(vpn: number): boolean;
  /** The reference of @vpn is held again (on a new page when @moved). */
  callbackReinstate(vpn: number, moved: boolean): void;
}

/**
 * currentPfn - the page @addr of @mm maps now through a present PTE or a device-exclusive entry,
 * or -1 (none, swapped, migrating, device-private).
 */
export function currentPfn(mm: MmStruct, addr: number): number {
  if (!mm.alive) return -1;
  const pt = mm.pgtable;
  const t = pt.walk(addr, false);
  if (!t) return -1;
  const hi = t[pt.slot + 1];
  if (!(hi & PTE_PRESENT) && !(pt.level === LEVEL_PTE && hi & PTE_DEVICE_EXCLUSIVE)) return -1;
  const size = LEVEL_SIZE[pt.level];
  return t[pt.slot] + Math.floor((addr % size) / PAGE_SIZE);
}

/**
 * AtomicHolds - the pins or references one context keeps, by virtual page number, in one of
 * the three modes. Released by releaseAll (the context's close).
 */
export class AtomicHolds {
  private readonly holds = new Map<number, Hold>();
  private readonly ops: MigrateCallbackOps;

  constructor(
    readonly host: AtomicHoldsHost,
    readonly mode: GpuAtomicMode,
    /** longterm-pin only: pin without FOLL_LONGTERM, leaving the page in ZONE_MOVABLE/CMA. */
    readonly pinInPlace: boolean,
  ) {
    this.ops = {
      revoke: (ref) => void this.host.callbackRevoke(ref.start / PAGE_SIZE),
      reinstate: (ref, _first, _end, moved) => {
        const h = this.holds.get(ref.start / PAGE_SIZE);
        if (h && h.ref === ref) h.pfn = ref.pfns[0];
        this.host.callbackReinstate(ref.start / PAGE_SIZE, moved);
      },
    };
  }

  /** Pages held now. */
  get size(): number {
    return this.holds.size;
  }

  /** Is virtual page @vpn held? */
  has(vpn: number): boolean {
    return this.holds.has(vpn);
  }

  /** The virtual page numbers held. */
  vpns(): number[] {
    return [...this.holds.keys()];
  }

  /**
   * acquire - give the GPU exclusive access to the page at @addr (page aligned) of the mm and
   * hold it as the mode says. @pfnHint is the system page the mirror maps there now.
   * Return: the pfn the GPU may use, or -errno: make_device_exclusive's (-EFAULT, -EOPNOTSUPP
   * for shared or hugetlb memory, -EBUSY), pin_user_pages' (-ENOMEM when FOLL_LONGTERM could not
   * migrate the page out of ZONE_MOVABLE), -EAGAIN when the page changed under the pin.
   */
  acquire(addr: number, pfnHint: number): number {
    const vpn = addr / PAGE_SIZE;
    const mm = this.host.mm;
    if (this.mode === 'longterm-pin') {
      const h = this.holds.get(vpn);
      if (!h || h.pfn !== pfnHint) {
        if (h) this.release(vpn);
        const pages = new Int32Array(1);
        const flags = FOLL_WRITE | (this.pinInPlace ? 0 : FOLL_LONGTERM);
        const n = pinUserPagesRemote(mm, addr, 1, flags, pages);
        if (n !== 1) return n < 0 ? n : -ERRNO.EFAULT;
        this.holds.set(vpn, { pfn: pages[0], ref: null });
      }
    }
    const r = this.exclusive(addr);
    if (typeof r === 'number') return r;
    let ret = r.page;
    if (this.mode === 'longterm-pin') {
      // FOLL_WRITE left the pinned page exclusive, so make_device_exclusive found that one.
      if (this.holds.get(vpn)!.pfn !== r.page) {
        this.release(vpn);
        ret = -ERRNO.EAGAIN;
      }
    } else if (this.mode === 'short-term') {
      const h = this.holds.get(vpn);
      if (!h || h.pfn !== r.page || !h.ref || !h.ref.held[0]) {
        if (h) this.release(vpn);
        try {
          // The callback's reference joins the GUP one make_device_exclusive holds, which goes below.
          this.holds.set(vpn, { pfn: r.page, ref: shortTermRefRegister(mm, addr, [r.page], this.ops) });
        } catch (e) {
          if (!(e instanceof KernelError)) throw e;
          ret = e.errno;
        }
      }
    }
    putDeviceExclusiveFolio(mm.core, r.folio);
    return ret;
  }

  /** make_device_exclusive, again while another holder briefly has the folio locked. */
  private exclusive(addr: number): ReturnType<typeof makeDeviceExclusive> {
    let r = makeDeviceExclusive(this.host.mm, addr, this.host.exclusiveOwner);
    for (let tries = 0; r === -ERRNO.EBUSY && tries < 8; tries++)
      r = makeDeviceExclusive(this.host.mm, addr, this.host.exclusiveOwner);
    return r;
  }

  /** release - drop the pin or reference on @vpn, if any. */
  release(vpn: number): void {
    const h = this.holds.get(vpn);
    if (!h) return;
    this.holds.delete(vpn);
    if (h.ref) shortTermRefRelease(h.ref);
    else unpinUserPage(this.host.mm.core, h.pfn);
  }

  /** releaseRange - drop what is held on virtual pages [first, end). */
  releaseRange(first: number, end: number): void {
    if (this.holds.size === 0) return;
    for (const vpn of [...this.holds.keys()]) if (vpn >= first && vpn < end) this.release(vpn);
  }

  /**
   * validate - drop the hold on @vpn when the mm no longer maps that page there (COW broke it,
   * MADV_DONTNEED zapped it): a stale pin or reference would only keep a dead page.
   * Return: true when it is still valid (or nothing was held).
   */
  validate(vpn: number): boolean {
    const h = this.holds.get(vpn);
    if (!h) return true;
    if (h.ref && !h.ref.held[0]) return true; // a move is in progress: reinstate() will say where
    if (currentPfn(this.host.mm, vpn * PAGE_SIZE) === h.pfn) return true;
    this.release(vpn);
    return false;
  }

  /** releaseAll - drop everything (close, mode change, device removal). */
  releaseAll(): void {
    for (const vpn of [...this.holds.keys()]) this.release(vpn);
  }

  /** heldPfn - the pfn held for @vpn, or -1. */
  heldPfn(vpn: number): number {
    return this.holds.get(vpn)?.pfn ?? -1;
  }
}
