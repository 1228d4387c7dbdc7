import type { IDmesg, IScheduler, IVmstat } from '../sim/types';
import type { Tracepoints } from '../sim/tracepoints';
import { AnonVmaRegistry } from './anon-vma';
import type { MmCosts, MmSysctl } from './mm-config';
import type { PageData } from './page-data';
import type { PageFrames } from './page-frames';
import type { HugepageSize, PfnPlacement, NodeLayout, ZoneInfo } from './phys-types';
import { ShmemRegistry } from './shmem';
import { IoMemory } from './io-mem';
import type { MmStruct } from './mm-struct';
import type { FaultHooks } from './fault';
import type { ZapHooks } from './zap';

/** The part of the page allocator the virtual-memory layer uses. */
export interface PhysAllocator {
  readonly frames: PageFrames;
  readonly data: PageData;
  readonly zeroPfn: number;
  readonly nodes: NodeLayout[];
  allocPages(gfp: number, order: number, nid?: number): number;
  freePages(pfn: number, order: number): void;
  placement(pfn: number): PfnPlacement;
  nrFreePages(): number;
  zoneInfo(): ZoneInfo[];
}

/** The part of the hugetlb pools the virtual-memory layer uses. */
export interface HugetlbAllocator {
  allocHugetlbFolio(size: HugepageSize, nid?: number): number;
  freeHugetlbFolio(head: number): void;
  reserve(size: HugepageSize, n: number): boolean;
  unreserve(size: HugepageSize, n: number): void;
}

/** The huge page size name of a byte size. */
export function hugepageSizeName(bytes: number): HugepageSize {
  return bytes === 2 ** 30 ? '1GiB' : '2MiB';
}

/**
 * MmCore - the memory-management state one kernel shares among its address spaces (the
 * kernel's mm globals): the page allocator, hugetlb pools, reverse-map groups, shared-memory
 * objects, counters and tunables. One per kernel; two kernels share nothing.
 */
export class MmCore {
  readonly frames: PageFrames;
  readonly data: PageData;
  readonly anonVmas = new AnonVmaRegistry();
  readonly shmem: ShmemRegistry;
  /** Device MMIO ranges that user space can map. */
  readonly iomem = new IoMemory();
  /** Every live address space. */
  readonly mms = new Set<MmStruct>();
  private nextMmId = 1;

  constructor(
    readonly alloc: PhysAllocator,
    readonly hugetlb: HugetlbAllocator,
    readonly vmstat: IVmstat,
    readonly sysctl: MmSysctl,
    readonly costs: MmCosts,
    readonly dmesg: IDmesg,
    readonly trace: Tracepoints,
  ) {
    this.frames = alloc.frames;
    this.data = alloc.data;
    this.shmem = new ShmemRegistry(this);
  }

  /**
   * Where simulated CPU time goes: the kernel points this at the task (or process) making the
   * call, so faults and syscalls charge whoever caused them.
   */
  chargeHook: ((ns: number) => void) | null = null;

  /** charge - account `ns` of CPU time to the current caller. */
  charge(ns: number): void {
    if (this.chargeHook) this.chargeHook(ns);
  }

  /** Fault handlers installed by the subsystems above mm (setFaultHooks). */
  faultHooks: FaultHooks = {};
  /** Handlers for non-present entries met by zap and fork (setZapHooks). */
  zapHooks: ZapHooks = {};

  /** Simulated time (the kernel points this at its scheduler). */
  now: () => number = () => 0;
  /**
   * The kernel's scheduler, for mm's daemons (kcompactd, kswapd, khugepaged, NUMA scanning),
   * which run as background events (scheduleBackground) so an idle machine stays idle.
   */
  scheduler: IScheduler | null = null;

  /** A fresh mm id. */
  allocMmId(): number {
    return this.nextMmId++;
  }
}
