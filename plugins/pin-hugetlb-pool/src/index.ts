/**
 * @svasim/pin-hugetlb-pool - the 'hugetlb-pool' pin strategy as a plugin: buffers from a pool of
 * hugetlb pages (UADK's wd_mempool / wd_blockpool); prepare does nothing.
 * `createKernel({ plugins: [accel, hugetlbPoolStrategy] })`, then `ctx.allocBuffer(len)`.
 */
import { PIN_STRATEGY, definePlugin, type Kernel, type Plugin } from '@svasim/kernel';
import { HugetlbPoolStrategy, type HugetlbPoolOptions } from './hugetlb-pool-strategy';

export * from './pool-chunk';
export * from './process-pool';
export * from './hugetlb-pool-strategy';

/**
 * createHugetlbPoolStrategy - a 'hugetlb-pool' plugin with its own options (page size, how many
 * huge pages the kernel's pool must hold, chunk size). Throws RangeError for bad options when a
 * kernel loads it. kernel.plugin('pin-hugetlb-pool') returns the HugetlbPoolStrategy.
 */
export function createHugetlbPoolStrategy(opts: HugetlbPoolOptions = {}): Plugin<HugetlbPoolStrategy> {
  return definePlugin({
    name: 'pin-hugetlb-pool',
    kind: 'pin-strategy',
    register({ container, kernel }) {
      const strategy = new HugetlbPoolStrategy(kernel as Kernel, opts);
      container.registerInstance(PIN_STRATEGY, strategy);
      return strategy;
    },
  });
}

/** hugetlbPoolStrategy - the plugin with the defaults (HUGETLB_POOL_DEFAULTS: 8 pages of 2 MiB). */
export const hugetlbPoolStrategy = createHugetlbPoolStrategy();
