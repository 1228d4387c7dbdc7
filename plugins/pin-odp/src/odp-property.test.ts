/**
 * Property: under 'odp', random sequences of prepares and releases (overlapping), prefetches,
 * CPU writes, device copies, page-outs to swap, migrations with a copy window, munmap-free
 * forks with child writes keep every byte exactly as a plain model says, keep the mirror
 * consistent with the page table (the strategy's invariant check), take no pin, and leave
 * nothing behind at exit.
 */
import { describe, it } from '@jest/globals';
import fc from 'fast-check';
import { MADV_PAGEOUT, PAGE_SIZE, completeAllMigrations, createKernel, type PinTarget } from '@svasim/kernel';
import { memcpyAccelPlugin, migrateBufferPages } from '@svasim/testkit';
import { openContext } from '@svasim/user';
import {
  ODP_ADVISE_PREFETCH,
  ODP_ADVISE_PREFETCH_NO_FAULT,
  ODP_ADVISE_PREFETCH_WRITE,
  odpStrategy,
  type OdpStrategy,
} from './index';

// FUZZ_RUNS raises the number of sequences for a longer local soak.
const RUNS = Math.max(60, Number(process.env.FUZZ_RUNS ?? 60));
const NP = 16;
const HALF = NP / 2;

type Op =
  | { kind: 'write'; page: number; byte: number }
  | { kind: 'copy'; from: number; to: number; n: number }
  | { kind: 'prepare'; page: number; n: number }
  | { kind: 'release'; which: number }
  | { kind: 'advise'; which: number; advice: number }
  | { kind: 'pageout'; page: number; n: number }
  | { kind: 'migrate'; page: number; n: number; copy: boolean }
  | { kind: 'fork'; page: number; byte: number };

const page = fc.nat(NP - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), page, byte: fc.integer({ min: 1, max: 255 }) }),
  fc.record({
    kind: fc.constant('copy' as const),
    from: fc.nat(HALF - 1),
    to: fc.nat(HALF - 1),
    n: fc.integer({ min: 1, max: HALF }),
  }),
  fc.record({ kind: fc.constant('prepare' as const), page, n: fc.integer({ min: 1, max: NP }) }),
  fc.record({ kind: fc.constant('release' as const), which: fc.nat(7) }),
  fc.record({
    kind: fc.constant('advise' as const),
    which: fc.nat(7),
    advice: fc.constantFrom(ODP_ADVISE_PREFETCH, ODP_ADVISE_PREFETCH_WRITE, ODP_ADVISE_PREFETCH_NO_FAULT),
  }),
  fc.record({ kind: fc.constant('pageout' as const), page, n: fc.integer({ min: 1, max: NP }) }),
  fc.record({
    kind: fc.constant('migrate' as const),
    page,
    n: fc.integer({ min: 1, max: 4 }),
    copy: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('fork' as const), page, byte: fc.integer({ min: 1, max: 255 }) }),
);

function run(ops: Op[]): void {
  const k = createKernel({
    memory: { nodes: [{ size: '128MiB' }] },
    swap: '16MiB',
    sysctl: { transparent_hugepage: 'never' },
    plugins: [memcpyAccelPlugin, odpStrategy],
  });
  const s = k.plugin<OdpStrategy>('pin-odp');
  const free0 = k.phys.nrFreePages();
  const p = k.spawn();
  const ctx = openContext(p, 'memcpy', { kernel: k });
  const t: PinTarget = { kernel: k, proc: p, fd: -1, device: '' };
  const base = p.mmap(NP * PAGE_SIZE);
  const model = new Uint8Array(NP);
  const held: Array<[number, number]> = [];
  const at = (i: number) => base + i * PAGE_SIZE;
  const fillPage = (i: number, b: number) => p.write(at(i), new Uint8Array(PAGE_SIZE).fill(b));
  const check = (step: string) => {
    for (let i = 0; i < NP; i++) {
      const got = p.read(at(i), PAGE_SIZE);
      if (got[0] !== model[i] || got[PAGE_SIZE - 1] !== model[i])
        throw new Error(`${step}: page ${i} holds ${got[0]}, the model ${model[i]}`);
    }
    const v = k.checkInvariants();
    if (v.length) throw new Error(`${step}: ${v.slice(0, 3).join('; ')}`);
    if (p.status().vmPin || k.vmstat().nr_foll_pin_acquired !== k.vmstat().nr_foll_pin_released)
      throw new Error(`${step}: something is pinned`);
  };
  const deviceCopy = (from: number, to: number, n: number) => {
    const c = ctx.submitSync({
      op: 'copy',
      alg: 'memcpy',
      src: at(from),
      srcLen: n * PAGE_SIZE,
      dst: at(to),
      dstLen: n * PAGE_SIZE,
    });
    if (c.status !== 0) throw new Error(`copy ${from}->${to} x${n}: status ${c.status}`);
    model.copyWithin(to, from, from + n);
  };
  ops.forEach((op, step) => {
    const name = `step ${step} ${JSON.stringify(op)}`;
    switch (op.kind) {
      case 'write':
        fillPage(op.page, op.byte);
        model[op.page] = op.byte;
        break;
      case 'copy': {
        // src in the low half, dst in the high half: never overlapping.
        const n = Math.min(op.n, HALF - op.from, HALF - op.to);
        deviceCopy(op.from, HALF + op.to, n);
        break;
      }
      case 'prepare': {
        const n = Math.min(op.n, NP - op.page);
        ctx.prepare(at(op.page), n * PAGE_SIZE);
        held.push([op.page, n]);
        break;
      }
      case 'release':
        if (held.length) {
          const [pg, n] = held.splice(op.which % held.length, 1)[0];
          ctx.release(at(pg), n * PAGE_SIZE);
        }
        break;
      case 'advise':
        if (held.length) {
          const [pg, n] = held[op.which % held.length];
          s.advise(t, at(pg), n * PAGE_SIZE, op.advice);
        }
        break;
      case 'pageout': {
        const n = Math.min(op.n, NP - op.page);
        p.madvise(at(op.page), n * PAGE_SIZE, MADV_PAGEOUT);
        break;
      }
      case 'migrate': {
        const n = Math.min(op.n, NP - op.page);
        migrateBufferPages(k, p, at(op.page), n * PAGE_SIZE, { windowNs: op.copy ? 1_000_000 : 0 });
        if (op.copy) deviceCopy(0, HALF, HALF); // the device meets the migration entries
        completeAllMigrations(k.mmCore);
        break;
      }
      case 'fork': {
        const atFork = model.slice();
        const c = p.fork();
        c.write(at(op.page), new Uint8Array(PAGE_SIZE).fill(op.byte));
        deviceCopy(0, HALF, HALF); // the parent's device writes after fork stay the parent's
        for (let i = 0; i < NP; i++) {
          const want = i === op.page ? op.byte : atFork[i];
          if (c.read(at(i), 1)[0] !== want) throw new Error(`${name}: the child's page ${i} changed`);
        }
        c.exit();
        break;
      }
    }
    check(name);
  });
  // The device's view and the CPU's agree at the end.
  deviceCopy(0, HALF, HALF);
  check('final copy');
  p.exit();
  if (s.regions(p.mm).length) throw new Error('regions left after exit');
  const v = k.checkInvariants();
  if (v.length) throw new Error(`after exit: ${v.join('; ')}`);
  if (k.phys.nrFreePages() !== free0) throw new Error(`leaked ${free0 - k.phys.nrFreePages()} pages`);
}

describe('odp: random sequences against a byte model', () => {
  it('keeps bytes, mirror and accounting right', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 24 }), (ops) => {
        run(ops);
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 0x0d9) },
    );
  });
});
