/**
 * The pin-strategy templates: src/index.ts (a PinStrategy that mlocks on prepare and munlocks on
 * the last release, registered under PIN_STRATEGY) and src/NAME.test.ts (the conformance suite on
 * the memcpy reference device under the strategy, plus tests of the strategy and its errors).
 * The text is checked by packages/cli/src/new-plugin.test.ts, which compiles it.
 */
import type { PluginNames } from '../names';

/** pinStrategyIndex - src/index.ts of a pin-strategy plugin. */
export function pinStrategyIndex(n: PluginNames): string {
  return `/**
 * ${n.pkg} - the '${n.strategy}' pin strategy, made by \`svasim new-plugin\`: ctx.prepare(addr, len)
 * mlocks the buffer, so its pages are faulted in and stay resident and the device takes no IO
 * page faults on it; ctx.release munlocks it after the last prepare of that range is undone.
 * Replace prepare and release with your scheme; docs/plugin-authoring.md has the PinStrategy
 * contract.
 *
 * Errors are the syscalls' (SyscallError): prepare throws ENOMEM over RLIMIT_MEMLOCK without
 * CAP_IPC_LOCK or for a range that is not mapped, EPERM when the process may not lock at all;
 * release throws EINVAL for a range this strategy did not prepare.
 */
import {
  ERRNO,
  PIN_STRATEGY,
  SyscallError,
  definePlugin,
  type PinStrategy,
  type PinTarget,
  type Process,
} from '@svasim/kernel';

/**
 * create${n.pascal}Strategy - a fresh strategy with its own bookkeeping: how many prepares of
 * each exact range are outstanding, per process. mlock does not nest (one munlock undoes any
 * number of mlocks), so the count keeps a range locked until its last release. Overlapping
 * ranges prepared separately are not merged: a real strategy would count per page.
 */
export function create${n.pascal}Strategy(): PinStrategy {
  const held = new WeakMap<Process, Map<string, number>>();
  const rangesOf = (p: Process) => {
    let m = held.get(p);
    if (!m) held.set(p, (m = new Map()));
    return m;
  };
  return {
    name: '${n.strategy}',
    addressing: 'sva',
    prepare(t: PinTarget, addr: number, len: number): void {
      const ranges = rangesOf(t.proc);
      const key = \`\${addr}:\${len}\`;
      const n = ranges.get(key) ?? 0;
      // Lock only on the first prepare; a failing mlock leaves nothing counted.
      if (n === 0) t.proc.mlock(addr, len);
      ranges.set(key, n + 1);
    },
    release(t: PinTarget, addr: number, len: number): void {
      const ranges = rangesOf(t.proc);
      const key = \`\${addr}:\${len}\`;
      const n = ranges.get(key) ?? 0;
      if (n === 0) throw new SyscallError(-ERRNO.EINVAL, 'munlock', \`[\${addr}, +\${len}) was not prepared\`);
      if (n > 1) {
        ranges.set(key, n - 1);
        return;
      }
      ranges.delete(key);
      t.proc.munlock(addr, len);
    },
  };
}

/**
 * ${n.camel}Plugin - \`createKernel({ plugins: [someAccelerator, ${n.camel}Plugin] })\`: registers
 * a strategy of its own in each kernel's container under PIN_STRATEGY, which makes it
 * kernel.pinStrategy() (with several strategy plugins loaded, pick one with the kernel option
 * \`pinStrategy: '${n.strategy}'\`). It needs no kernel part of its own: mlock is a syscall.
 */
export const ${n.camel}Plugin = definePlugin({
  name: '${n.name}',
  kind: 'pin-strategy',
  register({ container }) {
    container.registerInstance(PIN_STRATEGY, create${n.pascal}Strategy());
  },
});
`;
}

/** pinStrategyTest - src/NAME.test.ts of a pin-strategy plugin. */
export function pinStrategyTest(n: PluginNames): string {
  return `import { describe, expect, it } from '@jest/globals';
import { PAGE_SIZE, createKernel, type PinTarget } from '@svasim/kernel';
import { describeAcceleratorConformance, memcpyAccelPlugin, memcpyConformanceTarget } from '@svasim/testkit';
import { openContext } from '@svasim/user';
import { ${n.camel}Plugin } from './index';

// The memcpy reference device must pass the whole suite with this strategy loaded.
describeAcceleratorConformance(memcpyConformanceTarget, { strategies: [${n.camel}Plugin] });

const errno = (code: string) => expect.objectContaining({ code });

describe('${n.name}', () => {
  function boot() {
    const kernel = createKernel({
      memory: { nodes: [{ size: '256MiB' }] },
      plugins: [memcpyAccelPlugin, ${n.camel}Plugin],
    });
    const proc = kernel.spawn();
    return { kernel, proc, ctx: openContext(proc, 'memcpy') };
  }

  it("is the kernel's strategy once loaded, and the context's", () => {
    const { kernel, ctx } = boot();
    expect(kernel.pinStrategy().name).toBe('${n.strategy}');
    expect(ctx.pin).toBe(kernel.pinStrategy());
    ctx.close();
  });

  it('prepare makes the buffers resident: the copy takes no IO page faults; release undoes it', () => {
    const { kernel, proc, ctx } = boot();
    const len = 64 * 1024;
    const src = proc.mmap(len);
    const dst = proc.mmap(len);
    proc.write(src, new Uint8Array(len).fill(0x5a));
    ctx.prepare(src, len);
    ctx.prepare(dst, len);
    expect(proc.pagemap(dst).mlocked).toBe(true);
    const c = ctx.submitSync({ op: 'copy', alg: 'memcpy', src, srcLen: len, dst, dstLen: len });
    expect(c).toMatchObject({ status: 0, produced: len, faults: 0 });
    expect(Buffer.from(proc.read(dst, len)).equals(Buffer.alloc(len, 0x5a))).toBe(true);
    ctx.release(src, len);
    ctx.release(dst, len);
    expect(proc.pagemap(dst).mlocked).toBe(false);
    expect(proc.status().vmLck).toBe(0);
    ctx.close();
    proc.exit();
    expect(kernel.checkInvariants()).toEqual([]);
  });

  it('nests: a range stays locked until its last release', () => {
    const { kernel, proc, ctx } = boot();
    const buf = proc.mmap(4 * PAGE_SIZE);
    ctx.prepare(buf, 4 * PAGE_SIZE);
    ctx.prepare(buf, 4 * PAGE_SIZE);
    ctx.release(buf, 4 * PAGE_SIZE);
    expect(proc.status().vmLck).toBe(4 * PAGE_SIZE);
    ctx.release(buf, 4 * PAGE_SIZE);
    expect(proc.status().vmLck).toBe(0);
    ctx.close();
    expect(kernel.checkInvariants()).toEqual([]);
  });

  it('ENOMEM over RLIMIT_MEMLOCK or on an unmapped range; EINVAL releasing what was not prepared', () => {
    const kernel = createKernel({ memory: { nodes: [{ size: '256MiB' }] }, plugins: [${n.camel}Plugin] });
    const proc = kernel.spawn({ uid: 1000, rlimits: { memlock: PAGE_SIZE } });
    const strategy = kernel.pinStrategy();
    const t: PinTarget = { kernel, proc, fd: -1, device: '' };
    const buf = proc.mmap(4 * PAGE_SIZE);
    expect(() => strategy.prepare(t, buf, 4 * PAGE_SIZE)).toThrow(errno('ENOMEM'));
    expect(() => strategy.prepare(t, 0x10000, PAGE_SIZE)).toThrow(errno('ENOMEM'));
    expect(() => strategy.release(t, buf, 4 * PAGE_SIZE)).toThrow(errno('EINVAL'));
    // Nothing was left counted or locked by the failures.
    strategy.prepare(t, buf, PAGE_SIZE);
    expect(proc.status().vmLck).toBe(PAGE_SIZE);
    strategy.release(t, buf, PAGE_SIZE);
    expect(proc.status().vmLck).toBe(0);
    expect(kernel.checkInvariants()).toEqual([]);
  });
});
`;
}
