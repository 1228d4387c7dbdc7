/**
 * scenarioHeader - a scenario file's `name` and `description` read without validating it, for
 * listings (`svasim list`) that must show every file, broken ones too.
 */
import { parseDocument } from 'yaml';

/**
 * scenarioHeader - the `name` and `description` strings of YAML @text.
 *
 * Return: each field, or '' when missing, not a string, or the text does not parse; never throws.
 */
export function scenarioHeader(text: string): { name: string; description: string } {
  try {
    const data = parseDocument(String(text)).toJS({ maxAliasCount: 100 }) as unknown;
    const o = data && typeof data === 'object' ? (data as Record<string, unknown>) : {};
    return {
      name: typeof o.name === 'string' ? o.name : '',
      description: typeof o.description === 'string' ? o.description : '',
    };
  } catch {
    return { name: '', description: '' };
  }
}
