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
}

/** TraceName - the name of a tracepoint. */
export type TraceName = keyof TraceEvents;
