/**
 * comparisonTable - the terminal comparison: one column per strategy, one row per metric
 * (application rows first, then what the system paid), aggregated over the seeds.
 */
import type { ExperimentResult } from '../runner';
import { fmtNs } from './format';
import { applicableRows } from './rows';

/**
 * comparisonTable - @result as aligned plain text (no colours, so it pipes and logs cleanly).
 *
 * Return: the table, ending with a newline; failed runs are listed under it.
 */
export function comparisonTable(result: ExperimentResult): string {
  const sums = result.summary;
  const rows = applicableRows(sums.map((s) => s.metrics));
  const header = ['', ...sums.map((s) => s.strategy)];
  const body: string[][] = [];
  let group = '';
  for (const r of rows) {
    if (r.group !== group) {
      group = r.group;
      body.push([group === 'application' ? '[application]' : '[system]', ...sums.map(() => '')]);
    }
    body.push([`  ${r.label}`, ...sums.map((s) => (s.metrics ? r.format(r.value(s.metrics)) : 'failed'))]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [
    `${result.scenario.name}: ${sums.length} strateg${sums.length === 1 ? 'y' : 'ies'} x ${result.seeds.length} seed${result.seeds.length === 1 ? '' : 's'}, ${fmtNs(result.durationNs)} simulated each`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
  ];
  const failed = result.runs.filter((r) => r.error);
  if (failed.length > 0) {
    out.push('', 'failed runs:');
    for (const r of failed)
      out.push(`  ${r.strategy} seed ${r.seed}: ${r.error!.phase}: ${r.error!.message}`);
  }
  return out.join('\n') + '\n';
}
