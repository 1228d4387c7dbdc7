/**
 * PoolChunk - one hugetlb mapping of a process's buffer pool, carved into 4 KiB blocks the way
 * UADK's wd_mempool carves its huge pages (WD_MEMPOOL_BLOCK_SIZE, a bitmap of used blocks). An
 * allocation is a run of consecutive blocks, first fit.
 */
import { PAGE_SIZE } from '@svasim/kernel';

/** POOL_BLOCK_SIZE - the allocation unit (UADK's WD_MEMPOOL_BLOCK_SIZE, 4 KiB). */
export const POOL_BLOCK_SIZE = PAGE_SIZE;

/** PoolChunk - blocks of [base, base + size); `used` holds one byte per block. */
export class PoolChunk {
  /** 1 for a block in use. */
  readonly used: Uint8Array;
  /** First block of each allocation -> its block count. */
  private readonly allocs = new Map<number, number>();
  private freeCount: number;

  constructor(
    /** Start of the hugetlb mapping. */
    readonly base: number,
    /** Mapping length: whole huge pages. */
    readonly size: number,
  ) {
    this.used = new Uint8Array(size / POOL_BLOCK_SIZE);
    this.freeCount = this.used.length;
  }

  /** Blocks not in use. */
  get freeBlocks(): number {
    return this.freeCount;
  }

  /** Allocations handed out and not freed. */
  get allocations(): number {
    return this.allocs.size;
  }

  /** alloc - the address of @n free consecutive blocks (first fit), marked used; -1 when none fit. */
  alloc(n: number): number {
    if (n > this.freeCount) return -1;
    const used = this.used;
    let run = 0;
    for (let b = 0; b < used.length; b++) {
      run = used[b] ? 0 : run + 1;
      if (run < n) continue;
      const first = b - n + 1;
      used.fill(1, first, b + 1);
      this.allocs.set(first, n);
      this.freeCount -= n;
      return this.base + first * POOL_BLOCK_SIZE;
    }
    return -1;
  }

  /**
   * free - give back the allocation at @addr of @n blocks. Returns false (nothing changed) when no
   * allocation of exactly @n blocks starts at @addr.
   */
  free(addr: number, n: number): boolean {
    const off = addr - this.base;
    if (off < 0 || off % POOL_BLOCK_SIZE) return false;
    const first = off / POOL_BLOCK_SIZE;
    if (this.allocs.get(first) !== n) return false;
    this.allocs.delete(first);
    this.used.fill(0, first, first + n);
    this.freeCount += n;
    return true;
  }

  /** contains - whether [@addr, @addr + @len) lies inside the mapping. */
  contains(addr: number, len: number): boolean {
    return addr >= this.base && addr + len <= this.base + this.size;
  }

  /** allocated - whether every block [@addr, @addr + @len) touches is in use. */
  allocated(addr: number, len: number): boolean {
    if (!this.contains(addr, len)) return false;
    const first = Math.floor((addr - this.base) / POOL_BLOCK_SIZE);
    const last = Math.floor((addr + Math.max(len, 1) - 1 - this.base) / POOL_BLOCK_SIZE);
    for (let b = first; b <= last; b++) if (!this.used[b]) return false;
    return true;
  }
}
