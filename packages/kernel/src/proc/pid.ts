import { ERRNO } from '../uapi/errno';

/** PID_MAX_LIMIT on 64-bit: the largest pid_max (include/linux/threads.h), 4 Mi. */
export const PID_MAX_LIMIT = 4 * 1024 * 1024;
/** RESERVED_PIDS: after wrapping, allocation restarts here, leaving low pids to daemons (kernel/pid.c). */
export const RESERVED_PIDS = 300;

/**
 * PidAllocator - the pid namespace's id allocator (alloc_pid/free_pid).
 *
 * Deterministic and cyclic, like idr_alloc_cyclic: pids grow from 1; a freed pid is not reused
 * until the counter wraps at pidMax, after which it restarts at RESERVED_PIDS and skips pids
 * still in use. One allocator per kernel.
 */
export class PidAllocator {
  private readonly inUse = new Set<number>();
  private next = 1;

  /**
   * @param pidMax - one past the largest pid (sysctl kernel.pid_max), default {@link PID_MAX_LIMIT}.
   *   Throws RangeError unless it is an integer > RESERVED_PIDS.
   */
  constructor(readonly pidMax: number = PID_MAX_LIMIT) {
    if (!Number.isInteger(pidMax) || pidMax <= RESERVED_PIDS) {
      throw new RangeError(`PidAllocator: invalid pid_max ${pidMax}`);
    }
  }

  /**
   * allocPid - the next free pid, or -EAGAIN when every pid is in use (alloc_pid's answer,
   * which fork passes on). Released by {@link freePid}.
   */
  allocPid(): number {
    const wrapStart = RESERVED_PIDS;
    const span = this.pidMax - 1;
    for (let tries = 0; tries < span; tries++) {
      if (this.next >= this.pidMax) this.next = wrapStart;
      const pid = this.next++;
      if (!this.inUse.has(pid)) {
        this.inUse.add(pid);
        return pid;
      }
    }
    return -ERRNO.EAGAIN;
  }

  /** freePid - release a pid from {@link allocPid}. Returns false if it was not allocated. */
  freePid(pid: number): boolean {
    return this.inUse.delete(pid);
  }

  /** True if `pid` is currently allocated. */
  has(pid: number): boolean {
    return this.inUse.has(pid);
  }

  /** Number of pids in use. */
  get count(): number {
    return this.inUse.size;
  }
}
