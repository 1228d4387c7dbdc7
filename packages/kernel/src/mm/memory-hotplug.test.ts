import { describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { offlinePages, onlinePages, type OfflineStats } from './memory-hotplug';
import { GUP_PIN_COUNTING_BIAS } from './page-ref';
import { PG_offline, PG_reserved } from './page-flags';

const MiB = 2 ** 20;
const BLOCK = 128 * MiB;
const BLOCK_PAGES = BLOCK / PAGE_SIZE;

/** 1 GiB with its top 512 MiB in ZONE_MOVABLE (movablecore=512M). */
function machine(nodes = [{ size: '1GiB', movable: '512MiB' }]): Kernel {
  return createKernel({ memory: { nodes }, sysctl: { transparent_hugepage: 'never' } });
}

function populate(p: Process, pages: number) {
  const a = p.mmap(pages * PAGE_SIZE);
  for (let i = 0; i < pages; i++) p.write(a + i * PAGE_SIZE, new Uint8Array([0xd1, i & 255, i >> 8]));
  return {
    a,
    pfn: (i: number) => p.pagemap(a + i * PAGE_SIZE).pfn!,
    check() {
      for (let i = 0; i < pages; i++) {
        const b = p.read(a + i * PAGE_SIZE, 3);
        if (b[0] !== 0xd1 || b[1] !== (i & 255) || b[2] !== i >> 8) throw new Error(`page ${i} corrupted`);
      }
    },
  };
}

function pin(k: Kernel, pfn: number): () => void {
  k.phys.frames.refcount[pfn] += GUP_PIN_COUNTING_BIAS;
  let held = true;
  k.addRefSource((refs) => {
    if (held) refs.set(pfn, (refs.get(pfn) ?? 0) + GUP_PIN_COUNTING_BIAS);
  });
  return () => {
    k.phys.frames.refcount[pfn] -= GUP_PIN_COUNTING_BIAS;
    held = false;
  };
}

const movableInfo = (k: Kernel) => k.phys.zoneInfo().find((z) => z.zone === 'MOVABLE')!;

describe('memory offline', () => {
  it('offlines a ZONE_MOVABLE block by migrating its pages out, and onlines it again', () => {
    const k = machine();
    const p = k.spawn();
    const d = populate(p, 4096);
    const blockStart = k.phys.zone(0, 2).startPfn;
    expect(d.pfn(0)).toBe(blockStart); // movable allocations fill ZONE_MOVABLE first
    const managed = movableInfo(k).managedPages;
    const free = k.phys.nrFreePages();
    expect(k.offlineMemory(0, 512 * MiB, BLOCK)).toBe(0);
    for (let i = 0; i < 4096; i += 31) {
      const pfn = d.pfn(i);
      expect(pfn < blockStart || pfn >= blockStart + BLOCK_PAGES).toBe(true);
    }
    d.check();
    const f = k.phys.frames.flags;
    expect(f[blockStart] & (PG_offline | PG_reserved)).toBe(PG_offline | PG_reserved);
    expect(movableInfo(k).managedPages).toBe(managed - BLOCK_PAGES);
    expect(k.phys.nrFreePages()).toBe(free - BLOCK_PAGES);
    expect(k.vmstat().pgmigrate_success).toBe(4096);
    expect(k.dmesg().some((l) => l.endsWith(`Offlined Pages ${BLOCK_PAGES}`))).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    // Offline again: nothing to do. New allocations avoid the hole.
    expect(k.offlineMemory(0, 512 * MiB, BLOCK)).toBe(0);
    const d2 = populate(p, 100);
    expect(d2.pfn(0) >= blockStart + BLOCK_PAGES || d2.pfn(0) < blockStart).toBe(true);
    expect(onlinePages(k.mmCore, blockStart, BLOCK_PAGES)).toBe(0);
    expect(movableInfo(k).managedPages).toBe(managed);
    expect(k.checkInvariants()).toEqual([]);
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('one pinned page blocks the offline until the timeout (-ETIMEDOUT) or the give-up time (-EBUSY)', () => {
    const k = machine();
    const p = k.spawn();
    const d = populate(p, 4096);
    const blockStart = k.phys.zone(0, 2).startPfn;
    const victim = d.pfn(1234);
    const unpin = pin(k, victim);
    const stats: OfflineStats = { passes: 0, migratedPages: 0, failedMigrations: 0, elapsedNs: 0 };
    expect(offlinePages(k.mmCore, blockStart, BLOCK_PAGES, { timeoutNs: 2e9, stats })).toBe(-ERRNO.ETIMEDOUT);
    expect(stats.reason).toBe('timeout');
    expect(stats.elapsedNs).toBeGreaterThanOrEqual(2e9);
    expect(stats.elapsedNs).toBeLessThan(2.01e9);
    expect(stats.migratedPages).toBe(4095); // everything else left the block
    expect(stats.passes).toBeGreaterThan(1000);
    expect(
      k.dmesg().some((l) => l.endsWith('memory offlining [mem 0x20000000-0x27ffffff] failed due to timeout')),
    ).toBe(true);
    expect(d.pfn(1234)).toBe(victim);
    expect(p.pagemap(d.a + 1234 * PAGE_SIZE).migratetype).toBe('MOVABLE'); // isolation undone
    d.check();
    expect(k.checkInvariants()).toEqual([]);
    // Without a timeout the kernel would loop for ever; svasim gives up after 10 s of simulated time.
    const s2: OfflineStats = { passes: 0, migratedPages: 0, failedMigrations: 0, elapsedNs: 0 };
    expect(offlinePages(k.mmCore, blockStart, BLOCK_PAGES, { stats: s2 })).toBe(-ERRNO.EBUSY);
    expect(s2.elapsedNs).toBeGreaterThanOrEqual(10e9);
    expect(s2.reason).toBe('migration failure');
    expect(k.offlineMemory(0, 512 * MiB, BLOCK)).toBe(-ERRNO.EBUSY);
    expect(k.checkInvariants()).toEqual([]);
    unpin();
    expect(k.offlineMemory(0, 512 * MiB, BLOCK, { timeoutNs: 2e9 })).toBe(0);
    d.check();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('fails at once on unmovable memory and refuses ranges that are not whole memory blocks', () => {
    const k = machine();
    expect(k.offlineMemory(0, 0, BLOCK)).toBe(-ERRNO.EBUSY); // the kernel's reserved pages
    expect(k.dmesg().some((l) => l.includes('failed due to failure to isolate range'))).toBe(true);
    expect(k.offlineMemory(0, 64 * MiB, BLOCK)).toBe(-ERRNO.EINVAL);
    expect(k.offlineMemory(0, 512 * MiB, 64 * MiB)).toBe(-ERRNO.EINVAL);
    expect(k.offlineMemory(0, 1024 * MiB, BLOCK)).toBe(-ERRNO.EINVAL);
    expect(k.offlineMemory(1, 0, BLOCK)).toBe(-ERRNO.EINVAL);
    const kernelPage = k.phys.allocPages(0, 0, 0);
    const off = Math.floor((kernelPage * PAGE_SIZE) / BLOCK) * BLOCK;
    expect(k.offlineMemory(0, off, BLOCK)).toBe(-ERRNO.EBUSY);
    k.phys.freePages(kernelPage, 0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('moves pages to another node when there is one', () => {
    const k = machine([
      { size: '512MiB', movable: '256MiB' },
      { size: '512MiB', movable: '256MiB' },
    ]);
    const p = k.spawn({ node: 0 });
    const d = populate(p, 1000);
    expect(p.pagemap(d.a).node).toBe(0);
    expect(p.pagemap(d.a).zone).toBe('MOVABLE');
    expect(k.offlineMemory(0, 256 * MiB, BLOCK)).toBe(0);
    for (let i = 0; i < 1000; i += 50) expect(p.pagemap(d.a + i * PAGE_SIZE).node).toBe(1);
    d.check();
    expect(k.checkInvariants()).toEqual([]);
  });
});
