import { ERRNO, KernelError, SyscallError } from '../uapi/errno';
import type { Current } from './current';

/**
 * SyscallHandler - one system call: receives the caller and its raw arguments, returns a
 * non-negative result or -errno. It may also throw SyscallError/KernelError, which the table
 * turns into -errno; any other exception is a simulator bug and propagates.
 */
export type SyscallHandler = (current: Current, ...args: unknown[]) => number;

/** Options of {@link SyscallTable.register}. */
export interface SyscallOptions {
  /** The syscall number, when the call has one (a proposed syscall's number from its patch). */
  nr?: number;
}

interface Entry {
  name: string;
  handler: SyscallHandler;
  nr?: number;
}

/** Syscall names are C identifiers, as in the kernel's syscall tables. */
const NAME_RE = /^[a-z_][a-z0-9_]*$/;

/**
 * SyscallTable - the per-kernel table of system calls that plugins extend (mempinfd and the like).
 * One table per kernel; nothing is global.
 */
export class SyscallTable {
  private readonly byName = new Map<string, Entry>();
  private readonly byNr = new Map<number, Entry>();

  /**
   * register - add a syscall.
   *
   * Returns 0, -EINVAL for a name that is not a lower-case C identifier, a non-function handler
   * or an `nr` that is not a non-negative integer, or -EEXIST when the name or number is taken.
   * Released by {@link unregister}.
   */
  register(name: string, handler: SyscallHandler, opts: SyscallOptions = {}): number {
    if (typeof name !== 'string' || !NAME_RE.test(name) || typeof handler !== 'function') {
      return -ERRNO.EINVAL;
    }
    const { nr } = opts;
    if (nr !== undefined && (!Number.isSafeInteger(nr) || nr < 0)) return -ERRNO.EINVAL;
    if (this.byName.has(name) || (nr !== undefined && this.byNr.has(nr))) return -ERRNO.EEXIST;
    const entry: Entry = { name, handler, nr };
    this.byName.set(name, entry);
    if (nr !== undefined) this.byNr.set(nr, entry);
    return 0;
  }

  /** registerSyscall - the name plugins use; same as {@link register}. */
  registerSyscall(name: string, handler: SyscallHandler, opts: SyscallOptions = {}): number {
    return this.register(name, handler, opts);
  }

  /** unregister - remove a syscall. Returns 0, or -ENOENT if it is not registered. */
  unregister(name: string): number {
    const entry = this.byName.get(name);
    if (!entry) return -ERRNO.ENOENT;
    this.byName.delete(name);
    if (entry.nr !== undefined) this.byNr.delete(entry.nr);
    return 0;
  }

  /** True if `name` is registered. */
  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The number registered for `name`, or undefined. */
  nrOf(name: string): number | undefined {
    return this.byName.get(name)?.nr;
  }

  /**
   * invoke - run syscall `name` for `current` with `args`.
   *
   * Returns the handler's result, -ENOSYS for an unknown name, or the -errno of a thrown
   * SyscallError/KernelError. Any other exception propagates (a bug in the handler), as does a
   * handler that returns something other than a number.
   */
  invoke(current: Current, name: string, args: readonly unknown[] = []): number {
    const entry = this.byName.get(name);
    if (!entry) return -ERRNO.ENOSYS;
    return callHandler(entry, current, args);
  }

  /** invokeNr - like {@link invoke}, by syscall number; -ENOSYS for an unknown number. */
  invokeNr(current: Current, nr: number, args: readonly unknown[] = []): number {
    const entry = this.byNr.get(nr);
    if (!entry) return -ERRNO.ENOSYS;
    return callHandler(entry, current, args);
  }

  /** The registered names, sorted. */
  names(): string[] {
    return [...this.byName.keys()].sort();
  }
}

function callHandler(entry: Entry, current: Current, args: readonly unknown[]): number {
  let ret: unknown;
  try {
    ret = entry.handler(current, ...args);
  } catch (e) {
    if (e instanceof SyscallError || e instanceof KernelError) return e.errno;
    throw e;
  }
  if (typeof ret !== 'number' || Number.isNaN(ret)) {
    throw new TypeError(`syscall ${entry.name} returned ${String(ret)}, not a number`);
  }
  return ret;
}
