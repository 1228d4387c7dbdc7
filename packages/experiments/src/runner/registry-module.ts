/**
 * Loading a PluginRegistry from a module, as worker threads must (plugins hold functions, which
 * cannot be posted to a worker): the module is a built CommonJS file exporting `registry` (a
 * PluginRegistry, or the parts createPluginRegistry takes) or `createRegistry()` returning one.
 */
import { createPluginRegistry, type PluginRegistry } from './registry';

type Parts = Parameters<typeof createPluginRegistry>[0];

function isRegistry(x: unknown): x is PluginRegistry {
  const r = x as PluginRegistry;
  return (
    !!r &&
    r.devices instanceof Map &&
    r.strategies instanceof Map &&
    r.workloads instanceof Map &&
    r.backgrounds instanceof Map
  );
}

/**
 * loadRegistryModule - require @spec (a path or package name) and return its registry; parts
 * (plain objects or Maps of devices/strategies/...) are completed with the built-ins.
 *
 * Return: the registry. Throws TypeError when the module exports none.
 */
export function loadRegistryModule(spec: string): PluginRegistry {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(spec) as { registry?: unknown; createRegistry?: () => unknown; default?: unknown };
  const found =
    mod.registry ??
    (typeof mod.createRegistry === 'function' ? mod.createRegistry() : undefined) ??
    mod.default;
  if (isRegistry(found)) return found;
  if (found && typeof found === 'object') return createPluginRegistry(found as Parts);
  throw new TypeError(`registry module '${spec}' exports neither 'registry' nor 'createRegistry()'`);
}
