/**
 * initReclaim - bring up page reclaim and swap for one kernel: the swap area (swapon), the
 * swap-entry fault, zap and fork handlers, kswapd per node and direct reclaim on the allocator's
 * slow path.
 */
import { PAGE_SIZE } from '../uapi/mman';
import { ZONE_PROC_NAMES, type Zone } from './zone';
import type { AllocSlowpathHooks } from './phys-types';
import { setFaultHooks } from './fault';
import { MAX_NR_ZONES } from './gfp';
import type { MmCore } from './mm-core';
import { tunableValues } from './mm-config';
import { PTE_SWAP } from './pte';
import {
  RECLAIM_TUNABLE_DEFAULTS,
  SWAP_TUNABLE_DEFAULTS,
  type ReclaimTunables,
  type SwapTunables,
} from './reclaim-config';
import { reclaimStateOf, setReclaimState, type KswapdStats, type ReclaimState } from './reclaim-state';
import { SwapInfo, setSwapInfo } from './swap';
import { copySwapEntry, doSwapPage, zapSwapEntry } from './swapin';
import { wakeupKswapd } from './kswapd';
import { emptyReclaimStats, tryToFreePages } from './vmscan';
import { setZapHooks } from './zap';

/** ReclaimOptions - what initReclaim takes; everything is optional. */
export interface ReclaimOptions {
  /** Size of the swap area in bytes (KernelOptions.swap); 0 or absent = no swap. */
  swap?: number;
  /** Overrides of the swap device's IO profile (SWAP_TUNABLE_DEFAULTS). */
  swapTunables?: Partial<SwapTunables>;
  /** Overrides of the reclaim constants and costs (RECLAIM_TUNABLE_DEFAULTS). */
  tunables?: Partial<ReclaimTunables>;
}

/** The allocator calls reclaim installs itself into (PageAllocator provides them). */
interface SlowpathHost {
  setHooks?(h: AllocSlowpathHooks): void;
  getHooks?(): AllocSlowpathHooks;
  readonly zones?: readonly Zone[];
}

/**
 * initReclaim - set up reclaim and swap for the kernel owning @core. Idempotent: a second call
 * returns the state made by the first and ignores its options.
 * @core: the kernel's mm.
 * @opts: swap size and tunable overrides.
 *
 * Installs, merging with what other subsystems installed before (and passing entries that are
 * not swap entries on to them): the nonPresent fault hook (swap-in), the zapNonPresent and
 * copyNonPresent hooks (munmap/exit, fork), and the allocator's wakeKswapd and directReclaim
 * slow-path hooks. With swap, logs the kernel's swapon line.
 *
 * Context: boot, before processes run. Nothing releases it: it lives as long as the kernel.
 * Return: the reclaim state. Throws RangeError for a swap size below the minimum area
 * (SWAP_TUNABLE_DEFAULTS.minPages pages) or a negative or non-integer size.
 */
export function initReclaim(core: MmCore, opts: ReclaimOptions = {}): ReclaimState {
  const existing = reclaimStateOf(core);
  if (existing) return existing;
  const bytes = opts.swap ?? 0;
  if (!Number.isSafeInteger(bytes) || bytes < 0)
    throw new RangeError(`initReclaim: swap size must be a non-negative integer, got ${String(bytes)}`);
  const io = { ...(tunableValues(SWAP_TUNABLE_DEFAULTS) as SwapTunables), ...opts.swapTunables };
  const tunables = {
    ...(tunableValues(RECLAIM_TUNABLE_DEFAULTS) as ReclaimTunables),
    ...opts.tunables,
  };
  const swap = bytes > 0 ? new SwapInfo(bytes, io) : null;
  const host = core.alloc as unknown as SlowpathHost;
  const nodes = core.alloc.nodes.length;
  const kswapd: KswapdStats[] = [];
  for (let nid = 0; nid < nodes; nid++)
    kswapd.push({
      nid,
      wakeups: 0,
      runs: 0,
      failures: 0,
      running: false,
      cpuNs: 0,
      ioWaitNs: 0,
      nrScanned: 0,
      nrReclaimed: 0,
    });
  const vmstat = core.vmstat;
  const state: ReclaimState = {
    core,
    swap,
    tunables,
    zones: host.zones ?? [],
    hands: new Float64Array(nodes),
    kswapd,
    kswapdClasszone: new Int32Array(nodes),
    kswapdRunReclaimed: new Float64Array(nodes),
    vm: {
      pgscanKswapd: vmstat.register('pgscan_kswapd'),
      pgscanDirect: vmstat.register('pgscan_direct'),
      pgstealKswapd: vmstat.register('pgsteal_kswapd'),
      pgstealDirect: vmstat.register('pgsteal_direct'),
      pgscanAnon: vmstat.register('pgscan_anon'),
      pgstealAnon: vmstat.register('pgsteal_anon'),
      pgactivate: vmstat.register('pgactivate'),
      pageoutrun: vmstat.register('pageoutrun'),
      swpinZero: vmstat.register('swpin_zero'),
      swpoutZero: vmstat.register('swpout_zero'),
      swapRa: vmstat.register('swap_ra'),
      swapRaHit: vmstat.register('swap_ra_hit'),
      allocstall: ZONE_PROC_NAMES.slice(0, MAX_NR_ZONES).map((z) =>
        vmstat.register(`allocstall_${z.toLowerCase()}`),
      ),
    },
    totals: { kswapd: emptyReclaimStats(), direct: emptyReclaimStats() },
  };
  for (let nid = 0; nid < nodes; nid++) state.hands[nid] = core.alloc.nodes[nid].startPfn;
  setReclaimState(core, state);
  if (swap) {
    setSwapInfo(core, swap);
    const kb = (swap.totalPages * PAGE_SIZE) / 1024;
    core.dmesg.printk(`Adding ${kb}k swap on /dev/svasim-swap.  Priority:-2 extents:1 across:${kb}k SS`);
  }

  const prevFault = core.faultHooks.nonPresent;
  setFaultHooks(core, {
    nonPresent(vma, address, flags, tableId, slot) {
      if (vma.mm.pgtable.table(tableId)[slot + 1] & PTE_SWAP)
        return doSwapPage(state, vma, address, flags, tableId, slot);
      return prevFault ? prevFault(vma, address, flags, tableId, slot) : -1;
    },
  });
  const prevZap = core.zapHooks.zapNonPresent;
  const prevCopy = core.zapHooks.copyNonPresent;
  setZapHooks(core, {
    zapNonPresent(mm, va, lo, hi, level) {
      if (zapSwapEntry(state, mm, lo, hi)) return true;
      return prevZap ? prevZap(mm, va, lo, hi, level) : false;
    },
    copyNonPresent(src, dst, va, lo, hi, level) {
      const r = copySwapEntry(state, src, dst, va, lo, hi);
      if (r >= 0) return r;
      return prevCopy ? prevCopy(src, dst, va, lo, hi, level) : -1;
    },
  });
  if (host.setHooks) {
    const prev = host.getHooks ? host.getHooks() : {};
    host.setHooks({
      ...prev,
      wakeKswapd: (nid, zone, order) => wakeupKswapd(state, nid, zone, order),
      directReclaim: (gfp, order, nid) => tryToFreePages(state, gfp, order, nid),
    });
  }
  return state;
}
