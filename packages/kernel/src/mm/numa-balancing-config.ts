import type { Tunable } from './mm-config';

/**
 * NumaBalancingConfig - automatic NUMA balancing's tunables (kernel/sched/fair.c; exposed as
 * /sys/kernel/debug/sched/numa_balancing/* and, before v5.13, kernel.numa_balancing_*) and the
 * simulated cost of its work. Times in ms as the kernel keeps them, costs in ns.
 */
export interface NumaBalancingConfig {
  scanDelayMs: number;
  scanPeriodMinMs: number;
  scanPeriodMaxMs: number;
  scanSizeMb: number;
  maxScanWindowMbPerS: number;
  hotThresholdMs: number;
  promoteRateLimitMbPerS: number;
  scanTickMs: number;
  scanBaseNs: number;
  pteUpdateNs: number;
  hintFaultNs: number;
}

/** NUMA_BALANCING_DEFAULTS - the defaults, each with its unit and source (CALIBRATION.md 3). */
export const NUMA_BALANCING_DEFAULTS: { [K in keyof NumaBalancingConfig]: Tunable<number> } = {
  scanDelayMs: {
    value: 1000,
    unit: 'ms',
    description: 'delay before the first scan of a new task (also its initial scan period)',
    source: 'kernel/sched/fair.c sysctl_numa_balancing_scan_delay; CALIBRATION.md 3',
  },
  scanPeriodMinMs: {
    value: 1000,
    unit: 'ms',
    description: 'shortest time to scan a whole task once (divided by its number of scan windows)',
    source: 'kernel/sched/fair.c sysctl_numa_balancing_scan_period_min; CALIBRATION.md 3',
  },
  scanPeriodMaxMs: {
    value: 60000,
    unit: 'ms',
    description: 'longest time to scan a whole task once (divided by its number of scan windows)',
    source: 'kernel/sched/fair.c sysctl_numa_balancing_scan_period_max; CALIBRATION.md 3',
  },
  scanSizeMb: {
    value: 256,
    unit: 'MB',
    description: 'address space with present entries marked PROT_NONE per scan (8x that is walked at most)',
    source: 'kernel/sched/fair.c sysctl_numa_balancing_scan_size; CALIBRATION.md 3',
  },
  maxScanWindowMbPerS: {
    value: 2560,
    unit: 'MB/s',
    description: 'never scan faster than this: sets the floor of the scan period',
    source: 'kernel/sched/fair.c MAX_SCAN_WINDOW',
  },
  hotThresholdMs: {
    value: 1000,
    unit: 'ms',
    description:
      'memory tiering mode (kernel.numa_balancing=2): a page faulting sooner after its scan is hot; unused in normal mode',
    source: 'kernel/sched/fair.c sysctl_numa_balancing_hot_threshold (MSEC_PER_SEC); CALIBRATION.md 3',
  },
  promoteRateLimitMbPerS: {
    value: 65536,
    unit: 'MB/s',
    description: 'memory tiering mode: promotion rate limit; unused in normal mode',
    source: 'kernel/sched/fair.c sysctl_numa_balancing_promote_rate_limit; CALIBRATION.md 3',
  },
  scanTickMs: {
    value: 100,
    unit: 'ms',
    description:
      'svasim: how often the scanner daemon looks for address spaces due a scan or new ones (the kernel checks at every scheduler tick of the running task)',
    source: 'svasim; equals the scan-period floor of the defaults (1000 ms / (2560 MB/s / 256 MB))',
  },
  scanBaseNs: {
    value: 1000,
    unit: 'ns',
    description: 'fixed cost of one task_numa_work run (task_work entry, mmap lock, VMA walk)',
    source: 'assumed: of the order of a minor fault (CALIBRATION.md 2); no published figure found',
  },
  pteUpdateNs: {
    value: 25,
    unit: 'ns/PTE',
    description: 'change_prot_numa: make one present PTE PROT_NONE (TLB flush batched per range)',
    source: 'assumed equal to the per-PTE cost of fork: 6.5 ms for 262,144 PTEs (CALIBRATION.md 2)',
  },
  hintFaultNs: {
    value: 600,
    unit: 'ns',
    description: 'NUMA hinting fault without migration: walk, lock, restore the PTE (do_numa_page)',
    source: 'CALIBRATION.md 2: minimum minor fault ~575 ns (no allocation, no zeroing)',
  },
};
