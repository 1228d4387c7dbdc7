/**
 * ProcessPool - one process's buffer pool: hugetlb mappings (PoolChunk) made on demand, each
 * MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB (as UADK's wd_mempool_create maps its pool) and
 * MAP_POPULATE, so every huge page is present before the device sees it. Chunks stay mapped
 * while the process lives (a pool keeps its memory); they go with the address space at exit.
 */
import {
  ERRNO,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_HUGE_1GB,
  MAP_HUGE_2MB,
  MAP_POPULATE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  SyscallError,
  type HugepageSize,
  type Process,
} from '@svasim/kernel';
import { POOL_BLOCK_SIZE, PoolChunk } from './pool-chunk';

/** Bytes and mmap size flag of each huge page size. */
export const HUGE_PAGE: Readonly<Record<HugepageSize, { bytes: number; flag: number }>> = {
  '2MiB': { bytes: 2 ** 21, flag: MAP_HUGE_2MB },
  '1GiB': { bytes: 2 ** 30, flag: MAP_HUGE_1GB },
};

/** What a pool looks like (for tests and reports). */
export interface ProcessPoolInfo {
  /** Hugetlb mappings. */
  chunks: number;
  /** Bytes mapped. */
  bytes: number;
  /** Bytes not handed out. */
  freeBytes: number;
  /** Buffers handed out and not freed. */
  buffers: number;
}

/** ProcessPool - the chunks of one process, oldest first (first fit fills the oldest first). */
export class ProcessPool {
  private readonly chunks: PoolChunk[] = [];

  constructor(
    private readonly proc: Process,
    private readonly pageSize: HugepageSize,
    /** Huge pages per new chunk (a larger request gets as many as it needs). */
    private readonly chunkPages: number,
  ) {}

  /**
   * alloc - @len bytes (rounded up to 4 KiB blocks) from the oldest chunk with room, mapping a new
   * chunk when none has. Returns the address. Throws SyscallError: EINVAL (syscall
   * 'hugetlb_pool_alloc') for a length that is not a positive integer; mmap's errno when a new
   * chunk cannot be mapped (ENOMEM: the hugetlb pool has too few free pages).
   */
  alloc(len: number): number {
    if (!Number.isSafeInteger(len) || len <= 0)
      throw new SyscallError(-ERRNO.EINVAL, 'hugetlb_pool_alloc', 'length must be a positive integer');
    const n = Math.ceil(len / POOL_BLOCK_SIZE);
    for (const c of this.chunks) {
      const a = c.alloc(n);
      if (a >= 0) return a;
    }
    const huge = HUGE_PAGE[this.pageSize].bytes;
    const pages = Math.max(this.chunkPages, Math.ceil((n * POOL_BLOCK_SIZE) / huge));
    const size = pages * huge;
    const base = this.proc.mmap(size, {
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | HUGE_PAGE[this.pageSize].flag | MAP_POPULATE,
    });
    const chunk = new PoolChunk(base, size);
    this.chunks.push(chunk);
    return chunk.alloc(n);
  }

  /**
   * free - give back the buffer at @addr allocated with length @len. Throws SyscallError EINVAL
   * (syscall 'hugetlb_pool_free') when no buffer of that length starts there.
   */
  free(addr: number, len: number): void {
    const n = Number.isSafeInteger(len) && len > 0 ? Math.ceil(len / POOL_BLOCK_SIZE) : 0;
    const chunk = this.chunkOf(addr, 1);
    if (!n || !chunk || !chunk.free(addr, n))
      throw new SyscallError(-ERRNO.EINVAL, 'hugetlb_pool_free', 'not a buffer of this pool');
  }

  /** holds - whether [@addr, @addr + @len) lies in buffers this pool handed out. */
  holds(addr: number, len: number): boolean {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0) return false;
    return this.chunkOf(addr, Math.max(len, 1))?.allocated(addr, len) ?? false;
  }

  /** info - the pool's shape. */
  info(): ProcessPoolInfo {
    let bytes = 0;
    let free = 0;
    let buffers = 0;
    for (const c of this.chunks) {
      bytes += c.size;
      free += c.freeBlocks * POOL_BLOCK_SIZE;
      buffers += c.allocations;
    }
    return { chunks: this.chunks.length, bytes, freeBytes: free, buffers };
  }

  private chunkOf(addr: number, len: number): PoolChunk | undefined {
    return this.chunks.find((c) => c.contains(addr, len));
  }
}
