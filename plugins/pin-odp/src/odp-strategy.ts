/**
 * OdpStrategy - the 'odp' pin strategy: On-Demand Paging (seeds/004, the 2013 RDMA proposal,
 * upstream as ib_umem_odp on MMU interval notifiers and HMM). prepare registers the buffer as an
 * ODP region and prefetches it: an interval notifier over the range and the HMM driver loop
 * (hmm_range_fault with HMM_PFN_REQ_FAULT, plus HMM_PFN_REQ_WRITE where the memory may be
 * written) fault the pages in, so the device's first access does not fault. Nothing is pinned
 * and nothing is charged to RLIMIT_MEMLOCK: when mm wants a page back (migration, compaction,
 * reclaim, munmap, fork's COW write-protect) the notifier drops the region's mirror of it and the
 * page goes; the device's next access to it faults (IOPF) like plain SVA, and a later prefetch
 * (advise, or another prepare) refills the mirror lazily, only where it was dropped.
 *
 * Registrations larger than `prefetchMaxBytes` are not prefetched: they are registered the way
 * mlx5 registers an ODP region (a snapshot of what is already resident, no fault), because
 * prefetching a large sparse region would populate exactly what ODP exists to leave alone (the
 * "application uses ~10% of its allocated memory" of seeds/004). The device then faults the
 * working set in on first touch.
 *
 * Kernel part: the system calls of uapi.ts, one interval notifier per region, one MMU notifier
 * per address space whose `release` (exit_mmap) drops what an exiting process left registered,
 * and an invariant check: every mirrored page is the page the CPU page table maps there.
 */
import {
  ERRNO,
  MmuNotifier,
  PAGE_SIZE,
  TASK_SIZE,
  isProcessContext,
  mmuNotifierRegister,
  mmuNotifierUnregister,
  pagemapEntry,
  type Current,
  type Kernel,
  type MmStruct,
  type PinStrategy,
  type PinTarget,
} from '@svasim/kernel';
import { OdpMr, emptyOdpStats, type OdpFaultMode, type OdpStats } from './odp-mr';
import {
  ODP_ADVISE_MR_SYSCALL,
  ODP_ADVISE_PREFETCH,
  ODP_ADVISE_PREFETCH_NO_FAULT,
  ODP_ADVISE_PREFETCH_WRITE,
  ODP_DEREG_MR_SYSCALL,
  ODP_REG_MR_SYSCALL,
} from './uapi';

/** The strategy name (API.md): the package name without `pin-`. */
export const ODP_STRATEGY_NAME = 'odp';

/** Default of OdpStrategyOptions.prefetchMaxBytes: 16 MiB. */
export const ODP_PREFETCH_MAX_BYTES = 16 << 20;

/**
 * A region may span at most this many times the machine's pages: its mirror takes 8 bytes a page
 * (the kernel's kvcalloc'd pfn list), so beyond 64x RAM the mirror alone would be an eighth of
 * memory; the kernel's allocation fails there with -ENOMEM long before.
 */
export const ODP_MAX_REGION_RAM_RATIO = 64;

/** Options of an OdpStrategy (createOdpStrategy). */
export interface OdpStrategyOptions {
  /**
   * prepare prefetches (faults in) registrations of at most this many bytes, rounded to pages;
   * larger ones are only registered (a snapshot of what is resident). Default ODP_PREFETCH_MAX_BYTES;
   * Infinity: always prefetch; 0: never.
   */
  prefetchMaxBytes?: number;
}

/** The regions of one address space, and the notifier that drops them at exit. */
interface OdpMm {
  readonly mrs: OdpMr[];
  readonly notifier: MmuNotifier;
}

/**
 * odpRange - the pages of [addr, addr + len): { start, end } page aligned, or -errno:
 * -EINVAL (not non-negative integers, len 0: ib_init_umem_odp's "no entries"), -EOVERFLOW (the
 * range wraps: check_add_overflow; in svasim, beyond 2^53).
 */
function odpRange(addr: unknown, len: unknown): { start: number; end: number } | number {
  if (typeof addr !== 'number' || typeof len !== 'number') return -ERRNO.EINVAL;
  if (!Number.isInteger(addr) || !Number.isInteger(len) || addr < 0 || len < 0) return -ERRNO.EINVAL;
  if (len === 0) return -ERRNO.EINVAL;
  if (addr + len > Number.MAX_SAFE_INTEGER) return -ERRNO.EOVERFLOW;
  return { start: addr - (addr % PAGE_SIZE), end: Math.ceil((addr + len) / PAGE_SIZE) * PAGE_SIZE };
}

/** OdpStrategy - see the file comment. One per kernel, made by the plugin; realize() adds the syscalls. */
export class OdpStrategy implements PinStrategy {
  readonly name = ODP_STRATEGY_NAME;
  readonly addressing = 'sva' as const;
  /** What the strategy's regions did. */
  readonly stats: OdpStats = emptyOdpStats();
  /** Registrations up to this many bytes are prefetched by prepare. */
  readonly prefetchMaxBytes: number;
  private readonly perMm = new WeakMap<MmStruct, OdpMm>();
  /** Every registered region, for the invariant check. */
  private readonly live = new Set<OdpMr>();
  private nextKey = 1;
  private checking = false;

  /** Throws RangeError for a prefetchMaxBytes that is not a non-negative number. */
  constructor(
    readonly kernel: Kernel,
    opts: OdpStrategyOptions = {},
  ) {
    const limit = opts.prefetchMaxBytes ?? ODP_PREFETCH_MAX_BYTES;
    if (typeof limit !== 'number' || Number.isNaN(limit) || limit < 0)
      throw new RangeError('pin-odp: prefetchMaxBytes must be a non-negative number of bytes');
    this.prefetchMaxBytes = limit;
  }

  /** realize - register the three system calls and the invariant check. 0, or -EEXIST. */
  realize(): number {
    const k = this.kernel;
    const calls: Array<[string, (c: Current, ...a: unknown[]) => number]> = [
      [ODP_REG_MR_SYSCALL, (c, addr, len) => this.sysRegMr(c, addr, len)],
      [ODP_DEREG_MR_SYSCALL, (c, addr, len) => this.sysDeregMr(c, addr, len)],
      [ODP_ADVISE_MR_SYSCALL, (c, addr, len, advice) => this.sysAdviseMr(c, addr, len, advice)],
    ];
    for (let i = 0; i < calls.length; i++) {
      const r = k.registerSyscall(calls[i][0], calls[i][1]);
      if (r < 0) {
        for (let j = 0; j < i; j++) k.syscalls.unregister(calls[j][0]);
        return r;
      }
    }
    if (!this.checking) {
      this.checking = true;
      k.addInvariantCheck('pin-odp', () => this.checkInvariants());
    }
    return 0;
  }

  /** unrealize - remove the system calls (regions already registered stay until dereg or exit). */
  unrealize(): void {
    for (const name of [ODP_REG_MR_SYSCALL, ODP_DEREG_MR_SYSCALL, ODP_ADVISE_MR_SYSCALL])
      this.kernel.syscalls.unregister(name);
  }

  /**
   * prepare - odp_reg_mr(@addr, @len) in target.proc, then, when the rounded range is at most
   * prefetchMaxBytes, odp_advise_mr(PREFETCH_WRITE) over it: the pages are faulted in (writable
   * where the VMA is, read-only elsewhere) and mirrored. Throws SyscallError: EINVAL (len 0, not
   * non-negative integers), EOVERFLOW (a wrapping range), EFAULT (beyond user space; when
   * prefetching, unmapped memory, PROT_NONE or VM_IO/VM_PFNMAP in the range), ENOMEM (a region
   * over ODP_MAX_REGION_RAM_RATIO x RAM; no memory to fault in), EBUSY (invalidations kept
   * racing the prefetch), ESRCH (the process exited). A failed prepare leaves nothing registered.
   * No RLIMIT_MEMLOCK check or charge, no pin. Overlapping prepares make separate regions.
   */
  prepare(target: PinTarget, addr: number, len: number): void {
    const proc = target.proc;
    proc.syscall(ODP_REG_MR_SYSCALL, addr, len);
    const r = odpRange(addr, len);
    if (typeof r === 'number' || r.end - r.start > this.prefetchMaxBytes) return;
    try {
      proc.syscall(ODP_ADVISE_MR_SYSCALL, addr, len, ODP_ADVISE_PREFETCH_WRITE);
    } catch (e) {
      proc.syscall(ODP_DEREG_MR_SYSCALL, addr, len);
      throw e;
    }
  }

  /**
   * release - odp_dereg_mr(@addr, @len): the newest region of exactly these pages goes (its
   * notifier is removed). Throws SyscallError EINVAL (no region of this process covers exactly
   * these pages: never prepared, already released, another size; or a bad range, as prepare),
   * EOVERFLOW, ESRCH.
   */
  release(target: PinTarget, addr: number, len: number): void {
    target.proc.syscall(ODP_DEREG_MR_SYSCALL, addr, len);
  }

  /**
   * advise - odp_advise_mr(@addr, @len, @advice) in target.proc: prefetch the range into every
   * region containing it (ODP-style lazy re-prefault after invalidations: only the batches whose
   * mirror was dropped are walked again). Throws SyscallError as the system call answers.
   */
  advise(target: PinTarget, addr: number, len: number, advice: number = ODP_ADVISE_PREFETCH_WRITE): void {
    target.proc.syscall(ODP_ADVISE_MR_SYSCALL, addr, len, advice);
  }

  /** regions - the regions @mm has registered now, oldest first. */
  regions(mm: MmStruct): readonly OdpMr[] {
    return this.perMm.get(mm)?.mrs ?? [];
  }

  /**
   * sys_odp_reg_mr - register [addr, addr + len) of the caller (uapi.ts). Returns the region's
   * key, or -EINVAL, -EOVERFLOW, -EFAULT (end beyond TASK_SIZE), -ENOMEM (see prepare), or the
   * notifier registration's -errno (-EINVAL: the mm is exiting). Holes, PROT_NONE and device
   * mappings in the range are accepted (nothing of them is mirrored; the device faults there).
   */
  private sysRegMr(current: Current, addr: unknown, len: unknown): number {
    if (!isProcessContext(current)) return -ERRNO.EINVAL;
    const r = odpRange(addr, len);
    if (typeof r === 'number') return r;
    if (r.end > TASK_SIZE) return -ERRNO.EFAULT;
    const mm = current.mm;
    const nrPages = (r.end - r.start) / PAGE_SIZE;
    if (nrPages > mm.core.frames.count * ODP_MAX_REGION_RAM_RATIO) return -ERRNO.ENOMEM;
    const mr = new OdpMr(mm, this.nextKey, r.start, r.end, this.stats);
    let ret = mr.insert();
    if (ret < 0) return ret;
    ret = mr.fault(0, nrPages, 'snapshot');
    if (ret < 0) {
      mr.remove();
      return ret;
    }
    let holder = this.perMm.get(mm);
    if (!holder) {
      const notifier = new MmuNotifier({ release: (_sub, m) => this.releaseAll(m) });
      const e = mmuNotifierRegister(notifier, mm);
      if (e < 0) {
        mr.remove();
        return e;
      }
      holder = { mrs: [], notifier };
      this.perMm.set(mm, holder);
    }
    holder.mrs.push(mr);
    this.live.add(mr);
    this.nextKey++;
    this.stats.registrations++;
    this.stats.snapshotPages += ret;
    return mr.key;
  }

  /** sys_odp_dereg_mr - drop the newest region of exactly these pages. 0, -EINVAL, -EOVERFLOW. */
  private sysDeregMr(current: Current, addr: unknown, len: unknown): number {
    if (!isProcessContext(current)) return -ERRNO.EINVAL;
    const r = odpRange(addr, len);
    if (typeof r === 'number') return r;
    const holder = this.perMm.get(current.mm);
    if (!holder) return -ERRNO.EINVAL;
    let i = holder.mrs.length - 1;
    while (i >= 0 && (holder.mrs[i].start !== r.start || holder.mrs[i].end !== r.end)) i--;
    if (i < 0) return -ERRNO.EINVAL;
    const [mr] = holder.mrs.splice(i, 1);
    this.drop(mr);
    if (holder.mrs.length === 0) {
      this.perMm.delete(current.mm);
      mmuNotifierUnregister(holder.notifier, current.mm);
    }
    return 0;
  }

  /**
   * sys_odp_advise_mr - fill the mirror of [addr, addr + len) in every region of the caller that
   * contains the range, newest first, faulting as @advice says. Returns 0, or -EINVAL (bad
   * range, unknown advice, no region contains the range), -EOVERFLOW, and the fault's -EFAULT,
   * -EPERM, -ENOMEM, -EBUSY (regions before the failing one keep what they got: advice).
   */
  private sysAdviseMr(current: Current, addr: unknown, len: unknown, advice: unknown): number {
    if (!isProcessContext(current)) return -ERRNO.EINVAL;
    const r = odpRange(addr, len);
    if (typeof r === 'number') return r;
    let mode: OdpFaultMode;
    if (advice === ODP_ADVISE_PREFETCH) mode = 'read';
    else if (advice === ODP_ADVISE_PREFETCH_WRITE) mode = 'write';
    else if (advice === ODP_ADVISE_PREFETCH_NO_FAULT) mode = 'snapshot';
    else return -ERRNO.EINVAL;
    const mrs = (this.perMm.get(current.mm)?.mrs ?? []).filter((m) => m.contains(r.start, r.end));
    if (mrs.length === 0) return -ERRNO.EINVAL;
    if (mode !== 'snapshot') this.stats.prefetches++;
    for (let i = mrs.length - 1; i >= 0; i--) {
      const mr = mrs[i];
      const before = mr.validPages();
      const from = (r.start - mr.start) / PAGE_SIZE;
      const ret = mr.fault(from, from + (r.end - r.start) / PAGE_SIZE, mode);
      if (ret < 0) return ret;
      const gained = mr.validPages() - before;
      if (mode === 'snapshot') this.stats.snapshotPages += gained;
      else this.stats.prefetchedPages += gained;
    }
    return 0;
  }

  /** Remove @mr's notifier and forget it. */
  private drop(mr: OdpMr): void {
    mr.remove();
    this.live.delete(mr);
    this.stats.deregistrations++;
  }

  /** The mm is exiting (exit_mmap's release, before any page is freed): drop its regions. */
  private releaseAll(mm: MmStruct): void {
    const holder = this.perMm.get(mm);
    if (!holder) return;
    this.perMm.delete(mm);
    for (const mr of holder.mrs.splice(0)) {
      this.drop(mr);
      this.stats.deregAtExit++;
    }
  }

  /**
   * checkInvariants - every region belongs to a live address space, and every page it mirrors
   * is the page the CPU page table maps at that address now: a stale entry means an
   * invalidation was missed (the use-after-free ODP's notifier exists to prevent).
   */
  checkInvariants(): string[] {
    const out: string[] = [];
    for (const mr of this.live) {
      if (!mr.mm.alive) {
        out.push(`pin-odp: region ${mr.key} outlived its address space`);
        continue;
      }
      for (let i = 0; i < mr.nrPages && out.length < 16; i++) {
        const addr = mr.start + i * PAGE_SIZE;
        const pfn = mr.mirroredPfn(addr);
        if (pfn < 0) continue;
        const pm = pagemapEntry(mr.mm, addr);
        if (!pm.present || pm.pfn !== pfn)
          out.push(
            `pin-odp: region ${mr.key} mirrors pfn ${pfn} at ${addr.toString(16)}, the page table maps ${pm.present ? `pfn ${pm.pfn}` : 'nothing'}`,
          );
      }
    }
    return out;
  }
}
