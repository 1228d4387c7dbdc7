import { ERRNO } from '../uapi/errno';
import { O_CLOEXEC } from '../uapi/fcntl';
import type { Current } from '../proc/current';
import { File, filpClose, fput, getFile } from './file';

/** INR_OPEN_CUR: the default soft RLIMIT_NOFILE (include/uapi/linux/fs.h). */
export const INR_OPEN_CUR = 1024;
/** INR_OPEN_MAX: the default hard RLIMIT_NOFILE. */
export const INR_OPEN_MAX = 4096;
/** sysctl fs.nr_open default (fs/file.c): no fd table grows past this, whatever the rlimit. */
export const NR_OPEN_DEFAULT = 1024 * 1024;

/** A slot claimed by getUnusedFd but not yet filled by fdInstall. */
const RESERVED = Symbol('reserved fd');
type Slot = File | typeof RESERVED | undefined;

/** The limit on fd numbers: a number, or a function read at each allocation (e.g. the RLIMIT_NOFILE soft limit). */
export type FdLimit = number | (() => number);

/** True for a valid fd number: an integer >= 0 (NaN, -1, 1.5, '3' are not). */
export function isValidFd(fd: unknown): fd is number {
  return typeof fd === 'number' && Number.isSafeInteger(fd) && fd >= 0;
}

/**
 * FdTable - a process's file descriptor table (files_struct).
 *
 * Each installed fd holds one reference to its File; close, closeAll and exit drop it (fput),
 * so fops.release runs when no fd in any process (and no kernel user) still refers to the File.
 * fds are allocated lowest-first, below the limit given at construction (RLIMIT_NOFILE).
 */
export class FdTable {
  private slots: Slot[] = [];
  private cloexec = new Set<number>();
  private nextFd = 0;
  private installed = 0;
  private limit: FdLimit;

  /** @param max - RLIMIT_NOFILE: fds are < max (default INR_OPEN_CUR); a function is re-read at every allocation. */
  constructor(max: FdLimit = INR_OPEN_CUR) {
    this.limit = max;
  }

  /** setMax - change the fd limit (setrlimit(RLIMIT_NOFILE)); open fds above it stay open, as in the kernel. */
  setMax(max: FdLimit): void {
    this.limit = max;
  }

  /** The current fd limit: fds are < this (never above fs.nr_open). */
  get max(): number {
    const m = typeof this.limit === 'function' ? this.limit() : this.limit;
    return Math.min(Number.isNaN(m) ? 0 : m, NR_OPEN_DEFAULT);
  }

  /**
   * getUnusedFd - reserve the lowest free fd (get_unused_fd_flags). `flags` may hold O_CLOEXEC.
   * Returns the fd, or -EMFILE when every fd below the limit is taken. The caller either fills
   * it with {@link fdInstall} or gives it back with {@link putUnusedFd}.
   */
  getUnusedFd(flags = 0): number {
    const end = this.max;
    let fd = this.nextFd;
    while (fd < this.slots.length && this.slots[fd] !== undefined) fd++;
    if (fd >= end) return -ERRNO.EMFILE;
    this.slots[fd] = RESERVED;
    this.nextFd = fd + 1;
    if (flags & O_CLOEXEC) this.cloexec.add(fd);
    else this.cloexec.delete(fd);
    return fd;
  }

  /** putUnusedFd - give back an fd reserved by {@link getUnusedFd} and never installed. */
  putUnusedFd(fd: number): void {
    if (this.slots[fd] !== RESERVED) throw new Error(`put_unused_fd: fd ${fd} is not reserved`);
    this.freeSlot(fd);
  }

  /**
   * fdInstall - put `file` in the reserved slot `fd`, consuming the caller's reference to it
   * (the fd now owns it; close releases it). Throws if `fd` was not reserved (a simulator bug).
   */
  fdInstall(fd: number, file: File): void {
    if (this.slots[fd] !== RESERVED) throw new Error(`fd_install: fd ${fd} is not reserved`);
    this.slots[fd] = file;
    this.installed++;
  }

  /**
   * install - reserve the lowest free fd and install `file` there, consuming the caller's
   * reference. Returns the fd, or -EMFILE; on failure the caller still owns its reference
   * and must fput it.
   */
  install(file: File, flags = 0): number {
    const fd = this.getUnusedFd(flags);
    if (fd < 0) return fd;
    this.fdInstall(fd, file);
    return fd;
  }

  /**
   * get - the File of `fd`, borrowed for the duration of a call (no reference taken).
   * Returns undefined for anything that is not an open fd: callers answer -EBADF.
   */
  get(fd: number): File | undefined {
    if (!isValidFd(fd)) return undefined;
    const slot = this.slots[fd];
    return slot instanceof File ? slot : undefined;
  }

  /**
   * fget - the File of `fd` with a new reference, for a caller that keeps it beyond the call.
   * Released by fput. Returns undefined for a bad fd.
   */
  fget(fd: number): File | undefined {
    const file = this.get(fd);
    return file ? getFile(file) : undefined;
  }

  /** True if `fd` is marked close-on-exec. */
  isCloseOnExec(fd: number): boolean {
    return this.get(fd) !== undefined && this.cloexec.has(fd);
  }

  /**
   * close - close(2): free `fd`, run fops.flush and drop its reference (fput; release runs if it
   * was the last). Returns 0, flush's -errno (the fd is closed anyway), or -EBADF.
   */
  close(fd: number, current: Current): number {
    const file = this.get(fd);
    if (!file) return -ERRNO.EBADF;
    this.freeSlot(fd);
    this.installed--;
    return filpClose(file, current);
  }

  /**
   * closeAll - close every fd in ascending order, as exit does (close_files); reserved but
   * uninstalled slots are simply freed.
   */
  closeAll(current: Current): void {
    for (let fd = 0; fd < this.slots.length; fd++) {
      const slot = this.slots[fd];
      if (slot === undefined) continue;
      this.slots[fd] = undefined;
      if (slot instanceof File) {
        this.installed--;
        fput(slot, current);
      }
    }
    this.slots = [];
    this.cloexec.clear();
    this.nextFd = 0;
  }

  /**
   * dup - dup(2): a new lowest fd referring to the same File (one more reference).
   * Returns the fd, -EBADF for a bad `fd`, or -EMFILE.
   */
  dup(fd: number): number {
    const file = this.get(fd);
    if (!file) return -ERRNO.EBADF;
    const nfd = this.getUnusedFd();
    if (nfd < 0) return nfd;
    this.fdInstall(nfd, getFile(file));
    return nfd;
  }

  /**
   * dupForFork - the child's table (dup_fd): same fd numbers, same Files, one more reference on
   * each, so a File is released only after both processes closed it.
   * Reserved slots are not copied.
   *
   * @param max - the child's fd limit; pass a function reading the child's own RLIMIT_NOFILE when
   *   the parent's limit is a function of the parent's rlimits (default: the parent's limit as is).
   */
  dupForFork(max: FdLimit = this.limit): FdTable {
    const child = new FdTable(max);
    for (let fd = 0; fd < this.slots.length; fd++) {
      const slot = this.slots[fd];
      if (!(slot instanceof File)) continue;
      child.slots[fd] = getFile(slot);
      child.installed++;
      if (this.cloexec.has(fd)) child.cloexec.add(fd);
    }
    return child;
  }

  /** Number of open fds. */
  get count(): number {
    return this.installed;
  }

  /** The open fds, ascending. */
  fds(): number[] {
    const out: number[] = [];
    for (let fd = 0; fd < this.slots.length; fd++) if (this.slots[fd] instanceof File) out.push(fd);
    return out;
  }

  private freeSlot(fd: number): void {
    this.slots[fd] = undefined;
    this.cloexec.delete(fd);
    if (fd < this.nextFd) this.nextFd = fd;
    while (this.slots.length > 0 && this.slots[this.slots.length - 1] === undefined) this.slots.pop();
  }
}
