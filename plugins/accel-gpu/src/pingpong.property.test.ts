/**
 * Property: the CPU-touch / GPU-touch ping-pong keeps data exact. Random sequences of CPU reads,
 * writes and increments, GPU reads, writes, fetch-adds and compare-and-swaps (32 and 64 bits),
 * migrations to device memory and back, eviction, mode changes, fork, exit, munmap, mprotect,
 * compaction and the offline (and re-online) of a ZONE_MOVABLE block, in several processes each
 * with its own GPU context, against a plain byte model; kernel.checkInvariants() (which includes
 * the GPU's "no translation the CPU page table does not back") after every step. Some runs end
 * with the GPU's hot removal, after which every byte must still be right.
 * FUZZ_RUNS and FUZZ_SEED override the run count and seed.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  ERRNO,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  onlinePages,
  type Kernel,
  type Process,
} from '@svasim/kernel';
import { GPU_ATOMIC_MODES, type GpuAtomicMode } from './atomic-holds';
import type { GpuDevice } from './gpu-device';
import { openGpu, type GpuClient } from './libgpu';
import { bootGpuKernel, errnoOf } from './testing';

const NP = 5;
const MiB = 2 ** 20;

type Op =
  | { kind: 'cpuWrite'; proc: number; page: number; off: number; len: number; byte: number }
  | { kind: 'cpuRead'; proc: number; page: number }
  | { kind: 'cpuInc'; proc: number; page: number; slot: number }
  | { kind: 'gpuWrite'; proc: number; page: number; n: number; off: number; byte: number }
  | { kind: 'gpuRead'; proc: number; page: number; n: number }
  | { kind: 'gpuAdd'; proc: number; page: number; slot: number; wide: boolean; value: number }
  | { kind: 'gpuCas'; proc: number; page: number; slot: number; hit: boolean; value: number }
  | { kind: 'toDev'; proc: number; page: number; n: number }
  | { kind: 'toSys'; proc: number; page: number; n: number }
  | { kind: 'mode'; proc: number; mode: number; inPlace: boolean }
  | { kind: 'evict' }
  | { kind: 'fork'; proc: number }
  | { kind: 'exit'; proc: number }
  | { kind: 'munmap'; proc: number; page: number }
  | { kind: 'mprotect'; proc: number; ro: boolean }
  | { kind: 'compact' }
  | { kind: 'offline' };

const proc = fc.nat(7);
const page = fc.nat(NP - 1);
const slot = fc.nat(3);
const n = fc.integer({ min: 1, max: NP });
const byte = fc.integer({ min: 1, max: 255 });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('cpuWrite' as const),
      proc,
      page,
      off: fc.nat(PAGE_SIZE - 64),
      len: fc.integer({ min: 1, max: 64 }),
      byte,
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cpuRead' as const), proc, page }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('cpuInc' as const), proc, page, slot }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('gpuWrite' as const),
      proc,
      page,
      n,
      off: fc.nat(PAGE_SIZE - 1),
      byte,
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('gpuRead' as const), proc, page, n }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('gpuAdd' as const),
      proc,
      page,
      slot,
      wide: fc.boolean(),
      value: fc.integer({ min: -5, max: 1000 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('gpuCas' as const),
      proc,
      page,
      slot,
      hit: fc.boolean(),
      value: fc.nat(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('toDev' as const), proc, page, n }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('toSys' as const), proc, page, n }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('mode' as const),
      proc,
      mode: fc.nat(2),
      inPlace: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'evict' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('fork' as const), proc }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('exit' as const), proc }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('munmap' as const), proc, page }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('mprotect' as const), proc, ro: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'compact' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'offline' as const }) },
);

interface ModelProc {
  proc: Process;
  pages: Array<Uint8Array | null>;
  ro: boolean;
  gpu: GpuClient | null;
  mode: GpuAtomicMode;
}

/** What the runs reached: a generator that stops reaching these fails the test. */
const seen = {
  atomics: 0,
  revocations: 0,
  callbackRevokes: 0,
  reinstates: 0,
  toDev: 0,
  forks: 0,
  offlines: 0,
  removals: 0,
};

function word(pg: Uint8Array, s: number, wide: boolean): bigint {
  const v = new DataView(pg.buffer, pg.byteOffset);
  return wide ? v.getBigUint64(s * 8, true) : BigInt(v.getUint32(s * 8, true));
}

function setWord(pg: Uint8Array, s: number, wide: boolean, x: bigint): void {
  const v = new DataView(pg.buffer, pg.byteOffset);
  if (wide) v.setBigUint64(s * 8, BigInt.asUintN(64, x), true);
  else v.setUint32(s * 8, Number(BigInt.asUintN(32, x)), true);
}

function gpuOf(m: ModelProc): GpuClient {
  m.gpu ??= openGpu(m.proc, { mode: m.mode });
  return m.gpu;
}

function collect(procs: ModelProc[]): void {
  for (const m of procs) {
    if (!m.gpu || m.gpu.isClosed) continue;
    const s = m.gpu.stats();
    seen.atomics += s.atomics;
    seen.revocations += s.revocations;
    seen.callbackRevokes += s.callbackRevokes;
    seen.reinstates += s.reinstates;
  }
}

function run(ops: Op[], remove: boolean, mode0: GpuAtomicMode): void {
  // The smallest machine with a whole ZONE_MOVABLE memory block: the invariant checker walks every pfn after every step.
  const k: Kernel = bootGpuKernel({
    memory: { nodes: [{ size: '256MiB', movable: '128MiB' }] },
    sysctl: { transparent_hugepage: 'never' },
  });
  const first = k.spawn();
  const region = first.mmap(NP * PAGE_SIZE);
  const procs: ModelProc[] = [
    {
      proc: first,
      pages: Array.from({ length: NP }, () => new Uint8Array(PAGE_SIZE)),
      ro: false,
      gpu: null,
      mode: mode0,
    },
  ];
  const addrOf = (pg: number) => region + pg * PAGE_SIZE;
  const mapped = (m: ModelProc, pg: number, cnt: number) =>
    m.pages.slice(pg, pg + cnt).every((x) => x !== null);
  for (const op of ops) {
    const pi = 'proc' in op ? op.proc % procs.length : 0;
    const m = procs[pi];
    const cnt = 'n' in op ? Math.min(op.n, NP - op.page) : 1;
    switch (op.kind) {
      case 'cpuWrite': {
        const bytes = new Uint8Array(op.len).fill(op.byte);
        const r = errnoOf(() => m.proc.write(addrOf(op.page) + op.off, bytes));
        const target = m.pages[op.page];
        if (!target || m.ro) expect(r).toBe(-ERRNO.EFAULT);
        else {
          expect(r).toBe(0);
          target.set(bytes, op.off);
        }
        break;
      }
      case 'cpuRead': {
        const want = m.pages[op.page];
        if (!want) expect(errnoOf(() => m.proc.read(addrOf(op.page), PAGE_SIZE))).toBe(-ERRNO.EFAULT);
        else expect(Buffer.compare(m.proc.read(addrOf(op.page), PAGE_SIZE), want)).toBe(0);
        break;
      }
      case 'cpuInc': {
        const pg = m.pages[op.page];
        if (!pg || m.ro) break;
        const a = addrOf(op.page) + op.slot * 8;
        const b = m.proc.read(a, 4);
        const v = new DataView(b.buffer);
        v.setUint32(0, (v.getUint32(0, true) + 1) >>> 0, true);
        m.proc.write(a, b);
        setWord(pg, op.slot, false, word(pg, op.slot, false) + 1n);
        break;
      }
      case 'gpuWrite': {
        const len = Math.min(cnt * PAGE_SIZE - op.off, 3 * PAGE_SIZE);
        const data = new Uint8Array(len);
        for (let i = 0; i < len; i++) data[i] = (op.byte + i * 7) & 255;
        const r = errnoOf(() => gpuOf(m).write(addrOf(op.page) + op.off, data));
        const last = op.page + Math.floor((op.off + len - 1) / PAGE_SIZE);
        if (!mapped(m, op.page, last - op.page + 1)) {
          // The hole answers EFAULT; read-only memory before it may answer EPERM first.
          expect(m.ro ? [-ERRNO.EFAULT, -ERRNO.EPERM] : [-ERRNO.EFAULT]).toContain(r);
          // A partial write may have landed on the mapped pages before the hole: re-read them.
          for (let pg = op.page; pg <= last && m.pages[pg]; pg++)
            m.pages[pg]!.set(m.proc.read(addrOf(pg), PAGE_SIZE));
          break;
        }
        if (m.ro) {
          expect(r).toBe(-ERRNO.EPERM);
          break;
        }
        expect(r).toBe(0);
        for (let i = 0; i < len; i++) {
          const at = op.off + i;
          m.pages[op.page + Math.floor(at / PAGE_SIZE)]![at % PAGE_SIZE] = data[i];
        }
        break;
      }
      case 'gpuRead': {
        const r = (() => {
          try {
            return gpuOf(m).read(addrOf(op.page), cnt * PAGE_SIZE);
          } catch (e) {
            return errnoOf(() => {
              throw e;
            });
          }
        })();
        if (!mapped(m, op.page, cnt)) {
          expect(r).toBe(-ERRNO.EFAULT);
          break;
        }
        expect(r).toBeInstanceOf(Uint8Array);
        for (let i = 0; i < cnt; i++)
          expect(
            Buffer.compare(
              (r as Uint8Array).subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE),
              m.pages[op.page + i]!,
            ),
          ).toBe(0);
        break;
      }
      case 'gpuAdd':
      case 'gpuCas': {
        const pg = m.pages[op.page];
        const wide = op.kind === 'gpuAdd' ? op.wide : op.slot % 2 === 1;
        const a = addrOf(op.page) + op.slot * 8;
        const g = gpuOf(m);
        let old = -1n;
        const r = errnoOf(() => {
          if (op.kind === 'gpuAdd')
            old = wide ? g.atomicFetchAdd64(a, BigInt(op.value)) : BigInt(g.atomicFetchAdd(a, op.value));
          else {
            const cur = pg ? word(pg, op.slot, wide) : 0n;
            const expected = op.hit ? cur : cur + 1n;
            old = wide
              ? g.atomicCas64(a, expected, BigInt(op.value))
              : BigInt(g.atomicCas(a, Number(BigInt.asUintN(32, expected)), op.value));
          }
        });
        if (!pg) {
          expect(r).toBe(-ERRNO.EFAULT);
          break;
        }
        if (m.ro) {
          expect(r).toBe(-ERRNO.EPERM);
          break;
        }
        expect(r).toBe(0);
        const cur = word(pg, op.slot, wide);
        expect(old).toBe(cur);
        if (op.kind === 'gpuAdd') setWord(pg, op.slot, wide, cur + BigInt(op.value));
        else if (op.hit) setWord(pg, op.slot, wide, BigInt(op.value));
        break;
      }
      case 'toDev': {
        const r = errnoOf(() => gpuOf(m).migrateToDevice(addrOf(op.page), cnt * PAGE_SIZE));
        if (!mapped(m, op.page, cnt)) expect(r).toBe(-ERRNO.EINVAL);
        // ENOENT: a page shared with another process that holds a reference or pin on it.
        else expect([0, -ERRNO.ENOENT]).toContain(r);
        if (r === 0) seen.toDev++;
        break;
      }
      case 'toSys': {
        const r = errnoOf(() => gpuOf(m).migrateToSystem(addrOf(op.page), cnt * PAGE_SIZE));
        expect(r).toBe(mapped(m, op.page, cnt) ? 0 : -ERRNO.EINVAL);
        break;
      }
      case 'mode': {
        m.mode = GPU_ATOMIC_MODES[op.mode];
        gpuOf(m).setMode(m.mode, { pinInPlace: m.mode === 'longterm-pin' && op.inPlace });
        break;
      }
      case 'evict':
        gpuOf(procs[0]).evict();
        break;
      case 'fork': {
        if (procs.length >= 3) break;
        const child = m.proc.fork();
        seen.forks++;
        procs.push({
          proc: child,
          pages: m.pages.map((x) => (x ? x.slice() : null)),
          ro: m.ro,
          gpu: null,
          mode: m.mode,
        });
        break;
      }
      case 'exit':
        if (procs.length === 1) break;
        collect([m]);
        m.proc.exit();
        procs.splice(pi, 1);
        break;
      case 'munmap':
        m.proc.munmap(addrOf(op.page), PAGE_SIZE);
        m.pages[op.page] = null;
        break;
      case 'mprotect':
        if (!mapped(m, 0, NP)) break;
        m.proc.mprotect(region, NP * PAGE_SIZE, op.ro ? PROT_READ : PROT_READ | PROT_WRITE);
        m.ro = op.ro;
        break;
      case 'compact':
        k.compactMemory();
        break;
      case 'offline': {
        // The first ZONE_MOVABLE block: offline may fail only while a page is pinned in place there.
        const r = k.offlineMemory(0, 128 * MiB, 128 * MiB, { timeoutNs: 1e6 });
        expect([0, -ERRNO.ETIMEDOUT]).toContain(r);
        if (r === 0) {
          seen.offlines++;
          expect(onlinePages(k.mmCore, k.phys.zone(0, 2).startPfn, (128 * MiB) / PAGE_SIZE)).toBe(0);
        }
        break;
      }
    }
    const bad = k.checkInvariants();
    if (bad.length) throw new Error(`after ${JSON.stringify(op)}: ${bad.slice(0, 4).join('; ')}`);
  }
  collect(procs);
  if (remove) {
    k.plugin<GpuDevice>('gpu').unrealize();
    seen.removals++;
    expect(k.plugin<GpuDevice>('gpu').vram.stats().usedPages).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  }
  for (const m of procs)
    for (let pg = 0; pg < NP; pg++) {
      const want = m.pages[pg];
      if (want) expect(Buffer.compare(m.proc.read(addrOf(pg), PAGE_SIZE), want)).toBe(0);
    }
  for (const m of procs) m.proc.exit();
  expect(k.checkInvariants()).toEqual([]);
}

describe('CPU/GPU ping-pong property', () => {
  it('keeps every byte exact and the invariants clean through CPU and GPU traffic, migrations, modes, fork and offline', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 15, maxLength: 50 }),
        fc.boolean(),
        fc.constantFrom(...GPU_ATOMIC_MODES),
        (ops, remove, mode) => run(ops, remove, mode),
      ),
      {
        numRuns: Number(process.env.FUZZ_RUNS ?? 60),
        seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined,
      },
    );
    const least: Record<keyof typeof seen, number> = {
      atomics: 50,
      revocations: 20,
      callbackRevokes: 1,
      reinstates: 1,
      toDev: 20,
      forks: 10,
      offlines: 10,
      removals: 5,
    };
    for (const [what, count] of Object.entries(seen))
      expect([what, count >= least[what as keyof typeof seen]]).toEqual([what, true]);
  });
});
