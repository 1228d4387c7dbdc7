/**
 * TraceCapture - records a run's tracepoints as plain data (so it crosses worker threads):
 * work items on each simulated CPU, IO page-request groups per IOMMU queue, accelerator requests
 * per device queue, page migrations and CPU page faults. report/trace.ts turns it into a
 * Chrome Trace Event / Perfetto JSON file. Attaching listeners never changes the run.
 */
import type { Kernel, TraceEvents } from '@svasim/kernel';

/** A captured interval on a track. */
export interface CapturedSlice {
  /** Track key: 'cpu', an IOMMU queue name, or '<device> q<queue>'. */
  track: string;
  name: string;
  startNs: number;
  durNs: number;
  args: Record<string, number | string>;
}

/** A captured instant. */
export interface CapturedInstant {
  track: string;
  name: string;
  atNs: number;
  args: Record<string, number | string>;
}

/** CapturedTrace - everything captured in one run. */
export interface CapturedTrace {
  strategy: string;
  seed: number;
  /** Simulated CPUs of the machine (one track each). */
  cpus: number;
  /** Work items per CPU: parallel arrays (CPU, start ns, duration ns). */
  cpuWork: { cpu: number[]; startNs: number[]; durNs: number[] };
  /** Page-request groups (track: the IOMMU queue) and device requests (track: device queue). */
  slices: CapturedSlice[];
  /** Migrations and CPU page faults (track 'mm' / 'pid <n>'). */
  instants: CapturedInstant[];
  /** Events not kept because maxEvents was reached. */
  dropped: number;
}

/** Options of a capture. */
export interface TraceCaptureOptions {
  /** Keep at most this many events (default 200,000); the rest are counted in `dropped`. */
  maxEvents?: number;
  /** Record every CPU page fault as an instant (default true). */
  pageFaults?: boolean;
}

const MIGRATE_REASONS = [
  'compaction',
  'memory_failure',
  'memory_hotplug',
  'syscall_or_cpuset',
  'mempolicy_mbind',
  'numa_misplaced',
  'contig_range',
  'longterm_pin',
  'demotion',
  'damon',
];

/**
 * TraceCapture - attach() to a kernel before the run, detach() after it, then read `data`.
 */
export class TraceCapture {
  readonly data: CapturedTrace;
  private readonly max: number;
  private events = 0;
  private kernel: Kernel | null = null;
  private readonly pageFaults: boolean;

  private readonly onWork = (e: TraceEvents['workqueue_execute']): void => {
    if (!this.take()) return;
    const w = this.data.cpuWork;
    w.cpu.push(e.cpu);
    w.startNs.push(e.startNs);
    w.durNs.push(e.durNs);
  };

  private readonly onIopf = (e: TraceEvents['iommu_page_response']): void => {
    if (!this.take()) return;
    const now = this.kernel!.now();
    this.data.slices.push({
      track: `iommu ${e.queue} PRI queue`,
      name: `iopf ${e.dev}`,
      startNs: e.arrivedNs,
      durNs: Math.max(0, now - e.arrivedNs),
      args: { dev: e.dev, pasid: e.pasid, addr: `0x${e.addr.toString(16)}`, requests: e.nr, code: e.code },
    });
  };

  private readonly onRequest = (e: TraceEvents['accel_request']): void => {
    if (!this.take()) return;
    const now = this.kernel!.now();
    this.data.slices.push({
      track: `${e.dev} q${e.queue}`,
      name: e.status < 0 ? `${e.op} (${e.status})` : e.op,
      startNs: e.submittedNs,
      durNs: Math.max(0, now - e.submittedNs),
      args: { tag: e.tag, status: e.status, faults: e.faults, bytes: e.bytes },
    });
  };

  private readonly onMigrate = (e: TraceEvents['mm_migrate_pages']): void => {
    if (!this.take()) return;
    this.data.instants.push({
      track: 'mm',
      name: `migrate ${MIGRATE_REASONS[e.reason] ?? e.reason}`,
      atNs: this.kernel!.now(),
      args: { succeeded: e.succeeded, failed: e.failed, mode: e.mode },
    });
  };

  private readonly onFault = (e: TraceEvents['mm_page_fault']): void => {
    if (!this.take()) return;
    this.data.instants.push({
      track: `pid ${e.pid}`,
      name: e.write ? 'page fault (write)' : 'page fault (read)',
      atNs: this.kernel!.now(),
      args: { address: `0x${e.address.toString(16)}`, result: e.result },
    });
  };

  constructor(strategy: string, seed: number, cpus: number, opts: TraceCaptureOptions = {}) {
    this.max = opts.maxEvents ?? 200_000;
    this.pageFaults = opts.pageFaults ?? true;
    this.data = {
      strategy,
      seed,
      cpus,
      cpuWork: { cpu: [], startNs: [], durNs: [] },
      slices: [],
      instants: [],
      dropped: 0,
    };
  }

  /** attach - start listening to @k's tracepoints. */
  attach(k: Kernel): void {
    this.kernel = k;
    k.trace.on('workqueue_execute', this.onWork);
    k.trace.on('iommu_page_response', this.onIopf);
    k.trace.on('accel_request', this.onRequest);
    k.trace.on('mm_migrate_pages', this.onMigrate);
    if (this.pageFaults) k.trace.on('mm_page_fault', this.onFault);
  }

  /** detach - stop listening (idempotent). */
  detach(): void {
    const k = this.kernel;
    if (!k) return;
    k.trace.off('workqueue_execute', this.onWork);
    k.trace.off('iommu_page_response', this.onIopf);
    k.trace.off('accel_request', this.onRequest);
    k.trace.off('mm_migrate_pages', this.onMigrate);
    k.trace.off('mm_page_fault', this.onFault);
    this.kernel = null;
  }

  private take(): boolean {
    if (this.events >= this.max) {
      this.data.dropped++;
      return false;
    }
    this.events++;
    return true;
  }
}
