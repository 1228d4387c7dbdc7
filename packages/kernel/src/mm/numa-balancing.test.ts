import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { ERRNO } from '../uapi/errno';
import { MADV_DONTFORK, MAP_ANONYMOUS, MAP_SHARED, PAGE_SIZE } from '../uapi/mman';
import type { MmSysctl } from './mm-config';
import type { MmStruct } from './mm-struct';
import {
  initNumaBalancing,
  numaBalancingConfig,
  numaMmStats,
  setProcessNode,
  showNumaMap,
  taskNumaWork,
} from './numa-balancing';
import { GUP_PIN_COUNTING_BIAS } from './page-ref';
import { PTE_NUMA, PTE_PROTNONE } from './pte';

const MS = 1_000_000;
const S = 1000 * MS;

function twoNodes(sysctl: Partial<MmSysctl> = {}): Kernel {
  return createKernel({ memory: { nodes: [{ size: '128MiB' }, { size: '128MiB' }] }, sysctl });
}

function pattern(len: number, seed: number): Uint8Array {
  return new Uint8Array(len).map((_, i) => (i * 31 + seed) & 255);
}

/** The hi word of the PTE mapping `va` (0 when none). */
function pteHi(mm: MmStruct, va: number): number {
  const t = mm.pgtable.walk(va, false);
  return t ? t[mm.pgtable.slot + 1] : 0;
}

/** Byte-exact comparison (jest's deep equality is slow on large typed arrays). */
function sameBytes(got: Uint8Array, want: Uint8Array): boolean {
  return Buffer.from(got.buffer, got.byteOffset, got.length).equals(
    Buffer.from(want.buffer, want.byteOffset, want.length),
  );
}

function localFraction(p: Process): number {
  const map = showNumaMap(p.mm);
  const total = map.reduce((x, y) => x + y, 0);
  return total ? map[p.mm.node] / total : 1;
}

describe('NUMA balancing', () => {
  it('moves a process’s pages to the node it runs on, over scans and accesses, data intact', async () => {
    const k = twoNodes();
    initNumaBalancing(k.mmCore);
    initNumaBalancing(k.mmCore); // idempotent
    const p = k.spawn({ node: 1 });
    const n = 64;
    const a = p.mmap(n * PAGE_SIZE);
    const data = pattern(n * PAGE_SIZE, 3);
    p.write(a, data);
    expect(showNumaMap(p.mm)).toEqual([0, n]);
    // The scheduler moves the task to node 0; its memory stays behind on node 1.
    expect(setProcessNode(p.mm, 0)).toBe(0);
    const fractions: number[] = [];
    p.run(async (t) => {
      for (let i = 0; i < 40; i++) {
        if (!sameBytes(p.read(a, n * PAGE_SIZE), data)) throw new Error(`data changed at round ${i}`);
        fractions.push(localFraction(p));
        await t.sleep(250 * MS);
      }
    });
    const cpuBefore = p.cpuNs;
    await k.runFor(12 * S);
    expect(showNumaMap(p.mm)).toEqual([n, 0]);
    expect(sameBytes(p.read(a, n * PAGE_SIZE), data)).toBe(true);
    // The local fraction only rises, from 0 to 1.
    expect(fractions[0]).toBe(0);
    expect(fractions[fractions.length - 1]).toBe(1);
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]).toBeGreaterThanOrEqual(fractions[i - 1]);
    const v = k.vmstat();
    expect(v.numa_pte_updates).toBe(n); // local pages of a single-threaded task are not hinted again
    expect(v.numa_hint_faults).toBe(n);
    expect(v.numa_pages_migrated).toBe(n);
    expect(v.pgmigrate_success).toBe(n);
    const st = numaMmStats(p.mm)!;
    expect(st.pagesMigrated).toBe(n);
    expect(st.scans).toBeGreaterThan(1);
    const cfg = numaBalancingConfig(k.mmCore)!;
    expect(st.scanPeriodMs).toBeGreaterThanOrEqual(cfg.scanPeriodMinMs);
    expect(st.scanPeriodMs).toBeLessThanOrEqual(cfg.scanPeriodMaxMs);
    // Hint faults and copies were charged to the process.
    expect(p.cpuNs - cpuBefore).toBeGreaterThan(n * cfg.hintFaultNs);
    expect(k.checkInvariants()).toEqual([]);
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('first scans after scan_delay, then every scan period', async () => {
    const k = twoNodes();
    initNumaBalancing(k.mmCore);
    const p = k.spawn({ node: 0 });
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, new Uint8Array(4 * PAGE_SIZE).fill(1));
    await k.runFor(900 * MS);
    expect(numaMmStats(p.mm)?.scans ?? 0).toBe(0);
    await k.runFor(1300 * MS);
    const st = numaMmStats(p.mm)!;
    expect(st.scans).toBe(2); // at ~1.1 s and one 1000 ms period later
    expect(st.scanPeriodMs).toBe(1000);
    // Every page is already local: nothing to hint.
    expect(k.vmstat().numa_pte_updates).toBe(0);
    p.exit();
  });

  it('never hints or migrates maybe-pinned or COW-shared pages', async () => {
    const k = twoNodes();
    initNumaBalancing(k.mmCore);
    const p = k.spawn({ node: 1 });
    const pinned = p.mmap(4 * PAGE_SIZE);
    const shared = p.mmap(4 * PAGE_SIZE);
    const plain = p.mmap(4 * PAGE_SIZE);
    const dp = pattern(4 * PAGE_SIZE, 1);
    const ds = pattern(4 * PAGE_SIZE, 2);
    const dn = pattern(4 * PAGE_SIZE, 5);
    p.write(pinned, dp);
    p.write(shared, ds);
    p.write(plain, dn);
    // Pin the first range as FOLL_PIN would (and tell the invariant checker about it).
    const pins = [0, 1, 2, 3].map((i) => p.pagemap(pinned + i * PAGE_SIZE).pfn!);
    for (const pfn of pins) k.phys.frames.refcount[pfn] += GUP_PIN_COUNTING_BIAS;
    k.addRefSource((refs) => {
      for (const pfn of pins) refs.set(pfn, (refs.get(pfn) ?? 0) + GUP_PIN_COUNTING_BIAS);
    });
    // Only `shared` goes to the child: its pages become COW-shared.
    p.madvise(pinned, 4 * PAGE_SIZE, MADV_DONTFORK);
    p.madvise(plain, 4 * PAGE_SIZE, MADV_DONTFORK);
    const c = p.fork();
    setProcessNode(p.mm, 0);
    p.run(async (t) => {
      for (let i = 0; i < 20; i++) {
        p.touch(pinned, 4 * PAGE_SIZE);
        p.touch(shared, 4 * PAGE_SIZE);
        p.touch(plain, 4 * PAGE_SIZE);
        for (let j = 0; j < 4; j++) {
          if (pteHi(p.mm, pinned + j * PAGE_SIZE) & (PTE_PROTNONE | PTE_NUMA))
            throw new Error('pinned page hinted');
          if (pteHi(p.mm, shared + j * PAGE_SIZE) & (PTE_PROTNONE | PTE_NUMA))
            throw new Error('shared page hinted');
        }
        await t.sleep(300 * MS);
      }
    });
    await k.runFor(8 * S);
    for (let j = 0; j < 4; j++) {
      expect(p.pagemap(pinned + j * PAGE_SIZE).node).toBe(1);
      expect(p.pagemap(pinned + j * PAGE_SIZE).pfn).toBe(pins[j]);
      expect(p.pagemap(shared + j * PAGE_SIZE).node).toBe(1);
      expect(p.pagemap(plain + j * PAGE_SIZE).node).toBe(0);
    }
    expect(k.vmstat().numa_pte_updates).toBe(4);
    expect(k.vmstat().numa_pages_migrated).toBe(4);
    expect(sameBytes(p.read(pinned, dp.length), dp)).toBe(true);
    expect(sameBytes(p.read(shared, ds.length), ds)).toBe(true);
    expect(sameBytes(p.read(plain, dn.length), dn)).toBe(true);
    expect(sameBytes(c.read(shared, ds.length), ds)).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    c.exit();
    p.munmap(pinned, 4 * PAGE_SIZE); // the pins still hold the pages; the invariant source still counts them
    expect(k.checkInvariants()).toEqual([]);
  });

  it('does nothing with kernel.numa_balancing = 0', async () => {
    const k = twoNodes({ 'kernel.numa_balancing': 0 });
    initNumaBalancing(k.mmCore);
    const p = k.spawn({ node: 1 });
    const a = p.mmap(16 * PAGE_SIZE);
    p.write(a, new Uint8Array(16 * PAGE_SIZE).fill(9));
    setProcessNode(p.mm, 0);
    p.run(async (t) => {
      for (let i = 0; i < 20; i++) {
        p.touch(a, 16 * PAGE_SIZE);
        await t.sleep(250 * MS);
      }
    });
    await k.runFor(6 * S);
    expect(showNumaMap(p.mm)).toEqual([0, 16]);
    const v = k.vmstat();
    expect([v.numa_pte_updates, v.numa_hint_faults, v.numa_pages_migrated]).toEqual([0, 0, 0]);
    expect(numaMmStats(p.mm)).toBeNull();
    // Turning it on at run time starts the scanner.
    k.sysctl['kernel.numa_balancing'] = 1;
    p.run(async (t) => {
      for (let i = 0; i < 20; i++) {
        p.touch(a, 16 * PAGE_SIZE);
        await t.sleep(250 * MS);
      }
    });
    await k.runFor(6 * S);
    expect(showNumaMap(p.mm)).toEqual([16, 0]);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('does not scan on a single-node machine, and idles without keeping runUntilIdle busy', async () => {
    const k = createKernel();
    initNumaBalancing(k.mmCore);
    const p = k.spawn();
    p.write(p.mmap(PAGE_SIZE), new Uint8Array([1]));
    await k.runFor(5 * S);
    expect(numaMmStats(p.mm)).toBeNull();
    const k2 = twoNodes();
    initNumaBalancing(k2.mmCore);
    const t0 = k2.now();
    await k2.runUntilIdle();
    expect(k2.now()).toBe(t0);
  });

  it('marks at most scan_size per scan (huge-page aligned) and resumes where it stopped', () => {
    // 4 KiB pages only: huge PMDs are not hinted (see docs/mm.md).
    const k = twoNodes({ transparent_hugepage: 'never' });
    initNumaBalancing(k.mmCore); // already started by the kernel: tune the live config
    numaBalancingConfig(k.mmCore)!.scanSizeMb = 1;
    const p = k.spawn({ node: 1 });
    const base = 0x40000000; // 2 MiB aligned
    const a = p.mmap(1024 * PAGE_SIZE, { addr: base });
    expect(a).toBe(base);
    p.touch(a, 1024 * PAGE_SIZE, { write: true });
    setProcessNode(p.mm, 0);
    // 1 MB rounds up to the next 2 MiB boundary: 512 PTEs per scan.
    expect(taskNumaWork(p.mm)).toBe(512);
    expect(numaMmStats(p.mm)!.scanOffset).toBe(base + 512 * PAGE_SIZE);
    expect(pteHi(p.mm, base) & PTE_NUMA).toBe(PTE_NUMA);
    expect(pteHi(p.mm, base + 512 * PAGE_SIZE) & PTE_NUMA).toBe(0);
    expect(taskNumaWork(p.mm)).toBe(512);
    expect(numaMmStats(p.mm)!.scanSeq).toBe(0);
    // Nothing left to mark: the walk wraps around (a new pass) and marks nothing.
    expect(taskNumaWork(p.mm)).toBe(0);
    expect(numaMmStats(p.mm)!.scanSeq).toBeGreaterThanOrEqual(1);
    expect(k.vmstat().numa_pte_updates).toBe(1024);
    // A hinted page that is read faults, is restored and moves.
    expect(p.read(a + 5, 1)[0]).toBe(0);
    expect(p.pagemap(a).node).toBe(0);
    expect(pteHi(p.mm, a) & (PTE_PROTNONE | PTE_NUMA)).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('after a move, migrates a page only when two faults in a row come from the new node', () => {
    const k = twoNodes();
    initNumaBalancing(k.mmCore);
    const p = k.spawn({ node: 1 });
    const priv = p.mmap(4 * PAGE_SIZE);
    p.write(priv, pattern(4 * PAGE_SIZE, 7));
    // A shared mapping is hinted even when local, so every pass records faults and the task
    // gets past its first passes (where private faults migrate at once).
    const shm = p.mmap(PAGE_SIZE, { flags: MAP_SHARED | MAP_ANONYMOUS });
    p.write(shm, new Uint8Array([1]));
    setProcessNode(p.mm, 0);
    for (let pass = 0; pass < 7; pass++) {
      taskNumaWork(p.mm);
      p.touch(priv, 4 * PAGE_SIZE);
      p.touch(shm, 1);
    }
    expect(showNumaMap(p.mm)).toEqual([5, 0]); // the early passes moved everything to node 0
    // Now the task moves back to node 1.
    setProcessNode(p.mm, 1);
    taskNumaWork(p.mm);
    p.touch(priv, 4 * PAGE_SIZE);
    // First fault from node 1: the previous one came from node 0, so the pages stay.
    for (let j = 0; j < 4; j++) expect(p.pagemap(priv + j * PAGE_SIZE).node).toBe(0);
    taskNumaWork(p.mm);
    p.touch(priv, 4 * PAGE_SIZE);
    for (let j = 0; j < 4; j++) expect(p.pagemap(priv + j * PAGE_SIZE).node).toBe(1);
    expect(sameBytes(p.read(priv, 4 * PAGE_SIZE), pattern(4 * PAGE_SIZE, 7))).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('adapts the scan period as update_task_scan_period does', () => {
    const k = twoNodes();
    initNumaBalancing(k.mmCore);
    const p = k.spawn({ node: 1 });
    const a = p.mmap(8 * PAGE_SIZE);
    p.write(a, new Uint8Array(8 * PAGE_SIZE).fill(1));
    const shm = p.mmap(PAGE_SIZE, { flags: MAP_SHARED | MAP_ANONYMOUS });
    setProcessNode(p.mm, 0);
    p.write(shm, new Uint8Array([1])); // allocated on node 0: local, but hinted every pass (VM_SHARED)
    const period = () => numaMmStats(p.mm)!.scanPeriodMs;
    taskNumaWork(p.mm);
    expect(period()).toBe(1000); // task_scan_start: max(100 ms floor, 1000 ms / 1 window)
    p.touch(a, 8 * PAGE_SIZE); // the first fault of the pass finds no faults recorded: scan slower
    expect(period()).toBe(2000);
    taskNumaWork(p.mm);
    p.touch(shm, 1); // last pass: 8 remote private faults, no local or shared one: slower again
    expect(period()).toBe(4000);
    taskNumaWork(p.mm);
    p.touch(shm, 1); // last pass: 1 local private fault: ps_ratio 10 >= 7, +3 tenths
    expect(period()).toBe(5200);
    expect(numaMmStats(p.mm)!.pagesMigrated).toBe(8);
  });

  it('setProcessNode refuses a node the machine lacks', () => {
    const k = twoNodes();
    const p = k.spawn();
    expect(setProcessNode(p.mm, 2)).toBe(-ERRNO.EINVAL);
    expect(setProcessNode(p.mm, -1)).toBe(-ERRNO.EINVAL);
    expect(setProcessNode(p.mm, 1)).toBe(0);
    expect(p.mm.node).toBe(1);
  });
});
