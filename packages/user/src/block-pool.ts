/**
 * BlockPool - UADK's hugetlb block pool (wd_blockpool_create / wd_block_alloc / wd_block_free,
 * KERNEL-FACTS §8): one MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB mapping, populated at creation
 * (MAP_POPULATE), carved into fixed-size blocks. The memory is present and huge before any
 * request, so the device takes no IO page faults on it and its IOTLB covers it in few entries.
 *
 * createBlockPool throws SyscallError ENOMEM when the pool cannot be made (no free hugetlb pages
 * of the size asked for, as the kernel's mmap answers) and EINVAL for a bad shape.
 * alloc() returns null when every block is in use (wd_block_alloc's NULL); free() throws EINVAL
 * for an address that is not an allocated block of this pool.
 */
import {
  ERRNO,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_HUGE_1GB,
  MAP_HUGE_2MB,
  MAP_POPULATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  SyscallError,
  type Process,
} from '@svasim/kernel';

export interface BlockPoolOptions {
  /** Bytes per block; rounded up to `align`. */
  blockSize: number;
  /** Number of blocks. */
  blockNum: number;
  /** Block alignment, a power of two (default 64, a cache line). */
  align?: number;
  /** The huge page size backing the pool (default '2MiB'). */
  hugePageSize?: '2MiB' | '1GiB';
}

const HUGE = {
  '2MiB': { bytes: 2 << 20, flag: MAP_HUGE_2MB },
  '1GiB': { bytes: 1 << 30, flag: MAP_HUGE_1GB },
};

export class BlockPool {
  private readonly freeList: number[];
  private readonly used = new Set<number>();
  private destroyed = false;

  private constructor(
    readonly proc: Process,
    /** Start of the mapping. */
    readonly base: number,
    /** Mapping length (whole huge pages). */
    readonly size: number,
    /** Bytes per block after alignment. */
    readonly blockSize: number,
    readonly blockNum: number,
  ) {
    // Lowest addresses first, as a stack.
    this.freeList = [];
    for (let i = blockNum - 1; i >= 0; i--) this.freeList.push(base + i * blockSize);
  }

  /** @internal createBlockPool. */
  static create(proc: Process, opts: BlockPoolOptions): BlockPool {
    const align = opts.align ?? 64;
    const huge = HUGE[opts.hugePageSize ?? '2MiB'];
    const okInt = (n: number) => Number.isSafeInteger(n) && n > 0;
    if (
      !okInt(opts.blockSize) ||
      !okInt(opts.blockNum) ||
      !okInt(align) ||
      (align & (align - 1)) !== 0 ||
      !huge
    )
      throw new SyscallError(-ERRNO.EINVAL, 'wd_blockpool_create', 'bad block size, count or alignment');
    const blockSize = Math.ceil(opts.blockSize / align) * align;
    const size = Math.ceil((blockSize * opts.blockNum) / huge.bytes) * huge.bytes;
    let base: number;
    try {
      base = proc.mmap(size, {
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | huge.flag | MAP_POPULATE,
      });
    } catch (e) {
      if (e instanceof SyscallError && e.code !== 'ENOMEM' && e.code !== 'EINVAL') throw e;
      throw new SyscallError(-ERRNO.ENOMEM, 'wd_blockpool_create', `no ${size} bytes of hugetlb memory`);
    }
    return new BlockPool(proc, base, size, blockSize, opts.blockNum);
  }

  /** Blocks not in use. */
  get available(): number {
    return this.freeList.length;
  }

  /** alloc - one block's address, or null when all are in use (wd_block_alloc). */
  alloc(): number | null {
    this.assertLive('wd_block_alloc');
    const addr = this.freeList.pop();
    if (addr === undefined) return null;
    this.used.add(addr);
    return addr;
  }

  /** free - give back a block from alloc() (wd_block_free); EINVAL for anything else. */
  free(addr: number): void {
    this.assertLive('wd_block_free');
    if (!this.used.delete(addr))
      throw new SyscallError(
        -ERRNO.EINVAL,
        'wd_block_free',
        `0x${addr.toString(16)} is not an allocated block`,
      );
    this.freeList.push(addr);
  }

  /** contains - whether [addr, addr+len) lies inside the pool's mapping. */
  contains(addr: number, len = 1): boolean {
    return addr >= this.base && addr + len <= this.base + this.size;
  }

  /** destroy - unmap the pool (wd_blockpool_destroy); blocks still allocated become invalid. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.freeList.length = 0;
    this.used.clear();
    this.proc.munmap(this.base, this.size);
  }

  private assertLive(call: string): void {
    if (this.destroyed) throw new SyscallError(-ERRNO.EINVAL, call, 'pool destroyed');
  }
}

/** createBlockPool - a pool of @opts.blockNum blocks in @proc (wd_blockpool_create). */
export function createBlockPool(proc: Process, opts: BlockPoolOptions): BlockPool {
  return BlockPool.create(proc, opts);
}
