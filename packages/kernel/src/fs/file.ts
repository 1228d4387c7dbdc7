import { ERRNO } from '../uapi/errno';
import {
  O_ACCMODE,
  O_CREAT,
  O_EXCL,
  O_NOCTTY,
  O_TRUNC,
  POLLIN,
  POLLOUT,
  POLLRDNORM,
  POLLWRNORM,
} from '../uapi/fcntl';
import type { VmAreaStruct } from '../mm/vma';
import type { Current } from '../proc/current';
import type { Inode } from './inode';

/** The file may be read (f_mode). */
export const FMODE_READ = 0x1;
/** The file may be written. */
export const FMODE_WRITE = 0x2;

/**
 * ENOIOCTLCMD - kernel-internal "no such ioctl command" (include/linux/errno.h). A driver may
 * return it; the ioctl syscall turns it into -ENOTTY so user space never sees it.
 */
export const ENOIOCTLCMD = 515;

/** DEFAULT_POLLMASK - what poll reports for a file without a poll method (include/linux/poll.h). */
export const DEFAULT_POLLMASK = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

/**
 * IoctlArg - an ioctl's third argument: a user address of the command's struct, or for
 * convenience a plain object whose field names are the kernel struct's, or nothing.
 * Drivers read it with readIoctlArg and answer with writeIoctlArg (struct-layout.ts).
 */
export type IoctlArg = number | Record<string, unknown> | undefined;

/**
 * FileOperations - struct file_operations. Every member is optional: the VFS helpers in this
 * file answer as the kernel does when one is missing (no read/write: -EINVAL, no ioctl: -ENOTTY,
 * no mmap: -ENODEV, no poll: DEFAULT_POLLMASK, no open/release/flush: success).
 */
export interface FileOperations {
  /** Module name, for diagnostics. */
  owner?: string;
  /** Called when a File is opened on the inode; a -errno fails the open (release is then not called). */
  open?(inode: Inode, file: File, current: Current): number;
  /**
   * Called once, when the last reference to the File is dropped (last close, including fds
   * inherited by forked children, or exit). The return value is ignored, as the kernel's is.
   */
  release?(inode: Inode, file: File, current?: Current): void | number;
  /** Called on every close(2) of an fd referring to the File; its -errno is what close returns. */
  flush?(file: File, current: Current): number;
  /** Read up to buf.length bytes at `pos`; returns the count read (0 at EOF) or -errno. */
  read?(file: File, buf: Uint8Array, pos: number, current: Current): number;
  /** Write buf at `pos`; returns the count written or -errno. */
  write?(file: File, buf: Uint8Array, pos: number, current: Current): number;
  /** unlocked_ioctl: returns >= 0 or -errno (-ENOIOCTLCMD becomes -ENOTTY). */
  unlockedIoctl?(file: File, cmd: number, arg: IoctlArg, current: Current): number;
  /** Returns the POLL* mask of ready events. */
  poll?(file: File, current: Current): number;
  /** Set up `vma` for this file (vm_ops, flags, pfns); returns 0 or -errno. */
  mmap?(file: File, vma: VmAreaStruct, current: Current): number;
}

/** Options of the {@link File} constructor. */
export interface FileInit {
  /** private_data. */
  privateData?: unknown;
  /** Name shown for the file (the path it was opened by, or "anon_inode:[name]"). */
  path?: string;
}

/**
 * File - an open file description (struct file). Made by an open (vfsOpen, anonInodeGetfile)
 * holding one reference; shared by dup and fork, each holder taking a reference with
 * {@link getFile}; released by {@link fput}, which calls fops.release exactly once, when the
 * last reference goes.
 */
export class File {
  /** The inode opened. */
  readonly inode: Inode;
  /** The operations in force (f_op); an open method may replace them, as chrdev_open does. */
  fops: FileOperations;
  /** O_* flags of the open, less the creation-only ones. */
  fFlags: number;
  /** FMODE_READ/FMODE_WRITE from the access mode (neither for O_ACCMODE = 3). */
  readonly fMode: number;
  /** Driver data (private_data). */
  privateData: unknown;
  /** File position for read/write. */
  pos = 0;
  /** Number of references (f_count). */
  refcount = 1;
  /** True once fops.release has run. */
  released = false;
  /** How the file was reached, for diagnostics (/proc/PID/fd). */
  readonly path: string;
  /** The address_space mapped by mmap of this file (f_mapping), the inode's by default. */
  fMapping: unknown;

  /**
   * @param inode - the inode opened
   * @param fops - initial operations (usually inode.fops)
   * @param flags - the O_* flags of the open
   */
  constructor(inode: Inode, fops: FileOperations, flags: number, init: FileInit = {}) {
    this.inode = inode;
    this.fops = fops;
    // do_dentry_open drops the flags that only mattered at open time.
    this.fFlags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC);
    this.fMode = openFmode(flags);
    this.privateData = init.privateData ?? null;
    this.path = init.path ?? '';
    this.fMapping = inode.mapping;
  }
}

/**
 * openFmode - OPEN_FMODE(): O_RDONLY -> FMODE_READ, O_WRONLY -> FMODE_WRITE, O_RDWR -> both,
 * and access mode 3 -> neither (an ioctl-only open).
 */
export function openFmode(flags: number): number {
  return ((flags & O_ACCMODE) + 1) & O_ACCMODE;
}

/**
 * getFile - take another reference to `file` (get_file), for a new fd (dup, fork) or a kernel
 * user that keeps it. Released by {@link fput}. Throws if the file is already released (a
 * use-after-free in the simulator).
 */
export function getFile(file: File): File {
  if (file.released || file.refcount <= 0) throw new Error(`get_file on released file ${file.path}`);
  file.refcount++;
  return file;
}

/**
 * fput - drop a reference to `file`. When the last one goes, fops.release(inode, file, current)
 * runs, exactly once. Throws on a reference underflow (a simulator bug).
 */
export function fput(file: File, current?: Current): void {
  if (file.refcount <= 0 || file.released) throw new Error(`fput: refcount underflow on ${file.path}`);
  if (--file.refcount > 0) return;
  file.released = true;
  file.fops.release?.(file.inode, file, current);
}

/**
 * filpClose - what close(2) does with the File of an fd: fops.flush, then drop the fd's
 * reference. Returns flush's result (0 or -errno); the reference is dropped either way.
 */
export function filpClose(file: File, current: Current): number {
  const ret = file.fops.flush ? file.fops.flush(file, current) : 0;
  fput(file, current);
  return ret;
}

/**
 * vfsRead - read(2) on an open file: -EBADF if not opened for reading, -EINVAL without a read
 * method; otherwise the method's count (the position advances by it) or -errno.
 */
export function vfsRead(file: File, buf: Uint8Array, current: Current): number {
  if (!(file.fMode & FMODE_READ)) return -ERRNO.EBADF;
  if (!file.fops.read) return -ERRNO.EINVAL;
  const ret = file.fops.read(file, buf, file.pos, current);
  if (ret > 0) file.pos += ret;
  return ret;
}

/**
 * vfsWrite - write(2) on an open file: -EBADF if not opened for writing, -EINVAL without a
 * write method; otherwise the method's count (the position advances by it) or -errno.
 */
export function vfsWrite(file: File, buf: Uint8Array, current: Current): number {
  if (!(file.fMode & FMODE_WRITE)) return -ERRNO.EBADF;
  if (!file.fops.write) return -ERRNO.EINVAL;
  const ret = file.fops.write(file, buf, file.pos, current);
  if (ret > 0) file.pos += ret;
  return ret;
}

/**
 * vfsIoctl - dispatch an ioctl (vfs_ioctl): -ENOTTY without unlocked_ioctl, and a driver's
 * -ENOIOCTLCMD becomes -ENOTTY; otherwise the driver's result.
 */
export function vfsIoctl(file: File, cmd: number, arg: IoctlArg, current: Current): number {
  if (!file.fops.unlockedIoctl) return -ERRNO.ENOTTY;
  const ret = file.fops.unlockedIoctl(file, cmd, arg, current);
  return ret === -ENOIOCTLCMD ? -ERRNO.ENOTTY : ret;
}

/** vfsPoll - the file's ready mask (vfs_poll): DEFAULT_POLLMASK without a poll method. */
export function vfsPoll(file: File, current: Current): number {
  return file.fops.poll ? file.fops.poll(file, current) : DEFAULT_POLLMASK;
}

/**
 * vfsMmap - let the file set up a new VMA (vfs_mmap/call_mmap): -ENODEV without an mmap
 * method; otherwise its 0 or -errno. The mm checks FMODE_* against the protection first.
 */
export function vfsMmap(file: File, vma: VmAreaStruct, current: Current): number {
  if (!file.fops.mmap) return -ERRNO.ENODEV;
  return file.fops.mmap(file, vma, current);
}
