/**
 * The 'uacce-ctrl' pin strategy: ctx.prepare(addr, len) pins the buffer through the process's
 * open file of /dev/uacce_ctrl (UACCE_CMD_PIN), ctx.release(addr, len) unpins it
 * (UACCE_CMD_UNPIN). The device is opened by the first prepare of a process and the file reused
 * while it stays open. The node is 0600 root: the target process must be root (or hold
 * CAP_DAC_OVERRIDE, or root must have chmod'ed the node), otherwise prepare throws EACCES.
 */
import { O_RDWR, type File, type PinStrategy, type PinTarget, type Process } from '@svasim/kernel';
import { UACCE_CMD_PIN, UACCE_CMD_UNPIN, UACCE_CTRL_NAME } from './uapi';

/** UacceCtrlStrategy - the strategy object the plugin registers under PIN_STRATEGY. */
export class UacceCtrlStrategy implements PinStrategy {
  readonly name = 'uacce-ctrl';
  readonly addressing = 'sva' as const;
  private readonly fds = new WeakMap<Process, { fd: number; file: File }>();

  /**
   * prepare - pin [addr, addr + len) of target.proc long-term. Throws SyscallError: EACCES from
   * opening /dev/uacce_ctrl, or UACCE_CMD_PIN's errno (pin-uacce-ctrl README). Released by
   * release() of the same range, or by the process's exit.
   */
  prepare(target: PinTarget, addr: number, len: number): void {
    target.proc.ioctl(this.fdOf(target.proc), UACCE_CMD_PIN, { addr, size: len });
  }

  /** release - unpin the range one prepare pinned. Throws SyscallError (ENODEV, EINVAL...). */
  release(target: PinTarget, addr: number, len: number): void {
    target.proc.ioctl(this.fdOf(target.proc), UACCE_CMD_UNPIN, { addr, size: len });
  }

  /** The process's open file of /dev/uacce_ctrl, opened on first use (throws what open throws). */
  fdOf(proc: Process): number {
    const known = this.fds.get(proc);
    if (known && proc.files.get(known.fd) === known.file) return known.fd;
    const fd = proc.open(`/dev/${UACCE_CTRL_NAME}`, O_RDWR);
    this.fds.set(proc, { fd, file: proc.files.get(fd)! });
    return fd;
  }
}
