import { ERRNO, KernelError } from '../uapi/errno';
import { O_ACCMODE, O_CLOEXEC, O_NONBLOCK } from '../uapi/fcntl';
import type { Current } from '../proc/current';
import { File, type FileOperations } from './file';
import { Inode, S_IFREG } from './inode';

/**
 * The one inode every anonymous file shares (anon_inode_inode, fs/anon_inodes.c). It is frozen:
 * holding no state, it can be shared by every kernel in the process without coupling them.
 */
export const ANON_INODE: Inode = Object.freeze(
  new Inode({ mode: S_IFREG | 0o600, ino: 1, fops: Object.freeze({}) }),
) as Inode;

function validFlags(flags: number): boolean {
  return Number.isInteger(flags) && flags >= 0 && flags <= 0xffffffff;
}

/**
 * anonInodeGetfile - a new File on the shared anonymous inode, named "anon_inode:[name]", with
 * `fops` and `priv` as its private data (anon_inode_getfile). Only O_ACCMODE and O_NONBLOCK of
 * `flags` are kept. No open method is called.
 *
 * Returns the File with one reference (released by fput; fops.release runs at the last one).
 * Throws KernelError(-EINVAL) for flags that are not a non-negative 32-bit integer.
 */
export function anonInodeGetfile(name: string, fops: FileOperations, priv: unknown, flags: number): File {
  if (!validFlags(flags)) throw new KernelError(-ERRNO.EINVAL, 'anon_inode_getfile: bad flags');
  return new File(ANON_INODE, fops, flags & (O_ACCMODE | O_NONBLOCK), {
    privateData: priv,
    path: `anon_inode:[${name}]`,
  });
}

/**
 * anonInodeGetfd - {@link anonInodeGetfile} installed in the lowest free fd of `current`
 * (anon_inode_getfd). `flags` may also hold O_CLOEXEC.
 *
 * Returns the fd, or -EMFILE (no fd free: no File is created, so release never runs) or
 * -EINVAL (bad flags). The fd owns the File: closing it (and every copy made by dup or fork)
 * releases it.
 */
export function anonInodeGetfd(
  current: Current,
  name: string,
  fops: FileOperations,
  priv: unknown,
  flags: number,
): number {
  if (!validFlags(flags)) return -ERRNO.EINVAL;
  const fd = current.files.getUnusedFd(flags & O_CLOEXEC);
  if (fd < 0) return fd;
  let file: File;
  try {
    file = anonInodeGetfile(name, fops, priv, flags);
  } catch (e) {
    current.files.putUnusedFd(fd);
    throw e;
  }
  current.files.fdInstall(fd, file);
  return fd;
}
