/**
 * MigrateReasonCounter - pages migrated during a run, per reason (the kernel's enum
 * migrate_reason: compaction, contig_range for CMA and gigantic pages, longterm_pin for
 * FOLL_LONGTERM moving pages out of CMA / ZONE_MOVABLE, numa_misplaced for NUMA balancing...).
 *
 * vmstat's pgmigrate_success says how many pages moved, not who moved them; experiments need
 * to tell a pin's one-time migration from CMA's or compaction's. The counter listens to the
 * mm_migrate_pages tracepoint (the kernel's trace_mm_migrate_pages, which carries the reason),
 * so it only reads: the simulation does the same with or without it.
 */
import { MIGRATE_REASON_NAMES, type Kernel, type TraceEvents } from '@svasim/kernel';

type MigrateEvent = TraceEvents['mm_migrate_pages'];

/** MigrateReasonCounter - see the file comment. attach() before the run, detach() after. */
export class MigrateReasonCounter {
  private readonly ok = new Float64Array(MIGRATE_REASON_NAMES.length);
  private readonly bad = new Float64Array(MIGRATE_REASON_NAMES.length);
  private kernel: Kernel | null = null;
  private readonly onMigrate = (e: MigrateEvent): void => {
    if (e.reason >= 0 && e.reason < this.ok.length) {
      this.ok[e.reason] += e.succeeded;
      this.bad[e.reason] += e.failed;
    }
  };

  /** attach - start counting @k's migrations. A second attach without detach is ignored. */
  attach(k: Kernel): void {
    if (this.kernel) return;
    this.kernel = k;
    k.trace.on('mm_migrate_pages', this.onMigrate);
  }

  /** detach - stop counting (the counts stay readable). */
  detach(): void {
    this.kernel?.trace.off('mm_migrate_pages', this.onMigrate);
    this.kernel = null;
  }

  /**
   * extras - the counts as extra metrics: `pgmigrate_<reason>` (pages moved) and
   * `pgmigrate_fail_<reason>` (pages that failed to move), for the reasons that saw any.
   *
   * Return: a fresh object, empty when nothing migrated.
   */
  extras(): Record<string, number> {
    const out: Record<string, number> = {};
    MIGRATE_REASON_NAMES.forEach((name, i) => {
      if (this.ok[i] > 0) out[`pgmigrate_${name}`] = this.ok[i];
      if (this.bad[i] > 0) out[`pgmigrate_fail_${name}`] = this.bad[i];
    });
    return out;
  }
}
