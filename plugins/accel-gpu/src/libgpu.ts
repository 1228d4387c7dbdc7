/**
 * libgpu - the user-space library of the simulated GPU, in the spirit of a thin HIP/CUDA-driver
 * wrapper over /dev/kfd: openGpu(proc) opens /dev/svasim_gpu0 in the process and returns a
 * GpuClient whose methods are the device's ioctls. Every failure throws the SyscallError the
 * ioctl raised (syscall 'ioctl', the kernel's errno); after close() every call throws EBADF.
 */
import { ERRNO, O_RDWR, SyscallError, type Process } from '@svasim/kernel';
import { GPU_ATOMIC_MODES, type GpuAtomicMode } from './atomic-holds';
import type { GpuThread } from './context';
import {
  GPU_ATOMIC_CAS,
  GPU_ATOMIC_FETCH_ADD,
  GPU_MODE_F_PIN_IN_PLACE,
  GPU_STATS_LAYOUT,
  SVASIM_GPU_IOC_ATOMIC,
  SVASIM_GPU_IOC_EVICT,
  SVASIM_GPU_IOC_LAUNCH,
  SVASIM_GPU_IOC_MIGRATE_TO_DEV,
  SVASIM_GPU_IOC_MIGRATE_TO_SYS,
  SVASIM_GPU_IOC_MIRROR,
  SVASIM_GPU_IOC_READ,
  SVASIM_GPU_IOC_SET_MODE,
  SVASIM_GPU_IOC_SNAPSHOT,
  SVASIM_GPU_IOC_STATS,
  SVASIM_GPU_IOC_WRITE,
} from './uapi';

/** Options of openGpu. */
export interface OpenGpuOptions {
  /** The device node (default /dev/svasim_gpu0). */
  device?: string;
  /** How the context keeps the pages of its atomics (default 'notifier-only'). */
  mode?: GpuAtomicMode;
  /** longterm-pin only: pin without FOLL_LONGTERM, leaving pages in ZONE_MOVABLE (blocks offline). */
  pinInPlace?: boolean;
}

/** What the last command took (device time, GPU faults, GPU_ATOMIC_F_* flags of an atomic). */
export interface GpuLast {
  ns: number;
  faults: number;
  flags: number;
}

/** GpuContextCounters - what SVASIM_GPU_IOC_STATS returns: struct svasim_gpu_stats, decoded. */
export type GpuContextCounters = ReturnType<typeof GPU_STATS_LAYOUT.decode>;

/**
 * GpuClient - one open GPU context of one process. Released by close() (or the process's exit).
 */
export class GpuClient {
  private closed = false;
  /** What the last successful command took. */
  readonly last: GpuLast = { ns: 0, faults: 0, flags: 0 };

  constructor(
    readonly proc: Process,
    /** The open file descriptor of the device. */
    readonly fd: number,
    /** The device node. */
    readonly device: string,
  ) {}

  private ioctl(cmd: number, arg: Record<string, unknown>): Record<string, unknown> {
    if (this.closed) throw new SyscallError(-ERRNO.EBADF, 'ioctl', 'the GPU context is closed');
    this.proc.ioctl(this.fd, cmd, arg);
    this.last.ns = typeof arg.ns === 'number' ? arg.ns : 0;
    this.last.faults = typeof arg.faults === 'number' ? arg.faults : 0;
    this.last.flags = typeof arg.flags === 'number' ? arg.flags : 0;
    return arg;
  }

  /** setMode - keep later atomics' pages as @mode says (what was held is released). */
  setMode(mode: GpuAtomicMode, opts: { pinInPlace?: boolean } = {}): void {
    const i = GPU_ATOMIC_MODES.indexOf(mode);
    if (i < 0) throw new SyscallError(-ERRNO.EINVAL, 'ioctl', `unknown mode ${String(mode)}`);
    this.ioctl(SVASIM_GPU_IOC_SET_MODE, { mode: i, flags: opts.pinInPlace ? GPU_MODE_F_PIN_IN_PLACE : 0 });
  }

  /** read - the GPU reads @len bytes at @addr of the process through its mirror. */
  read(addr: number, len: number): Uint8Array {
    if (!Number.isSafeInteger(len) || len < 0) throw new SyscallError(-ERRNO.EINVAL, 'ioctl', 'bad length');
    const data = new Uint8Array(len);
    this.ioctl(SVASIM_GPU_IOC_READ, { addr, data });
    return data;
  }

  /** write - the GPU writes @bytes at @addr of the process through its mirror. */
  write(addr: number, bytes: Uint8Array): void {
    this.ioctl(SVASIM_GPU_IOC_WRITE, { addr, data: bytes });
  }

  /** migrateToDevice - move [addr, addr + len) into device memory (addr page aligned). Returns pages moved. */
  migrateToDevice(addr: number, len: number): number {
    return this.ioctl(SVASIM_GPU_IOC_MIGRATE_TO_DEV, { addr, len }).cpages as number;
  }

  /** migrateToSystem - move this GPU's pages of [addr, addr + len) back. Returns pages moved. */
  migrateToSystem(addr: number, len: number): number {
    return this.ioctl(SVASIM_GPU_IOC_MIGRATE_TO_SYS, { addr, len }).cpages as number;
  }

  private atomic(addr: number, op: number, width: number, operand: bigint, expected: bigint): bigint {
    return this.ioctl(SVASIM_GPU_IOC_ATOMIC, { addr, op, width, operand, expected }).result as bigint;
  }

  /** atomicFetchAdd - 32-bit fetch-and-add at @addr (4-byte aligned); returns the old value. */
  atomicFetchAdd(addr: number, value: number): number {
    return Number(this.atomic(addr, GPU_ATOMIC_FETCH_ADD, 32, BigInt.asUintN(32, BigInt(value)), 0n));
  }

  /** atomicFetchAdd64 - 64-bit fetch-and-add at @addr (8-byte aligned); returns the old value. */
  atomicFetchAdd64(addr: number, value: bigint): bigint {
    return this.atomic(addr, GPU_ATOMIC_FETCH_ADD, 64, BigInt.asUintN(64, value), 0n);
  }

  /** atomicCas - 32-bit compare-and-swap: stores @desired if the word is @expected; returns the old value. */
  atomicCas(addr: number, expected: number, desired: number): number {
    const e = BigInt.asUintN(32, BigInt(expected));
    return Number(this.atomic(addr, GPU_ATOMIC_CAS, 32, BigInt.asUintN(32, BigInt(desired)), e));
  }

  /** atomicCas64 - 64-bit compare-and-swap; returns the old value. */
  atomicCas64(addr: number, expected: bigint, desired: bigint): bigint {
    return this.atomic(addr, GPU_ATOMIC_CAS, 64, BigInt.asUintN(64, desired), BigInt.asUintN(64, expected));
  }

  /** snapshot - one HMM_DMIRROR_PROT_* byte per page: the CPU page table as hmm_range_fault sees it. */
  snapshot(addr: number, npages: number): Uint8Array {
    const data = new Uint8Array(npages);
    this.ioctl(SVASIM_GPU_IOC_SNAPSHOT, { addr, data });
    return data;
  }

  /** mirror - one GPU_MIRROR_* byte per page: what the GPU maps and holds. */
  mirror(addr: number, npages: number): Uint8Array {
    const data = new Uint8Array(npages);
    this.ioctl(SVASIM_GPU_IOC_MIRROR, { addr, data });
    return data;
  }

  /** evict - move all of the device's memory back to system memory (returns pages moved). */
  evict(): number {
    return this.ioctl(SVASIM_GPU_IOC_EVICT, {}).cpages as number;
  }

  /** launch - run a GPU kernel; returns its device time in ns. */
  launch(kernel: (t: GpuThread) => void): number {
    return this.ioctl(SVASIM_GPU_IOC_LAUNCH, { kernel }).ns as number;
  }

  /** stats - the context's counters. */
  stats(): GpuContextCounters {
    return this.ioctl(SVASIM_GPU_IOC_STATS, {}) as unknown as GpuContextCounters;
  }

  /** close - close the device file (the context ends when its last reference does). Closing twice throws EBADF. */
  close(): void {
    if (this.closed) throw new SyscallError(-ERRNO.EBADF, 'close', 'the GPU context is closed');
    this.closed = true;
    this.proc.close(this.fd);
  }

  /** Whether close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }
}

/**
 * openGpu - open the GPU in @proc and set its atomic mode.
 * Return: the client. Throws SyscallError: ENOENT (no such device node: the GPU is not loaded or
 * was removed), EACCES, EINVAL (unknown mode, pinInPlace without longterm-pin), EMFILE.
 */
export function openGpu(proc: Process, opts: OpenGpuOptions = {}): GpuClient {
  const device = opts.device ?? '/dev/svasim_gpu0';
  if (opts.mode !== undefined && !GPU_ATOMIC_MODES.includes(opts.mode))
    throw new SyscallError(-ERRNO.EINVAL, 'openGpu', `unknown mode ${String(opts.mode)}`);
  const fd = proc.open(device, O_RDWR);
  const c = new GpuClient(proc, fd, device);
  try {
    if (opts.mode !== undefined || opts.pinInPlace) c.setMode(opts.mode ?? 'notifier-only', opts);
  } catch (e) {
    c.close();
    throw e;
  }
  return c;
}
