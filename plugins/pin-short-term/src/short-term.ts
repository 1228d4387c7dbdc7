/**
 * The short-term strategy: instead of pinning, take a get_page-style reference on each page of a
 * DMA buffer and register a migration callback for it (the kernel mechanism is
 * @svasim/kernel's mm/migrate-callback.ts). When compaction, CMA, memory offline, NUMA balancing
 * or khugepaged want a page, the callback revokes the device's translations of it (IOTLB and ATC
 * invalidation through the IOMMU), the reference is dropped, the page moves, and the reference is
 * reinstated on the new page; the device's next access re-walks the CPU page table (SVA) and finds
 * the new page: no IO page fault, one translation miss.
 *
 * User-space interface (a proposal, not upstream): the system call
 *     short_term_ref(SHORT_TERM_REF_GET | SHORT_TERM_REF_PUT, addr, len)
 * that this plugin registers. The holder of the references is the kernel on behalf of the calling
 * process: every SVA device bound to the process's mm is revoked, and the references go when the
 * range is put, or when the mm exits (an MMU-notifier release).
 */
import {
  ERRNO,
  FOLL_WRITE,
  MmuNotifier,
  PAGE_SIZE,
  TASK_SIZE,
  VM_WRITE,
  getUserPages,
  gupPutPages,
  iommuDomainInvalidateBytes,
  isProcessContext,
  migrateCallbackAttach,
  mmuNotifierRegister,
  mmuNotifierUnregister,
  shortTermRefRegister,
  shortTermRefRelease,
  type Current,
  type Kernel,
  type MigrateCallbackOps,
  type MmStruct,
  type PinStrategy,
  type PinTarget,
  type ShortTermRef,
} from '@svasim/kernel';

/** The system call's name. */
export const SHORT_TERM_REF_SYSCALL = 'short_term_ref';
/** short_term_ref commands: take references on a range / drop the ones an earlier GET took. */
export const SHORT_TERM_REF_GET = 1;
export const SHORT_TERM_REF_PUT = 2;

/** What the strategy did, for tests and experiments. */
export interface ShortTermStats {
  /** Successful GETs and PUTs (including those done at exit). */
  gets: number;
  puts: number;
  /** Ranges dropped because their mm exited without a PUT. */
  putAtExit: number;
  /** revoke() / reinstate() calls, and the pages they covered. */
  revokes: number;
  revokedPages: number;
  reinstates: number;
  reinstatedPages: number;
  /** reinstate() calls after which the pages were on new pfns. */
  moves: number;
  /** IOMMU invalidations issued by revoke() (one per SVA domain of the mm). */
  invalidations: number;
}

/** The references one mm's process holds, and the notifier that drops them at exit. */
interface MmHolder {
  readonly refs: ShortTermRef[];
  readonly notifier: MmuNotifier;
}

/**
 * ShortTermStrategy - the PinStrategy 'short-term' and the kernel side of short_term_ref. One per
 * kernel, made by the plugin's register(); realize() adds the system call.
 */
export class ShortTermStrategy implements PinStrategy {
  readonly name = 'short-term';
  readonly addressing = 'sva' as const;
  readonly stats: ShortTermStats = {
    gets: 0,
    puts: 0,
    putAtExit: 0,
    revokes: 0,
    revokedPages: 0,
    reinstates: 0,
    reinstatedPages: 0,
    moves: 0,
    invalidations: 0,
  };
  private readonly holders = new WeakMap<MmStruct, MmHolder>();
  private readonly ops: MigrateCallbackOps;

  constructor(readonly kernel: Kernel) {
    migrateCallbackAttach(kernel.mmCore, kernel);
    this.ops = {
      revoke: (ref, first, end) => this.revoke(ref, first, end),
      reinstate: (ref, first, end, moved) => {
        this.stats.reinstates++;
        this.stats.reinstatedPages += end - first;
        if (moved) this.stats.moves++;
      },
    };
  }

  /** realize - register short_term_ref. 0, or -EEXIST when the name is taken. */
  realize(): number {
    return this.kernel.registerSyscall(SHORT_TERM_REF_SYSCALL, (current, cmd, addr, len) =>
      this.sysShortTermRef(current, cmd, addr, len),
    );
  }

  /** unrealize - remove the system call (references already taken stay until PUT or exit). */
  unrealize(): void {
    this.kernel.syscalls.unregister(SHORT_TERM_REF_SYSCALL);
  }

  /** prepare - short_term_ref(GET, addr, len) in target.proc; throws its SyscallError. */
  prepare(target: PinTarget, addr: number, len: number): void {
    target.proc.syscall(SHORT_TERM_REF_SYSCALL, SHORT_TERM_REF_GET, addr, len);
  }

  /** release - short_term_ref(PUT, addr, len) in target.proc; throws its SyscallError. */
  release(target: PinTarget, addr: number, len: number): void {
    target.proc.syscall(SHORT_TERM_REF_SYSCALL, SHORT_TERM_REF_PUT, addr, len);
  }

  /** The ranges @mm holds references on now, oldest first. */
  heldRefs(mm: MmStruct): readonly ShortTermRef[] {
    return this.holders.get(mm)?.refs ?? [];
  }

  /**
   * sys_short_term_ref - the system call. The range is [addr, addr + len) rounded out to pages.
   * GET: fault the range in (for writing where the VMA is writable, so a COW page is broken
   * first), take one reference per page and register the callback. PUT: drop the references of
   * one earlier GET of the same pages.
   * Returns 0, or -EINVAL (unknown cmd; len 0; an address or length that is not a non-negative
   * integer; a range that wraps; PUT of pages no GET took), -EFAULT (part of the range unmapped,
   * beyond TASK_SIZE, or not GUP-able: VM_IO/VM_PFNMAP), -ENOMEM (no memory to fault in, or a
   * range larger than the machine's memory).
   * A failed GET holds nothing.
   */
  private sysShortTermRef(current: Current, cmd: unknown, addr: unknown, len: unknown): number {
    if (!isProcessContext(current)) return -ERRNO.EINVAL;
    if (cmd !== SHORT_TERM_REF_GET && cmd !== SHORT_TERM_REF_PUT) return -ERRNO.EINVAL;
    if (typeof addr !== 'number' || typeof len !== 'number') return -ERRNO.EINVAL;
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len <= 0)
      return -ERRNO.EINVAL;
    // Past 2^53 the sum is no longer exact: such a range wraps as far as svasim can tell.
    if (addr + len > Number.MAX_SAFE_INTEGER) return -ERRNO.EINVAL;
    const start = addr - (addr % PAGE_SIZE);
    const end = Math.ceil((addr + len) / PAGE_SIZE) * PAGE_SIZE;
    const mm = current.mm;
    if (cmd === SHORT_TERM_REF_PUT) return this.put(mm, start, (end - start) / PAGE_SIZE);
    if (end > TASK_SIZE) return -ERRNO.EFAULT;
    return this.get(mm, start, end);
  }

  private get(mm: MmStruct, start: number, end: number): number {
    const core = mm.core;
    const nr = (end - start) / PAGE_SIZE;
    // More pages than the machine has can never be faulted in (and no array that size is made).
    if (nr > core.frames.count) return -ERRNO.ENOMEM;
    const pages = new Int32Array(nr).fill(-1);
    let taken = 0;
    let err = 0;
    // One GUP call per VMA, writing only where the VMA may be written (a read-only source buffer
    // is referenced as it is).
    while (taken < nr) {
      const at = start + taken * PAGE_SIZE;
      const vma = mm.vmaLookup(at);
      if (!vma) {
        err = -ERRNO.EFAULT;
        break;
      }
      const n = Math.min(nr - taken, (vma.end - at) / PAGE_SIZE);
      const r = getUserPages(mm, at, n, vma.flags & VM_WRITE ? FOLL_WRITE : 0, pages.subarray(taken));
      if (r > 0) taken += r;
      if (r !== n) {
        err = r < 0 ? r : -ERRNO.EFAULT;
        break;
      }
    }
    if (err) {
      gupPutPages(core, pages, taken);
      return err;
    }
    let holder = this.holders.get(mm);
    if (!holder) {
      const notifier = new MmuNotifier({ release: (_sub, m) => this.releaseAll(m) });
      const r = mmuNotifierRegister(notifier, mm);
      if (r < 0) {
        gupPutPages(core, pages, taken);
        return r;
      }
      holder = { refs: [], notifier };
      this.holders.set(mm, holder);
    }
    // The callback's references replace GUP's: take them, then let GUP's go.
    holder.refs.push(shortTermRefRegister(mm, start, pages, this.ops));
    gupPutPages(core, pages, taken);
    this.stats.gets++;
    return 0;
  }

  private put(mm: MmStruct, start: number, nr: number): number {
    const holder = this.holders.get(mm);
    const i = holder ? holder.refs.findIndex((r) => r.start === start && r.nrPages === nr) : -1;
    if (!holder || i < 0) return -ERRNO.EINVAL;
    const [ref] = holder.refs.splice(i, 1);
    shortTermRefRelease(ref);
    this.stats.puts++;
    if (holder.refs.length === 0) {
      this.holders.delete(mm);
      mmuNotifierUnregister(holder.notifier, mm);
    }
    return 0;
  }

  /** The mm is exiting (or the notifier goes away): drop whatever is still held. */
  private releaseAll(mm: MmStruct): void {
    const holder = this.holders.get(mm);
    if (!holder) return;
    this.holders.delete(mm);
    for (const ref of holder.refs.splice(0)) {
      shortTermRefRelease(ref);
      this.stats.puts++;
      this.stats.putAtExit++;
    }
  }

  /**
   * The migration callback's revoke: the device must stop using [first, end) of @ref. Every SVA
   * domain sharing the mm's page table forgets the range (IOTLB and the ATCs of its devices), so
   * the next device access walks the page table again.
   */
  private revoke(ref: ShortTermRef, first: number, end: number): void {
    this.stats.revokes++;
    this.stats.revokedPages += end - first;
    const data = this.kernel.iommu.mmData.get(ref.mm);
    if (!data) return;
    for (const domain of data.svaDomains) {
      iommuDomainInvalidateBytes(domain, ref.addressOf(first), ref.addressOf(end));
      this.stats.invalidations++;
    }
  }
}
