/**
 * MmCaller - what mm asks of the calling process's credentials and limits: enough to decide
 * can_do_mlock, RLIMIT_MEMLOCK and CAP_IPC_LOCK without importing the process layer.
 */
export interface MmCaller {
  /** capable(CAP_IPC_LOCK). */
  readonly ipcLock: boolean;
  /** rlimit(RLIMIT_MEMLOCK) in bytes (Infinity = unlimited). */
  readonly memlockLimit: number;
  /** capable(CAP_SYS_RAWIO): may map below vm.mmap_min_addr. Absent means no. */
  readonly sysRawio?: boolean;
}

/** callerCanDoMlock - can_do_mlock() of mm/mlock.c: a non-zero RLIMIT_MEMLOCK or CAP_IPC_LOCK. */
export function callerCanDoMlock(caller: MmCaller): boolean {
  return caller.memlockLimit !== 0 || caller.ipcLock;
}
