import { ERRNO } from '../uapi/errno';
import { parsePath, pathParents } from '../fs/vfs';
import { MAY_READ, MAY_WRITE, genericPermission } from '../fs/permission';
import { S_IALLUGO, S_IFREG, S_IRUGO, S_IWUGO } from '../fs/inode';
import type { Cred } from '../proc/cred';
import type { Device, DeviceAttribute } from './device';

/** A sysfs file holds at most one page: longer show output is cut, longer writes are cut (fs/sysfs/file.c). */
export const SYSFS_PAGE_SIZE = 4096;

/** Who reads or writes: anything with credentials (a Current). Omitted means the kernel itself (root). */
export interface SysfsCaller {
  readonly cred: Cred;
}

/** One sysfs file. */
export interface SysfsEntry {
  readonly attr: DeviceAttribute;
  readonly dev: Device;
  /** The file's permission bits (the attribute's mode, or what isVisible returned). */
  readonly mode: number;
}

/**
 * Sysfs - one kernel's /sys: a flat map from path to device attribute. Files are owned by root;
 * directories exist while they contain files.
 */
export class Sysfs {
  private readonly entries = new Map<string, SysfsEntry>();
  /** Directories, with the number of files below each. */
  private readonly dirs = new Map<string, number>();

  /**
   * add - create the file `path` for `attr` of `dev` with `mode` (default attr.mode).
   * Returns 0, -EEXIST if the path exists, -ENOTDIR if a parent is a file, or a path error (-ENOENT for a relative path, ...).
   * Removed by {@link remove} or {@link removeDevice}.
   */
  add(path: string, attr: DeviceAttribute, dev: Device, mode: number = attr.mode): number {
    const p = parsePath(path);
    if (typeof p === 'number') return p;
    if (this.entries.has(p.path) || this.isDir(p.path)) return -ERRNO.EEXIST;
    if (pathParents(p.path).some((d) => this.entries.has(d))) return -ERRNO.ENOTDIR;
    this.entries.set(p.path, { attr, dev, mode: mode & S_IALLUGO });
    for (const d of pathParents(p.path)) this.dirs.set(d, (this.dirs.get(d) ?? 0) + 1);
    return 0;
  }

  /** remove - delete the file `path`. Returns 0 or -ENOENT. */
  remove(path: string): number {
    const p = parsePath(path);
    if (typeof p === 'number') return p;
    if (!this.entries.has(p.path)) return -ERRNO.ENOENT;
    this.delete(p.path);
    return 0;
  }

  /** removeDevice - delete every file of `dev`. Returns how many were removed. */
  removeDevice(dev: Device): number {
    let n = 0;
    for (const [path, e] of this.entries) {
      if (e.dev === dev) {
        this.delete(path);
        n++;
      }
    }
    return n;
  }

  /** stat - the entry at `path`, or undefined. */
  stat(path: string): SysfsEntry | undefined {
    const p = parsePath(path);
    return typeof p === 'number' ? undefined : this.entries.get(p.path);
  }

  /**
   * read - open(O_RDONLY) + read of a sysfs file.
   *
   * Returns the text (cut to SYSFS_PAGE_SIZE - 1 characters) or -errno:
   * - -ENOENT: no such file (hidden attributes have no file);
   * - -EACCES: the mode has no read bit at all (refused even to root: kernfs's open check), or
   *   the caller is not root and lacks the "other" read bit and CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH;
   * - -EIO: the attribute has no show;
   * - whatever -errno show returns.
   * Throws TypeError if show returns a non-negative number (a driver bug: show returns text).
   */
  read(path: string, current?: SysfsCaller): string | number {
    const e = this.lookup(path);
    if (typeof e === 'number') return e;
    const perm = this.permission(e, MAY_READ, current);
    if (perm < 0) return perm;
    if (!e.attr.show) return -ERRNO.EIO;
    const out = e.attr.show(e.dev);
    if (typeof out === 'number') {
      if (out < 0) return out;
      throw new TypeError(`sysfs ${path}: show returned ${out}, not text or -errno`);
    }
    return out.length >= SYSFS_PAGE_SIZE ? out.slice(0, SYSFS_PAGE_SIZE - 1) : out;
  }

  /**
   * write - open(O_WRONLY) + write of a sysfs file.
   *
   * Returns store's result (the count consumed, normally the length written) or -errno:
   * - -ENOENT, -EACCES as for {@link read}, with the write bits;
   * - 0 for an empty write, without calling store (sysfs_kf_write);
   * - -EIO: the attribute has no store;
   * - whatever -errno store returns.
   * The value is passed as written (with any trailing newline), cut to SYSFS_PAGE_SIZE characters.
   */
  write(path: string, value: string | number, current?: SysfsCaller): number {
    const e = this.lookup(path);
    if (typeof e === 'number') return e;
    const perm = this.permission(e, MAY_WRITE, current);
    if (perm < 0) return perm;
    let text = typeof value === 'number' ? String(value) : value;
    if (typeof text !== 'string') return -ERRNO.EINVAL;
    if (text.length === 0) return 0;
    if (text.length > SYSFS_PAGE_SIZE) text = text.slice(0, SYSFS_PAGE_SIZE);
    if (!e.attr.store) return -ERRNO.EIO;
    return e.attr.store(e.dev, text);
  }

  /** list - every file path at or below `prefix`, sorted. */
  list(prefix = '/sys'): string[] {
    const p = parsePath(prefix);
    if (typeof p === 'number') return [];
    const base = p.path === '/' ? '/' : p.path + '/';
    return [...this.entries.keys()].filter((k) => k === p.path || k.startsWith(base)).sort();
  }

  /** readdir - names directly inside directory `path` (files and subdirectories), sorted; -ENOENT or -ENOTDIR. */
  readdir(path: string): string[] | number {
    const p = parsePath(path);
    if (typeof p === 'number') return p;
    if (this.entries.has(p.path)) return -ERRNO.ENOTDIR;
    const base = p.path === '/' ? '/' : p.path + '/';
    const names = new Set<string>();
    for (const k of this.entries.keys()) {
      if (k.startsWith(base)) names.add(k.slice(base.length).split('/')[0]);
    }
    return names.size === 0 ? -ERRNO.ENOENT : [...names].sort();
  }

  private isDir(path: string): boolean {
    return this.dirs.has(path);
  }

  private delete(path: string): void {
    this.entries.delete(path);
    for (const d of pathParents(path)) {
      const n = (this.dirs.get(d) ?? 1) - 1;
      if (n === 0) this.dirs.delete(d);
      else this.dirs.set(d, n);
    }
  }

  private lookup(path: string): SysfsEntry | number {
    const p = parsePath(path);
    if (typeof p === 'number') return p;
    const e = this.entries.get(p.path);
    if (e) return e;
    return this.isDir(p.path) ? -ERRNO.EISDIR : -ERRNO.ENOENT;
  }

  private permission(e: SysfsEntry, mask: number, current?: SysfsCaller): number {
    // kernfs_fop_open's extra check: no read (write) bit for anyone means nobody, root included.
    if (!(e.mode & (mask === MAY_READ ? S_IRUGO : S_IWUGO))) return -ERRNO.EACCES;
    if (!current) return 0;
    return genericPermission(current.cred, { mode: S_IFREG | e.mode, uid: 0, gid: 0 }, mask);
  }
}
