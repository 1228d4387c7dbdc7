/**
 * Tunables of page reclaim and swap: the kernel's constants, the swap device's IO profile and the
 * simulated CPU cost of reclaim, each with its unit and source. Model code reads these tables and
 * never hard-codes a number.
 */
import type { Tunable } from './mm-config';

/** SwapTunables - the swap device: its latency and throughput for 4 KiB page IO. */
export interface SwapTunables {
  readLatencyNs: number;
  writeLatencyNs: number;
  writeServiceNs: number;
  minPages: number;
}

/**
 * SWAP_TUNABLE_DEFAULTS - an enterprise NVMe SSD as the swap device (Intel SSD DC P4500 2 TB,
 * the figures its server vendor publishes).
 */
export const SWAP_TUNABLE_DEFAULTS: { [K in keyof SwapTunables]: Tunable<number> } = {
  readLatencyNs: {
    value: 85_000,
    unit: 'ns',
    description: 'latency of one 4 KiB random read (a swap-in), queue depth 1',
    source:
      'Lenovo Press product guide, Intel P4500 NVMe SSD: "Read access latency random 85 us" (1 and 2 TB)',
  },
  writeLatencyNs: {
    value: 20_000,
    unit: 'ns',
    description: 'latency of one 4 KiB write (a swap-out), queue depth 1',
    source: 'same guide: "Write access latency random 20 us" (all capacities)',
  },
  writeServiceNs: {
    value: 3_901,
    unit: 'ns/page',
    description:
      'device time per further 4 KiB write of a batch: slots are allocated in order, so a batch streams',
    source: 'same guide: sequential write 1.05 GBps (2 TB drive); 4096 B / 1.05e9 B/s',
  },
  minPages: {
    value: 10,
    unit: 'pages',
    description: 'smallest swap area, header page included (smaller sizes are refused)',
    source: 'util-linux mkswap MIN_GOODPAGES (10): "swap area needs to be at least 40 KiB"',
  },
};

/** ReclaimTunables - the reclaim algorithm's constants and CPU costs. */
export interface ReclaimTunables {
  swapClusterMax: number;
  maxReclaimRetries: number;
  scanPerPageNs: number;
  pageoutPerPageNs: number;
  swapinCpuNs: number;
  kswapdWakeupNs: number;
  pageCluster: number;
}

/** RECLAIM_TUNABLE_DEFAULTS - the kernel's reclaim constants and the costs charged for reclaim. */
export const RECLAIM_TUNABLE_DEFAULTS: { [K in keyof ReclaimTunables]: Tunable<number> } = {
  swapClusterMax: {
    value: 32,
    unit: 'pages',
    description: 'pages one reclaim batch tries to free (nr_to_reclaim of direct reclaim, kswapd step)',
    source: 'include/linux/swap.h SWAP_CLUSTER_MAX',
  },
  maxReclaimRetries: {
    value: 16,
    unit: 'kswapd runs',
    description: 'kswapd runs that freed nothing before the node is hopeless (left to direct reclaim)',
    source: 'mm/internal.h MAX_RECLAIM_RETRIES; mm/vmscan.c kswapd_failures',
  },
  scanPerPageNs: {
    value: 200,
    unit: 'ns/page',
    description: 'examine one LRU page: isolate it and walk its rmap testing and clearing accessed bits',
    source:
      'estimate: the same work as one folio isolation + rmap walk in migration (MIGRATE_COST_DEFAULTS.perFolioOverhead, CALIBRATION.md 3)',
  },
  pageoutPerPageNs: {
    value: 2_000,
    unit: 'ns/page',
    description: 'swap one page out: allocate a slot, unmap every PTE, flush TLBs, submit the write, free',
    source:
      'estimate (D): 5.81 GB/s swap-out with 16 processes to a RAM-backed pmem (Huang Ying, "mm, THP, swap: delay splitting THP after swapped out") is ~11 us of CPU per 4 KiB page for fault + zeroing + reclaim + copy; the reclaim share is taken as ~2 us',
  },
  swapinCpuNs: {
    value: 1_500,
    unit: 'ns',
    description:
      'CPU part of a swap-in fault beyond the IO: allocate, map, free the slot (the IO latency is added)',
    source: 'minorFaultAnon (CALIBRATION.md 2, ~1 us) plus swap-cache and slot bookkeeping (estimate)',
  },
  kswapdWakeupNs: {
    value: 10_000,
    unit: 'ns',
    description: 'delay from wakeup_kswapd to kswapd running on a CPU',
    source: 'estimate: scheduler wakeup latency of a kernel thread on an idle CPU (tens of us at most)',
  },
  pageCluster: {
    value: 3,
    unit: 'log2(pages)',
    description:
      'vm.page-cluster: a swap-in reads the 2^n-page aligned window of swap entries around the fault (readahead)',
    source: 'mm/swap.c page_cluster = 3 (vm.page-cluster); mm/swap_state.c swap_vma_readahead',
  },
};
