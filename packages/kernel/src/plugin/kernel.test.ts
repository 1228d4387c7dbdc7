import { describe, it, expect } from '@jest/globals';
import { KernelError, SyscallError } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { createKernel } from './create-kernel';
import { definePlugin, type Plugin, type PluginContext } from './define-plugin';
import { Kernel } from './kernel';
import type { KernelOptions } from './kernel-options';
import { MM_CORE, KERNEL, resolve } from './tokens';
import { PIN_STRATEGY, defaultPinStrategy, type PinStrategy } from './pin-strategy';

const SMALL: KernelOptions = { memory: { nodes: [{ size: '64MiB' }] } };

/** A plugin whose instance records its lifecycle in `log`. */
function lifecycle(
  name: string,
  log: string[],
  opts: { realize?: number; requires?: string[] } = {},
): Plugin {
  return definePlugin({
    name,
    kind: 'other',
    requires: opts.requires,
    register: () => ({
      name,
      realize: () => {
        log.push(`realize ${name}`);
        return opts.realize ?? 0;
      },
      unrealize: () => void log.push(`unrealize ${name}`),
    }),
  });
}

function syscallErr(fn: () => unknown): SyscallError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SyscallError) return e;
    throw e;
  }
  throw new Error('expected a SyscallError');
}

describe('createKernel', () => {
  it('boots, faults, forks, breaks COW and exits cleanly with the defaults', () => {
    const k = createKernel();
    expect(k).toBeInstanceOf(Kernel);
    expect(k.phys.maxPfn * PAGE_SIZE).toBe(2 ** 30);
    expect(k.cpus).toBe(4);
    expect(k.options.seed).toBe(1);
    expect(k.forkCow).toBe('early');
    expect(k.pluginNames()).toEqual([]);
    expect(k.hugetlb.stats('2MiB').nr).toBe(0);
    const free0 = k.vmstat().nr_free_pages;
    const p = k.spawn();
    const a = p.mmap(1 << 20);
    p.write(a, new Uint8Array([1, 2, 3]));
    const c = p.fork();
    c.write(a, new Uint8Array([9]));
    expect([...p.read(a, 3)]).toEqual([1, 2, 3]);
    expect([...c.read(a, 3)]).toEqual([9, 2, 3]);
    expect(k.checkInvariants()).toEqual([]);
    c.exit();
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
    expect(k.vmstat().nr_free_pages).toBe(free0);
    expect(k.dmesg().some((l) => l.includes('svasim: 4 CPUs, 1 node(s), 1 GiB RAM'))).toBe(true);
    expect(k.bootSummary()).toContain('plugins: none');
  });

  it('reports at least the vmstat counters API.md promises', () => {
    const v = createKernel(SMALL).vmstat();
    for (const name of [
      'nr_free_pages',
      'nr_foll_pin_acquired',
      'nr_foll_pin_released',
      'pgfault',
      'pgmigrate_success',
      'pgmigrate_fail',
      'compact_success',
      'compact_fail',
      'thp_fault_alloc',
      'thp_collapse_alloc',
      'thp_collapse_alloc_failed',
      'numa_pages_migrated',
      'cma_alloc_success',
      'cma_alloc_fail',
      'iopf_count',
    ])
      expect(typeof v[name]).toBe('number');
    expect(v.nr_free_pages).toBeGreaterThan(0);
  });

  it('applies the options it is given', () => {
    const k = createKernel({
      seed: 7,
      cpus: 2,
      forkCow: 'legacy',
      memory: { nodes: [{ size: 64 << 20 }, { size: '64MiB' }], hugepages: { '2MiB': 2 } },
      sysctl: { 'vm.max_map_count': 100, transparent_hugepage: 'never' },
    });
    expect(k.options.seed).toBe(7);
    expect(k.cpus).toBe(2);
    expect(k.forkCow).toBe('legacy');
    expect(k.phys.nodes).toHaveLength(2);
    expect(k.hugetlb.stats('2MiB').nr).toBe(2);
    expect(k.sysctl['vm.max_map_count']).toBe(100);
    expect(k.sysctl.transparent_hugepage).toBe('never');
    // NUMA balancing defaults on with more than one node
    expect(k.sysctl['kernel.numa_balancing']).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('rejects unknown sysctls and bad sysctl values with a RangeError naming them', () => {
    expect(() => createKernel({ ...SMALL, sysctl: { 'vm.nope': 1 } as never })).toThrow(
      /unknown sysctl 'vm.nope'/,
    );
    expect(() => createKernel({ ...SMALL, sysctl: { 'vm.max_map_count': 0 } })).toThrow(RangeError);
    expect(() => createKernel({ ...SMALL, sysctl: { 'vm.max_map_count': 1.5 } })).toThrow(RangeError);
    expect(() => createKernel({ ...SMALL, sysctl: { transparent_hugepage: 'sometimes' as never } })).toThrow(
      /transparent_hugepage/,
    );
    expect(() => createKernel({ ...SMALL, sysctl: { 'kernel.numa_balancing': 2 as never } })).toThrow(
      RangeError,
    );
  });

  it('rejects bad memory sizes with a RangeError naming the option', () => {
    for (const size of ['12XB', '-1GiB', 'abc', '', '1.5B', '1iB', -4096, 1.5, NaN, {} as never])
      expect(() => createKernel({ memory: { nodes: [{ size }] } })).toThrow(/memory\.nodes\[0\]\.size/);
    expect(() => createKernel({ memory: { nodes: [{ size: '64MiB', movable: 'lots' }] } })).toThrow(
      /memory\.nodes\[0\]\.movable/,
    );
    expect(() => createKernel({ memory: { nodes: [] } })).toThrow(RangeError);
    expect(() => createKernel({ memory: { nodes: 'x' as never } })).toThrow(RangeError);
  });

  it('rejects negative, fractional or unknown hugepage counts', () => {
    const mem = (hugepages: Record<string, number>) => ({
      memory: { nodes: [{ size: '64MiB' }], hugepages },
    });
    expect(() => createKernel(mem({ '2MiB': -1 }))).toThrow(/hugepages\['2MiB'\]/);
    expect(() => createKernel(mem({ '2MiB': 1.5 }))).toThrow(RangeError);
    expect(() => createKernel(mem({ '2MiB': NaN }))).toThrow(RangeError);
    expect(() => createKernel(mem({ '4MiB': 1 }))).toThrow(/unknown size '4MiB'/);
  });

  it('rejects an unknown forkCow mode, a bad seed and a bad CPU count', () => {
    expect(() => createKernel({ ...SMALL, forkCow: 'late' as never })).toThrow(/forkCow/);
    expect(() => createKernel({ ...SMALL, seed: 1.5 })).toThrow(/seed/);
    expect(() => createKernel({ ...SMALL, cpus: 0 })).toThrow(/cpus/);
    expect(() => createKernel({ ...SMALL, cpus: 2.5 })).toThrow(/cpus/);
    expect(() => createKernel({ ...SMALL, plugins: 'zip' as never })).toThrow(RangeError);
  });
});

describe('plugins', () => {
  it('definePlugin refuses bad names and a missing register, and freezes the plugin', () => {
    for (const name of ['Bad', '', '-x', '.x', 'a b', 'x/y', 'ünï', 'UPPER', 7 as never])
      expect(() => definePlugin({ name, kind: 'other', register: () => undefined })).toThrow(TypeError);
    expect(() => definePlugin({ name: 'ok', kind: 'other' } as never)).toThrow(TypeError);
    const requires = ['a'];
    const p = definePlugin({ name: 'pin-none.v2_x', kind: 'pin-strategy', requires, register: () => 1 });
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.requires)).toBe(true);
    requires.push('b');
    expect(p.requires).toEqual(['a']);
    expect(definePlugin({ name: 'x', kind: 'other', register: () => 1 }).requires).toEqual([]);
  });

  it('registers each plugin with this kernel and its own container, and hands out the instance', () => {
    const seen: PluginContext[] = [];
    const plugin = definePlugin({
      name: 'probe',
      kind: 'other',
      register: (ctx) => {
        seen.push(ctx);
        return { hello: 'world' };
      },
    });
    const k = createKernel({ ...SMALL, plugins: [plugin] });
    expect(k.plugin<{ hello: string }>('probe')).toEqual({ hello: 'world' });
    expect(seen).toHaveLength(1);
    expect(seen[0].kernel).toBe(k);
    expect(seen[0].container).toBe(k.container);
    expect(resolve(k.container, KERNEL)).toBe(k);
    expect(resolve(k.container, MM_CORE)).toBe(k.mmCore);
    expect(k.pluginNames()).toEqual(['probe']);
  });

  it('kernel.plugin of a plugin that is not loaded throws', () => {
    const k = createKernel(SMALL);
    expect(() => k.plugin('nope')).toThrow(/'nope' is not loaded/);
  });

  it('refuses a plugin whose requirement is not loaded, in any order otherwise', () => {
    const log: string[] = [];
    expect(() => createKernel({ ...SMALL, plugins: [lifecycle('b', log, { requires: ['a'] })] })).toThrow(
      /'b' requires 'a'/,
    );
    expect(log).toEqual([]);
    const k = createKernel({
      ...SMALL,
      plugins: [lifecycle('b', log, { requires: ['a'] }), lifecycle('a', log)],
    });
    expect(k.pluginNames()).toEqual(['b', 'a']);
    expect(log).toEqual(['realize b', 'realize a']);
  });

  it('refuses a plugin loaded twice and things that are not plugins', () => {
    const log: string[] = [];
    const a = lifecycle('a', log);
    expect(() => createKernel({ ...SMALL, plugins: [a, a] })).toThrow(/'a' is loaded twice/);
    expect(() => createKernel({ ...SMALL, plugins: [a, lifecycle('a', log)] })).toThrow(/loaded twice/);
    expect(() => createKernel({ ...SMALL, plugins: [{} as Plugin] })).toThrow(TypeError);
    expect(() => createKernel({ ...SMALL, plugins: [null as unknown as Plugin] })).toThrow(TypeError);
    expect(log).toEqual([]);
  });

  it('a realize failure unrealizes the plugins realized before it, in reverse, and throws its errno', () => {
    const log: string[] = [];
    let err: unknown;
    try {
      createKernel({
        ...SMALL,
        plugins: [
          lifecycle('a', log),
          lifecycle('b', log),
          lifecycle('bad', log, { realize: -19 }),
          lifecycle('c', log),
        ],
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    expect(err).toMatchObject({ code: 'ENODEV', errno: -19 });
    expect((err as Error).message).toContain("'bad'");
    expect(log).toEqual(['realize a', 'realize b', 'realize bad', 'unrealize b', 'unrealize a']);
  });

  it('shutdown unrealizes every plugin in reverse order', () => {
    const log: string[] = [];
    const k = createKernel({ ...SMALL, plugins: [lifecycle('a', log), lifecycle('b', log)] });
    k.shutdown();
    expect(log).toEqual(['realize a', 'realize b', 'unrealize b', 'unrealize a']);
    k.shutdown();
    expect(log).toHaveLength(4);
  });
});

describe('kernels are independent', () => {
  it('two kernels share no memory, processes, pids, syscalls, devices or plugin instances', () => {
    let registered = 0;
    const plugin = definePlugin({ name: 'counter', kind: 'other', register: () => ({ n: ++registered }) });
    const k1 = createKernel({ ...SMALL, plugins: [plugin] });
    const k2 = createKernel({ ...SMALL, plugins: [plugin] });
    expect(k1.plugin('counter')).not.toBe(k2.plugin('counter'));
    expect(registered).toBe(2);
    expect(k1.container).not.toBe(k2.container);
    expect(resolve(k1.container, MM_CORE)).not.toBe(resolve(k2.container, MM_CORE));

    const free2 = k2.vmstat().nr_free_pages;
    const p1 = k1.spawn();
    const p2 = k2.spawn();
    expect(p1.pid).toBe(p2.pid);
    const a = p1.mmap(16 * PAGE_SIZE);
    p1.touch(a, 16 * PAGE_SIZE, { write: true });
    expect(k2.vmstat().nr_free_pages).toBe(free2);
    expect(k2.vmstat().pgfault).toBe(0);
    expect(k1.processList()).toEqual([p1]);
    expect(k2.processList()).toEqual([p2]);

    expect(k1.registerSyscall('only_here', () => 42)).toBe(0);
    expect(p1.syscall('only_here')).toBe(42);
    expect(syscallErr(() => p2.syscall('only_here')).code).toBe('ENOSYS');
    expect(k2.registerSyscall('only_here', () => 7)).toBe(0);

    expect(k1.miscRegister({ minor: 255, name: 'twin', fops: {} })).toBe(0);
    expect(syscallErr(() => p2.open('/dev/twin')).code).toBe('ENOENT');
    expect(k2.miscRegister({ minor: 255, name: 'twin', fops: {} })).toBe(0);
    expect(k1.checkInvariants()).toEqual([]);
    expect(k2.checkInvariants()).toEqual([]);
  });
});

describe('sysfs', () => {
  it('readSysfs of a missing attribute throws SyscallError ENOENT (syscall read)', () => {
    const k = createKernel(SMALL);
    const e = syscallErr(() => k.readSysfs('/sys/nope/nothing'));
    expect({ code: e.code, errno: e.errno, syscall: e.syscall }).toEqual({
      code: 'ENOENT',
      errno: -2,
      syscall: 'read',
    });
    const w = syscallErr(() => k.writeSysfs('/sys/nope/nothing', 1));
    expect(w.syscall).toBe('write');
    expect(w.code).toBe('ENOENT');
    expect(k.miscRegister({ minor: 255, name: 'seen', fops: {} })).toBe(0);
    expect(k.readSysfs('/sys/class/misc/seen/dev')).toMatch(/^10:\d+\n$/);
  });
});

describe('spawn', () => {
  it('rejects bad options with a RangeError and leaves nothing behind', () => {
    const k = createKernel(SMALL);
    expect(() => k.spawn({ uid: -1 })).toThrow(RangeError);
    expect(() => k.spawn({ uid: 1.5 })).toThrow(RangeError);
    expect(() => k.spawn({ rlimits: { memlock: -1 } })).toThrow(RangeError);
    expect(() => k.spawn({ rlimits: { memlock: NaN } })).toThrow(RangeError);
    expect(() => k.spawn({ caps: ['CAP_NOPE'] })).toThrow(RangeError);
    expect(() => k.spawn({ node: 1 })).toThrow(/node/);
    expect(() => k.spawn({ node: -1 })).toThrow(/node/);
    expect(k.processList()).toEqual([]);
    expect(k.checkInvariants()).toEqual([]);
    const p = k.spawn({ name: 'fine', uid: 1000, caps: ['CAP_IPC_LOCK'], rlimits: { memlock: Infinity } });
    expect(p.name).toBe('fine');
    expect(p.cred.capable('CAP_IPC_LOCK')).toBe(true);
    expect(p.cred.capable('CAP_SYS_ADMIN')).toBe(false);
    // the failed spawns used no pid: pids are handed out as if they never happened
    const q = k.spawn();
    expect(q.pid).toBe(p.pid + 1);
  });
});

describe('pin strategies', () => {
  const strategy = (name: string): PinStrategy => ({ name, prepare() {}, release() {} });
  const plugin = (...names: string[]) =>
    definePlugin({
      name: `pins-${names.join('-')}`,
      kind: 'pin-strategy',
      register: ({ container }) => {
        for (const n of names) container.registerInstance(PIN_STRATEGY, strategy(n));
      },
    });

  it('uses the default (none) with no strategy loaded, the only one loaded, or the one named', () => {
    expect(createKernel().pinStrategy()).toBe(defaultPinStrategy);
    expect(createKernel().pinStrategy().name).toBe('none');
    expect(createKernel({ plugins: [plugin('mlock')] }).pinStrategy().name).toBe('mlock');
    const two = createKernel({ plugins: [plugin('mlock', 'odp')], pinStrategy: 'odp' });
    expect(two.pinStrategy().name).toBe('odp');
    expect(two.pinStrategies().map((s) => s.name)).toEqual(['mlock', 'odp']);
    expect(createKernel({ plugins: [plugin('mlock')], pinStrategy: 'none' }).pinStrategy()).toBe(
      defaultPinStrategy,
    );
  });

  it('refuses an ambiguous, unknown or malformed choice', () => {
    expect(() => createKernel({ plugins: [plugin('mlock', 'odp')] })).toThrow(/several pin strategies/);
    expect(() => createKernel({ plugins: [plugin('mlock')], pinStrategy: 'vfio' })).toThrow(
      /'vfio' is not loaded/,
    );
    expect(() => createKernel({ pinStrategy: 7 as unknown as string })).toThrow(RangeError);
  });
});
