/**
 * Small pin strategies and a registry for this package's tests (not built into dist): the
 * shipped strategy plugins are other packages' work, and the runner must not depend on them.
 * - 'prefault': the CPU touches each buffer for writing before DMA (no IO page faults, no pin);
 * - 'longterm-pin': pin_user_pages(FOLL_WRITE | FOLL_LONGTERM) for the buffer's lifetime.
 */
import {
  FOLL_LONGTERM,
  FOLL_WRITE,
  PAGE_SIZE,
  PIN_STRATEGY,
  SyscallError,
  definePlugin,
  pinUserPages,
  unpinUserPages,
  type PinStrategy,
  type Plugin,
} from '@svasim/kernel';
import { memcpyAccelPlugin } from '@svasim/testkit';
import { createPluginRegistry, type PluginRegistry } from '../runner';

function strategyPlugin(s: PinStrategy): Plugin {
  return definePlugin({
    name: `test-${s.name}`,
    kind: 'pin-strategy',
    register: ({ container }) => void container.registerInstance(PIN_STRATEGY, s),
  });
}

/** prefaultStrategy - touch for writing, so every page is present and writable. */
export const prefaultStrategy: PinStrategy = {
  name: 'prefault',
  prepare: (t, addr, len) => t.proc.touch(addr, len, { write: true }),
  release: () => {},
};

const pinned = new WeakMap<object, Map<number, number[]>>();

/** longtermPinStrategy - pin the pages (FOLL_LONGTERM) until release. */
export const longtermPinStrategy: PinStrategy = {
  name: 'longterm-pin',
  prepare(t, addr, len) {
    const first = Math.floor(addr / PAGE_SIZE);
    const n = Math.ceil((addr + len) / PAGE_SIZE) - first;
    const pages: number[] = [];
    const r = pinUserPages(t.proc.mm, first * PAGE_SIZE, n, FOLL_WRITE | FOLL_LONGTERM, pages);
    if (r !== n) {
      if (r > 0) unpinUserPages(t.kernel.mmCore, pages, r);
      throw new SyscallError(r < 0 ? r : -12, 'pin_user_pages');
    }
    let m = pinned.get(t.proc);
    if (!m) pinned.set(t.proc, (m = new Map()));
    m.set(addr, pages);
  },
  release(t, addr) {
    const pages = pinned.get(t.proc)?.get(addr);
    if (!pages) return;
    unpinUserPages(t.kernel.mmCore, pages, pages.length);
    pinned.get(t.proc)!.delete(addr);
  },
};

/** testRegistry - memcpy_accel plus the two strategies above ('none' is built in). */
export function testRegistry(): PluginRegistry {
  return createPluginRegistry({
    devices: { memcpy_accel: memcpyAccelPlugin },
    strategies: {
      prefault: strategyPlugin(prefaultStrategy),
      'longterm-pin': strategyPlugin(longtermPinStrategy),
    },
  });
}
