/**
 * Linux errno values (asm-generic/errno-base.h and errno.h), the error vocabulary shared by
 * every layer. Kernel-internal functions return `-errno`; user space sees {@link SyscallError}.
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENOMSG: 42,
  EIDRM: 43,
  ENODATA: 61,
  ETIME: 62,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EBADFD: 77,
  EILSEQ: 84,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ETIMEDOUT: 110,
  EALREADY: 114,
  EINPROGRESS: 115,
  ECANCELED: 125,
  EHWPOISON: 133,
} as const;

/** An errno name such as 'EINVAL'. */
export type ErrnoName = keyof typeof ERRNO;

const NAMES: string[] = [];
for (const [name, value] of Object.entries(ERRNO)) NAMES[value] = name;

/** errnoName - the name of an errno given as a positive or negative number ('E?' when unknown). */
export function errnoName(errno: number): string {
  return NAMES[Math.abs(errno)] ?? `E${Math.abs(errno)}`;
}

const MESSAGES: Partial<Record<ErrnoName, string>> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  EINVAL: 'Invalid argument',
  EMFILE: 'Too many open files',
  ENOTTY: 'Inappropriate ioctl for device',
  ENOSPC: 'No space left on device',
  EMLINK: 'Too many links',
  ENOSYS: 'Function not implemented',
  EBADMSG: 'Bad message',
  EOVERFLOW: 'Value too large for defined data type',
  EOPNOTSUPP: 'Operation not supported',
  ETIMEDOUT: 'Connection timed out',
  EHWPOISON: 'Memory page has hardware error',
};

/** strerror - the C library's message for an errno (positive or negative). */
export function strerror(errno: number): string {
  return MESSAGES[errnoName(errno) as ErrnoName] ?? `Unknown error ${Math.abs(errno)}`;
}

/**
 * SyscallError - what a user-space call throws when the kernel answers -errno.
 * Shaped like Node's system errors: `code` is the errno name, `errno` the negative number,
 * `syscall` the call's name.
 */
export class SyscallError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;

  constructor(errno: number, syscall: string, detail?: string) {
    const neg = -Math.abs(errno);
    const code = errnoName(neg);
    super(`${syscall}: ${code} (${strerror(neg)})${detail ? `: ${detail}` : ''}`);
    this.name = 'SyscallError';
    this.code = code;
    this.errno = neg;
    this.syscall = syscall;
  }
}

/**
 * KernelError - thrown by kernel-internal functions that return a pointer in C
 * (ERR_PTR convention): uacceAlloc, iommuSvaBindDevice and the like.
 */
export class KernelError extends Error {
  readonly code: string;
  readonly errno: number;

  constructor(errno: number, detail?: string) {
    const neg = -Math.abs(errno);
    super(`${errnoName(neg)}${detail ? `: ${detail}` : ''}`);
    this.name = 'KernelError';
    this.code = errnoName(neg);
    this.errno = neg;
  }
}

/** errPtr - the C ERR_PTR(-errno) idiom: throw a KernelError. */
export function errPtr(errno: number, detail?: string): never {
  throw new KernelError(errno, detail);
}

/** isErr - true for a negative errno return (IS_ERR_VALUE for int-returning kernel functions). */
export function isErr(ret: number): boolean {
  return ret < 0;
}
