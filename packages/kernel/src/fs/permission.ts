import { ERRNO } from '../uapi/errno';
import { O_ACCMODE, O_TRUNC } from '../uapi/fcntl';
import type { Cred } from '../proc/cred';
import { S_ISDIR, S_IXUGO, type Inode } from './inode';

/** Access being asked for (include/linux/fs.h). */
/** The parts of an inode a permission check reads (sysfs attributes have no Inode object). */
export type InodeOwner = Pick<Inode, 'mode' | 'uid' | 'gid'>;

export const MAY_EXEC = 0x1;
export const MAY_WRITE = 0x2;
export const MAY_READ = 0x4;

/**
 * accMode - the access an open with `flags` needs (ACC_MODE plus O_TRUNC's write):
 * O_RDONLY read, O_WRONLY write, O_RDWR and the ioctl-only mode 3 both.
 */
export function accMode(flags: number): number {
  const table = [MAY_READ, MAY_WRITE, MAY_READ | MAY_WRITE, MAY_READ | MAY_WRITE];
  let mask = table[flags & O_ACCMODE];
  if (flags & O_TRUNC) mask |= MAY_WRITE;
  return mask;
}

/**
 * genericPermission - may `cred` access `inode` for `mask` (MAY_*)? (generic_permission)
 *
 * The owner, group or other bits apply, chosen by the effective uid/gid. Failing those,
 * CAP_DAC_OVERRIDE grants read and write (and execute if any x bit is set, or on a directory),
 * and CAP_DAC_READ_SEARCH grants read. Returns 0 or -EACCES.
 */
export function genericPermission(cred: Cred, inode: InodeOwner, mask: number): number {
  mask &= MAY_READ | MAY_WRITE | MAY_EXEC;
  let mode = inode.mode;
  if (cred.euid === inode.uid) mode >>= 6;
  else if (cred.egid === inode.gid) mode >>= 3;
  if ((mask & ~mode & 0o7) === 0) return 0;

  const isDir = S_ISDIR(inode.mode);
  if (isDir || !(mask & MAY_EXEC) || inode.mode & S_IXUGO) {
    if (cred.capable('CAP_DAC_OVERRIDE')) return 0;
  }
  if (mask === MAY_READ || (isDir && !(mask & MAY_WRITE))) {
    if (cred.capable('CAP_DAC_READ_SEARCH')) return 0;
  }
  return -ERRNO.EACCES;
}

/**
 * inodePermission - the permission check of an open (inode_permission). svasim has no
 * read-only mounts, immutable inodes or LSMs, so this is {@link genericPermission}.
 */
export function inodePermission(cred: Cred, inode: InodeOwner, mask: number): number {
  return genericPermission(cred, inode, mask);
}
