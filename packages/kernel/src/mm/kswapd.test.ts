import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { PAGE_SIZE } from '../uapi/mman';
import { initReclaim } from './reclaim';
import { RECLAIM_TUNABLE_DEFAULTS } from './reclaim-config';
import type { ReclaimState } from './reclaim-state';
import type { Zone } from './zone';
import { madvisePageout } from './vmscan';

const MiB = 1 << 20;

function boot(swap: string | number): { k: Kernel; state: ReclaimState } {
  const k = createKernel({
    memory: { nodes: [{ size: '32MiB' }] },
    swap,
    // 4 KiB faults only, so the test can stop exactly between the watermarks; overcommit always,
    // since the tests map more than RAM + swap on purpose.
    sysctl: { transparent_hugepage: 'never', 'vm.overcommit_memory': 1 },
  });
  return { k, state: initReclaim(k.mmCore, { swap: k.options.swap }) };
}

function page(seed: number): Uint8Array {
  const b = new Uint8Array(PAGE_SIZE);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < PAGE_SIZE; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** The populated zone of node 0 (a 32 MiB node has only ZONE_DMA32), live. */
function zone(k: Kernel): Zone {
  const z = k.phys.zones.filter((i) => i.nid === 0 && i.populated);
  expect(z).toHaveLength(1);
  return z[0];
}

/**
 * Write fresh pages until an allocation finds the zone below its low watermark (the one that
 * takes the last page above it fails the fast path, but wakes nobody: wake_all_kswapds looks for
 * zones already below the mark), so kswapd is woken.
 */
function fillBelowLow(k: Kernel, p: Process): { a: number; pages: number } {
  const a = p.mmap(32 * MiB);
  const z = zone(k);
  let pages = 0;
  let below = 0;
  while (below < 2) {
    p.write(a + pages * PAGE_SIZE, page(pages));
    pages++;
    if (z.freePages < z.watermarkLow) below++;
  }
  return { a, pages };
}

describe('kswapd', () => {
  it('is woken below the low watermark and reclaims in background events up to the high one', async () => {
    const { k, state } = boot('64MiB');
    const p = k.spawn();
    const { a, pages } = fillBelowLow(k, p);
    const z = zone(k);
    expect(z.freePages).toBeGreaterThan(z.watermarkMin); // between min and low: no direct reclaim
    const ks = state.kswapd[0];
    expect(ks.running).toBe(true);
    expect(ks.wakeups).toBe(1);
    expect(k.vmstat().pgscan_direct).toBe(0);
    expect(k.vmstat().pswpout).toBe(0); // nothing ran yet: kswapd waits for simulated time

    const t0 = k.now();
    await k.runFor(100_000_000);
    expect(ks.running).toBe(false);
    const after = zone(k);
    expect(after.freePages).toBeGreaterThan(after.watermarkHigh);
    // It stops at the high watermark: at most one batch beyond it.
    expect(after.freePages).toBeLessThanOrEqual(
      after.watermarkHigh + RECLAIM_TUNABLE_DEFAULTS.swapClusterMax.value + 1,
    );
    const v = k.vmstat();
    expect(v.pgsteal_kswapd).toBe(ks.nrReclaimed);
    expect(v.pswpout).toBe(ks.nrReclaimed);
    expect(v.pgsteal_direct).toBe(0);
    expect(v.pageoutrun).toBe(1);
    expect(ks.failures).toBe(0);
    expect(ks.cpuNs).toBeGreaterThan(0);
    expect(ks.ioWaitNs).toBeGreaterThan(0);
    expect(p.cpuNs).toBeLessThan(pages * 20_000); // kswapd's time is its own, not the process's
    expect(k.now() - t0).toBe(100_000_000);
    expect(k.checkInvariants()).toEqual([]);
    // Everything reads back.
    for (let i = 0; i < pages; i++)
      expect(Buffer.from(p.read(a + i * PAGE_SIZE, PAGE_SIZE)).equals(Buffer.from(page(i)))).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('does not keep runUntilIdle going', async () => {
    const { k, state } = boot('64MiB');
    fillBelowLow(k, k.spawn());
    expect(state.kswapd[0].running).toBe(true);
    await k.runUntilIdle();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('without swap gives up, and after MAX_RECLAIM_RETRIES failed runs is no longer woken', async () => {
    const { k, state } = boot(0);
    const p = k.spawn();
    const { a, pages } = fillBelowLow(k, p);
    const ks = state.kswapd[0];
    await k.runFor(1_000_000);
    expect(ks.running).toBe(false);
    expect(ks.failures).toBe(1);
    expect(ks.nrReclaimed).toBe(0);
    // Each allocation below the low watermark wakes it again until the node is hopeless.
    let next = pages;
    while (ks.failures < RECLAIM_TUNABLE_DEFAULTS.maxReclaimRetries.value) {
      p.write(a + next * PAGE_SIZE, page(next));
      next++;
      await k.runFor(1_000_000);
    }
    const wakeups = ks.wakeups;
    p.write(a + next * PAGE_SIZE, page(next));
    await k.runFor(1_000_000);
    expect(ks.wakeups).toBe(wakeups);
    expect(k.vmstat().pswpout).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('keeps a paced workload going with background reclaim, and its data intact', async () => {
    const { k, state } = boot('64MiB');
    const p = k.spawn();
    const len = 48 * MiB;
    const a = p.mmap(len);
    const chunk = 32 * PAGE_SIZE;
    const task = p.run(async (t) => {
      for (let off = 0; off < len; off += chunk) {
        for (let i = 0; i < chunk; i += PAGE_SIZE) p.write(a + off + i, page((off + i) / PAGE_SIZE));
        await t.sleep(500_000);
      }
    });
    await k.runUntilIdle();
    await task.done;
    const v = k.vmstat();
    expect(v.pgsteal_kswapd).toBeGreaterThan(0);
    expect(v.pgsteal_kswapd + v.pgsteal_direct).toBe(v.pswpout);
    expect(state.kswapd[0].nrReclaimed).toBe(v.pgsteal_kswapd);
    for (let off = 0; off < len; off += PAGE_SIZE)
      expect(Buffer.from(p.read(a + off, PAGE_SIZE)).equals(Buffer.from(page(off / PAGE_SIZE)))).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('transparent huge pages under reclaim', () => {
  it('splits a THP and swaps its pages out, then reads them back', () => {
    const k = createKernel({ memory: { nodes: [{ size: '32MiB' }] }, swap: '64MiB' });
    initReclaim(k.mmCore, { swap: k.options.swap });
    const p = k.spawn();
    const a = p.mmap(2 * MiB);
    const data = new Uint8Array(2 * MiB);
    for (let i = 0; i < 512; i++) data.set(page(i), i * PAGE_SIZE);
    p.write(a, data);
    expect(p.pagemap(a).huge).toBe('2MiB');
    expect(madvisePageout(p.mm.vmaLookup(a)!, a, a + 2 * MiB)).toBe(512);
    expect(k.vmstat().thp_split_page).toBe(1);
    expect(p.mm.swapEnts).toBe(512);
    expect(k.checkInvariants()).toEqual([]);
    expect(Buffer.from(p.read(a, 2 * MiB)).equals(Buffer.from(data))).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
  });
});
