/**
 * The three ways of keeping the pages of GPU atomics (seeds/003) against memory offline of
 * ZONE_MOVABLE and compaction, on a 512 MiB node whose top 256 MiB is ZONE_MOVABLE:
 * - notifier-only: offline proceeds, the migration revokes the GPU (MMU_NOTIFY_MIGRATE), the next
 *   atomic faults and re-acquires;
 * - short-term: offline proceeds through the migration callback (revoke, move, reinstate), the
 *   next atomic needs no fault;
 * - longterm-pin: FOLL_LONGTERM migrated the page out of ZONE_MOVABLE when it was pinned, so the
 *   offline of ZONE_MOVABLE proceeds without touching it, but compaction can never move it; pinned
 *   in place (no FOLL_LONGTERM, the 2021 proposal) it blocks the offline of its block.
 * Data stays exact and the invariants clean throughout.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { ERRNO, PAGE_SIZE, compactMemory, createKernel, type Kernel, type Process } from '@svasim/kernel';
import type { GpuAtomicMode } from './atomic-holds';
import { GPU_TIMING_DEFAULTS } from './gpu-config';
import { openGpu, type GpuClient } from './libgpu';
import { gpuPlugin } from './plugin';
import { bootGpuKernel } from './testing';
import {
  GPU_ATOMIC_F_FAULTED,
  GPU_ATOMIC_F_REINSTATED,
  GPU_ATOMIC_F_SYSMEM,
  GPU_MIRROR_ATOMIC,
  GPU_MIRROR_HELD,
  GPU_MIRROR_REINSTATE,
} from './uapi';

const MiB = 2 ** 20;
const N = 8;
const FAULT = GPU_TIMING_DEFAULTS.gpuFaultNs.value;
const ATOMIC = GPU_TIMING_DEFAULTS.sysmemAtomicNs.value;

const booted: Kernel[] = [];
afterEach(() => {
  for (const k of booted.splice(0)) {
    expect(k.checkInvariants()).toEqual([]);
    for (const p of k.processList()) p.exit();
    expect(k.checkInvariants()).toEqual([]);
  }
});

interface Setup {
  k: Kernel;
  p: Process;
  g: GpuClient;
  ptr: number;
  movableStart: number;
  pfn(i: number): number;
  /** The word the GPU works on in page i. */
  word(i: number): number;
  /** Check every page: word = base + i + @bump, the rest of the page i & 255. */
  check(bump: number): void;
}

function setup(mode: GpuAtomicMode, pinInPlace = false): Setup {
  const k = bootGpuKernel({ sysctl: { transparent_hugepage: 'never' } });
  booted.push(k);
  const p = k.spawn();
  const g = openGpu(p, { mode, pinInPlace });
  const ptr = p.mmap(N * PAGE_SIZE);
  for (let i = 0; i < N; i++) {
    const page = new Uint8Array(PAGE_SIZE).fill(i & 255);
    new DataView(page.buffer).setUint32(0, 1000 + i, true);
    p.write(ptr + i * PAGE_SIZE, page);
  }
  const movableStart = k.phys.zone(0, 2).startPfn;
  const s: Setup = {
    k,
    p,
    g,
    ptr,
    movableStart,
    pfn: (i) => {
      const pt = p.mm.pgtable;
      const t = pt.walk(ptr + i * PAGE_SIZE, false)!;
      return t[pt.slot];
    },
    word: (i) => ptr + i * PAGE_SIZE,
    check(bump) {
      for (let i = 0; i < N; i++) {
        const b = p.read(ptr + i * PAGE_SIZE, PAGE_SIZE);
        expect(new DataView(b.buffer).getUint32(0, true)).toBe(1000 + i + bump);
        expect(b.subarray(4).every((x) => x === (i & 255))).toBe(true);
      }
    },
  };
  // Fresh anonymous memory fills ZONE_MOVABLE first.
  for (let i = 0; i < N; i++) expect(s.pfn(i)).toBeGreaterThanOrEqual(movableStart);
  return s;
}

/** One GPU atomic on every page: returns the flags and latencies. */
function atomics(s: Setup, add: number): Array<{ flags: number; ns: number; faults: number }> {
  const out = [];
  for (let i = 0; i < N; i++) {
    s.g.atomicFetchAdd(s.word(i), add);
    out.push({ ...s.g.last });
  }
  return out;
}

/** Leave every other page free behind the GPU's pages, so compaction has work to do. */
function fragment(s: Setup): void {
  const n = 3000;
  const b = s.p.mmap(n * PAGE_SIZE);
  s.p.touch(b, n * PAGE_SIZE, { write: true });
  for (let i = 0; i < n; i += 2) s.p.munmap(b + i * PAGE_SIZE, PAGE_SIZE);
}

const offlineMovable = (k: Kernel, opts?: { timeoutNs?: number }) =>
  k.offlineMemory(0, 256 * MiB, 256 * MiB, opts);

describe('notifier-only', () => {
  it('offline of ZONE_MOVABLE proceeds: the migration revokes the GPU, which faults and re-acquires', () => {
    const s = setup('notifier-only');
    const first = atomics(s, 1);
    expect(
      first.every((r) => r.flags === (GPU_ATOMIC_F_FAULTED | GPU_ATOMIC_F_SYSMEM) && r.ns === FAULT + ATOMIC),
    ).toBe(true);
    expect(atomics(s, 1).every((r) => r.faults === 0 && r.ns === ATOMIC)).toBe(true);
    expect(s.g.stats().heldPages).toBe(0);
    expect(offlineMovable(s.k)).toBe(0);
    expect(s.k.checkInvariants()).toEqual([]);
    const st = s.g.stats();
    expect([st.revocations, st.callbackRevokes]).toEqual([N, 0]);
    expect(s.g.mirror(s.ptr, N).every((b) => !(b & GPU_MIRROR_ATOMIC))).toBe(true);
    for (let i = 0; i < N; i++) expect(s.pfn(i)).toBeLessThan(s.movableStart);
    const again = atomics(s, 1);
    expect(again.every((r) => r.flags & GPU_ATOMIC_F_FAULTED && r.ns === FAULT + ATOMIC)).toBe(true);
    s.check(3);
  });

  it('compaction moves the pages too; the GPU re-faults', () => {
    const s = setup('notifier-only');
    atomics(s, 1);
    fragment(s);
    const before = Array.from({ length: N }, (_, i) => s.pfn(i));
    s.k.compactMemory();
    const moved = before.filter((pfn, i) => s.pfn(i) !== pfn).length;
    expect(moved).toBeGreaterThan(0);
    expect(s.g.stats().revocations).toBe(moved);
    atomics(s, 1);
    s.check(2);
  });
});

describe('short-term reference + migration callback', () => {
  it('offline proceeds through the callback; the driver reinstates the mapping and the next atomic takes no fault', () => {
    const s = setup('short-term');
    atomics(s, 1);
    expect(s.g.stats().heldPages).toBe(N);
    expect(s.g.mirror(s.ptr, N).every((b) => b & GPU_MIRROR_HELD && b & GPU_MIRROR_ATOMIC)).toBe(true);
    expect(offlineMovable(s.k)).toBe(0);
    expect(s.k.checkInvariants()).toEqual([]);
    let st = s.g.stats();
    expect([st.callbackRevokes, st.revocations]).toEqual([N, 0]);
    expect(s.g.mirror(s.ptr, N).every((b) => b & GPU_MIRROR_REINSTATE && !(b & GPU_MIRROR_ATOMIC))).toBe(
      true,
    );
    for (let i = 0; i < N; i++) expect(s.pfn(i)).toBeLessThan(s.movableStart);
    const again = atomics(s, 1);
    expect(again[0].flags).toBe(GPU_ATOMIC_F_REINSTATED | GPU_ATOMIC_F_SYSMEM);
    expect(again.every((r) => r.faults === 0 && r.ns === ATOMIC)).toBe(true);
    st = s.g.stats();
    expect([st.reinstates, st.heldPages]).toEqual([N, N]);
    s.check(2);
  });

  it('compaction moves the pages through the callback as well', () => {
    const s = setup('short-term');
    atomics(s, 1);
    fragment(s);
    const before = Array.from({ length: N }, (_, i) => s.pfn(i));
    s.k.compactMemory();
    const moved = before.filter((pfn, i) => s.pfn(i) !== pfn).length;
    expect(moved).toBeGreaterThan(0);
    expect(s.g.stats().callbackRevokes).toBe(moved);
    expect(atomics(s, 1).every((r) => r.faults === 0)).toBe(true);
    s.check(2);
  });

  it('a CPU touch still revokes (and the GPU faults again), but the reference stays', () => {
    const s = setup('short-term');
    atomics(s, 1);
    s.check(1);
    expect(s.g.stats().revocations).toBe(N);
    expect(s.g.stats().heldPages).toBe(N);
    expect(atomics(s, 1).every((r) => r.flags & GPU_ATOMIC_F_FAULTED)).toBe(true);
    // munmap drops the references with the mapping.
    s.p.munmap(s.ptr, N * PAGE_SIZE);
    expect(s.g.stats().heldPages).toBe(0);
  });
});

describe('long-term pin', () => {
  it('FOLL_LONGTERM moved each page out of ZONE_MOVABLE at pin time: offline proceeds and the GPU keeps its mapping', () => {
    const s = setup('longterm-pin');
    atomics(s, 1);
    expect(s.g.stats().heldPages).toBe(N);
    const pinned = Array.from({ length: N }, (_, i) => s.pfn(i));
    for (const pfn of pinned) expect(pfn).toBeLessThan(s.movableStart);
    expect(offlineMovable(s.k)).toBe(0);
    expect(s.g.stats().revocations).toBe(0);
    expect(s.g.mirror(s.ptr, N).every((b) => b & GPU_MIRROR_ATOMIC && b & GPU_MIRROR_HELD)).toBe(true);
    expect(atomics(s, 1).every((r) => r.faults === 0 && r.ns === ATOMIC)).toBe(true);
    s.check(2);
  });

  it('compaction never moves a pinned page', () => {
    const s = setup('longterm-pin');
    atomics(s, 1);
    fragment(s);
    const pinned = Array.from({ length: N }, (_, i) => s.pfn(i));
    const report = compactMemory(s.k.mmCore);
    expect(report.skippedPinned).toBeGreaterThanOrEqual(N);
    expect(Array.from({ length: N }, (_, i) => s.pfn(i))).toEqual(pinned);
    expect(s.g.stats().revocations).toBe(0);
    s.check(1);
  });

  it('pinned in place (no FOLL_LONGTERM) the page stays in ZONE_MOVABLE and blocks its offline until the pin goes', () => {
    const s = setup('longterm-pin', true);
    atomics(s, 1);
    for (let i = 0; i < N; i++) expect(s.pfn(i)).toBeGreaterThanOrEqual(s.movableStart);
    expect(offlineMovable(s.k, { timeoutNs: 1e9 })).toBe(-ERRNO.ETIMEDOUT);
    expect(s.k.dmesg().some((l) => /memory offlining .* failed due to timeout/.test(l))).toBe(true);
    expect(offlineMovable(s.k)).toBe(-ERRNO.EBUSY);
    expect(s.k.checkInvariants()).toEqual([]);
    expect(atomics(s, 1).every((r) => r.faults === 0)).toBe(true);
    s.check(2);
    // Closing the context unpins: now the block goes.
    s.g.close();
    expect(offlineMovable(s.k)).toBe(0);
    s.check(2);
  });
});

describe('switching modes', () => {
  it('setMode releases what the old mode held and gives the pages back to the CPU', () => {
    const s = setup('longterm-pin');
    atomics(s, 1);
    expect(s.g.stats().heldPages).toBe(N);
    s.g.setMode('notifier-only');
    expect(s.g.stats().heldPages).toBe(0);
    expect(s.g.mirror(s.ptr, N).every((b) => b === 0)).toBe(true);
    expect(s.p.pagemap(s.ptr).present).toBe(true);
    s.check(1);
  });
});

describe('CMA (cma_alloc of the whole area)', () => {
  const cases: Array<[GpuAtomicMode, boolean, boolean, string]> = [
    ['notifier-only', false, true, 'the migration revokes the GPU'],
    ['short-term', false, true, 'the callback lets the page move'],
    ['longterm-pin', false, true, 'FOLL_LONGTERM moved the page out of CMA when pinning'],
    ['longterm-pin', true, false, 'the page pinned in place makes cma_alloc fail'],
  ];
  for (const [mode, inPlace, ok, why] of cases)
    it(`${mode}${inPlace ? ' (in place)' : ''}: ${why}`, () => {
      const k = createKernel({
        memory: { nodes: [{ size: '64MiB', cma: '16MiB' }] },
        plugins: [gpuPlugin],
        sysctl: { transparent_hugepage: 'never' },
      });
      booted.push(k);
      const p = k.spawn();
      const g = openGpu(p, { mode, pinInPlace: inPlace });
      // Fill memory until an allocation falls back to CMA: that page is the GPU's word.
      const n = 16000;
      const a = p.mmap(n * PAGE_SIZE);
      let j = 0;
      for (; j < n; j++) {
        p.write(a + j * PAGE_SIZE, new Uint8Array([j & 255]));
        if (p.pagemap(a + j * PAGE_SIZE).migratetype === 'CMA') break;
      }
      expect(j).toBeLessThan(n);
      const w = a + j * PAGE_SIZE;
      g.atomicFetchAdd(w + 4, 5);
      p.munmap(a, j * PAGE_SIZE);
      expect(k.cmaAlloc('16MiB')).toBe(ok);
      expect(k.checkInvariants()).toEqual([]);
      // Only the modes whose page moved heard about it: through the notifier, or the callback.
      const s = g.stats();
      expect([s.revocations, s.callbackRevokes]).toEqual([
        mode === 'notifier-only' ? 1 : 0,
        mode === 'short-term' ? 1 : 0,
      ]);
      expect(g.atomicFetchAdd(w + 4, 1)).toBe(5);
      expect([...p.read(w, 8)]).toEqual([j & 255, 0, 0, 0, 6, 0, 0, 0]);
      k.cmaRelease();
    });
});
