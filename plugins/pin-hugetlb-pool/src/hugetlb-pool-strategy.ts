/**
 * HugetlbPoolStrategy - buffers from a pool of hugetlb pages, the UADK way (wd_mempool_create +
 * wd_blockpool_create, KERNEL-FACTS §8), the alternative the mempinfd review pointed to: memory
 * the application allocates from the pool is hugetlb memory, populated when the pool maps it, so
 * it is present and huge before any request: the device takes no IO page fault on it and its
 * IOTLB covers 2 MiB per entry. Hugetlb pages are not on the LRU, so reclaim, compaction, NUMA
 * balancing and khugepaged leave them where they are; nothing is pinned and nothing is charged to
 * RLIMIT_MEMLOCK.
 *
 * prepare is a no-op either way: on pool memory because there is nothing left to do, and on any
 * other memory because this strategy only changes where buffers come from. An application that
 * does not allocate through the pool (ctx.allocBuffer) still faults. The strategy counts which
 * case each prepare was (stats) so tests can tell them apart.
 *
 * Pool size: the pool's huge pages come from the kernel's persistent hugetlb pool, the one the
 * kernel option `memory.hugepages` fills at boot (hugepages= on the command line, as UADK
 * deployments configure it). At realize the strategy makes sure that pool holds at least
 * `hugepages` pages of its size, growing it at run time (echo N > nr_hugepages) when the boot
 * option gave fewer, and gives back what it added at unrealize. Each process maps its share on
 * demand, `chunkPages` huge pages at a time, and carves it into 4 KiB blocks.
 */
import {
  type HugepageSize,
  type Kernel,
  type MmStruct,
  type PinStrategy,
  type PinTarget,
} from '@svasim/kernel';
import { ProcessPool, type ProcessPoolInfo } from './process-pool';

/** The strategy name (API.md): the package name without `pin-`. */
export const HUGETLB_POOL_STRATEGY_NAME = 'hugetlb-pool';

/** Options of createHugetlbPoolStrategy. */
export interface HugetlbPoolOptions {
  /** Huge page size backing the pool (default '2MiB'). */
  pageSize?: HugepageSize;
  /**
   * Huge pages the kernel's pool of `pageSize` must hold (nr_hugepages) once the strategy is
   * realized (default 8: 16 MiB of 2 MiB pages). More from `memory.hugepages` is kept as is.
   */
  hugepages?: number;
  /** Huge pages each process maps at a time (default 1). */
  chunkPages?: number;
}

/** The defaults of HugetlbPoolOptions. */
export const HUGETLB_POOL_DEFAULTS: Readonly<Required<HugetlbPoolOptions>> = Object.freeze({
  pageSize: '2MiB',
  hugepages: 8,
  chunkPages: 1,
});

/** What prepare and release saw. */
export interface HugetlbPoolStats {
  /** prepares of memory the pool handed out (already present and huge: nothing to do). */
  preparedInPool: number;
  /** prepares of memory not from the pool (nothing done: the device will fault on it). */
  preparedOutside: number;
  /** release calls. */
  released: number;
}

/**
 * HugetlbPoolStrategy - the 'hugetlb-pool' strategy of one kernel: allocBuffer/freeBuffer carve
 * per-process pools; prepare/release do nothing. Realizable: realize() sizes the kernel's hugetlb
 * pool, unrealize() gives back what it added.
 */
export class HugetlbPoolStrategy implements PinStrategy {
  readonly name = HUGETLB_POOL_STRATEGY_NAME;
  readonly addressing = 'sva' as const;
  readonly options: Readonly<Required<HugetlbPoolOptions>>;
  readonly stats: HugetlbPoolStats = { preparedInPool: 0, preparedOutside: 0, released: 0 };
  /** Huge pages realize() added to the kernel's pool (given back by unrealize). */
  addedHugepages = 0;
  private readonly pools = new WeakMap<MmStruct, ProcessPool>();

  constructor(
    private readonly kernel: Kernel,
    opts: HugetlbPoolOptions = {},
  ) {
    const o = { ...HUGETLB_POOL_DEFAULTS, ...opts };
    if (o.pageSize !== '2MiB' && o.pageSize !== '1GiB')
      throw new RangeError(`hugetlb-pool: pageSize must be '2MiB' or '1GiB'`);
    if (!Number.isInteger(o.hugepages) || o.hugepages < 0)
      throw new RangeError('hugetlb-pool: hugepages must be a non-negative integer');
    if (!Number.isInteger(o.chunkPages) || o.chunkPages < 1)
      throw new RangeError('hugetlb-pool: chunkPages must be a positive integer');
    this.options = Object.freeze(o);
  }

  /**
   * realize - grow the kernel's hugetlb pool of the pool's size to `hugepages` pages if it holds
   * fewer (2 MiB pages by nr_hugepages, 1 GiB pages assembled one by one). A shortfall (fragmented
   * memory) is logged, not fatal: allocBuffer then fails with ENOMEM when the pages run out.
   * Returns 0.
   */
  realize(): number {
    const k = this.kernel;
    const { pageSize, hugepages } = this.options;
    const before = k.hugetlb.stats(pageSize).nr;
    if (before >= hugepages) return 0;
    if (pageSize === '2MiB') k.hugetlb.setNrHugepages(pageSize, hugepages);
    else while (k.hugetlb.stats(pageSize).nr < hugepages && k.allocHugepage(pageSize));
    const after = k.hugetlb.stats(pageSize).nr;
    this.addedHugepages = after - before;
    k.log.printk(
      after < hugepages
        ? `pin-hugetlb-pool: only ${after} of ${hugepages} ${pageSize} huge pages could be reserved`
        : `pin-hugetlb-pool: reserved ${this.addedHugepages} more ${pageSize} huge pages (${after} in the pool)`,
    );
    return 0;
  }

  /** unrealize - give back the huge pages realize() added (those still in use stay, as surplus). */
  unrealize(): void {
    if (!this.addedHugepages) return;
    const h = this.kernel.hugetlb;
    const { pageSize } = this.options;
    h.setNrHugepages(
      pageSize,
      Math.max(0, h.stats(pageSize).nr - h.stats(pageSize).surplus - this.addedHugepages),
    );
    this.addedHugepages = 0;
  }

  /**
   * allocBuffer - @len bytes from @target's process pool (4 KiB blocks of its hugetlb mappings).
   * Returns the address. Throws SyscallError: EINVAL (not a positive integer length), ENOMEM (a
   * new pool mapping needs huge pages the kernel's pool does not have free), ESRCH (the process
   * exited). Released by freeBuffer or the process's exit.
   */
  allocBuffer(target: PinTarget, len: number): number {
    return this.poolOf(target).alloc(len);
  }

  /** freeBuffer - give back a buffer allocBuffer returned; EINVAL when no buffer of @len starts at @addr. */
  freeBuffer(target: PinTarget, addr: number, len: number): void {
    this.poolOf(target).free(addr, len);
  }

  /** prepare - nothing to do (see the file comment); counts whether the range is pool memory. */
  prepare(target: PinTarget, addr: number, len: number): void {
    if (this.isPoolMemory(target, addr, len)) this.stats.preparedInPool++;
    else this.stats.preparedOutside++;
  }

  /** release - nothing to undo. */
  release(_target: PinTarget, _addr: number, _len: number): void {
    this.stats.released++;
  }

  /** isPoolMemory - whether [@addr, @addr + @len) lies in buffers @target's pool handed out. */
  isPoolMemory(target: Pick<PinTarget, 'proc'>, addr: number, len: number): boolean {
    return this.pools.get(target.proc.mm)?.holds(addr, len) ?? false;
  }

  /** poolInfo - the shape of @target's process pool (all zero before its first allocBuffer). */
  poolInfo(target: Pick<PinTarget, 'proc'>): ProcessPoolInfo {
    return this.pools.get(target.proc.mm)?.info() ?? { chunks: 0, bytes: 0, freeBytes: 0, buffers: 0 };
  }

  private poolOf(target: PinTarget): ProcessPool {
    const mm = target.proc.mm;
    let pool = this.pools.get(mm);
    if (!pool) {
      pool = new ProcessPool(target.proc, this.options.pageSize, this.options.chunkPages);
      this.pools.set(mm, pool);
    }
    return pool;
  }
}
