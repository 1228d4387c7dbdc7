import { describe, expect, it } from '@jest/globals';
import {
  FOLL_LONGTERM,
  FOLL_WRITE,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_PRIVATE,
  PAGE_SIZE,
  PIN_STRATEGY,
  createKernel,
  definePlugin,
  pinUserPages,
  unpinUserPages,
  type PinStrategy,
  type PinTarget,
  type Plugin,
} from '@svasim/kernel';
import { openContext } from '@svasim/user';
import {
  PIN_STRATEGY_CHECKS,
  forEachStrategy,
  memcpyAccelNoSvaPlugin,
  migrateBufferPages,
  runPinStrategyConformance,
  strategyCases,
  strategyContext,
} from './index';

/** A strategy plugin made of @make's object, registered under PIN_STRATEGY. */
function toy(name: string, make: () => PinStrategy): Plugin {
  return definePlugin({
    name: `toy-${name}`,
    kind: 'pin-strategy',
    register({ container }) {
      const s = make();
      container.registerInstance(PIN_STRATEGY, s);
      return s;
    },
  });
}

/** Pins on prepare, unpins on release, but forgets its pins when the process exits. */
function pinner(opts: { releaseUnpins: boolean }): PinStrategy {
  const held = new Map<string, Int32Array>();
  const key = (t: PinTarget, a: number) => `${t.proc.pid}:${a}`;
  return {
    name: opts.releaseUnpins ? 'pinner' : 'leaky',
    prepare(t, addr, len) {
      const pages = new Int32Array(len / PAGE_SIZE);
      expect(pinUserPages(t.proc.mm, addr, pages.length, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(
        pages.length,
      );
      held.set(key(t, addr), pages);
    },
    release(t, addr) {
      const pages = held.get(key(t, addr));
      held.delete(key(t, addr));
      if (pages && opts.releaseUnpins) unpinUserPages(t.kernel.mmCore, pages, pages.length);
    },
  };
}

const nothing = (): PinStrategy => ({ name: 'nothing', prepare() {}, release() {} });

const failed = (r: ReturnType<typeof runPinStrategyConformance>) =>
  r.results.filter((x) => !x.ok).map((x) => x.id);

describe('runPinStrategyConformance', () => {
  it('passes a do-nothing strategy that declares what it does', () => {
    const r = runPinStrategyConformance(toy('nothing', nothing), {
      name: 'nothing',
      expect: { faultsAfterPrepare: 'some', pins: false, survivesMigration: false },
    });
    expect(failed(r)).toEqual([]);
    expect(r).toMatchObject({ strategy: 'nothing', ok: true });
    expect(r.results.map((x) => x.id)).toEqual(PIN_STRATEGY_CHECKS.map((c) => c.id));
    expect(r.results.find((x) => x.id === 'prepare')!.info.faults).toBeGreaterThan(0);
  });

  it('fails the declared effect when the declaration is wrong, and a wrong name', () => {
    const r = runPinStrategyConformance(toy('nothing', nothing), {
      name: 'something',
      expect: {
        faultsAfterPrepare: 0,
        pins: true,
        survivesMigration: true,
        charge: 'vmLck',
        faultsAfterFork: 0,
      },
    });
    expect(failed(r)).toEqual(['strategy', 'balance', 'fork', 'prepare', 'migration']);
    expect(r.results.find((x) => x.id === 'prepare')!.error).toMatch(
      /IO page faults after prepare, expected 0/,
    );
  });

  it('catches a strategy that does not unpin on release, and one that leaks its pins at exit', () => {
    const leaky = runPinStrategyConformance(
      toy('leaky', () => pinner({ releaseUnpins: false })),
      {
        expect: { faultsAfterPrepare: 0, pins: true, survivesMigration: true },
      },
    );
    expect(failed(leaky)).toEqual(expect.arrayContaining(['balance', 'exit']));
    expect(leaky.results.find((x) => x.id === 'balance')!.error).toMatch(/page pin\(s\) still held/);
    const pinning = runPinStrategyConformance(
      toy('pinner', () => pinner({ releaseUnpins: true })),
      {
        expect: { faultsAfterPrepare: 0, pins: true, survivesMigration: true, faultsAfterFork: 0 },
      },
    );
    // Balanced on release, and pins keep pages in place, but nothing unpins at exit.
    expect(failed(pinning)).toEqual(['exit']);
    expect(pinning.results.find((x) => x.id === 'exit')!.error).toMatch(
      /after exit: 32 page pin\(s\) still held/,
    );
  });

  it('refuses buffers that are not whole pages', () => {
    expect(() =>
      runPinStrategyConformance(toy('nothing', nothing), {
        bufferBytes: 1000,
        expect: { faultsAfterPrepare: 0, pins: false, survivesMigration: false },
      }),
    ).toThrow(RangeError);
  });
});

describe('strategyCases / strategyContext', () => {
  it('boots fresh kernels with the case accelerators, then the strategy, then extra plugins', () => {
    const rows = strategyCases([
      toy('a', nothing),
      { plugin: toy('b', nothing), accelerators: [memcpyAccelNoSvaPlugin], title: 'b without SVA' },
    ]);
    expect(rows.map(([t]) => t)).toEqual(['toy-a', 'b without SVA']);
    const k1 = rows[1][1].makeKernel({ seed: 7 });
    const k2 = rows[1][1].makeKernel();
    expect(k1).not.toBe(k2);
    expect(k1.pluginNames()).toEqual(['memcpy_accel', 'toy-b']);
    expect(k1.readSysfs('/sys/class/uacce/memcpy_accel-0/flags')).toBe('0\n');
    expect(k1.options.seed).toBe(7);
    const ctx = strategyContext(toy('c', nothing), { memory: { nodes: [{ size: '128MiB' }] } });
    expect(ctx.makeKernel().phys.maxPfn * PAGE_SIZE).toBe(128 << 20);
  });
});

forEachStrategy([toy('one', nothing), toy('two', nothing)], 'forEachStrategy', ({ strategy, makeKernel }) => {
  const k = makeKernel();
  expect(k.pluginNames()).toEqual(['memcpy_accel', strategy.name]);
  const p = k.spawn();
  const ctx = openContext(p, 'memcpy', { kernel: k });
  const a = ctx.allocBuffer(PAGE_SIZE);
  ctx.prepare(a, PAGE_SIZE);
  expect(
    ctx.submitSync({ op: 'copy', alg: 'memcpy', src: a, srcLen: 64, dst: a + 64, dstLen: 64 }).status,
  ).toBe(0);
});

describe('migrateBufferPages', () => {
  it('moves unpinned pages, fails pinned ones, leaves hugetlb and absent pages alone', () => {
    const k = createKernel({ memory: { nodes: [{ size: '128MiB' }], hugepages: { '2MiB': 1 } } });
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, new Uint8Array(3 * PAGE_SIZE).fill(1)); // page 3 stays absent
    const pages = new Int32Array(1);
    expect(pinUserPages(p.mm, a, 1, FOLL_WRITE, pages)).toBe(1);
    const before = p.pagemap(a + PAGE_SIZE).pfn;
    expect(migrateBufferPages(k, p, a, 4 * PAGE_SIZE)).toEqual({ tried: 3, moved: 2, failed: 1, skipped: 1 });
    expect(p.pagemap(a + PAGE_SIZE).pfn).not.toBe(before);
    expect(p.pagemap(a).pfn).toBe(pages[0]);
    unpinUserPages(k.mmCore, pages, 1);
    const h = p.mmap(2 << 20, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE });
    expect(migrateBufferPages(k, p, h, 8 * PAGE_SIZE)).toEqual({ tried: 0, moved: 0, failed: 0, skipped: 8 });
    expect(p.read(a, 3 * PAGE_SIZE)).toEqual(new Uint8Array(3 * PAGE_SIZE).fill(1));
    expect(k.checkInvariants()).toEqual([]);
  });
});
