import type { DependencyContainer } from 'tsyringe';

/** What a plugin adds. */
export type PluginKind = 'accelerator' | 'pin-strategy' | 'iommu' | 'workload' | 'other';

/**
 * Lifecycle of what a plugin registers, as in QEMU's device model: constructors set defaults and
 * cannot fail; realize() may fail with a negative errno; unrealize() undoes it, in reverse order
 * across plugins.
 */
export interface Realizable {
  realize?(): number | void;
  unrealize?(): void;
}

/** PluginContext - what a plugin's register() receives. */
export interface PluginContext<K = unknown> {
  /** This kernel's own container (never tsyringe's global one). */
  readonly container: DependencyContainer;
  /** The kernel being built. */
  readonly kernel: K;
}

/**
 * Plugin - one loadable unit: an accelerator, a pinning strategy... Made by definePlugin.
 * `register` registers its services in the kernel's container and returns the instance that
 * `kernel.plugin(name)` hands out (realized after every plugin registered).
 */
export interface Plugin<T = unknown> {
  readonly name: string;
  readonly kind: PluginKind;
  /** Names of plugins that must be loaded too (before this one in the list or not, any order). */
  readonly requires?: readonly string[];
  register(ctx: PluginContext): T | void;
}

const NAME = /^[a-z0-9][a-z0-9._-]*$/;

/**
 * definePlugin - declare a plugin. Validates the name (lower-case letters, digits, '.', '_', '-')
 * and freezes the object so one plugin value can be shared by many kernels.
 */
export function definePlugin<T>(plugin: Plugin<T>): Plugin<T> {
  if (typeof plugin?.name !== 'string' || !NAME.test(plugin.name))
    throw new TypeError(`definePlugin: bad plugin name '${String(plugin?.name)}'`);
  if (typeof plugin.register !== 'function')
    throw new TypeError(`definePlugin: '${plugin.name}' has no register()`);
  return Object.freeze({ ...plugin, requires: Object.freeze([...(plugin.requires ?? [])]) });
}
