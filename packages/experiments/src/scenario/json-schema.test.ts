import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCENARIO_SCHEMA_PATH, scenarioJsonSchema } from './json-schema';

const committed = join(__dirname, '..', '..', '..', '..', SCENARIO_SCHEMA_PATH);

describe('docs/scenario.schema.json', () => {
  it('is what the zod schema generates now (run `npm run schema` after changing the schema)', () => {
    const onDisk = JSON.parse(readFileSync(committed, 'utf8')) as unknown;
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(scenarioJsonSchema())));
  });

  it('describes every section, rejects unknown fields and shares Duration and Size', () => {
    const s = scenarioJsonSchema() as {
      properties: Record<string, unknown>;
      required: string[];
      additionalProperties: boolean;
      $defs: Record<string, unknown>;
    };
    expect(Object.keys(s.properties)).toEqual(
      expect.arrayContaining([
        'machine',
        'kernel',
        'iommu',
        'devices',
        'processes',
        'background',
        'duration',
        'seeds',
        'strategies',
      ]),
    );
    expect(s.required).toEqual(expect.arrayContaining(['name', 'processes', 'duration']));
    expect(s.additionalProperties).toBe(false);
    expect(Object.keys(s.$defs)).toEqual(expect.arrayContaining(['Duration', 'Size']));
    const kinds = JSON.stringify(s.properties.processes).match(/"const":"[a-z-]+"/g);
    expect(kinds).toEqual(
      expect.arrayContaining([
        '"const":"memcpy"',
        '"const":"zip-offload"',
        '"const":"crypto-stream"',
        '"const":"gpu-atomics"',
        '"const":"rdma-registration"',
      ]),
    );
  });
});
