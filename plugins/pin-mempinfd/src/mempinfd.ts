/**
 * mempinfd() - the syscall of seeds/001 (RFC v3 "mempinfd: Add new syscall to provide memory
 * pin") with its review applied: it returns an fd (an anonymous inode, as userfaultfd's) whose
 * MEM_CMD_PIN / MEM_CMD_UNPIN ioctls pin and unpin ranges of the caller's memory; closing the fd
 * (its last reference, also at exit) unpins everything. The pin rules, the RLIMIT_MEMLOCK
 * accounting and the DMA-in-flight report are the kernel's shared registry
 * (@svasim/kernel PinnedRanges); this file is the syscall and the file around it.
 */
import {
  ERRNO,
  O_CLOEXEC,
  PinnedRanges,
  anonInodeGetfd,
  isProcessContext,
  readPinRange,
  type Current,
  type File,
  type FileOperations,
  type IoctlArg,
  type Kernel,
  type PinStrategy,
  type Realizable,
} from '@svasim/kernel';
import { MempinfdStrategy } from './strategy';
import { MEM_CMD_PIN, MEM_CMD_UNPIN, __NR_mempinfd } from './uapi';

/** The registry name in reports (tracepoint owner, dmesg prefix). */
const OWNER = 'mempinfd';

function rangesOf(file: File): PinnedRanges | null {
  return file.privateData instanceof PinnedRanges ? file.privateData : null;
}

/**
 * Mempinfd - the plugin instance (kernel.plugin('pin-mempinfd')): the syscall while realized,
 * the open mempinfd files, and the 'mempinfd' pin strategy. Made by mempinfdPlugin.register;
 * realize() adds the syscall (0 or -EEXIST when a 'mempinfd' or number 442 is registered already),
 * unrealize() removes it (open fds keep working until closed).
 */
export class Mempinfd implements Realizable {
  /** The strategy @svasim/user's ctx.prepare/release use when this plugin is loaded. */
  readonly strategy: PinStrategy;
  private readonly live = new Set<PinnedRanges>();
  private registered = false;
  private checkAdded = false;

  /** file_operations of a mempinfd fd. */
  readonly fops: FileOperations;

  constructor(readonly kernel: Kernel) {
    this.strategy = new MempinfdStrategy();
    this.fops = Object.freeze({
      owner: OWNER,
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
  }

  realize(): number {
    if (!this.checkAdded) {
      this.checkAdded = true;
      this.kernel.addInvariantCheck('pin-mempinfd', () => this.checkInvariants());
    }
    const ret = this.kernel.syscalls.register('mempinfd', (current) => this.sysMempinfd(current), {
      nr: __NR_mempinfd,
    });
    if (ret < 0) return ret;
    this.registered = true;
    return 0;
  }

  unrealize(): void {
    if (this.registered) this.kernel.syscalls.unregister('mempinfd');
    this.registered = false;
  }

  /** The pin registries of the mempinfd files open now, oldest first. */
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
   * sys_mempinfd - a new fd with an empty pin registry on the caller's address space, close-on-exec
   * as the patch made it (anon_inode_getfd("[mempinfd]", ..., O_CLOEXEC)). Arguments are ignored
   * (SYSCALL_DEFINE0).
   * Return: the fd, or -EMFILE (no free fd), -EINVAL (a caller without an address space).
   */
  private sysMempinfd(current: Current): number {
    if (!isProcessContext(current)) return -ERRNO.EINVAL;
    const ranges = new PinnedRanges(current.mm, OWNER);
    const fd = anonInodeGetfd(current, OWNER, this.fops, ranges, O_CLOEXEC);
    if (fd >= 0) this.live.add(ranges);
    return fd;
  }

  /**
   * mempinfd_ioctl - MEM_CMD_PIN / MEM_CMD_UNPIN with a struct mem_pin_address.
   * Return: 0, or -EIO (the caller's address space is not the one the fd was created for: the fd
   * pins one mm, as a KVM fd serves one, and answers other processes -EIO as kvm_vm_ioctl does),
   * -ENOTTY (another command: the kernel's answer for an unknown ioctl, where v3 said -EINVAL),
   * -EFAULT (the struct cannot be read), else PinnedRanges.pin / unpin's errno.
   */
  private ioctl(file: File, cmd: number, arg: IoctlArg, current: Current): number {
    const ranges = rangesOf(file);
    if (!ranges) return -ERRNO.EBADF;
    if (!isProcessContext(current) || current.mm !== ranges.mm) return -ERRNO.EIO;
    if (cmd !== MEM_CMD_PIN && cmd !== MEM_CMD_UNPIN) return -ERRNO.ENOTTY;
    const r = readPinRange(current.mm, arg);
    if (typeof r === 'number') return r;
    return cmd === MEM_CMD_PIN
      ? ranges.pin(current.mmCaller(), r.addr, r.size)
      : ranges.unpin(r.addr, r.size);
  }
}
