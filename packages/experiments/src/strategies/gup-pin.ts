/**
 * The 'gup-pin' strategy, for experiments only: prepare pins the buffer with pin_user_pages()
 * WITHOUT FOLL_LONGTERM and keeps the pins until release - a short-term pin held for a long
 * time, with no migration callback.
 *
 * It stands for what long-term pins were before FOLL_LONGTERM learnt to migrate pages out of CMA
 * and ZONE_MOVABLE (Linux 5.x), and for a driver that misuses a short-term pin (the
 * V4L2_MEMORY_USERPTR case Barry Song raises in the mempinfd review, seeds/001: "will possibly
 * make CMA fail as there is no guarantee that userspace will allocate unmovable memory"). The
 * pages stay wherever the application's allocations put them, CMA included, and nothing can
 * migrate them: it is the counterpart the shipped strategies are compared with in experiment 4,
 * not a strategy anyone should ship, so it is not in defaultRegistry (EXPERIMENT_STRATEGIES).
 *
 * The pins are the kernel's on behalf of the process (as a driver's ioctl would take them): per
 * address space, dropped by release or, for a process that exits without releasing, by an MMU
 * notifier's release when its mm goes away.
 */
import {
  ERRNO,
  FOLL_WRITE,
  MmuNotifier,
  PAGE_SIZE,
  PIN_STRATEGY,
  SyscallError,
  VM_WRITE,
  definePlugin,
  mmuNotifierRegister,
  mmuNotifierUnregister,
  pinUserPages,
  unpinUserPages,
  type MmStruct,
  type PinStrategy,
  type PinTarget,
} from '@svasim/kernel';

/** What one address space holds: pinned pfns by prepared range, and its exit hook. */
interface Held {
  readonly ranges: Map<string, number[]>;
  readonly notifier: MmuNotifier;
}

/**
 * GupPinStrategy - the PinStrategy 'gup-pin' (see the file comment). One per kernel, made by
 * gupPinStrategy's register().
 */
export class GupPinStrategy implements PinStrategy {
  readonly name = 'gup-pin';
  readonly addressing = 'sva' as const;
  private readonly held = new WeakMap<MmStruct, Held>();

  /**
   * prepare - pin every page of [@addr, @addr + @len) of target.proc (FOLL_PIN, FOLL_WRITE where
   * the VMA is writable; never FOLL_LONGTERM, so nothing is migrated first).
   * Throws SyscallError: EINVAL for a length that is not positive or a range that is not
   * integers; EEXIST when the same range is already prepared; EFAULT (or the fault's errno) when
   * part of the range cannot be pinned. A failed prepare pins nothing.
   */
  prepare(target: PinTarget, addr: number, len: number): void {
    const mm = target.proc.mm;
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len <= 0)
      throw new SyscallError(-ERRNO.EINVAL, 'gup_pin', 'bad range');
    const key = `${addr}:${len}`;
    const h = this.held.get(mm);
    if (h?.ranges.has(key)) throw new SyscallError(-ERRNO.EEXIST, 'gup_pin', 'range already prepared');
    const first = Math.floor(addr / PAGE_SIZE);
    const n = Math.ceil((addr + len) / PAGE_SIZE) - first;
    const pages: number[] = [];
    let err = 0;
    for (let done = 0; done < n && !err;) {
      const at = (first + done) * PAGE_SIZE;
      const vma = mm.vmaLookup(at);
      if (!vma) {
        err = -ERRNO.EFAULT;
        break;
      }
      const chunk = Math.min(n - done, (vma.end - at) / PAGE_SIZE);
      const part: number[] = [];
      const r = pinUserPages(mm, at, chunk, vma.flags & VM_WRITE ? FOLL_WRITE : 0, part);
      if (r > 0) {
        pages.push(...part.slice(0, r));
        done += r;
      }
      if (r !== chunk) err = r < 0 ? r : -ERRNO.EFAULT;
    }
    if (err) {
      unpinUserPages(mm.core, pages, pages.length);
      throw new SyscallError(err, 'gup_pin', 'cannot pin the range');
    }
    let holder: Held;
    try {
      holder = this.holder(mm);
    } catch (e) {
      unpinUserPages(mm.core, pages, pages.length);
      throw e;
    }
    holder.ranges.set(key, pages);
  }

  /**
   * release - drop the pins of one earlier prepare of exactly [@addr, @addr + @len).
   * Throws SyscallError EINVAL when that range is not prepared.
   */
  release(target: PinTarget, addr: number, len: number): void {
    const mm = target.proc.mm;
    const h = this.held.get(mm);
    const key = `${addr}:${len}`;
    const pages = h?.ranges.get(key);
    if (!h || !pages) throw new SyscallError(-ERRNO.EINVAL, 'gup_pin', 'range not prepared');
    h.ranges.delete(key);
    unpinUserPages(mm.core, pages, pages.length);
    if (h.ranges.size === 0) {
      this.held.delete(mm);
      mmuNotifierUnregister(h.notifier, mm);
    }
  }

  /** Pinned pages @mm holds now (for tests). */
  pinnedPages(mm: MmStruct): number {
    let n = 0;
    for (const p of this.held.get(mm)?.ranges.values() ?? []) n += p.length;
    return n;
  }

  private holder(mm: MmStruct): Held {
    let h = this.held.get(mm);
    if (!h) {
      const notifier = new MmuNotifier({ release: (_sub, m) => this.releaseAll(m) });
      const r = mmuNotifierRegister(notifier, mm);
      if (r < 0) throw new SyscallError(r, 'gup_pin', 'cannot watch the address space');
      h = { ranges: new Map(), notifier };
      this.held.set(mm, h);
    }
    return h;
  }

  /** The address space is going away: nothing may stay pinned for it. */
  private releaseAll(mm: MmStruct): void {
    const h = this.held.get(mm);
    if (!h) return;
    this.held.delete(mm);
    for (const pages of h.ranges.values()) unpinUserPages(mm.core, pages, pages.length);
    h.ranges.clear();
  }
}

/** gupPinStrategy - the plugin (one GupPinStrategy per kernel, registered under PIN_STRATEGY). */
export const gupPinStrategy = definePlugin({
  name: 'pin-gup-pin',
  kind: 'pin-strategy',
  register({ container }) {
    const s = new GupPinStrategy();
    container.registerInstance(PIN_STRATEGY, s);
    return s;
  },
});
