/**
 * checkScenario - what the schema cannot see: names that must exist (strategies, devices,
 * workload and background implementations, processes, nodes), sizes that must fit (processes
 * in the machine, ZONE_MOVABLE plus CMA in a node, hugetlb reservations, offline ranges) and
 * times that must make sense. Run before anything boots.
 */
import { MEMORY_HOTPLUG_DEFAULTS, formatBytes, resolveKernelOptions } from '@svasim/kernel';
import type { ScenarioCatalog } from './catalog';
import { cryptoIssues } from './crypto-params';
import { workloadFootprint } from './footprint';
import { scenarioKernelOptions } from './kernel-options';
import type { Scenario } from './scenario-schema';
import { parseDuration, parseSize } from './units';

/** SemanticIssue - one problem, with the path of the field it is about. */
export interface SemanticIssue {
  path: Array<string | number>;
  message: string;
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/**
 * checkScenario - every semantic problem of @s (empty when it may run).
 * @catalog: the names available to the runner; without it names are not checked.
 *
 * Return: the issues, each with a field path; never throws.
 */
export function checkScenario(s: Scenario, catalog?: ScenarioCatalog): SemanticIssue[] {
  const out: SemanticIssue[] = [];
  const add = (path: Array<string | number>, message: string) => out.push({ path, message });
  const size = (v: number | string, path: Array<string | number>): number | null => {
    try {
      return parseSize(v);
    } catch (e) {
      add(path, (e as Error).message);
      return null;
    }
  };
  const dur = (v: number | string, path: Array<string | number>): number | null => {
    try {
      return parseDuration(v);
    } catch (e) {
      add(path, (e as Error).message);
      return null;
    }
  };
  const nodes = s.machine.memory.nodes;

  // ---- machine ----
  let ram = 0;
  nodes.forEach((n, i) => {
    const total = size(n.size, ['machine', 'memory', 'nodes', i, 'size']);
    const movable =
      n.movable === undefined ? 0 : size(n.movable, ['machine', 'memory', 'nodes', i, 'movable']);
    const cma = n.cma === undefined ? 0 : size(n.cma, ['machine', 'memory', 'nodes', i, 'cma']);
    if (total === null || movable === null || cma === null) return;
    ram += total;
    if (total === 0) add(['machine', 'memory', 'nodes', i, 'size'], 'a node needs memory');
    if (movable + cma > total)
      add(
        ['machine', 'memory', 'nodes', i],
        `movable (${formatBytes(movable)}) + cma (${formatBytes(cma)}) is larger than the node (${formatBytes(total)})`,
      );
  });
  const hp = s.machine.memory.hugepages ?? {};
  const reserved = (hp['2MiB'] ?? 0) * 2 * MiB + (hp['1GiB'] ?? 0) * GiB;
  if (reserved > ram)
    add(
      ['machine', 'memory', 'hugepages'],
      `hugetlb pages (${formatBytes(reserved)}) exceed the machine (${formatBytes(ram)})`,
    );
  if (s.machine.swap !== undefined) size(s.machine.swap, ['machine', 'swap']);
  if (out.length === 0) {
    try {
      resolveKernelOptions(scenarioKernelOptions(s, 1));
    } catch (e) {
      add(['machine'], (e as Error).message.replace(/^createKernel: /, ''));
    }
  }

  // ---- time ----
  const duration = dur(s.duration, ['duration']);
  if (duration === 0) add(['duration'], 'the run must last some time');
  if (s.sampleEvery !== undefined) {
    const every = dur(s.sampleEvery, ['sampleEvery']);
    if (every === 0) add(['sampleEvery'], 'must be positive');
    else if (every !== null && duration !== null && every > duration)
      add(['sampleEvery'], 'longer than the run: no sample would be taken');
  }
  if (Array.isArray(s.seeds) && new Set(s.seeds).size !== s.seeds.length) add(['seeds'], 'seeds repeat');

  // ---- strategies and devices ----
  const seen = new Set<string>();
  s.strategies.forEach((name, i) => {
    if (seen.has(name)) add(['strategies', i], `strategy '${name}' is listed twice`);
    seen.add(name);
    if (catalog && name !== 'none' && !catalog.strategies.has(name))
      add(
        ['strategies', i],
        `unknown strategy '${name}' (known: ${known(['none', ...catalog.strategies.keys()])})`,
      );
  });
  const devNames = new Set<string>();
  s.devices.forEach((d, i) => {
    if (devNames.has(d.name)) add(['devices', i, 'name'], `device '${d.name}' is listed twice`);
    devNames.add(d.name);
    if (!catalog) return;
    const entry = catalog.devices.get(d.name);
    if (entry === undefined) {
      add(['devices', i, 'name'], `unknown device '${d.name}' (known: ${known(catalog.devices.keys())})`);
      return;
    }
    if (typeof entry !== 'function' && (d.count !== 1 || Object.keys(d.config).length > 0))
      add(['devices', i], `device '${d.name}' takes no count or config overrides`);
  });

  // ---- processes ----
  const procNames = new Set<string>();
  let need = 0;
  const needs: string[] = [];
  s.processes.forEach((p, i) => {
    if (procNames.has(p.name)) add(['processes', i, 'name'], `process '${p.name}' is listed twice`);
    procNames.add(p.name);
    if (p.node !== undefined && p.node >= nodes.length)
      add(['processes', i, 'node'], `node ${p.node} does not exist (the machine has ${nodes.length})`);
    if (p.memlock !== 'unlimited') size(p.memlock, ['processes', i, 'memlock']);
    const w = p.workload;
    if (catalog?.workloads && !catalog.workloads.has(w.kind))
      add(
        ['processes', i, 'workload', 'kind'],
        `workload '${w.kind}' is not available in this build (no implementation is registered; available: ${known(catalog.workloads.keys())})`,
      );
    const base = ['processes', i, 'workload'];
    if (s.devices.length === 0 && w.kind !== 'resident')
      add(base, `workload '${w.kind}' needs an accelerator, but the scenario lists no devices`);
    if (w.kind === 'resident') {
      if (size(w.size, [...base, 'size']) === 0) add([...base, 'size'], 'must be positive');
      if (w.touchEvery !== undefined && dur(w.touchEvery, [...base, 'touchEvery']) === 0)
        add([...base, 'touchEvery'], 'must be positive');
    }
    if ('requestSize' in w) {
      const req = size(w.requestSize, [...base, 'requestSize']);
      if (req === 0) add([...base, 'requestSize'], 'must be positive');
      const ws = w.workingSet === undefined ? null : size(w.workingSet, [...base, 'workingSet']);
      if (req !== null && ws !== null && ws < 2 * req)
        add([...base, 'workingSet'], `smaller than one request's buffers (2 x ${formatBytes(req)})`);
      if (w.freshFraction !== undefined && w.buffers === 'fresh')
        add([...base, 'freshFraction'], "applies to reused buffers ('fresh' buffers are all fresh)");
      if (w.kind === 'crypto-stream')
        for (const [field, message] of cryptoIssues(w, req)) add([...base, field], message);
    }
    if (w.kind === 'gpu-atomics') size(w.buffer, [...base, 'buffer']);
    if (w.kind === 'rdma-registration') {
      const region = size(w.region, [...base, 'region']);
      const ws = w.workingSet === undefined ? null : size(w.workingSet, [...base, 'workingSet']);
      if (region !== null && ws !== null && ws > region)
        add([...base, 'workingSet'], 'larger than the region');
      if (w.workingSet !== undefined && w.workingSetFraction !== undefined)
        add([...base, 'workingSetFraction'], 'give workingSet or workingSetFraction, not both');
    }
    const bytes = footprint(w);
    if (bytes !== null) {
      need += bytes;
      needs.push(`${p.name} ${formatBytes(bytes)}`);
      if (need > ram - reserved)
        add(
          base,
          `the processes need ${formatBytes(need)} (${needs.join(', ')}) but the machine has ${formatBytes(ram - reserved)} outside hugetlb`,
        );
    }
  });

  // ---- background ----
  const hasCma = nodes.some((n) => n.cma !== undefined && safeSize(n.cma) > 0);
  s.background.forEach((b, i) => {
    const base = ['background', i];
    if (catalog?.backgrounds && !catalog.backgrounds.has(b.kind))
      add([...base, 'kind'], `no implementation of background activity '${b.kind}' is registered`);
    dur(b.start, [...base, 'start']);
    const positive = (field: string, v: number | string) => {
      if (dur(v, [...base, field]) === 0) add([...base, field], 'must be positive');
    };
    const nodeOk = (field: string, n: number | undefined) => {
      if (n !== undefined && n >= nodes.length)
        add([...base, field], `node ${n} does not exist (the machine has ${nodes.length})`);
    };
    switch (b.kind) {
      case 'fragmentation':
        nodeOk('node', b.node);
        break;
      case 'compaction':
        positive('every', b.every);
        break;
      case 'thp':
        positive('khugepagedEvery', b.khugepagedEvery);
        if (b.churn !== undefined) size(b.churn, [...base, 'churn']);
        break;
      case 'numa-imbalance':
        positive('every', b.every);
        if (nodes.length < 2) add(base, 'NUMA imbalance needs a machine with at least two nodes');
        (b.processes ?? []).forEach((name, j) => {
          if (!s.processes.some((p) => p.name === name))
            add([...base, 'processes', j], `no process is called '${name}'`);
        });
        positive('scanEvery', b.scanEvery);
        break;
      case 'cma-alloc':
        if (!hasCma) add(base, 'CMA allocations need a node with a cma area');
        b.sizes.forEach((v, j) => {
          if (size(v, [...base, 'sizes', j]) === 0) add([...base, 'sizes', j], 'must be positive');
        });
        dur(b.hold, [...base, 'hold']);
        break;
      case 'hugepage-alloc':
        positive('every', b.every);
        nodeOk('node', b.node);
        break;
      case 'memory-offline': {
        positive('every', b.every);
        dur(b.timeout, [...base, 'timeout']);
        nodeOk('node', b.node);
        const block = MEMORY_HOTPLUG_DEFAULTS.memoryBlockBytes.value;
        const off = size(b.offset, [...base, 'offset']);
        const len = size(b.size, [...base, 'size']);
        if (off !== null && off % block !== 0)
          add([...base, 'offset'], `must be a multiple of ${formatBytes(block)}`);
        if (len !== null && (len === 0 || len % block !== 0))
          add([...base, 'size'], `must be a positive multiple of ${formatBytes(block)}`);
        const nd = nodes[b.node];
        if (nd && off !== null && len !== null && off + len > safeSize(nd.size))
          add(base, `offset + size run past the end of node ${b.node}`);
        break;
      }
      case 'memory-pressure':
        positive('every', b.every);
        nodeOk('node', b.node);
        if (size(b.size, [...base, 'size']) === 0) add([...base, 'size'], 'must be positive');
        if (size(b.chunk, [...base, 'chunk']) === 0) add([...base, 'chunk'], 'must be positive');
        break;
      case 'fork-storm':
        positive('every', b.every);
        dur(b.childLifetime, [...base, 'childLifetime']);
        size(b.memory, [...base, 'memory']);
        size(b.childWrites, [...base, 'childWrites']);
        if (b.target !== undefined && !s.processes.some((p) => p.name === b.target))
          add([...base, 'target'], `no process is called '${b.target}'`);
        break;
    }
  });
  return out;
}

function known(names: Iterable<string>): string {
  const list = [...new Set(names)];
  return list.length ? list.join(', ') : 'none';
}

function footprint(w: Scenario['processes'][number]['workload']): number | null {
  try {
    return workloadFootprint(w);
  } catch {
    return null; // its sizes were reported above
  }
}

function safeSize(v: number | string): number {
  try {
    return parseSize(v);
  } catch {
    return 0;
  }
}
