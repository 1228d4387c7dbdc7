/**
 * GPU atomics on system memory: exact under concurrency and exact in their semantics.
 *
 * Concurrency: simulated tasks interleave GPU fetch-adds from two contexts (each in its own
 * mode), CPU read-modify-write increments, and compaction / memory offline, on a handful of
 * 32- and 64-bit words in two pages. Every operation reports the value it replaced, so besides
 * "the final value is the initial one plus every addend" the test checks linearizability: the
 * (old -> new) steps of every word form a single chain from its initial to its final value.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  ERRNO,
  MIGRATE_SYNC,
  MR_NUMA_MISPLACED,
  O_RDWR,
  PAGE_SIZE,
  allocMigrationTarget,
  emptyMigrateStats,
  isolateLruFolio,
  migratePages,
  onlinePages,
  putbackMovableFolio,
  type Kernel,
  type Process,
} from '@svasim/kernel';
import { GPU_ATOMIC_MODES, currentPfn, type GpuAtomicMode } from './atomic-holds';
import { openGpu, type GpuClient } from './libgpu';
import { bootGpuKernel, errnoOf } from './testing';
import { GPU_ATOMIC_CAS, GPU_ATOMIC_FETCH_ADD, SVASIM_GPU_IOC_ATOMIC } from './uapi';

const MiB = 2 ** 20;
const booted: Kernel[] = [];
afterEach(() => {
  for (const k of booted.splice(0)) {
    expect(k.checkInvariants()).toEqual([]);
    for (const p of k.processList()) p.exit();
    expect(k.checkInvariants()).toEqual([]);
  }
});

function boot(): Kernel {
  const k = bootGpuKernel({ sysctl: { transparent_hugepage: 'never' } });
  booted.push(k);
  return k;
}

/** CPU accessors of one little-endian word. */
function cpuLoad(p: Process, addr: number, width: 32 | 64): bigint {
  const b = p.read(addr, width / 8);
  const v = new DataView(b.buffer);
  return width === 32 ? BigInt(v.getUint32(0, true)) : v.getBigUint64(0, true);
}

function cpuStore(p: Process, addr: number, width: 32 | 64, value: bigint): void {
  const b = new Uint8Array(width / 8);
  const v = new DataView(b.buffer);
  if (width === 32) v.setUint32(0, Number(BigInt.asUintN(32, value)), true);
  else v.setBigUint64(0, BigInt.asUintN(64, value), true);
  p.write(addr, b);
}

function gpuAdd(g: GpuClient, addr: number, width: 32 | 64, value: bigint): bigint {
  return width === 32 ? BigInt(g.atomicFetchAdd(addr, Number(value))) : g.atomicFetchAdd64(addr, value);
}

/** Every word: its steps (old -> new) must chain from @initial to the final value, each used once. */
function expectChain(steps: Array<[bigint, bigint]>, initial: bigint, final: bigint): void {
  const next = new Map<bigint, bigint[]>();
  for (const [a, b] of steps) next.set(a, [...(next.get(a) ?? []), b]);
  let v = initial;
  for (let i = 0; i < steps.length; i++) {
    const outs = next.get(v);
    if (!outs?.length) throw new Error(`chain broken at ${v} after ${i} of ${steps.length} steps`);
    v = outs.shift()!;
  }
  expect(v).toBe(final);
}

/** Migrate the page under @addr to a new page (what NUMA balancing or move_pages would do). */
function migrateAway(k: Kernel, p: Process, addr: number): void {
  const pfn = currentPfn(p.mm, addr);
  if (pfn < 0 || !isolateLruFolio(k.mmCore, pfn)) return;
  const stats = emptyMigrateStats();
  migratePages(
    k.mmCore,
    [pfn],
    (_src, order) => allocMigrationTarget(k.phys, 0, order),
    MIGRATE_SYNC,
    MR_NUMA_MISPLACED,
    stats,
  );
  for (const f of stats.failedFolios) putbackMovableFolio(k.mmCore, f);
}

interface Word {
  addr: number;
  width: 32 | 64;
  initial: bigint;
  steps: Array<[bigint, bigint]>;
  sum: bigint;
}

async function concurrent(
  modes: [GpuAtomicMode, GpuAtomicMode],
  withMm: boolean,
): Promise<Record<string, number>> {
  const k = boot();
  const p = k.spawn();
  const g = [openGpu(p, { mode: modes[0] }), openGpu(p, { mode: modes[1] })];
  const base = p.mmap(2 * PAGE_SIZE);
  const words: Word[] = [];
  for (let pg = 0; pg < 2; pg++)
    for (let j = 0; j < 3; j++) {
      const width = j === 2 ? 64 : 32;
      const addr = base + pg * PAGE_SIZE + j * 8;
      // Start near the wrap so the adds cross it.
      const initial = width === 32 ? 0xfffff000n + BigInt(j) : (1n << 64n) - 5000n;
      cpuStore(p, addr, width, initial);
      words.push({ addr, width, initial, steps: [], sum: 0n });
    }
  const rng = k.rng.stream('gpu-atomics-test');
  const mod = (w: Word, v: bigint) => BigInt.asUintN(w.width, v);
  let done = 0;
  const workers = 4;
  const spawn = (name: string, body: () => void, count: number) =>
    k.tasks.spawn(name, async (t) => {
      for (let i = 0; i < count; i++) {
        body();
        await t.sleep(rng.int(0, 4000));
      }
      done++;
    });
  for (const [gi, ctx] of g.entries())
    spawn(
      `gpu${gi}`,
      () => {
        const w = words[rng.int(0, words.length - 1)];
        const v = BigInt(rng.int(1, 1000));
        const old = gpuAdd(ctx, w.addr, w.width, v);
        w.steps.push([old, mod(w, old + v)]);
        w.sum += v;
      },
      120,
    );
  for (let c = 0; c < 2; c++)
    spawn(
      `cpu${c}`,
      () => {
        const w = words[rng.int(0, words.length - 1)];
        const old = cpuLoad(p, w.addr, w.width);
        cpuStore(p, w.addr, w.width, old + 1n);
        w.steps.push([old, mod(w, old + 1n)]);
        w.sum += 1n;
      },
      120,
    );
  if (withMm)
    spawn(
      'mm',
      () => {
        const r = rng.float();
        if (r < 0.6) migrateAway(k, p, words[rng.int(0, words.length - 1)].addr);
        else if (r < 0.8) k.compactMemory();
        else {
          expect(k.offlineMemory(0, 256 * MiB, 128 * MiB)).toBe(0);
          expect(k.offlineMemory(0, 384 * MiB, 128 * MiB)).toBe(0);
          const start = k.phys.zone(0, 2).startPfn;
          expect(onlinePages(k.mmCore, start, (256 * MiB) / PAGE_SIZE)).toBe(0);
        }
      },
      30,
    );
  await k.runUntilIdle(10e9);
  expect(done).toBe(workers + (withMm ? 1 : 0));
  for (const w of words) {
    const final = cpuLoad(p, w.addr, w.width);
    expect(final).toBe(mod(w, w.initial + w.sum));
    expectChain(w.steps, w.initial, final);
  }
  const s0 = g[0].stats();
  const s1 = g[1].stats();
  return {
    revocations: s0.revocations + s1.revocations,
    byMigration: s0.revocationsByMigration + s1.revocationsByMigration,
    callbackRevokes: s0.callbackRevokes + s1.callbackRevokes,
    reinstates: s0.reinstates + s1.reinstates,
    acquires: s0.acquires + s1.acquires,
  };
}

describe('atomics under concurrency', () => {
  for (const mode of GPU_ATOMIC_MODES)
    it(`${mode}: GPU fetch-adds from two contexts and CPU increments sum exactly and linearize`, async () => {
      const s = await concurrent([mode, mode], false);
      // Contexts and the CPU keep taking the words from each other.
      expect(s.revocations).toBeGreaterThan(50);
      expect(s.acquires).toBeGreaterThan(50);
    });

  it('mixed modes with compaction and memory offline running between the operations', async () => {
    const s = await concurrent(['short-term', 'notifier-only'], true);
    // The moves reached the short-term context through its callback (modes.test.ts shows the
    // MMU_NOTIFY_MIGRATE path of notifier-only in isolation).
    expect(s.callbackRevokes).toBeGreaterThan(10);
  });

  it('longterm-pin next to short-term, with compaction and offline', async () => {
    await concurrent(['longterm-pin', 'short-term'], true);
  });
});

describe('atomic semantics', () => {
  it('fetch-add wraps at 2^32 and 2^64 and touches nothing but its word', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p);
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array(16).fill(0xee));
    cpuStore(p, a + 4, 32, 0xfffffffen);
    expect(g.atomicFetchAdd(a + 4, 3)).toBe(0xfffffffe);
    expect(cpuLoad(p, a + 4, 32)).toBe(1n);
    expect(g.atomicFetchAdd(a + 4, -1)).toBe(1);
    expect(cpuLoad(p, a + 4, 32)).toBe(0n);
    expect([...p.read(a, 4)]).toEqual([0xee, 0xee, 0xee, 0xee]);
    expect([...p.read(a + 8, 8)]).toEqual(new Array(8).fill(0xee));
    cpuStore(p, a + 8, 64, (1n << 64n) - 2n);
    expect(g.atomicFetchAdd64(a + 8, 5n)).toBe((1n << 64n) - 2n);
    expect(cpuLoad(p, a + 8, 64)).toBe(3n);
    expect(g.atomicFetchAdd64(a + 8, -3n)).toBe(3n);
    expect(cpuLoad(p, a + 8, 64)).toBe(0n);
    expect([...p.read(a, 4)]).toEqual([0xee, 0xee, 0xee, 0xee]);
  });

  it('compare-and-swap stores only on a match and always returns the old value (32 and 64 bits)', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p);
    const a = p.mmap(PAGE_SIZE);
    cpuStore(p, a, 32, 7n);
    expect(g.atomicCas(a, 8, 100)).toBe(7);
    expect(cpuLoad(p, a, 32)).toBe(7n);
    expect(g.atomicCas(a, 7, 100)).toBe(7);
    expect(cpuLoad(p, a, 32)).toBe(100n);
    // -1 is 0xffffffff as a 32-bit operand.
    cpuStore(p, a, 32, 0xffffffffn);
    expect(g.atomicCas(a, -1, 5)).toBe(0xffffffff);
    expect(cpuLoad(p, a, 32)).toBe(5n);
    const hi = (0xdeadbeefn << 32n) + 0x12345678n;
    cpuStore(p, a + 8, 64, hi);
    // Only the low half matches: no store.
    expect(g.atomicCas64(a + 8, 0x12345678n, 1n)).toBe(hi);
    expect(cpuLoad(p, a + 8, 64)).toBe(hi);
    expect(g.atomicCas64(a + 8, hi, -1n)).toBe(hi);
    expect(cpuLoad(p, a + 8, 64)).toBe((1n << 64n) - 1n);
  });

  it('a CAS loop increments exactly while the CPU increments the same word', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p, { mode: 'short-term' });
    const a = p.mmap(PAGE_SIZE);
    let gpu = 0;
    let failures = 0;
    for (let i = 0; i < 200; i++) {
      // Read through the atomic path (an add of 0), then race the CPU.
      const seen = g.atomicFetchAdd(a, 0);
      if (i % 3 === 0) cpuStore(p, a, 32, cpuLoad(p, a, 32) + 1n);
      if (g.atomicCas(a, seen, seen + 1) === seen) gpu++;
      else failures++;
    }
    expect(failures).toBe(67);
    expect(cpuLoad(p, a, 32)).toBe(BigInt(gpu + 67));
  });

  it('two GPU contexts take a word from each other (each revokes the other) and both stay exact', () => {
    const k = boot();
    const p = k.spawn();
    const g0 = openGpu(p, { mode: 'notifier-only' });
    const g1 = openGpu(p, { mode: 'longterm-pin' });
    const a = p.mmap(PAGE_SIZE);
    for (let i = 0; i < 50; i++) {
      g0.atomicFetchAdd(a, 1);
      g1.atomicFetchAdd(a, 2);
    }
    expect(g0.stats().revocations).toBe(50);
    expect(g1.stats().revocations).toBe(49);
    expect(cpuLoad(p, a, 32)).toBe(150n);
    // Each acquisition by g0 restored g1's device-exclusive entry with a fault, as a CPU access does.
    expect(g1.stats().revocationsByCpu).toBe(50);
  });

  it('refuses bad widths, ops and alignments with EINVAL, shared memory with EOPNOTSUPP', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p);
    const a = p.mmap(PAGE_SIZE);
    expect(errnoOf(() => g.atomicFetchAdd(a + 2, 1))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => g.atomicFetchAdd64(a + 4, 1n))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => g.atomicCas64(a + 12, 0n, 1n))).toBe(-ERRNO.EINVAL);
    const fd = p.open('/dev/svasim_gpu0', O_RDWR);
    const raw = (arg: Record<string, unknown>) => errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_ATOMIC, arg));
    expect(raw({ addr: a, op: GPU_ATOMIC_FETCH_ADD, width: 16, operand: 1n })).toBe(-ERRNO.EINVAL);
    expect(raw({ addr: a, op: 7, width: 32, operand: 1n })).toBe(-ERRNO.EINVAL);
    expect(raw({ addr: a, op: GPU_ATOMIC_CAS, width: 32, operand: 'x' })).toBe(-ERRNO.EINVAL);
    expect(raw({ addr: a, op: GPU_ATOMIC_CAS, width: 32, operand: 1n << 64n })).toBe(-ERRNO.EINVAL);
    expect(raw({ addr: -8, op: GPU_ATOMIC_FETCH_ADD, width: 32, operand: 1n })).toBe(-ERRNO.EINVAL);
    const shm = p.mmap(PAGE_SIZE, { flags: 0x01 | 0x20 });
    expect(errnoOf(() => g.atomicFetchAdd(shm, 1))).toBe(-ERRNO.EOPNOTSUPP);
    expect(errnoOf(() => g.atomicFetchAdd(0x1000, 1))).toBe(-ERRNO.EFAULT);
  });
});
