/**
 * kswapd (mm/vmscan.c): one background reclaimer per node. An allocation that finds a zone below
 * its low watermark wakes it (wakeup_kswapd); it then reclaims in batches of SWAP_CLUSTER_MAX
 * pages, each batch a background event that lasts as long as the batch's CPU work and swap
 * writes, until some zone of the node is above its high watermark (balance_pgdat), and sleeps
 * again. A run that frees nothing counts as a failure; after MAX_RECLAIM_RETRIES failures in a
 * row the node is hopeless and kswapd is no longer woken until direct reclaim frees something
 * there. Its time is kept in its own KswapdStats, never charged to a process.
 */
import { scheduleBackground } from '../sim/types';
import { MAX_NR_ZONES } from './gfp';
import type { KswapdStats, ReclaimState } from './reclaim-state';
import { accountReclaim, emptyReclaimStats, shrinkNode } from './vmscan';

/**
 * pgdatBalanced - whether node @nid needs no more reclaim (pgdat_balanced): some populated zone
 * up to @classzone has more free pages than its high watermark plus the lowmem reserve it keeps
 * against @classzone allocations; a node without such zones is balanced too.
 * @state: the kernel's reclaim state.
 *
 * Return: true when kswapd may sleep.
 */
export function pgdatBalanced(state: ReclaimState, nid: number, classzone: number): boolean {
  const zones = state.zones;
  let managed = false;
  for (let i = 0; i <= classzone && i < MAX_NR_ZONES; i++) {
    const z = zones[nid * MAX_NR_ZONES + i];
    if (!z || !z.populated) continue;
    managed = true;
    if (z.freePages > z.watermarkHigh + z.lowmemReserve[classzone]) return true;
  }
  return !managed;
}

/**
 * wakeupKswapd - an allocation found zone @zoneIdx of node @nid below its low watermark
 * (wakeup_kswapd). Starts kswapd after kswapdWakeupNs unless it is already awake, the node is
 * hopeless (kswapd_failures >= MAX_RECLAIM_RETRIES) or already balanced. @order is not used:
 * kswapd balances order-0 free pages (assembling larger blocks is compaction's business).
 * @state: the kernel's reclaim state.
 *
 * Context: the allocator's slow path (AllocSlowpathHooks.wakeKswapd); needs core.scheduler.
 * Return: nothing.
 */
export function wakeupKswapd(state: ReclaimState, nid: number, zoneIdx: number, _order: number): void {
  const ks = state.kswapd[nid];
  const scheduler = state.core.scheduler;
  if (!ks || !scheduler) return;
  if (zoneIdx > state.kswapdClasszone[nid]) state.kswapdClasszone[nid] = zoneIdx;
  if (ks.running) return;
  if (ks.failures >= state.tunables.maxReclaimRetries) return;
  if (pgdatBalanced(state, nid, state.kswapdClasszone[nid])) return;
  ks.running = true;
  ks.wakeups++;
  ks.runs++;
  state.kswapdRunReclaimed[nid] = 0;
  state.core.vmstat.inc(state.vm.pageoutrun);
  scheduleBackground(scheduler, state.tunables.kswapdWakeupNs, () => kswapdBatch(state, nid));
}

/** One batch of balance_pgdat; schedules the next one after the time this one took. */
function kswapdBatch(state: ReclaimState, nid: number): void {
  const ks = state.kswapd[nid];
  const scheduler = state.core.scheduler;
  if (!scheduler || pgdatBalanced(state, nid, state.kswapdClasszone[nid])) {
    kswapdSleep(state, ks, true);
    return;
  }
  const stats = emptyReclaimStats();
  const reclaimed = shrinkNode(state, nid, state.tunables.swapClusterMax, stats);
  accountReclaim(state, stats, true);
  const ioNs = state.swap ? state.swap.writeTimeNs(stats.nrWritten) : 0;
  ks.cpuNs += stats.cpuNs;
  ks.ioWaitNs += ioNs;
  ks.nrScanned += stats.nrScanned;
  ks.nrReclaimed += reclaimed;
  state.kswapdRunReclaimed[nid] += reclaimed;
  if (reclaimed === 0) {
    // The clock went twice round without freeing anything: nothing more to gain this run.
    kswapdSleep(state, ks, false);
    return;
  }
  scheduleBackground(scheduler, Math.max(1, stats.cpuNs + ioNs), () => kswapdBatch(state, nid));
}

/**
 * End a run and sleep: a run that gave up without freeing anything is a failure (a balanced node
 * is not, as balance_pgdat jumps past the count), one that freed pages clears the failures.
 */
function kswapdSleep(state: ReclaimState, ks: KswapdStats, balanced: boolean): void {
  const nid = ks.nid;
  if (state.kswapdRunReclaimed[nid] > 0) ks.failures = 0;
  else if (!balanced) ks.failures++;
  state.kswapdClasszone[nid] = 0;
  ks.running = false;
}
