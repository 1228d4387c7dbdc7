/**
 * The shipped registry as a module worker threads can load (runExperiment's `registryModule`):
 * plugins hold functions and cannot be posted to a worker, so each worker requires this file and
 * calls createRegistry(). Only the built file (dist/registry/registry-module.js) can be loaded by a
 * worker; DEFAULT_REGISTRY_MODULE names it, and defaultRegistryModule() says whether it exists.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PluginRegistry } from '../runner';
import { defaultRegistry } from './default-registry';

/** createRegistry - the shipped registry (defaultRegistry()), as loadRegistryModule expects. */
export function createRegistry(): PluginRegistry {
  return defaultRegistry();
}

/** DEFAULT_REGISTRY_MODULE - this module's compiled file, for runExperiment's `registryModule`. */
export const DEFAULT_REGISTRY_MODULE = join(__dirname, 'registry-module.js');

/**
 * defaultRegistryModule - DEFAULT_REGISTRY_MODULE when it exists (running from dist), else
 * undefined (running from TypeScript sources: runs then stay in the calling thread).
 */
export function defaultRegistryModule(): string | undefined {
  return existsSync(DEFAULT_REGISTRY_MODULE) ? DEFAULT_REGISTRY_MODULE : undefined;
}
