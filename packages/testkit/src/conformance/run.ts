/**
 * runAcceleratorConformance - the conformance suite as a plain function (no jest): every check
 * runs, in order, and the result says which passed and why the others failed.
 */
import { conformanceChecks } from './checks';
import { errorText } from './failure';
import type {
  AcceleratorConformanceTarget,
  ConformanceCheck,
  ConformanceOptions,
  ConformanceResult,
} from './types';

/**
 * runAcceleratorConformance - run every check of the suite on @target (see conformanceChecks for
 * the list). A failing check does not stop the others.
 *
 * Return: every check with pass/fail and a message; `pass` is true when all passed. Rejects only
 * for bad options (RangeError).
 */
export async function runAcceleratorConformance(
  target: AcceleratorConformanceTarget,
  opts: ConformanceOptions = {},
): Promise<ConformanceResult> {
  const checks: ConformanceCheck[] = [];
  for (const c of conformanceChecks(target, opts)) {
    try {
      checks.push({ name: c.name, pass: true, message: await c.run() });
    } catch (e) {
      checks.push({ name: c.name, pass: false, message: errorText(e) });
    }
  }
  return {
    target: target.name ?? target.plugin?.name ?? '(no plugin)',
    pass: checks.every((c) => c.pass),
    checks,
  };
}

/** formatConformanceResult - one line per check ("PASS name: message"), for logs and assertions. */
export function formatConformanceResult(r: ConformanceResult): string {
  const lines = [`accelerator conformance of ${r.target}: ${r.pass ? 'PASS' : 'FAIL'}`];
  for (const c of r.checks) lines.push(`  ${c.pass ? 'PASS' : 'FAIL'} ${c.name}: ${c.message}`);
  return lines.join('\n');
}
