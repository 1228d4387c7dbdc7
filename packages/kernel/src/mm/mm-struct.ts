import { PAGE_SIZE, TASK_SIZE } from '../uapi/mman';
import { accessUserMemory } from './access';
import { PageTable } from './page-table';
import type { MmCore } from './mm-core';
import type { MmNotifierHooks } from './notifier-hooks';
import type { VmAreaStruct } from './vma';

/** mm->flags bits. */
export const MMF_HAS_PINNED = 1 << 0;
export const MMF_OOM_SKIP = 1 << 1;

/** Default top of the mmap area (below the stack gap), as x86-64 lays it out without ASLR. */
export const MMAP_BASE = 0x7f0000000000;
/** Lowest address mmap hands out (vm.mmap_min_addr). */
export const MMAP_MIN_ADDR = 0x10000;

/**
 * MmStruct - one address space: its VMAs (a sorted array standing in for the maple tree),
 * page table and the counters /proc/PID/status reports. Created by mmAlloc (spawn, fork) and
 * released by exitMmap.
 */
export class MmStruct {
  readonly id: number;
  readonly pgtable = new PageTable();
  /** VMAs sorted by start, non-overlapping. */
  readonly vmas: VmAreaStruct[] = [];
  /** Anonymous pages mapped (MM_ANONPAGES), in pages. */
  rssAnon = 0;
  /** Shared-memory pages mapped (MM_SHMEMPAGES), in pages. */
  rssShmem = 0;
  /** Device / file pages mapped (MM_FILEPAGES), in pages. */
  rssFile = 0;
  /** Swap entries in the page table (MM_SWAPENTS), in pages: /proc/PID/status VmSwap. */
  swapEnts = 0;
  /**
   * Pages in VM_LOCKED VMAs plus accountedLockedVm (VmLck): mm->locked_vm, which mlock and
   * account_locked_vm() both charge.
   */
  lockedVm = 0;
  /**
   * The part of lockedVm that drivers charged with account_locked_vm() for memory they pin
   * (VFIO type1's vfio_lock_acct) rather than VM_LOCKED VMAs; they uncharge it themselves.
   */
  accountedLockedVm = 0;
  /** Pages pinned on behalf of this mm by pinning interfaces that account them (VmPin). */
  pinnedVm = 0;
  /** Pages of all VMAs (VmSize). */
  totalVm = 0;
  /** MMF_* bits. */
  flags = 0;
  /** VM flags every new VMA gets (mlockall(MCL_FUTURE) sets VM_LOCKED). */
  defFlags = 0;
  /** Bumped around fork's copy; GUP-fast pins back out when it moves. */
  writeProtectSeq = 0;
  /** Preferred NUMA node for allocations. */
  node = 0;
  /** mm_users: tasks using this address space. */
  users = 1;
  /** False once exit_mmap ran: faults and DMA through it fail. */
  alive = true;
  /** The MMU-notifier layer's hooks, when something subscribed. */
  notifier: MmNotifierHooks | null = null;
  /** The pid that owns this mm (for messages). */
  ownerPid = 0;
  private cache: VmAreaStruct | null = null;

  constructor(readonly core: MmCore) {
    this.id = core.allocMmId();
    core.mms.add(this);
  }

  /**
   * findVma - the first VMA with end > addr (it may start above addr), or null (find_vma).
   */
  findVma(addr: number): VmAreaStruct | null {
    const c = this.cache;
    if (c && c.start <= addr && addr < c.end) return c;
    const v = this.vmas;
    let lo = 0;
    let hi = v.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v[mid].end <= addr) lo = mid + 1;
      else hi = mid;
    }
    const vma = lo < v.length ? v[lo] : null;
    if (vma && vma.start <= addr) this.cache = vma;
    return vma;
  }

  /** vmaLookup - the VMA containing addr, or null (vma_lookup). */
  vmaLookup(addr: number): VmAreaStruct | null {
    const vma = this.findVma(addr);
    return vma && vma.start <= addr ? vma : null;
  }

  /** indexOf - position of `vma` in the sorted array (-1 if absent). */
  indexOf(vma: VmAreaStruct): number {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v[mid].start < vma.start) lo = mid + 1;
      else hi = mid;
    }
    return v[lo] === vma ? lo : -1;
  }

  /** insertVma - link a VMA that overlaps no other (vma_link). */
  insertVma(vma: VmAreaStruct): void {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v[mid].start < vma.start) lo = mid + 1;
      else hi = mid;
    }
    v.splice(lo, 0, vma);
  }

  /** removeVma - unlink a VMA from the array (the caller frees what it maps). */
  removeVma(vma: VmAreaStruct): void {
    const i = this.indexOf(vma);
    if (i >= 0) this.vmas.splice(i, 1);
    if (this.cache === vma) this.cache = null;
  }

  /** Forget the lookup cache (after VMAs change shape). */
  invalidateCache(): void {
    this.cache = null;
  }

  /**
   * getUnmappedArea - the highest free range of `len` bytes aligned to `align` below the mmap
   * base (top-down, as x86-64 does). Returns the address, or -ENOMEM (as a negative number).
   */
  getUnmappedArea(len: number, align: number, hint = 0): number {
    if (hint && hint % align === 0 && hint + len <= TASK_SIZE && hint >= MMAP_MIN_ADDR) {
      const vma = this.findVma(hint);
      if (!vma || vma.start >= hint + len) return hint;
    }
    let top = MMAP_BASE;
    for (let i = this.vmas.length - 1; i >= -1; i--) {
      const vma = i >= 0 ? this.vmas[i] : null;
      if (vma && vma.start >= top) continue;
      const gapStart = vma ? vma.end : MMAP_MIN_ADDR;
      const gapEnd = top;
      const candidate = Math.floor((gapEnd - len) / align) * align;
      if (candidate >= gapStart && candidate >= MMAP_MIN_ADDR && candidate + len <= gapEnd) return candidate;
      if (vma) top = Math.min(top, vma.start);
    }
    return -12; // -ENOMEM
  }

  /**
   * copyFromUser - copy `dst.length` bytes at user address `addr` into `dst`, faulting pages in
   * as a kernel uaccess would. Returns 0 or -EFAULT (-ENOMEM when a fault finds no memory).
   */
  copyFromUser(dst: Uint8Array, addr: number): number {
    return accessUserMemory(this, addr, dst.length, false, dst);
  }

  /** copyToUser - copy `src` to user address `addr`. Returns 0 or -EFAULT (-ENOMEM). */
  copyToUser(addr: number, src: Uint8Array): number {
    return accessUserMemory(this, addr, src.length, true, src);
  }

  /** Resident set in bytes (VmRSS). */
  get rssBytes(): number {
    return (this.rssAnon + this.rssShmem + this.rssFile) * PAGE_SIZE;
  }
}
