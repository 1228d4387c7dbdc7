/**
 * The migration-control strategy: the per-process form of "mlock + vm.compact_unevictable_allowed=0
 * + no NUMA balancing" that the mempinfd review suggested (seeds/001). prepare mlocks the buffer
 * and sets the process's MMF_MIGRATION_CONTROL flag (kernel side: @svasim/kernel's
 * mm/migration-control.ts) through the proposed prctl(PR_SET_MIGRATION_CONTROL) this plugin
 * registers; compaction, NUMA balancing and khugepaged then leave the locked pages alone, while
 * CMA allocations and memory offline still migrate them.
 *
 * Bookkeeping per process (by mm): the prepared ranges, as the pages they cover. release unlocks
 * only pages no other prepared range still covers; the flag stays while any range is prepared and
 * is cleared with the last one, unless the process had set it itself before the first prepare.
 */
import {
  ERRNO,
  PAGE_SIZE,
  SyscallError,
  isProcessContext,
  mmMigrationControlled,
  mmSetMigrationControl,
  type Current,
  type Kernel,
  type MmStruct,
  type PinStrategy,
  type PinTarget,
  type Process,
} from '@svasim/kernel';

/** The system call's name (a proposal: Linux's prctl has no such option). */
export const PRCTL_SYSCALL = 'prctl';
/**
 * prctl options (proposed; outside the range Linux's PR_* numbers use). PR_SET takes arg2 = 0 or
 * 1 and arg3..arg5 = 0; PR_GET takes no arguments and returns 0 or 1.
 */
export const PR_SET_MIGRATION_CONTROL = 0x4d494701;
export const PR_GET_MIGRATION_CONTROL = 0x4d494702;

/** What the strategy did, for tests and experiments. */
export interface MigrationControlStats {
  prepares: number;
  releases: number;
  /** Times the flag was set / cleared by the strategy. */
  flagSets: number;
  flagClears: number;
}

/** A process's prepared ranges (page-aligned [start, end)) and whether the strategy set its flag. */
interface MmRanges {
  readonly ranges: Array<[number, number]>;
  setFlag: boolean;
}

const arg = (v: unknown): number => (v === undefined ? 0 : (v as number));

/**
 * MigrationControlStrategy - the PinStrategy 'migration-control' and the kernel side of its prctl
 * options. One per kernel, made by the plugin's register(); realize() adds the system call.
 */
export class MigrationControlStrategy implements PinStrategy {
  readonly name = 'migration-control';
  readonly addressing = 'sva' as const;
  readonly stats: MigrationControlStats = { prepares: 0, releases: 0, flagSets: 0, flagClears: 0 };
  private readonly byMm = new WeakMap<MmStruct, MmRanges>();

  constructor(readonly kernel: Kernel) {}

  /** realize - register prctl. 0, or -EEXIST when something else registered prctl. */
  realize(): number {
    return this.kernel.registerSyscall(PRCTL_SYSCALL, (current, option, a2, a3, a4, a5) =>
      sysPrctl(current, option, a2, a3, a4, a5),
    );
  }

  /** unrealize - remove the system call (flags already set stay with their mms). */
  unrealize(): void {
    this.kernel.syscalls.unregister(PRCTL_SYSCALL);
  }

  /**
   * prepare - mlock [addr, addr + len) (rounded out to pages, as mlock does) in target.proc and
   * set its MMF_MIGRATION_CONTROL flag if it is not set; len 0 does nothing (as mlock). Throws
   * SyscallError: EINVAL ('prepare': an address or length that is not a non-negative integer, a
   * wrapping range), ENOMEM
   * ('prepare': part of the range unmapped, checked first so nothing is locked), and mlock's
   * EPERM (no RLIMIT_MEMLOCK and no CAP_IPC_LOCK), ENOMEM (over RLIMIT_MEMLOCK), EAGAIN (memory
   * could not be faulted in: as with mlock, the range stays locked). Otherwise a failed prepare
   * changes nothing (the flag it set is taken back).
   */
  prepare(target: PinTarget, addr: number, len: number): void {
    const p = target.proc;
    const [start, end] = pageRange('prepare', addr, len);
    if (start === end) return; // mlock(addr, 0): nothing to do, and no flag for nothing
    if (!fullyMapped(p.mm, start, end))
      throw new SyscallError(-ERRNO.ENOMEM, 'prepare', 'part of the range is not mapped');
    // The flag goes first, so that the faults mlock's populate takes (a NUMA hint among them)
    // already see it; a failed mlock takes it back.
    const setFlag = p.syscall(PRCTL_SYSCALL, PR_GET_MIGRATION_CONTROL) === 0;
    if (setFlag) p.syscall(PRCTL_SYSCALL, PR_SET_MIGRATION_CONTROL, 1);
    try {
      p.mlock(start, end - start);
    } catch (e) {
      if (setFlag) p.syscall(PRCTL_SYSCALL, PR_SET_MIGRATION_CONTROL, 0);
      throw e;
    }
    let st = this.byMm.get(p.mm);
    if (!st) {
      st = { ranges: [], setFlag: false };
      this.byMm.set(p.mm, st);
    }
    if (setFlag) {
      st.setFlag = true;
      this.stats.flagSets++;
    }
    st.ranges.push([start, end]);
    this.stats.prepares++;
  }

  /**
   * release - undo one prepare of the same pages: munlock what no other prepared range of the
   * process covers; with the last range, clear the flag if prepare set it. Throws SyscallError
   * EINVAL ('release') for bad arguments or pages no prepare covered, and munlock's errors.
   */
  release(target: PinTarget, addr: number, len: number): void {
    const p = target.proc;
    const [start, end] = pageRange('release', addr, len);
    if (start === end) return;
    const st = this.byMm.get(p.mm);
    const i = st ? st.ranges.findIndex(([s, e]) => s === start && e === end) : -1;
    if (!st || i < 0) throw new SyscallError(-ERRNO.EINVAL, 'release', 'no prepare of these pages');
    st.ranges.splice(i, 1);
    for (const [s, e] of uncovered(start, end, st.ranges)) p.munlock(s, e - s);
    if (st.ranges.length === 0) {
      this.byMm.delete(p.mm);
      if (st.setFlag) {
        p.syscall(PRCTL_SYSCALL, PR_SET_MIGRATION_CONTROL, 0);
        this.stats.flagClears++;
      }
    }
    this.stats.releases++;
  }

  /** The page-aligned ranges @proc has prepared, oldest first. */
  preparedRanges(proc: Process): ReadonlyArray<readonly [number, number]> {
    return this.byMm.get(proc.mm)?.ranges ?? [];
  }
}

/**
 * sys_prctl for the two proposed options. Returns 0 / the flag, or -EINVAL for any other option
 * (as prctl does for an unknown one), arg2 other than 0/1, or a non-zero unused argument.
 */
function sysPrctl(
  current: Current,
  option: unknown,
  a2: unknown,
  a3: unknown,
  a4: unknown,
  a5: unknown,
): number {
  if (!isProcessContext(current)) return -ERRNO.EINVAL;
  if (arg(a3) !== 0 || arg(a4) !== 0 || arg(a5) !== 0) return -ERRNO.EINVAL;
  switch (option) {
    case PR_SET_MIGRATION_CONTROL: {
      const on = arg(a2);
      if (on !== 0 && on !== 1) return -ERRNO.EINVAL;
      mmSetMigrationControl(current.mm, on === 1);
      return 0;
    }
    case PR_GET_MIGRATION_CONTROL:
      if (arg(a2) !== 0) return -ERRNO.EINVAL;
      return mmMigrationControlled(current.mm) ? 1 : 0;
    default:
      return -ERRNO.EINVAL;
  }
}

/**
 * [addr, addr + len) rounded out to pages (empty for len 0, as mlock's); throws SyscallError
 * EINVAL for bad input.
 */
function pageRange(call: string, addr: number, len: number): [number, number] {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0)
    throw new SyscallError(-ERRNO.EINVAL, call, 'address and length must be non-negative integers');
  if (len === 0) return [addr, addr];
  // Past 2^53 the sum is no longer exact: such a range wraps as far as svasim can tell.
  if (addr + len > Number.MAX_SAFE_INTEGER) throw new SyscallError(-ERRNO.EINVAL, call, 'the range wraps');
  return [addr - (addr % PAGE_SIZE), Math.ceil((addr + len) / PAGE_SIZE) * PAGE_SIZE];
}

/** Do VMAs cover [start, end) without a hole? */
function fullyMapped(mm: MmStruct, start: number, end: number): boolean {
  let at = start;
  while (at < end) {
    const vma = mm.vmaLookup(at);
    if (!vma) return false;
    at = vma.end;
  }
  return true;
}

/** The parts of [start, end) that no range of @others covers, in order. */
function uncovered(
  start: number,
  end: number,
  others: ReadonlyArray<[number, number]>,
): Array<[number, number]> {
  const cuts = others
    .filter(([s, e]) => s < end && e > start)
    .map(([s, e]): [number, number] => [Math.max(s, start), Math.min(e, end)])
    .sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  let at = start;
  for (const [s, e] of cuts) {
    if (s > at) out.push([at, s]);
    if (e > at) at = e;
  }
  if (at < end) out.push([at, end]);
  return out;
}
