import { ERRNO } from '../uapi/errno';
import { INR_OPEN_CUR, INR_OPEN_MAX, NR_OPEN_DEFAULT } from '../fs/fdtable';
import type { Cred } from './cred';

/** Resource limit ids (include/uapi/asm-generic/resource.h). */
export const RLIMIT_CPU = 0;
export const RLIMIT_FSIZE = 1;
export const RLIMIT_DATA = 2;
export const RLIMIT_STACK = 3;
export const RLIMIT_CORE = 4;
export const RLIMIT_RSS = 5;
export const RLIMIT_NPROC = 6;
export const RLIMIT_NOFILE = 7;
export const RLIMIT_MEMLOCK = 8;
export const RLIMIT_AS = 9;
export const RLIMIT_LOCKS = 10;
export const RLIMIT_SIGPENDING = 11;
export const RLIMIT_MSGQUEUE = 12;
export const RLIMIT_NICE = 13;
export const RLIMIT_RTPRIO = 14;
export const RLIMIT_RTTIME = 15;
/** Number of resource limits. */
export const RLIM_NLIMITS = 16;

/** Unlimited. The kernel's RLIM_INFINITY is ~0UL; svasim uses Infinity so comparisons just work. */
export const RLIM_INFINITY = Infinity;

/** MLOCK_LIMIT: default RLIMIT_MEMLOCK, 8 MiB (include/uapi/linux/resource.h, since 5.16). */
export const MLOCK_LIMIT = 8 * 1024 * 1024;
/** _STK_LIM: default soft RLIMIT_STACK, 8 MiB. */
export const STK_LIM = 8 * 1024 * 1024;
/** MQ_BYTES_MAX: default RLIMIT_MSGQUEUE in bytes. */
export const MQ_BYTES_MAX = 819200;

/** One limit: soft (`cur`, enforced) and hard (`max`, the ceiling an unprivileged task may raise cur to). */
export interface Rlimit {
  cur: number;
  max: number;
}

/*
 * INIT_RLIMITS (include/asm-generic/resource.h), with NOFILE at its modern 1024/4096 and
 * NPROC/SIGPENDING unlimited (the kernel sizes those from max_threads at boot).
 */
const DEFAULTS: ReadonlyArray<readonly [number, number]> = [
  [RLIM_INFINITY, RLIM_INFINITY], // CPU
  [RLIM_INFINITY, RLIM_INFINITY], // FSIZE
  [RLIM_INFINITY, RLIM_INFINITY], // DATA
  [STK_LIM, RLIM_INFINITY], // STACK
  [0, RLIM_INFINITY], // CORE
  [RLIM_INFINITY, RLIM_INFINITY], // RSS
  [RLIM_INFINITY, RLIM_INFINITY], // NPROC
  [INR_OPEN_CUR, INR_OPEN_MAX], // NOFILE
  [MLOCK_LIMIT, MLOCK_LIMIT], // MEMLOCK
  [RLIM_INFINITY, RLIM_INFINITY], // AS
  [RLIM_INFINITY, RLIM_INFINITY], // LOCKS
  [RLIM_INFINITY, RLIM_INFINITY], // SIGPENDING
  [MQ_BYTES_MAX, MQ_BYTES_MAX], // MSGQUEUE
  [0, 0], // NICE
  [0, 0], // RTPRIO
  [RLIM_INFINITY, RLIM_INFINITY], // RTTIME
];

function validResource(res: number): boolean {
  return Number.isInteger(res) && res >= 0 && res < RLIM_NLIMITS;
}

function validValue(v: number): boolean {
  return v === RLIM_INFINITY || (Number.isSafeInteger(v) && v >= 0);
}

/**
 * Rlimits - a task's resource limits (signal->rlim). Copied at fork ({@link Rlimits.clone}).
 */
export class Rlimits {
  private readonly cur_: number[];
  private readonly max_: number[];

  constructor() {
    this.cur_ = DEFAULTS.map(([c]) => c);
    this.max_ = DEFAULTS.map(([, m]) => m);
  }

  /**
   * get - a copy of limit `res`. Throws RangeError for an unknown resource (a simulator bug;
   * the syscall path validates with {@link Rlimits.set}).
   */
  get(res: number): Rlimit {
    if (!validResource(res)) throw new RangeError(`Rlimits: unknown resource ${res}`);
    return { cur: this.cur_[res], max: this.max_[res] };
  }

  /** cur - the soft limit of `res`, the value the kernel's rlimit() returns. Throws like {@link get}. */
  cur(res: number): number {
    return this.get(res).cur;
  }

  /**
   * set - setrlimit/prlimit (do_prlimit in kernel/sys.c).
   *
   * `cred` is the caller's credentials; omit it for kernel-internal setup (no permission check).
   * Returns 0, or:
   * - -EINVAL: unknown resource, a value that is not a non-negative integer or RLIM_INFINITY, or cur > max;
   * - -EPERM: raising the hard limit without CAP_SYS_RESOURCE, or RLIMIT_NOFILE above fs.nr_open.
   */
  set(res: number, cur: number, max: number, cred?: Cred): number {
    if (!validResource(res) || !validValue(cur) || !validValue(max)) return -ERRNO.EINVAL;
    if (cur > max) return -ERRNO.EINVAL;
    if (res === RLIMIT_NOFILE && max > NR_OPEN_DEFAULT) return -ERRNO.EPERM;
    if (cred && max > this.max_[res] && !cred.capable('CAP_SYS_RESOURCE')) return -ERRNO.EPERM;
    this.cur_[res] = cur;
    this.max_[res] = max;
    return 0;
  }

  /** clone - an independent copy for a forked child (copy_signal copies the rlimit array). */
  clone(): Rlimits {
    const r = new Rlimits();
    for (let i = 0; i < RLIM_NLIMITS; i++) {
      r.cur_[i] = this.cur_[i];
      r.max_[i] = this.max_[i];
    }
    return r;
  }
}

/**
 * canDoMlock - may this task lock memory at all? (can_do_mlock in mm/mlock.c)
 *
 * True if RLIMIT_MEMLOCK's soft limit is non-zero or the task has CAP_IPC_LOCK. The amount is
 * checked separately by the caller against the same limit.
 */
export function canDoMlock(cred: Cred, rlimits: Rlimits): boolean {
  return rlimits.cur(RLIMIT_MEMLOCK) !== 0 || cred.capable('CAP_IPC_LOCK');
}
