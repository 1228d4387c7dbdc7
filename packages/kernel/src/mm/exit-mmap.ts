import type { MmStruct } from './mm-struct';
import { removeVma } from './vma-ops';

/**
 * exitMmap - tear down an address space when its last user goes (exit_mmap): secondary MMUs are
 * released first (mmu_notifier_release), then every VMA is unmapped and freed, so every page the
 * mm held is freed unless something else (a pin, another process, a shared object) still holds
 * it. After this, faults and DMA through the mm fail.
 */
export function exitMmap(mm: MmStruct): void {
  if (!mm.alive && mm.vmas.length === 0) return;
  const n = mm.notifier;
  if (n) n.release(mm);
  mm.notifier = null;
  for (const vma of [...mm.vmas].reverse()) removeVma(vma);
  mm.alive = false;
  mm.core.mms.delete(mm);
}
