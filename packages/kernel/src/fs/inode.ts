import type { FileOperations } from './file';

/** File type bits of i_mode (include/uapi/linux/stat.h). */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
/** Permission bit groups. */
export const S_IRWXU = 0o700;
export const S_IRWXG = 0o070;
export const S_IRWXO = 0o007;
export const S_IRWXUGO = 0o777;
/** Read, write and execute bits of all three classes (include/linux/stat.h). */
export const S_IRUGO = 0o444;
export const S_IWUGO = 0o222;
export const S_IXUGO = 0o111;
/** Mode bits that are permissions (plus setuid/setgid/sticky). */
export const S_IALLUGO = 0o7777;

export const S_ISREG = (m: number): boolean => (m & S_IFMT) === S_IFREG;
export const S_ISDIR = (m: number): boolean => (m & S_IFMT) === S_IFDIR;
export const S_ISCHR = (m: number): boolean => (m & S_IFMT) === S_IFCHR;
export const S_ISBLK = (m: number): boolean => (m & S_IFMT) === S_IFBLK;

/** MINORBITS: the kernel-internal dev_t is major << 20 | minor (include/linux/kdev_t.h). */
export const MINORBITS = 20;
/** MINORMASK: the largest minor. */
export const MINORMASK = (1 << MINORBITS) - 1;
/** The largest major: dev_t is 32 bits, so 12 bits of major. */
export const MAJOR_MAX = (1 << (32 - MINORBITS)) - 1;
const MINOR_SPAN = 1 << MINORBITS;

/** MKDEV - a kernel dev_t from (major, minor). Arithmetic, not <<, so majors >= 2048 stay positive. */
export function MKDEV(major: number, minor: number): number {
  return major * MINOR_SPAN + (minor & MINORMASK);
}
/** MAJOR - the major number of a dev_t. */
export function MAJOR(dev: number): number {
  return Math.floor(dev / MINOR_SPAN);
}
/** MINOR - the minor number of a dev_t. */
export function MINOR(dev: number): number {
  return dev % MINOR_SPAN;
}

/** Fields of a new {@link Inode}. */
export interface InodeInit {
  /** Type and permission bits, e.g. S_IFCHR | 0o600. */
  mode: number;
  /** Owner (default 0). */
  uid?: number;
  /** Group (default 0). */
  gid?: number;
  /** Device number for S_IFCHR/S_IFBLK (default 0). */
  rdev?: number;
  /** The file operations a File opened on this inode starts with (default: none). */
  fops?: FileOperations;
  /** Filesystem or driver data (i_private). */
  privateData?: unknown;
  /** Inode number; 0 lets {@link Vfs.mknod} assign one. */
  ino?: number;
}

/**
 * Inode - one object in the namespace: a device node, or the shared anonymous inode.
 * Created by its owner (devtmpfs, a driver); linked into a {@link Vfs} by mknod, unlinked by unlink.
 * Open Files keep their inode reachable after unlink, as in the kernel.
 */
export class Inode {
  /** Inode number, unique within one Vfs (0 until assigned). */
  ino: number;
  /** S_IF* type | permission bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Device number (MKDEV) of a device node. */
  rdev: number;
  /** i_fop: the operations an open starts with (chrdev_open for char devices). */
  fops: FileOperations;
  /** i_private. */
  privateData: unknown;
  /** Number of names linking to the inode (0 once unlinked). */
  nlink = 0;
  /** The address_space of the inode's pages (i_mapping), set by the mm when it needs one. */
  mapping: unknown = null;

  constructor(init: InodeInit) {
    this.mode = init.mode;
    this.uid = init.uid ?? 0;
    this.gid = init.gid ?? 0;
    this.rdev = init.rdev ?? 0;
    this.fops = init.fops ?? {};
    this.privateData = init.privateData ?? null;
    this.ino = init.ino ?? 0;
  }
}
