/**
 * @svasim/pin-odp - the 'odp' pin strategy: On-Demand Paging with an MMU interval notifier and
 * hmm_range_fault instead of pins (seeds/004; README.md).
 * `createKernel({ plugins: [accel, odpStrategy] })`.
 */
import { PIN_STRATEGY, definePlugin, type Kernel, type Plugin } from '@svasim/kernel';
import { OdpStrategy, type OdpStrategyOptions } from './odp-strategy';

export * from './uapi';
export {
  ODP_FAULT_BATCH,
  ODP_FAULT_RETRIES,
  OdpMr,
  emptyOdpStats,
  type OdpFaultMode,
  type OdpStats,
} from './odp-mr';
export {
  ODP_MAX_REGION_RAM_RATIO,
  ODP_PREFETCH_MAX_BYTES,
  ODP_STRATEGY_NAME,
  OdpStrategy,
  type OdpStrategyOptions,
} from './odp-strategy';

/**
 * createOdpStrategy - the plugin 'pin-odp' with @opts: registers an OdpStrategy under
 * PIN_STRATEGY (also what kernel.plugin('pin-odp') returns); realize() adds its system calls.
 * Throws RangeError for bad options (when a kernel loads it).
 */
export function createOdpStrategy(opts: OdpStrategyOptions = {}): Plugin<OdpStrategy> {
  return definePlugin({
    name: 'pin-odp',
    kind: 'pin-strategy',
    register({ container, kernel }) {
      const strategy = new OdpStrategy(kernel as Kernel, opts);
      container.registerInstance(PIN_STRATEGY, strategy);
      return strategy;
    },
  });
}

/** odpStrategy - the plugin with the default options (prefetch registrations up to 16 MiB). */
export const odpStrategy = createOdpStrategy();
