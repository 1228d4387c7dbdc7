/**
 * The state page reclaim keeps per kernel: the swap area, the tunables, each node's clock hand
 * and kswapd, and the vmstat counters reclaim reports to. Made once per MmCore by initReclaim.
 */
import type { MmCore } from './mm-core';
import type { ReclaimTunables } from './reclaim-config';
import type { SwapInfo } from './swap';
import type { ReclaimStats } from './vmscan';
import type { Zone } from './zone';

/** KswapdStats - one node's kswapd: what it did and the time it cost (its own accounting). */
export interface KswapdStats {
  nid: number;
  /** Woken by an allocation that found a zone below its low watermark (wakeup_kswapd). */
  wakeups: number;
  /** balance_pgdat runs (vmstat pageoutrun). */
  runs: number;
  /** Runs in a row that freed nothing (pgdat->kswapd_failures); at maxReclaimRetries it stops waking. */
  failures: number;
  /** True from a wakeup until kswapd goes back to sleep. */
  running: boolean;
  /** Simulated CPU time kswapd spent scanning and unmapping, in ns. */
  cpuNs: number;
  /** Simulated time kswapd waited for its swap writes, in ns. */
  ioWaitNs: number;
  /** LRU pages examined (pgscan_kswapd of this node). */
  nrScanned: number;
  /** Pages freed (pgsteal_kswapd of this node). */
  nrReclaimed: number;
}

/** Indices of the vmstat counters reclaim writes. */
export interface ReclaimVmstat {
  pgscanKswapd: number;
  pgscanDirect: number;
  pgstealKswapd: number;
  pgstealDirect: number;
  pgscanAnon: number;
  pgstealAnon: number;
  pgactivate: number;
  pageoutrun: number;
  swpinZero: number;
  swpoutZero: number;
  swapRa: number;
  swapRaHit: number;
  /** allocstall_<zone> by zone index. */
  allocstall: number[];
}

/** ReclaimState - per-kernel reclaim and swap state (see the file comment). */
export interface ReclaimState {
  readonly core: MmCore;
  /** The swap area, or null when the kernel has none (no anonymous page can be reclaimed). */
  readonly swap: SwapInfo | null;
  readonly tunables: ReclaimTunables;
  /** Every zone, MAX_NR_ZONES per node (the allocator's), or empty when it exposes none. */
  readonly zones: readonly Zone[];
  /** Per node: the pfn where its reclaim clock hand stands. */
  readonly hands: Float64Array;
  /** Per node: its kswapd. */
  readonly kswapd: KswapdStats[];
  /** Per node: the highest zone index a wakeup asked kswapd to balance (kswapd_highest_zoneidx). */
  readonly kswapdClasszone: Int32Array;
  /** Per node: pages freed in kswapd's current run. */
  readonly kswapdRunReclaimed: Float64Array;
  readonly vm: ReclaimVmstat;
  /**
   * Everything reclaim did since boot: by kswapd, and in process context (direct reclaim,
   * MADV_PAGEOUT, reclaimPages).
   */
  readonly totals: { kswapd: ReclaimStats; direct: ReclaimStats };
}

const states = new WeakMap<MmCore, ReclaimState>();

/**
 * reclaimStateOf - the reclaim state of the kernel owning @core.
 *
 * Return: the state, or null before initReclaim.
 */
export function reclaimStateOf(core: MmCore): ReclaimState | null {
  return states.get(core) ?? null;
}

/** @internal initReclaim records the state it made. Throws Error if @core already has one. */
export function setReclaimState(core: MmCore, state: ReclaimState): void {
  if (states.has(core)) throw new Error('setReclaimState: reclaim already initialised');
  states.set(core, state);
}
