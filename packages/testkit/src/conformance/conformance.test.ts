import { describe, expect, it } from '@jest/globals';
import {
  PAGE_SIZE,
  PIN_STRATEGY,
  SyscallError,
  ERRNO,
  definePlugin,
  type AccelResult,
  type Kernel,
  type PinStrategy,
  type Plugin,
} from '@svasim/kernel';
import { MEMCPY_ACCEL_CONFIG, MemcpyAccelerator, memcpyAccelPlugin } from '../memcpy-accel';
import {
  conformanceChecks,
  firstDifference,
  formatConformanceResult,
  runAcceleratorConformance,
  sampleBytes,
  servesCheckName,
  type AcceleratorConformanceTarget,
  type ConformanceResult,
} from './index';

/** A copy of a few pages, as the memcpy device's own conformance test uses. */
function copyTarget(
  plugin: Plugin,
  extra: Partial<AcceleratorConformanceTarget> = {},
): AcceleratorConformanceTarget {
  return {
    plugin,
    alg: 'memcpy',
    sample({ proc, alloc, bytes }) {
      const len = 2 * PAGE_SIZE + 7;
      const src = alloc(len);
      const dst = alloc(len);
      const data = bytes(len);
      proc.write(src, data);
      return {
        req: { op: 'copy', alg: 'memcpy', src, srcLen: len, dst, dstLen: len },
        verify: (c, p) =>
          c.status !== 0 ? `status ${c.status}` : (firstDifference(p.read(dst, len), data) ?? undefined),
      };
    },
    ...extra,
  };
}

/** An accelerator plugin around a MemcpyAccelerator subclass. */
function accelPlugin(name: string, make: (k: Kernel) => MemcpyAccelerator): Plugin {
  return definePlugin({ name, kind: 'accelerator', register: ({ kernel }) => make(kernel as Kernel) });
}

const byName = (r: ConformanceResult) => Object.fromEntries(r.checks.map((c) => [c.name, c]));

describe('runAcceleratorConformance', () => {
  it('passes the memcpy reference device, one result per check, in order', async () => {
    const r = await runAcceleratorConformance(copyTarget(memcpyAccelPlugin, { uaccePrefix: 'memcpy_accel' }));
    expect(r.checks.map((c) => c.name)).toEqual([
      'registers',
      'appears in sysfs and /dev',
      servesCheckName(null),
      'survives hot removal with queues open',
      'is deterministic for a seed',
      'leaves no invariant violation',
    ]);
    expect(formatConformanceResult(r)).not.toContain('FAIL');
    expect(r).toMatchObject({ target: 'memcpy_accel', pass: true });
    const checks = byName(r);
    expect(checks['appears in sysfs and /dev'].message).toBe(
      'memcpy_accel-0: api memcpy_accel_v1, flags 1, 4 queues, algorithms memcpy',
    );
    expect(checks['survives hot removal with queues open'].message).toMatch(/-19|ENODEV|EFAULT/);
  });

  it('fails a device whose process() returns wrong bytes, saying which byte', async () => {
    class Corrupting extends MemcpyAccelerator {
      protected override process(op: string, src: Uint8Array): AccelResult {
        const out = Uint8Array.from(src);
        out[5] ^= 0xff;
        return { status: 0, produced: out.length, output: out };
      }
    }
    const plugin = accelPlugin('corrupting', (k) => new Corrupting(k, MEMCPY_ACCEL_CONFIG));
    const r = await runAcceleratorConformance(copyTarget(plugin));
    expect(r.pass).toBe(false);
    const checks = byName(r);
    expect(checks['registers'].pass).toBe(true);
    expect(checks['appears in sysfs and /dev'].pass).toBe(true);
    const serves = checks[servesCheckName(null)];
    expect(serves.pass).toBe(false);
    expect(serves.message).toMatch(
      /^submitSync: verify rejected the result: byte 5 is 0x[0-9a-f]{2}, expected 0x/,
    );
    expect(formatConformanceResult(r)).toContain(
      `FAIL ${servesCheckName(null)}: submitSync: verify rejected`,
    );
  });

  it('fails a device that leaks its queues: available_instances does not come back after close', async () => {
    class Leaking extends MemcpyAccelerator {
      override realize(): number {
        const r = super.realize();
        // The driver "forgets" to give the hardware queue back on release.
        if (r === 0 && this.uacce) this.uacce.ops = { ...this.uacce.ops!, putQueue: () => {} };
        return r;
      }
    }
    const plugin = accelPlugin('leaking', (k) => new Leaking(k, MEMCPY_ACCEL_CONFIG));
    const r = await runAcceleratorConformance(copyTarget(plugin));
    const serves = byName(r)[servesCheckName(null)];
    expect(serves.pass).toBe(false);
    expect(serves.message).toBe('available_instances is 3 after close, 4 before open: a queue leaked');
  });

  it('fails a plugin whose device never goes away (no unrealize)', async () => {
    const plugin = definePlugin({
      name: 'sticky',
      kind: 'accelerator',
      register: ({ kernel }) => {
        const acc = new MemcpyAccelerator(kernel as Kernel, MEMCPY_ACCEL_CONFIG);
        return { realize: () => acc.realize() };
      },
    });
    const r = await runAcceleratorConformance(copyTarget(plugin));
    const hot = byName(r)['survives hot removal with queues open'];
    expect(hot.pass).toBe(false);
    expect(hot.message).toBe('/sys/class/uacce/memcpy_accel-0 is still there after kernel.shutdown()');
    expect(byName(r)['registers'].pass).toBe(true);
  });

  it('fails a device that never completes: a hang is reported, not waited for', async () => {
    class Stuck extends MemcpyAccelerator {
      protected override process(op: string, src: Uint8Array): AccelResult {
        return { status: 0, produced: src.length, output: src, serviceNs: 1e15 };
      }
    }
    const plugin = accelPlugin('stuck', (k) => new Stuck(k, MEMCPY_ACCEL_CONFIG));
    const r = await runAcceleratorConformance(copyTarget(plugin), { timeoutNs: 10_000_000 });
    expect(byName(r)[servesCheckName(null)].message).toBe(
      'submitSync did not complete within 10000000 ns of simulated time: the device hangs',
    );
  });

  it('fails a device whose timing leaks between kernels (not deterministic for a seed)', async () => {
    let calls = 0; // module-wide state: the second kernel sees the first one's count
    class Drifting extends MemcpyAccelerator {
      protected override process(op: string, src: Uint8Array): AccelResult {
        return { status: 0, produced: src.length, output: src, serviceNs: 1000 + 10 * calls++ };
      }
    }
    const plugin = accelPlugin('drifting', (k) => new Drifting(k, MEMCPY_ACCEL_CONFIG));
    const r = await runAcceleratorConformance(copyTarget(plugin));
    const det = byName(r)['is deterministic for a seed'];
    expect(det.pass).toBe(false);
    expect(det.message).toMatch(
      /^two runs with seed 1 gave different latencies: \[[\d, ]+\] and \[[\d, ]+\] ns$/,
    );
    expect(byName(r)[servesCheckName(null)].pass).toBe(true);
  });

  it('fails a plugin of the wrong kind and one that lists no such algorithm', async () => {
    const notAccel = definePlugin({ name: 'x', kind: 'other', register: () => undefined });
    const r1 = await runAcceleratorConformance(copyTarget(notAccel));
    expect(byName(r1)['registers'].message).toBe("plugin kind is 'other', expected 'accelerator'");
    const r2 = await runAcceleratorConformance(copyTarget(memcpyAccelPlugin, { alg: 'gzip' }));
    expect(r2.pass).toBe(false);
    expect(byName(r2)['registers'].message).toBe(
      "no device in /sys/class/uacce lists algorithm 'gzip' (devices: memcpy_accel-0)",
    );
    const r3 = await runAcceleratorConformance(copyTarget(memcpyAccelPlugin, { uaccePrefix: 'hisi_zip' }));
    expect(byName(r3)['registers'].message).toBe(
      "no device named hisi_zip-<id> lists 'memcpy' (found: memcpy_accel-0)",
    );
  });

  it('fails when the device does not claim SVA as the target says', async () => {
    const r = await runAcceleratorConformance(copyTarget(memcpyAccelPlugin, { sva: false }));
    expect(byName(r)['appears in sysfs and /dev'].message).toBe(
      'flags 1 include UACCE_DEV_SVA though the device does not claim SVA',
    );
  });
});

describe('the strategies loop', () => {
  it('serves under each strategy plugin, on its own kernel, through ctx.prepare/release', async () => {
    const seen: string[] = [];
    const spy = (name: string): Plugin =>
      definePlugin({
        name: `pin-${name}`,
        kind: 'pin-strategy',
        register: ({ container }) => {
          const s: PinStrategy = {
            name,
            prepare: (t, addr, len) => {
              seen.push(`${name} prepare ${t.device} ${len}`);
              t.proc.mlock(addr, len);
            },
            release: (t, addr, len) => {
              seen.push(`${name} release ${t.device} ${len}`);
              t.proc.munlock(addr, len);
            },
          };
          container.registerInstance(PIN_STRATEGY, s);
        },
      });
    const r = await runAcceleratorConformance(copyTarget(memcpyAccelPlugin), {
      strategies: [spy('a'), spy('b')],
      inFlight: 2,
    });
    expect(r.pass).toBe(true);
    expect(r.checks.map((c) => c.name).filter((n) => n.startsWith('serves'))).toEqual([
      servesCheckName(null),
      "serves requests under pin strategy plugin 'pin-a'",
      "serves requests under pin strategy plugin 'pin-b'",
    ]);
    expect(byName(r)["serves requests under pin strategy plugin 'pin-a'"].message).toContain("under 'a'");
    // 1 sync + 2 async requests, 2 buffers each: 6 prepares and 6 releases per strategy.
    for (const n of ['a', 'b'])
      for (const what of ['prepare', 'release'])
        expect(seen.filter((l) => l === `${n} ${what} memcpy_accel-0 ${2 * PAGE_SIZE + 7}`)).toHaveLength(6);
  });

  it('a strategy whose prepare fails fails its own check only, naming the strategy', async () => {
    const refusing = definePlugin({
      name: 'pin-refusing',
      kind: 'pin-strategy',
      register: ({ container }) =>
        void container.registerInstance(PIN_STRATEGY, {
          name: 'refusing',
          prepare: () => {
            throw new SyscallError(-ERRNO.ENOMEM, 'mlock', 'over RLIMIT_MEMLOCK');
          },
          release: () => {},
        } satisfies PinStrategy),
    });
    const r = await runAcceleratorConformance(copyTarget(memcpyAccelPlugin), { strategies: [refusing] });
    const checks = byName(r);
    expect(checks[servesCheckName(null)].pass).toBe(true);
    expect(checks["serves requests under pin strategy plugin 'pin-refusing'"].message).toMatch(
      /^ctx\.prepare\(0x[0-9a-f]+, 8199\) under pin strategy 'refusing' threw: mlock: ENOMEM/,
    );
  });

  it('uses a strategy allocBuffer / freeBuffer for the sample buffers', async () => {
    const allocs: number[] = [];
    let frees = 0;
    const pool = definePlugin({
      name: 'pin-pool',
      kind: 'pin-strategy',
      register: ({ container }) =>
        void container.registerInstance(PIN_STRATEGY, {
          name: 'pool',
          prepare: () => {},
          release: () => {},
          allocBuffer: (t, len) => {
            const a = t.proc.mmap(len);
            allocs.push(a);
            return a;
          },
          freeBuffer: (t, addr, len) => {
            frees++;
            t.proc.munmap(addr, Math.ceil(len / PAGE_SIZE) * PAGE_SIZE);
          },
        } satisfies PinStrategy),
    });
    const r = await runAcceleratorConformance(copyTarget(memcpyAccelPlugin), {
      strategies: [pool],
      inFlight: 1,
    });
    expect(r.pass).toBe(true);
    expect(allocs).toHaveLength(4);
    expect(frees).toBe(4);
  });
});

describe('conformanceChecks options', () => {
  it('RangeError for a strategy that is not a pin-strategy plugin, or a bad count', () => {
    const t = copyTarget(memcpyAccelPlugin);
    expect(() => conformanceChecks(t, { strategies: [memcpyAccelPlugin] })).toThrow(RangeError);
    expect(() => conformanceChecks(t, { inFlight: 0 })).toThrow(RangeError);
    expect(() => conformanceChecks(t, { timeoutNs: 0 })).toThrow(RangeError);
  });

  it('a sample that throws or returns nothing is reported, not crashed on', async () => {
    const r = await runAcceleratorConformance({
      plugin: memcpyAccelPlugin,
      alg: 'memcpy',
      sample: () => {
        throw new Error('no idea');
      },
    });
    expect(byName(r)[servesCheckName(null)].message).toBe('sample(0) threw: no idea');
  });
});

describe('helpers', () => {
  it('sampleBytes is deterministic and differs by index and salt', () => {
    expect(Buffer.from(sampleBytes(64, 1)).equals(sampleBytes(64, 1))).toBe(true);
    expect(Buffer.from(sampleBytes(64, 1)).equals(sampleBytes(64, 2))).toBe(false);
    expect(Buffer.from(sampleBytes(64, 1)).equals(sampleBytes(64, 1, 1))).toBe(false);
    expect(() => sampleBytes(-1, 0)).toThrow(RangeError);
  });

  it('firstDifference names the first differing byte or the length', () => {
    expect(firstDifference(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBeNull();
    expect(firstDifference(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(
      'byte 1 is 0x02, expected 0x03',
    );
    expect(firstDifference(new Uint8Array([1]), new Uint8Array([1, 3]))).toBe('length 1, expected 2');
  });
});
