/**
 * /dev/uacce_ctrl - the misc device of seeds/002 (RFC v2 "uacce: Add uacce_ctrl misc device")
 * with the review applied: each open file holds a registry of pinned ranges of the opener's
 * memory, UACCE_CMD_PIN / UACCE_CMD_UNPIN add and remove ranges, and the file's release (last
 * close, or exit) unpins everything. The node is 0600 root:root, so only root (or a process with
 * CAP_DAC_OVERRIDE, or whoever root chmods it for) can open it; EACCES otherwise. The pin rules,
 * RLIMIT_MEMLOCK accounting and the DMA-in-flight report are the kernel's shared registry
 * (@svasim/kernel PinnedRanges), the same as mempinfd's.
 */
import {
  ERRNO,
  MISC_DYNAMIC_MINOR,
  PinnedRanges,
  isProcessContext,
  readPinRange,
  type Current,
  type File,
  type FileOperations,
  type IoctlArg,
  type Kernel,
  type MiscDevice,
  type PinStrategy,
  type Realizable,
} from '@svasim/kernel';
import { UacceCtrlStrategy } from './strategy';
import { UACCE_CMD_PIN, UACCE_CMD_UNPIN, UACCE_CTRL_MODE, UACCE_CTRL_NAME } from './uapi';

function rangesOf(file: File): PinnedRanges | null {
  return file.privateData instanceof PinnedRanges ? file.privateData : null;
}

/**
 * UacceCtrl - the plugin instance (kernel.plugin('pin-uacce-ctrl')): the misc device while
 * realized, the open files, and the 'uacce-ctrl' pin strategy. Made by uacceCtrlPlugin.register;
 * realize() registers /dev/uacce_ctrl (0 or miscRegister's -errno, e.g. -EEXIST when a misc
 * device of that name exists), unrealize() removes it (open files keep working until closed).
 */
export class UacceCtrl implements Realizable {
  /** The strategy @svasim/user's ctx.prepare/release use when this plugin is loaded. */
  readonly strategy: PinStrategy;
  /** struct miscdevice of /dev/uacce_ctrl. */
  readonly misc: MiscDevice;
  private readonly live = new Set<PinnedRanges>();
  private registered = false;
  private checkAdded = false;

  constructor(readonly kernel: Kernel) {
    this.strategy = new UacceCtrlStrategy();
    const fops: FileOperations = Object.freeze({
      owner: 'uacce',
      open: (_inode: unknown, file: File, current: Current): number => this.open(file, current),
      release: (_inode: unknown, file: File): number => {
        const ranges = rangesOf(file);
        if (ranges) {
          ranges.releaseAll();
          this.live.delete(ranges);
        }
        file.privateData = null;
        return 0;
      },
      unlockedIoctl: (file: File, cmd: number, arg: IoctlArg, current: Current): number =>
        this.ioctl(file, cmd, arg, current),
    });
    this.misc = { minor: MISC_DYNAMIC_MINOR, name: UACCE_CTRL_NAME, fops, mode: UACCE_CTRL_MODE };
  }

  realize(): number {
    if (!this.checkAdded) {
      this.checkAdded = true;
      this.kernel.addInvariantCheck('pin-uacce-ctrl', () => this.checkInvariants());
    }
    const ret = this.kernel.miscRegister(this.misc);
    if (ret < 0) return ret;
    this.registered = true;
    return 0;
  }

  unrealize(): void {
    if (this.registered) this.kernel.miscDeregister(this.misc);
    this.registered = false;
  }

  /** The pin registries of the /dev/uacce_ctrl files open now, oldest first. */
  files(): PinnedRanges[] {
    return [...this.live];
  }

  /** Every open file's registry against GUP and pinned_vm (PinnedRanges.checkInvariants). */
  checkInvariants(): string[] {
    const out: string[] = [];
    for (const r of this.live) out.push(...r.checkInvariants());
    return out;
  }

  /**
   * uacce_ctrl_open - an empty registry on the opener's address space (the permission check on
   * the 0600 node has passed already). Return: 0, or -EINVAL for an opener without an address space.
   */
  private open(file: File, current: Current): number {
    if (!isProcessContext(current)) return -ERRNO.EINVAL;
    const ranges = new PinnedRanges(current.mm, UACCE_CTRL_NAME);
    file.privateData = ranges;
    this.live.add(ranges);
    return 0;
  }

  /**
   * uacce_ctrl_unl_ioctl - UACCE_CMD_PIN / UACCE_CMD_UNPIN with a struct uacce_pin_address.
   * Return: 0, or -EIO (called from another address space than the opener's, as kvm_vm_ioctl
   * answers), -ENOTTY (another command; v2 said -EINVAL), -EFAULT (the struct cannot be read),
   * else PinnedRanges.pin / unpin's errno.
   */
  private ioctl(file: File, cmd: number, arg: IoctlArg, current: Current): number {
    const ranges = rangesOf(file);
    if (!ranges) return -ERRNO.EBADF;
    if (!isProcessContext(current) || current.mm !== ranges.mm) return -ERRNO.EIO;
    if (cmd !== UACCE_CMD_PIN && cmd !== UACCE_CMD_UNPIN) return -ERRNO.ENOTTY;
    const r = readPinRange(current.mm, arg);
    if (typeof r === 'number') return r;
    return cmd === UACCE_CMD_PIN
      ? ranges.pin(current.mmCaller(), r.addr, r.size)
      : ranges.unpin(r.addr, r.size);
  }
}
