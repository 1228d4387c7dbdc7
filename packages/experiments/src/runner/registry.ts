/**
 * PluginRegistry - what the runner may load into a run's kernel: accelerator plugins by device
 * name, pin-strategy plugins by strategy name (API.md's names), and the workload and background
 * implementations by kind. The CLI fills one with the shipped plugins; tests register
 * @svasim/testkit's memcpyAccelPlugin and small strategies of their own.
 *
 * For worker threads the registry must be rebuilt inside each worker (plugins are objects with
 * functions): runExperiment's `registryModule` names a CommonJS module exporting it.
 */
import type { Plugin } from '@svasim/kernel';
import type { ScenarioCatalog } from '../scenario';
import type { BackgroundFactory, WorkloadFactory } from './activity';
import { BUILTIN_BACKGROUNDS } from './background';
import { BUILTIN_WORKLOADS } from './workloads';

/** Overrides a scenario's `devices` entry passes to a device factory. */
export interface DeviceOverrides {
  /** Devices wanted (>= 1). */
  count: number;
  /** Configuration overrides, as written in the scenario (the factory validates them). */
  config: Readonly<Record<string, unknown>>;
}

/**
 * DeviceEntry - a plain accelerator Plugin (one device, no overrides), or a factory building the
 * plugin(s) for a count and configuration; a factory throws RangeError for a bad configuration.
 */
export type DeviceEntry = Plugin | ((overrides: DeviceOverrides) => Plugin | readonly Plugin[]);

/** StrategyEntry - a pin-strategy plugin, or it with the plugins it requires. */
export type StrategyEntry = Plugin | readonly Plugin[];

/** PluginRegistry - see the file comment. */
export interface PluginRegistry extends ScenarioCatalog {
  readonly devices: ReadonlyMap<string, DeviceEntry>;
  /** 'none' needs no entry: without a strategy plugin the kernel uses plain SVA. */
  readonly strategies: ReadonlyMap<string, StrategyEntry>;
  readonly workloads: ReadonlyMap<string, WorkloadFactory>;
  readonly backgrounds: ReadonlyMap<string, BackgroundFactory>;
}

type Entries<V> = Iterable<readonly [string, V]> | Readonly<Record<string, V>>;

function toMap<V>(e: Entries<V> | undefined): Map<string, V> {
  if (!e) return new Map();
  if (Symbol.iterator in Object(e)) return new Map(e as Iterable<readonly [string, V]>);
  return new Map(Object.entries(e as Record<string, V>));
}

/**
 * createPluginRegistry - a registry of @parts on top of the built-in workloads ('memcpy') and
 * background activities (all nine kinds); entries in @parts override built-ins of the same name.
 *
 * Return: a registry whose maps the caller may not change afterwards (fresh Maps).
 */
export function createPluginRegistry(
  parts: {
    devices?: Entries<DeviceEntry>;
    strategies?: Entries<StrategyEntry>;
    workloads?: Entries<WorkloadFactory>;
    backgrounds?: Entries<BackgroundFactory>;
  } = {},
): PluginRegistry {
  return {
    devices: toMap(parts.devices),
    strategies: toMap(parts.strategies),
    workloads: new Map([...BUILTIN_WORKLOADS, ...toMap(parts.workloads)]),
    backgrounds: new Map([...BUILTIN_BACKGROUNDS, ...toMap(parts.backgrounds)]),
  };
}

/**
 * devicePlugins - the plugins for a scenario's device entry @name with @overrides.
 *
 * Return: the plugins; throws RangeError for an unknown device or overrides a plain plugin
 * cannot take (loadScenario refuses both earlier when given the registry).
 */
export function devicePlugins(reg: PluginRegistry, name: string, overrides: DeviceOverrides): Plugin[] {
  const entry = reg.devices.get(name);
  if (entry === undefined) throw new RangeError(`unknown device '${name}'`);
  if (typeof entry === 'function') {
    const r = entry(overrides);
    return Array.isArray(r) ? [...(r as readonly Plugin[])] : [r as Plugin];
  }
  if (overrides.count !== 1 || Object.keys(overrides.config).length > 0)
    throw new RangeError(`device '${name}' takes no count or config overrides`);
  return [entry as Plugin];
}

/**
 * strategyPlugins - the plugins strategy @name needs ([] for 'none' without an entry).
 * Throws RangeError for an unknown strategy.
 */
export function strategyPlugins(reg: PluginRegistry, name: string): Plugin[] {
  const entry = reg.strategies.get(name);
  if (entry === undefined) {
    if (name === 'none') return [];
    throw new RangeError(`unknown strategy '${name}'`);
  }
  return Array.isArray(entry) ? [...(entry as readonly Plugin[])] : [entry as Plugin];
}
