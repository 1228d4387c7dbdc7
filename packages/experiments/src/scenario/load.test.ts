import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ScenarioError } from './errors';
import { loadScenario, validateScenario } from './load';
import { parseDuration, parseSize } from './units';
import type { ScenarioCatalog } from './catalog';

const catalog: ScenarioCatalog = {
  devices: new Map<string, unknown>([
    ['memcpy_accel', { name: 'memcpy_accel' }],
    ['hisi_zip', () => []],
  ]),
  strategies: new Map([['mlock', {}]]),
  workloads: new Map([['memcpy', {}]]),
  backgrounds: new Map(
    [
      'fragmentation',
      'compaction',
      'thp',
      'numa-imbalance',
      'cma-alloc',
      'hugepage-alloc',
      'memory-offline',
      'memory-pressure',
      'fork-storm',
    ].map((k) => [k, {}]),
  ),
};

const GOOD = `name: flagship
description: two strategies on the copy device
machine:
  cpus: 4
  memory:
    nodes:
      - size: 1GiB
        movable: 256MiB
        cma: 64MiB
devices:
  - name: memcpy_accel
processes:
  - name: nginx
    workload:
      kind: memcpy
      requestSize: 64KiB
      inflight: 4
      buffers: fresh
background:
  - kind: cma-alloc
    sizes: [16MiB]
    rate: 100
duration: 200ms
seeds: 3
strategies: [none, mlock]
`;

/** GOOD with one line replaced (1-based). */
function withLine(line: number, text: string): string {
  const lines = GOOD.split('\n');
  lines[line - 1] = text;
  return lines.join('\n');
}

function issuesOf(fn: () => unknown): ScenarioError['issues'] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as ScenarioError).issues;
  }
  throw new Error('expected a ScenarioError');
}

describe('loadScenario', () => {
  it('reads a scenario and fills in the defaults', () => {
    const s = loadScenario(GOOD, 'flagship.yaml', catalog);
    expect(s.name).toBe('flagship');
    expect(s.iommu).toBe('smmuv3');
    expect(s.kernel).toEqual({ sysctl: {}, forkCow: 'early' });
    expect(s.processes[0].workload).toMatchObject({
      kind: 'memcpy',
      inflight: 4,
      buffers: 'fresh',
      verify: false,
    });
    expect(s.processes[0].memlock).toBe('unlimited');
    expect(s.background[0]).toMatchObject({ kind: 'cma-alloc', hold: '5ms', start: 0 });
    expect(s.devices[0]).toEqual({ name: 'memcpy_accel', count: 1, config: {} });
    expect(s.seeds).toBe(3);
  });

  it('names file, line and field of a value of the wrong type', () => {
    const issues = issuesOf(() => loadScenario(withLine(17, '      inflight: four'), 'flagship.yaml'));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({
      file: 'flagship.yaml',
      line: 17,
      path: 'processes[0].workload.inflight',
    });
    expect(issues[0].message).toMatch(/expected number, received string/i);
    expect(() => loadScenario(withLine(17, '      inflight: four'), 'flagship.yaml')).toThrow(
      /^flagship\.yaml:17: processes\[0\]\.workload\.inflight: .*expected number, received string/i,
    );
  });

  it('points at an unknown field, and at the enclosing key of a missing one', () => {
    const unknown = issuesOf(() => loadScenario(withLine(18, '      bufers: fresh'), 'f.yaml'));
    expect(unknown[0]).toMatchObject({
      line: 18,
      path: 'processes[0].workload',
      message: "unknown field 'bufers'",
    });
    const missing = issuesOf(() => loadScenario(withLine(16, '      requestsize: 64KiB'), 'f.yaml'));
    expect(missing.map((i) => i.path).sort()).toEqual([
      'processes[0].workload',
      'processes[0].workload.requestSize',
    ]);
    expect(missing.find((i) => i.path.endsWith('requestSize'))!.line).toBe(14);
  });

  it('refuses a negative rate, a bad duration and an unknown kind on their lines', () => {
    expect(issuesOf(() => loadScenario(withLine(22, '    rate: -5'), 'f.yaml'))[0]).toMatchObject({
      line: 22,
      path: 'background[0].rate',
    });
    expect(issuesOf(() => loadScenario(withLine(23, 'duration: 200 parsecs'), 'f.yaml'))[0]).toMatchObject({
      line: 23,
      path: 'duration',
      message: expect.stringMatching(/duration such as/),
    });
    const kind = issuesOf(() => loadScenario(withLine(15, '      kind: memcopy'), 'f.yaml'))[0];
    expect(kind).toMatchObject({ line: 15, path: 'processes[0].workload.kind' });
    expect(kind.message).toMatch(/'memcpy', 'zip-offload'/);
  });

  it('refuses unknown strategies and devices, and overrides a plain plugin cannot take', () => {
    const s = issuesOf(() =>
      loadScenario(withLine(25, 'strategies: [none, mlock, pin-all]'), 'f.yaml', catalog),
    );
    expect(s).toEqual([
      expect.objectContaining({
        line: 25,
        path: 'strategies[2]',
        message: expect.stringMatching(/unknown strategy 'pin-all' \(known: none, mlock\)/),
      }),
    ]);
    const d = issuesOf(() => loadScenario(withLine(11, '  - name: hisi_sec'), 'f.yaml', catalog));
    expect(d[0]).toMatchObject({
      line: 11,
      path: 'devices[0].name',
      message: expect.stringMatching(/unknown device 'hisi_sec'/),
    });
    const o = issuesOf(() =>
      loadScenario(withLine(11, '  - { name: memcpy_accel, count: 2 }'), 'f.yaml', catalog),
    );
    expect(o[0]).toMatchObject({
      line: 11,
      path: 'devices[0]',
      message: expect.stringMatching(/no count or config overrides/),
    });
    // A factory entry takes them.
    expect(() =>
      loadScenario(
        withLine(11, '  - { name: hisi_zip, count: 2, config: { queues: 8 } }'),
        'f.yaml',
        catalog,
      ),
    ).not.toThrow();
  });

  it('refuses processes larger than the machine, and movable + cma larger than a node', () => {
    const big = issuesOf(() =>
      loadScenario(withLine(18, '      buffers: reused\n      workingSet: 2GiB'), 'f.yaml', catalog),
    );
    expect(big[0]).toMatchObject({ path: 'processes[0].workload', line: 14 });
    expect(big[0].message).toMatch(/the processes need 2 GiB \(nginx 2 GiB\) but the machine has 1 GiB/);
    const node = issuesOf(() => loadScenario(withLine(8, '        movable: 1000MiB'), 'f.yaml'));
    expect(node[0]).toMatchObject({ path: 'machine.memory.nodes[0]', line: 7 });
    expect(node[0].message).toMatch(
      /movable \(1000 MiB\) \+ cma \(64 MiB\) is larger than the node \(1 GiB\)/,
    );
  });

  it('refuses a workload kind nobody implements yet, and contradictory background activity', () => {
    const zip = `${GOOD.replace('kind: memcpy', 'kind: zip-offload')}`;
    expect(issuesOf(() => loadScenario(zip, 'f.yaml', catalog))[0]).toMatchObject({
      line: 15,
      path: 'processes[0].workload.kind',
      message:
        "workload 'zip-offload' is not available in this build (no implementation is registered; available: memcpy)",
    });
    expect(() => loadScenario(zip, 'f.yaml')).not.toThrow(); // the schema knows every kind
    const bg = `${GOOD.replace('strategies:', 'strategies:')}`.replace(
      '  - kind: cma-alloc\n    sizes: [16MiB]\n    rate: 100',
      '  - { kind: numa-imbalance }\n  - { kind: memory-offline, offset: 100MiB }\n  - { kind: fork-storm, target: apache }',
    );
    const issues = issuesOf(() => loadScenario(bg, 'f.yaml', catalog));
    expect(issues.map((i) => `${i.line} ${i.path}: ${i.message}`)).toEqual([
      '20 background[0]: NUMA imbalance needs a machine with at least two nodes',
      '21 background[1].offset: must be a multiple of 128 MiB',
      "22 background[2].target: no process is called 'apache'",
    ]);
  });

  it('reports YAML syntax errors with their line, and lists every problem at once', () => {
    const syntax = issuesOf(() => loadScenario('name: x\nprocesses: [\n', 'bad.yaml'));
    expect(syntax[0].file).toBe('bad.yaml');
    expect(syntax[0].line).toBeGreaterThanOrEqual(2);
    const dup = issuesOf(() => loadScenario('name: x\nname: y\n', 'dup.yaml'));
    expect(dup[0]).toMatchObject({ line: 2 });
    const many = issuesOf(() =>
      loadScenario(withLine(17, '      inflight: 0').replace('seeds: 3', 'seeds: -1'), 'f.yaml'),
    );
    expect(many.map((i) => i.path)).toEqual(['processes[0].workload.inflight', 'seeds']);
    expect(issuesOf(() => loadScenario('', 'empty.yaml'))[0]).toMatchObject({ line: 1, path: '' });
  });

  it('validateScenario checks objects the same way, without lines', () => {
    const issues = issuesOf(() =>
      validateScenario({ name: 'x', processes: [], duration: '1ms', strategies: ['nope'] }, 'obj', catalog),
    );
    expect(issues).toEqual([expect.objectContaining({ file: 'obj', line: undefined, path: 'processes' })]);
  });

  it('never throws anything but ScenarioError, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          loadScenario(text, 'fuzz.yaml', catalog);
        } catch (e) {
          if (!(e instanceof ScenarioError)) throw e;
          for (const i of e.issues) expect(i.file).toBe('fuzz.yaml');
        }
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        try {
          validateScenario(v, 'fuzz', catalog);
        } catch (e) {
          if (!(e instanceof ScenarioError)) throw e;
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('units', () => {
  it('parses durations and sizes, and refuses what is not one', () => {
    expect(parseDuration('200ms')).toBe(200e6);
    expect(parseDuration('1.5s')).toBe(1.5e9);
    expect(parseDuration('10us')).toBe(10_000);
    expect(parseDuration('250µs')).toBe(250_000);
    expect(parseDuration(42)).toBe(42);
    expect(parseSize('64KiB')).toBe(65536);
    for (const bad of ['-1ms', '5', 'ms', '1e3s', -3, 1.5])
      expect(() => parseDuration(bad as string)).toThrow(RangeError);
    expect(() => parseSize('0.3K')).toThrow(RangeError);
  });
});
