import { ERRNO } from '../uapi/errno';
import { O_CREAT, O_DIRECTORY, O_EXCL } from '../uapi/fcntl';
import type { Current } from '../proc/current';
import { File } from './file';
import type { Inode } from './inode';
import { accMode, inodePermission } from './permission';

/** PATH_MAX: longest path, counting the terminating NUL (include/uapi/linux/limits.h). */
export const PATH_MAX = 4096;
/** NAME_MAX: longest path component. */
export const NAME_MAX = 255;

/** A normalised absolute path, or -errno. */
export interface ParsedPath {
  /** '/a/b' form: no duplicate slashes, no '.' or '..', no trailing slash (except '/'). */
  path: string;
  /** The caller wrote a trailing slash: the path must name a directory. */
  mustBeDir: boolean;
}

/**
 * parsePath - normalise an absolute path: duplicate slashes and '.' are dropped, '..' goes up
 * (never above '/').
 * Returns the parsed path, or -EFAULT for a non-string (a bad user pointer), -ENOENT for an
 * empty or relative path (svasim processes have no working directory), -ENAMETOOLONG for a
 * path of PATH_MAX or more or a component longer than NAME_MAX.
 */
export function parsePath(path: unknown): ParsedPath | number {
  if (typeof path !== 'string') return -ERRNO.EFAULT;
  if (path.length >= PATH_MAX) return -ERRNO.ENAMETOOLONG;
  if (!path.startsWith('/')) return -ERRNO.ENOENT;
  const parts: string[] = [];
  for (const c of path.split('/')) {
    if (c === '' || c === '.') continue;
    if (c.length > NAME_MAX) return -ERRNO.ENAMETOOLONG;
    if (c === '..') parts.pop();
    else parts.push(c);
  }
  const mustBeDir = parts.length > 0 && /\/\.{0,2}$/.test(path);
  return { path: '/' + parts.join('/'), mustBeDir };
}

/** pathParents - the ancestors of a normalised path, nearest first, without '/': '/a/b/c' -> ['/a/b', '/a']. */
export function pathParents(path: string): string[] {
  const out: string[] = [];
  let i = path.lastIndexOf('/');
  while (i > 0) {
    path = path.slice(0, i);
    out.push(path);
    i = path.lastIndexOf('/');
  }
  return out;
}

/** What a path names in a {@link Vfs}. */
export type Resolved = { kind: 'file'; path: string; inode: Inode } | { kind: 'dir'; path: string };

/**
 * Vfs - one kernel's path namespace (/dev and whatever else drivers create).
 *
 * Only leaves are stored (device nodes and other inodes); a directory exists while something
 * lives under it, as on devtmpfs where udev removes empty directories. '/' always exists.
 */
export class Vfs {
  private readonly entries = new Map<string, Inode>();
  /** Implicit directories, with the number of entries below each. */
  private readonly dirs = new Map<string, number>();
  private nextIno = 1;

  /** allocIno - a fresh inode number, unique in this Vfs (get_next_ino). */
  allocIno(): number {
    return this.nextIno++;
  }

  /**
   * resolve - what `path` names. Returns a file (with its inode) or a directory, or -errno:
   * those of {@link parsePath}, -ENOTDIR when a component before the last is a file or a file
   * is named with a trailing slash, -ENOENT when nothing is there.
   */
  resolve(path: string): Resolved | number {
    const p = parsePath(path);
    if (typeof p === 'number') return p;
    if (p.path === '/' || this.dirs.has(p.path)) return { kind: 'dir', path: p.path };
    const inode = this.entries.get(p.path);
    if (inode) return p.mustBeDir ? -ERRNO.ENOTDIR : { kind: 'file', path: p.path, inode };
    return this.ancestorIsFile(p.path) ? -ERRNO.ENOTDIR : -ERRNO.ENOENT;
  }

  /**
   * mknod - link `inode` at `path` (vfs_mknod), creating parent directories as needed.
   * Assigns an inode number if it has none and sets nlink to 1.
   * Returns 0, or -EEXIST if the path exists (file or directory), -ENOTDIR if a parent is a file,
   * or a {@link parsePath} error. Undone by {@link unlink}.
   */
  mknod(path: string, inode: Inode): number {
    const p = parsePath(path);
    if (typeof p === 'number') return p;
    if (p.path === '/' || this.entries.has(p.path) || this.dirs.has(p.path)) return -ERRNO.EEXIST;
    if (this.ancestorIsFile(p.path)) return -ERRNO.ENOTDIR;
    if (inode.ino === 0) inode.ino = this.allocIno();
    inode.nlink = 1;
    this.entries.set(p.path, inode);
    for (const d of pathParents(p.path)) this.dirs.set(d, (this.dirs.get(d) ?? 0) + 1);
    return 0;
  }

  /**
   * unlink - remove the name `path`; open Files keep working on the inode.
   * Returns 0, or -ENOENT (nothing there), -EISDIR (a directory), -ENOTDIR, or a parsePath error.
   */
  unlink(path: string): number {
    const r = this.resolve(path);
    if (typeof r === 'number') return r;
    if (r.kind === 'dir') return -ERRNO.EISDIR;
    this.entries.delete(r.path);
    r.inode.nlink = 0;
    for (const d of pathParents(r.path)) {
      const n = (this.dirs.get(d) ?? 1) - 1;
      if (n === 0) this.dirs.delete(d);
      else this.dirs.set(d, n);
    }
    return 0;
  }

  /**
   * chmod - set the permission bits of the node at `path` (chmod_common / notify_change): only its
   * owner (by effective uid) or a holder of CAP_FOWNER may. The file type bits are kept.
   * Returns 0, or -ENOENT, -EISDIR (directories have no inode here), -EPERM, -EINVAL (a mode
   * outside 0..0o7777), or a parsePath error.
   */
  chmod(current: Current, path: string, mode: number): number {
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) return -ERRNO.EINVAL;
    const r = this.resolve(path);
    if (typeof r === 'number') return r;
    if (r.kind === 'dir') return -ERRNO.EISDIR;
    const inode = r.inode;
    if (current.cred.euid !== inode.uid && !current.cred.capable('CAP_FOWNER')) return -ERRNO.EPERM;
    inode.mode = (inode.mode & ~0o7777) | mode;
    return 0;
  }

  /** lookup - the inode at `path`, or undefined (missing, a directory, or an invalid path). */
  lookup(path: string): Inode | undefined {
    const r = this.resolve(path);
    return typeof r === 'object' && r.kind === 'file' ? r.inode : undefined;
  }

  /** list - every file path at or below `prefix` (default '/'), sorted. Empty for an invalid prefix. */
  list(prefix = '/'): string[] {
    const p = parsePath(prefix);
    if (typeof p === 'number') return [];
    const base = p.path === '/' ? '/' : p.path + '/';
    return [...this.entries.keys()].filter((k) => k === p.path || k.startsWith(base)).sort();
  }

  /**
   * readdir - the names directly inside directory `path`, sorted.
   * Returns them, or -ENOENT, -ENOTDIR (a file), or a parsePath error.
   */
  readdir(path: string): string[] | number {
    const r = this.resolve(path);
    if (typeof r === 'number') return r;
    if (r.kind === 'file') return -ERRNO.ENOTDIR;
    const base = r.path === '/' ? '/' : r.path + '/';
    const names = new Set<string>();
    for (const k of this.entries.keys()) {
      if (k.startsWith(base)) names.add(k.slice(base.length).split('/')[0]);
    }
    return [...names].sort();
  }

  private ancestorIsFile(path: string): boolean {
    return pathParents(path).some((d) => this.entries.has(d));
  }
}

/**
 * vfsOpen - open `path` for `current` (do_filp_open + do_dentry_open).
 *
 * Returns a File holding one reference (released by fput, or consumed by fdInstall), or -errno:
 * - -EINVAL: `flags` is not a non-negative 32-bit integer;
 * - path errors from {@link Vfs.resolve} (-ENOENT, -ENOTDIR, -ENAMETOOLONG, -EFAULT);
 * - -EISDIR: the path is a directory (svasim models no directory files);
 * - -ENOTDIR: O_DIRECTORY on a file;
 * - -EEXIST: O_CREAT|O_EXCL on an existing file (O_CREAT never creates: svasim has no regular files);
 * - -EACCES: the mode bits refuse the access of O_ACCMODE (and O_TRUNC) without CAP_DAC_OVERRIDE;
 * - the -errno of fops.open, in which case the File is dropped without calling release, as the
 *   kernel does for a file that never finished opening.
 * Access mode 3 is accepted as Linux does (an ioctl-only open needing read and write permission).
 */
export function vfsOpen(vfs: Vfs, current: Current, path: string, flags: number): File | number {
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff) return -ERRNO.EINVAL;
  const r = vfs.resolve(path);
  if (typeof r === 'number') return r;
  if (r.kind === 'dir') return -ERRNO.EISDIR;
  if (flags & O_DIRECTORY) return -ERRNO.ENOTDIR;
  if ((flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL)) return -ERRNO.EEXIST;
  const inode = r.inode;
  const perm = inodePermission(current.cred, inode, accMode(flags));
  if (perm < 0) return perm;
  const file = new File(inode, inode.fops, flags, { path: r.path });
  const open = file.fops.open;
  if (open) {
    const ret = open.call(file.fops, inode, file, current);
    if (ret < 0) {
      // Never fully opened: no release, and nothing may use the File again.
      file.refcount = 0;
      file.released = true;
      return ret;
    }
  }
  return file;
}

/**
 * doSysOpen - open(2): reserve the lowest free fd first (so -EMFILE wins over path errors, as
 * in do_sys_openat2), then {@link vfsOpen}, then install. Returns the fd or -errno; closed by
 * FdTable.close.
 */
export function doSysOpen(vfs: Vfs, current: Current, path: string, flags: number): number {
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff) return -ERRNO.EINVAL;
  const fd = current.files.getUnusedFd(flags);
  if (fd < 0) return fd;
  const file = vfsOpen(vfs, current, path, flags);
  if (typeof file === 'number') {
    current.files.putUnusedFd(fd);
    return file;
  }
  current.files.fdInstall(fd, file);
  return fd;
}
