import type { MmCaller } from '../mm/mm-caller';
import type { MmStruct } from '../mm/mm-struct';
import type { Current } from './current';

/**
 * ProcessContext - the `current` that kernel syscalls receive: a Current whose mm is a full
 * address space (for GUP, mmap, pinning) and whose credentials answer mm's questions.
 * Every Process is one; plugin syscalls narrow a Current with isProcessContext.
 */
export interface ProcessContext extends Current {
  readonly mm: MmStruct;
  /** CAP_IPC_LOCK and RLIMIT_MEMLOCK, as mm asks for them. */
  mmCaller(): MmCaller;
}

/** isProcessContext - true when `current` carries a full address space. */
export function isProcessContext(current: Current): current is ProcessContext {
  return typeof (current as Partial<ProcessContext>).mmCaller === 'function';
}
