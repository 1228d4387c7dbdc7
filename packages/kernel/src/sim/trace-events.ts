/**
 * TraceEvents - every tracepoint of the simulated kernel: its name and the payload it carries.
 *
 * Names and fields follow the kernel's tracepoints (include/trace/events/) where one exists, so a
 * trace reads like `perf trace` output. Subsystems add their entries here; Tracepoints checks
 * on(), off() and emit() against this map.
 */
export interface TraceEvents {
  /** A user page fault was handled; @result is the VM_FAULT_* bits. */
  mm_page_fault: { pid: number; address: number; write: boolean; result: number };
  /** The buddy allocator handed out 2^@order pages starting at @pfn. */
  mm_page_alloc: { pfn: number; order: number; migratetype: number };
  /** 2^@order pages starting at @pfn went back to the buddy allocator. */
  mm_page_free: { pfn: number; order: number };
  /** A simulated task changed state (runnable, blocked, done, failed). */
  sched_task: { task: number; name: string; state: string };
  /** A line was appended to dmesg (already formatted with its timestamp). */
  printk: { line: string };
  /**
   * A work item started on simulated CPU @cpu at @startNs and keeps it busy for @durNs
   * (workqueue_execute_start/_end folded into one event: the cost is known when it starts).
   */
  workqueue_execute: { cpu: number; startNs: number; durNs: number };
  /**
   * A page request group got its response at the device: IOMMU queue @queue, device @dev, @nr
   * requests, the LAST_PAGE one at @addr arrived at @arrivedNs; @code is IOMMU_PAGE_RESP_*.
   */
  iommu_page_response: {
    queue: string;
    dev: string;
    pasid: number;
    addr: number;
    nr: number;
    arrivedNs: number;
    code: number;
  };
  /**
   * An accelerator request completed: device @dev, hardware queue @queue, doorbell at
   * @submittedNs, @status 0 or -errno, @faults page requests, @bytes consumed.
   */
  accel_request: {
    dev: string;
    queue: number;
    tag: number;
    op: string;
    submittedNs: number;
    status: number;
    faults: number;
    bytes: number;
  };
  /** migrate_pages() returned (mm_migrate_pages): pages moved and failed, MIGRATE_* mode, MR_* reason. */
  mm_migrate_pages: { succeeded: number; failed: number; mode: number; reason: number };
  /**
   * A pin registry (gup/pinned-ranges.ts: mempinfd, /dev/uacce_ctrl) unpinned a range while a
   * device still had DMA in flight on @busyPages of its @nrPages pages (the first at @pfn);
   * @owner names the registry, @pid the process whose address space held the range.
   */
  gup_unpin_dma_inflight: {
    owner: string;
    pid: number;
    addr: number;
    nrPages: number;
    busyPages: number;
    pfn: number;
  };
}

/** TraceName - the name of a tracepoint. */
export type TraceName = keyof TraceEvents;
