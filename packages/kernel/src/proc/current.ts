import { ERRNO } from '../uapi/errno';
import type { FdTable } from '../fs/fdtable';
import type { Cred } from './cred';
import type { Rlimits } from './rlimit';

/**
 * IUserAccess - copies between kernel buffers and the calling process's user address space
 * (the uaccess routines). Implemented by the mm: it faults pages in as the kernel would.
 */
export interface IUserAccess {
  /** Copy `dst.length` bytes from user address `addr` into `dst`. Returns 0, or -EFAULT if any byte is inaccessible. */
  copyFromUser(dst: Uint8Array, addr: number): number;
  /** Copy `src` to user address `addr`. Returns 0, or -EFAULT if any byte is not writable. */
  copyToUser(addr: number, src: Uint8Array): number;
}

/**
 * Current - the calling process as every syscall, file operation and ioctl handler sees it
 * (the C `current`): its pid, credentials, limits, file table and user memory.
 */
export interface Current {
  /** The task's pid (tgid). */
  readonly pid: number;
  /** Credentials used for permission checks. */
  readonly cred: Cred;
  /** Resource limits (RLIMIT_MEMLOCK, RLIMIT_NOFILE, ...). */
  readonly rlimits: Rlimits;
  /** Open files. */
  readonly files: FdTable;
  /** User-memory access for copyFromUser/copyToUser. */
  readonly mm: IUserAccess;
  /** Charge `ns` of simulated CPU time to the task, when the caller models a cost. */
  charge?(ns: number): void;
}

function validUserAddress(addr: unknown): addr is number {
  return typeof addr === 'number' && Number.isSafeInteger(addr) && addr >= 0;
}

/**
 * copyFromUser - copy `dst.length` bytes from the current process's address `addr`.
 *
 * Returns 0, or -EFAULT for an address that is not a non-negative integer or any byte the
 * process cannot read. Nothing to release.
 */
export function copyFromUser(current: Current, dst: Uint8Array, addr: number): number {
  if (!validUserAddress(addr)) return -ERRNO.EFAULT;
  return current.mm.copyFromUser(dst, addr);
}

/**
 * copyToUser - copy `src` to the current process's address `addr`.
 *
 * Returns 0, or -EFAULT for an address that is not a non-negative integer or any byte the
 * process cannot write. Nothing to release.
 */
export function copyToUser(current: Current, addr: number, src: Uint8Array): number {
  if (!validUserAddress(addr)) return -ERRNO.EFAULT;
  return current.mm.copyToUser(addr, src);
}
