/**
 * The 'mempinfd' pin strategy: ctx.prepare(addr, len) pins the buffer through the process's
 * mempinfd fd (MEM_CMD_PIN), ctx.release(addr, len) unpins it (MEM_CMD_UNPIN). The fd is opened
 * by the first prepare of a process and reused while it stays open; if the process closed it,
 * the next call opens a new one (whose registry is empty: a release then answers ENODEV).
 */
import type { File, PinStrategy, PinTarget, Process } from '@svasim/kernel';
import { MEM_CMD_PIN, MEM_CMD_UNPIN } from './uapi';

/** MempinfdStrategy - the strategy object the plugin registers under PIN_STRATEGY. */
export class MempinfdStrategy implements PinStrategy {
  readonly name = 'mempinfd';
  readonly addressing = 'sva' as const;
  private readonly fds = new WeakMap<Process, { fd: number; file: File }>();

  /**
   * prepare - pin [addr, addr + len) of target.proc long-term. Throws SyscallError with the
   * errno of mempinfd() or MEM_CMD_PIN (pin-mempinfd README: EINVAL, EPERM, EBUSY, EFAULT,
   * ENOMEM...). Released by release() of the same range, or by the process's exit.
   */
  prepare(target: PinTarget, addr: number, len: number): void {
    target.proc.ioctl(this.fdOf(target.proc), MEM_CMD_PIN, { addr, size: len });
  }

  /** release - unpin the range one prepare pinned. Throws SyscallError (ENODEV, EINVAL...). */
  release(target: PinTarget, addr: number, len: number): void {
    target.proc.ioctl(this.fdOf(target.proc), MEM_CMD_UNPIN, { addr, size: len });
  }

  /** The process's mempinfd fd, opened on first use (throws what mempinfd() throws). */
  fdOf(proc: Process): number {
    const known = this.fds.get(proc);
    if (known && proc.files.get(known.fd) === known.file) return known.fd;
    const fd = proc.syscall('mempinfd');
    this.fds.set(proc, { fd, file: proc.files.get(fd)! });
    return fd;
  }
}
