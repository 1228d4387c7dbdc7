/**
 * loadScenario / validateScenario - read a scenario, check it against the schema and the
 * semantic rules, and refuse it with every problem (file, line, field path) before anything runs.
 */
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import type { ScenarioCatalog } from './catalog';
import { ScenarioError, formatPath, type ScenarioIssue } from './errors';
import { ScenarioSchema, type Scenario } from './scenario-schema';
import { checkScenario } from './semantic';
import { yamlPosition } from './yaml-lines';

type Locate = (path: ReadonlyArray<PropertyKey>) => { line: number; column: number } | undefined;

/**
 * loadScenario - parse the YAML @text of scenario file @fileName, validate it and return it with
 * defaults filled in.
 * @catalog: devices, strategies and implementations to check names against (the runner's
 *   PluginRegistry); without it names are not checked.
 *
 * Return: the Scenario (plain data). Throws ScenarioError listing every problem, each as
 * `file:line: path: message`: YAML syntax, schema violations, then semantic ones (unknown
 * strategy or device, processes larger than the machine, movable + cma larger than a node...).
 */
export function loadScenario(text: string, fileName = 'scenario.yaml', catalog?: ScenarioCatalog): Scenario {
  const counter = new LineCounter();
  const doc = parseDocument(String(text), { lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ScenarioError(
      doc.errors.map((e) => {
        const pos = counter.linePos(e.pos[0]);
        return {
          file: fileName,
          line: pos.line,
          column: pos.col,
          path: '',
          message: e.message.split('\n')[0],
        };
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ScenarioError([{ file: fileName, line: 1, path: '', message: (e as Error).message }]);
  }
  return validate(data, fileName, catalog, locator(doc, counter));
}

/**
 * validateScenario - validate an already parsed scenario object @input (JSON, a test's literal)
 * as loadScenario validates YAML; issues carry no line.
 *
 * Return: the Scenario with defaults. Throws ScenarioError.
 */
export function validateScenario(
  input: unknown,
  fileName = '<scenario>',
  catalog?: ScenarioCatalog,
): Scenario {
  return validate(input, fileName, catalog, () => undefined);
}

function locator(doc: Document, counter: LineCounter): Locate {
  return (path) => yamlPosition(doc, counter, path);
}

function validate(
  input: unknown,
  file: string,
  catalog: ScenarioCatalog | undefined,
  locate: Locate,
): Scenario {
  const r = ScenarioSchema.safeParse(input);
  if (!r.success) throw new ScenarioError(r.error.issues.map((i) => zodIssue(i, file, locate)));
  const semantic = checkScenario(r.data, catalog);
  if (semantic.length > 0) {
    throw new ScenarioError(
      semantic.map((i) => {
        const pos = locate(i.path);
        return { file, line: pos?.line, column: pos?.column, path: formatPath(i.path), message: i.message };
      }),
    );
  }
  return r.data;
}

function zodIssue(i: z.core.$ZodIssue, file: string, locate: Locate): ScenarioIssue {
  // An unknown key is reported on its parent: point at the key itself.
  const path = i.code === 'unrecognized_keys' && i.keys.length > 0 ? [...i.path, i.keys[0]] : [...i.path];
  const pos = locate(path);
  const message =
    i.code === 'unrecognized_keys'
      ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}`
      : i.message;
  return {
    file,
    line: pos?.line,
    column: pos?.column,
    path: formatPath(i.code === 'unrecognized_keys' ? i.path : path),
    message,
  };
}
