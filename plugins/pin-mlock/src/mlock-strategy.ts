/**
 * MlockStrategy - "why not mlock?" (the review of both pinning RFCs, 001/002 in the seed
 * threads): prepare mlocks the buffer, release munlocks it. mlock makes pages present and
 * unevictable (the unevictable LRU: reclaim never takes them) and charges them to locked_vm
 * against RLIMIT_MEMLOCK, but it is not a pin: compaction (vm.compact_unevictable_allowed = 1,
 * the default), NUMA balancing, CMA allocation and memory offlining still migrate the pages
 * (KERNEL-FACTS §3 "mlock versus pin"), and a device that touches a page during its migration
 * still takes an IO page fault. It never blocks anything the kernel wants to move.
 *
 * Overlapping prepares: mlock is not counted, so the strategy keeps a per-process count of the
 * prepares holding each page (LockCounts) and munlocks only the pages whose last holder releases
 * them. Ranges are whole pages, as mlock rounds them (start down, end up).
 */
import {
  ERRNO,
  PAGE_SIZE,
  SyscallError,
  type MmStruct,
  type PinStrategy,
  type PinTarget,
} from '@svasim/kernel';
import { LockCounts, type PageRun } from './lock-counts';

/** The strategy name (API.md): the package name without `pin-`. */
export const MLOCK_STRATEGY_NAME = 'mlock';

/** The pages [first, first + n) a (addr, len) range covers, rounded as mlock rounds it. */
interface PageSpan {
  first: number;
  n: number;
}

/**
 * pageSpan - validate (@addr, @len) and round it to whole pages (mlock's rounding). Throws
 * SyscallError EINVAL (syscall @call) for a value that is not a non-negative integer or a range
 * that does not fit in the address space (the kernel's wrap-around check).
 */
function pageSpan(call: string, addr: number, len: number): PageSpan {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0)
    throw new SyscallError(-ERRNO.EINVAL, call, 'address and length must be non-negative integers');
  if (!Number.isSafeInteger(addr + len + PAGE_SIZE))
    throw new SyscallError(-ERRNO.EINVAL, call, 'the range wraps around the address space');
  if (len === 0) return { first: 0, n: 0 };
  const first = Math.floor(addr / PAGE_SIZE);
  return { first, n: Math.ceil((addr + len) / PAGE_SIZE) - first };
}

/** The first hole in [start, end) of @mm's VMAs, or -1 when it is all mapped. */
function firstHole(mm: MmStruct, start: number, end: number): number {
  let cursor = start;
  while (cursor < end) {
    const vma = mm.findVma(cursor);
    if (!vma || vma.start > cursor) return cursor;
    cursor = vma.end;
  }
  return -1;
}

/**
 * MlockStrategy - the 'mlock' strategy of one kernel. Per-process state is keyed by the address
 * space, so it dies with the process and a forked child (whose VMAs do not inherit VM_LOCKED)
 * starts with nothing held.
 */
export class MlockStrategy implements PinStrategy {
  readonly name = MLOCK_STRATEGY_NAME;
  readonly addressing = 'sva' as const;
  private readonly counts = new WeakMap<MmStruct, LockCounts>();

  /**
   * prepare - mlock the pages of [@addr, @addr + @len) and count one more holder for each.
   * A zero length does nothing (mlock(addr, 0) succeeds). Throws SyscallError with mlock's errno:
   * EINVAL (not integers, wrap-around), ENOMEM (part of the range unmapped: checked first, so
   * nothing is locked; or locked_vm would go over RLIMIT_MEMLOCK without CAP_IPC_LOCK), EPERM
   * (RLIMIT_MEMLOCK is 0 and no CAP_IPC_LOCK: !can_do_mlock), EAGAIN (the pages could not be
   * faulted in; the part this call locked is unlocked again). A failed prepare holds nothing.
   * Context: the process's syscall (mlock), charged to it. Released by release().
   */
  prepare(target: PinTarget, addr: number, len: number): void {
    const { first, n } = pageSpan('mlock', addr, len);
    if (n === 0) return;
    const proc = target.proc;
    const start = first * PAGE_SIZE;
    const end = start + n * PAGE_SIZE;
    // mlock would lock the VMAs before a hole and then fail; refuse the whole range up front.
    if (firstHole(proc.mm, start, end) >= 0)
      throw new SyscallError(-ERRNO.ENOMEM, 'mlock', 'part of the range is not mapped');
    const counts = this.countsOf(proc.mm);
    try {
      proc.mlock(start, end - start);
    } catch (e) {
      // EAGAIN comes after the VMAs were locked: unlock what no other prepare holds.
      if (e instanceof SyscallError && e.code === 'EAGAIN')
        this.munlockRuns(target, counts.unheldRuns(first, n));
      throw e;
    }
    counts.acquire(first, n);
  }

  /**
   * release - one holder less for each page of [@addr, @addr + @len) (rounded as prepare rounds
   * it); the pages left with none are munlocked. A zero length does nothing. Throws SyscallError
   * (syscall 'munlock') EINVAL for bad numbers or when some page of the range is held by no
   * prepare (nothing is changed then). A page unmapped since its prepare is simply forgotten
   * (munlock's ENOMEM for it is ignored: its lock went with the mapping).
   */
  release(target: PinTarget, addr: number, len: number): void {
    const { first, n } = pageSpan('munlock', addr, len);
    if (n === 0) return;
    const counts = this.counts.get(target.proc.mm);
    if (!counts || !counts.heldAll(first, n))
      throw new SyscallError(-ERRNO.EINVAL, 'munlock', 'the range was not prepared');
    this.munlockRuns(target, counts.release(first, n));
  }

  /** heldPages - pages of @proc's address space some prepare holds (for tests and reports). */
  heldPages(target: Pick<PinTarget, 'proc'>): number {
    return this.counts.get(target.proc.mm)?.pages ?? 0;
  }

  /** holders - how many prepares hold the page at @addr of @target's process. */
  holders(target: Pick<PinTarget, 'proc'>, addr: number): number {
    return this.counts.get(target.proc.mm)?.count(Math.floor(addr / PAGE_SIZE)) ?? 0;
  }

  private countsOf(mm: MmStruct): LockCounts {
    let c = this.counts.get(mm);
    if (!c) this.counts.set(mm, (c = new LockCounts()));
    return c;
  }

  private munlockRuns(target: PinTarget, runs: readonly PageRun[]): void {
    for (const [first, n] of runs) {
      try {
        target.proc.munlock(first * PAGE_SIZE, n * PAGE_SIZE);
      } catch (e) {
        if (!(e instanceof SyscallError && e.code === 'ENOMEM')) throw e;
      }
    }
  }
}
