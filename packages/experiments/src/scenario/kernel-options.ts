/**
 * scenarioKernelOptions - the createKernel options a scenario's machine, kernel knobs and IOMMU
 * profile stand for (plugins are the runner's to add).
 */
import type { KernelOptions } from '@svasim/kernel';
import type { Scenario } from './scenario-schema';

/**
 * scenarioKernelOptions - KernelOptions for one run of @s with @seed (no plugins, no strategy).
 *
 * Return: a fresh object; sizes are passed through as written (createKernel parses them).
 */
export function scenarioKernelOptions(s: Scenario, seed: number): KernelOptions {
  const mem = s.machine.memory;
  const opts: KernelOptions = {
    seed,
    cpus: s.machine.cpus,
    memory: {
      nodes: mem.nodes.map((n) => ({ size: n.size, movable: n.movable, cma: n.cma })),
      hugepages: { ...(mem.hugepages ?? {}) },
    },
    sysctl: { ...s.kernel.sysctl },
    iommu: { profile: s.iommu },
    forkCow: s.kernel.forkCow,
  };
  if (s.machine.swap !== undefined) opts.swap = s.machine.swap;
  return opts;
}
