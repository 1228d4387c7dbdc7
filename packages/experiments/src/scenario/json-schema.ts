/**
 * scenarioJsonSchema - the JSON Schema (draft 2020-12) of scenario files, generated from the
 * same zod schema that validates them, for editors (yaml-language-server's `# yaml-language-server:
 * $schema=` comment). docs/scenario.schema.json is its committed copy; a test keeps it current.
 */
import { z } from 'zod';
import { ScenarioSchema } from './scenario-schema';

/** The path of the committed copy, relative to the repository root. */
export const SCENARIO_SCHEMA_PATH = 'docs/scenario.schema.json';

/**
 * scenarioJsonSchema - the schema of what a scenario file may contain (input types: defaults
 * are optional).
 *
 * Return: a fresh JSON-serialisable object.
 */
export function scenarioJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ScenarioSchema, { io: 'input', target: 'draft-2020-12' }) as Record<
    string,
    unknown
  >;
  return {
    $schema: schema.$schema,
    title: 'svasim scenario',
    description:
      'A svasim experiment: machine, kernel knobs, IOMMU profile, devices, processes and workloads, background activity, duration, seeds and strategies (docs/experiments.md).',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}
