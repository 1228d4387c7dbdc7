import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE, TASK_SIZE } from '../uapi/mman';
import {
  FAULT_FLAG_USER,
  FAULT_FLAG_WRITE,
  VM_FAULT_ERROR,
  VM_FAULT_OOM,
  VM_FAULT_SIGSEGV,
} from './fault-flags';
import { handleMmFault } from './fault';
import { IOMEM_BASE_PFN } from './io-mem';
import type { MmStruct } from './mm-struct';
import { LEVEL_SIZE } from './page-table';
import { PTE_DIRTY, PTE_PRESENT, PTE_PROTNONE, PTE_WRITE, PTE_YOUNG } from './pte';
import { VM_EXEC, VM_IO, VM_PFNMAP, VM_READ, VM_SHARED, VM_WRITE } from './vm-flags';

/** How many times one access retries after its fault was resolved (guards against a livelock bug). */
const MAX_FAULT_RETRIES = 4;

/**
 * followPte - the pfn a CPU access to `va` may use right now, or -1 if it must fault first.
 * Marks the entry accessed (and dirty for writes), as the MMU does.
 */
export function followPte(mm: MmStruct, va: number, write: boolean): number {
  const pt = mm.pgtable;
  const t = pt.walk(va, false);
  if (!t) return -1;
  const s = pt.slot;
  const hi = t[s + 1];
  if ((hi & (PTE_PRESENT | PTE_PROTNONE)) !== PTE_PRESENT) return -1;
  if (write) {
    if (!(hi & PTE_WRITE)) return -1;
    t[s + 1] = hi | PTE_YOUNG | PTE_DIRTY;
  } else if (!(hi & PTE_YOUNG)) t[s + 1] = hi | PTE_YOUNG;
  const level = pt.level;
  if (level === 3) return t[s];
  const size = LEVEL_SIZE[level];
  return t[s] + Math.floor((va % size) / PAGE_SIZE);
}

/**
 * faultInUserPage - what the architecture's page-fault handler does for a user access: find the
 * VMA, check the access against it (access_error) and call handleMmFault.
 * Returns 0, or VM_FAULT_* error bits (VM_FAULT_SIGSEGV for no VMA or a forbidden access).
 */
export function faultInUserPage(mm: MmStruct, va: number, write: boolean, extraFlags = 0): number {
  const vma = mm.findVma(va);
  if (!vma || vma.start > va) return VM_FAULT_SIGSEGV;
  if (write ? !(vma.flags & VM_WRITE) : !(vma.flags & (VM_READ | VM_WRITE | VM_EXEC)))
    return VM_FAULT_SIGSEGV;
  return handleMmFault(vma, va, (write ? FAULT_FLAG_WRITE : 0) | FAULT_FLAG_USER | extraFlags);
}

/** vmFaultToErrno - -ENOMEM for OOM, else -EFAULT (SIGSEGV and SIGBUS surface as EFAULT). */
export function vmFaultToErrno(ret: number): number {
  return ret & VM_FAULT_OOM ? -ERRNO.ENOMEM : -ERRNO.EFAULT;
}

/**
 * accessUserMemory - a CPU access by the process owning `mm` to [addr, addr + len), taking page
 * faults as the kernel would. With `buf`, bytes are copied (write: from buf into memory; read:
 * from memory into buf, starting at `bufOffset`); without it the pages are only touched.
 * Returns 0, -EFAULT (unmapped, forbidden, or SIGBUS) or -ENOMEM (no memory for the fault).
 * Bytes before a failing page have been transferred, as with a real copy.
 */
export function accessUserMemory(
  mm: MmStruct,
  addr: number,
  len: number,
  write: boolean,
  buf: Uint8Array | null,
  bufOffset = 0,
): number {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0) return -ERRNO.EFAULT;
  if (len === 0) return 0;
  if (addr + len > TASK_SIZE + PAGE_SIZE) return -ERRNO.EFAULT;
  const data = mm.core.data;
  let va = addr;
  const end = addr + len;
  let copied = 0;
  while (va < end) {
    const pageOff = va % PAGE_SIZE;
    const chunk = Math.min(PAGE_SIZE - pageOff, end - va);
    let pfn = followPte(mm, va, write);
    for (let tries = 0; pfn < 0; tries++) {
      if (tries >= MAX_FAULT_RETRIES) return -ERRNO.EFAULT;
      const ret = faultInUserPage(mm, va, write);
      if (ret & VM_FAULT_ERROR) return vmFaultToErrno(ret);
      pfn = followPte(mm, va, write);
    }
    if (buf) {
      if (pfn >= IOMEM_BASE_PFN) {
        // MMIO: the device sees the load or store (a doorbell), nothing is stored in RAM.
        const view = buf.subarray(bufOffset + copied, bufOffset + copied + chunk);
        if (write) mm.core.iomem.write(pfn, pageOff, view);
        else mm.core.iomem.read(pfn, pageOff, view);
      } else if (write) data.write(pfn, pageOff, buf, bufOffset + copied, chunk);
      else data.read(pfn, pageOff, chunk, buf, bufOffset + copied);
    }
    copied += chunk;
    va += chunk;
  }
  if (buf) mm.core.charge(Math.ceil(len / mm.core.costs.memcpyBytesPerNs));
  return 0;
}

/**
 * populateVmaPageRange - fault in every page of [start, end) inside `vma` the way mlock and
 * MAP_POPULATE do (populate_vma_page_range): writable private mappings are faulted for write so
 * COW is broken up front; PFN and I/O mappings are skipped.
 * Returns 0, -ENOMEM, or -EFAULT (a PROT_NONE mapping, or a fault that failed).
 */
export function populateVmaPageRange(mm: MmStruct, start: number, end: number): number {
  let va = start;
  while (va < end) {
    const vma = mm.findVma(va);
    if (!vma || vma.start >= end) return 0;
    if (vma.start > va) va = vma.start;
    const stop = Math.min(end, vma.end);
    if (vma.flags & (VM_IO | VM_PFNMAP)) {
      va = stop;
      continue;
    }
    // PROT_NONE: GUP without FOLL_FORCE refuses it (mlock then reports ENOMEM; MAP_POPULATE ignores it).
    if (!(vma.flags & (VM_READ | VM_WRITE | VM_EXEC))) return -ERRNO.EFAULT;
    const write = (vma.flags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
    const step = vma.hugeSize || PAGE_SIZE;
    for (; va < stop; va += step - (va % step)) {
      if (followPte(mm, va, write) >= 0) continue;
      const ret = handleMmFault(vma, va, write ? FAULT_FLAG_WRITE : 0);
      if (ret & VM_FAULT_ERROR) return vmFaultToErrno(ret);
    }
  }
  return 0;
}
