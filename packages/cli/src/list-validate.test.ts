import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCENARIOS_DIR } from './scenarios';
import { runCaptured } from './test-io';

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'svasim-cli-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (argv: string[]) => runCaptured(argv, tmp);

const GOOD = `name: ok
machine:
  memory:
    nodes:
      - { size: 256MiB }
devices:
  - name: hisi_sec2
processes:
  - name: tls
    workload:
      kind: crypto-stream
      alg: gcm(aes)
      requestSize: 16KiB
duration: 1ms
`;

describe('svasim validate', () => {
  it('says ok for a valid file (exit 0), and every shipped scenario is valid', async () => {
    writeFileSync(join(tmp, 'ok.yaml'), GOOD);
    expect(await run(['validate', 'ok.yaml'])).toEqual({ code: 0, out: 'ok.yaml: ok\n', err: '' });
    const shipped = readdirSync(SCENARIOS_DIR).filter((f) => f.endsWith('.yaml'));
    expect(shipped).toContain('flagship.yaml');
    for (const f of shipped) {
      const r = await run(['validate', join(SCENARIOS_DIR, f)]);
      expect({ f, ...r }).toEqual({ f, code: 0, out: `${join(SCENARIOS_DIR, f)}: ok\n`, err: '' });
    }
  });

  it('prints each problem as file:line: field: message on stderr, exit 1', async () => {
    const bad = GOOD.replace(
      'requestSize: 16KiB',
      'requestSize: 16KiB\n      keyBytes: 20\n      colour: blue',
    )
      .replace('gcm(aes)', 'cbc(aes)')
      .replace('16KiB', '1000');
    writeFileSync(join(tmp, 'bad.yaml'), bad);
    const r = await run(['validate', 'bad.yaml']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err.split('\n')).toEqual([
      "bad.yaml:15: processes[0].workload: unknown field 'colour'",
      'svasim validate: bad.yaml: 1 problem',
      '',
    ]);
    // Once the schema accepts it, the semantic rules speak, still with lines.
    writeFileSync(join(tmp, 'bad2.yaml'), bad.replace('      colour: blue\n', ''));
    const r2 = await run(['validate', 'bad2.yaml']);
    expect(r2.code).toBe(1);
    expect(r2.err.split('\n')).toEqual([
      'bad2.yaml:13: processes[0].workload.requestSize: cbc(aes) encrypts whole 16-byte blocks: use a multiple of 16',
      'bad2.yaml:14: processes[0].workload.keyBytes: cbc(aes) takes a 16-, 24- or 32-byte key',
      'svasim validate: bad2.yaml: 2 problems',
      '',
    ]);
  });

  it('accepts gpu-atomics now that @svasim/accel-gpu implements it (kinds without one are refused: experiments load.test.ts)', async () => {
    const gpu = GOOD.replace('  - name: hisi_sec2\n', '  - name: svasim_gpu\n').replace(
      /workload:\n[\s\S]*?duration/,
      'workload: { kind: gpu-atomics, buffer: 1MiB }\nduration',
    );
    writeFileSync(join(tmp, 'gpu.yaml'), gpu);
    expect(await run(['validate', 'gpu.yaml'])).toEqual({ code: 0, out: 'gpu.yaml: ok\n', err: '' });
  });

  it('a missing file or argument', async () => {
    expect(await run(['validate', 'missing.yaml'])).toEqual({
      code: 1,
      out: '',
      err: "svasim validate: cannot read scenario 'missing.yaml': ENOENT: no such file or directory\n",
    });
    const none = await run(['validate']);
    expect(none.code).toBe(1); // commander's usage error
    expect(none.err).toContain("error: missing required argument 'file'");
  });
});

describe('svasim list', () => {
  it('lists devices, strategies, IOMMU profiles, workloads, activities and shipped scenarios', async () => {
    const r = await run(['list']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    for (const s of [
      'devices',
      'hisi_zip',
      'hisi_sec2',
      'memcpy_accel',
      'strategies',
      'mempinfd',
      'short-term',
      'migration-control',
      'IOMMU profiles',
      'smmuv3',
      'vtd',
      'amd-iommuv2',
      'fork-storm',
      'flagship',
      '02-zip-throughput',
    ])
      expect(r.out).toContain(s);
    expect(r.out).toMatch(/gpu-atomics +available/);
    expect(r.out).toMatch(/zip-offload +available/);
    const j = await run(['list', '--json']);
    const doc = JSON.parse(j.out) as {
      strategies: Array<{ name: string }>;
      profiles: Array<{ name: string }>;
      scenarios: Array<{ id: string; name: string }>;
    };
    expect(doc.strategies.map((s) => s.name)).toEqual(
      expect.arrayContaining([
        'none',
        'mlock',
        'mempinfd',
        'uacce-ctrl',
        'hugetlb-pool',
        'short-term',
        'vfio',
      ]),
    );
    expect(doc.profiles.map((p) => p.name)).toEqual(['smmuv3', 'vtd', 'amd-iommuv2']);
    expect(doc.scenarios.find((s) => s.id === 'flagship')!.name).toBe('flagship');
  });
});
