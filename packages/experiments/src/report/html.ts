/**
 * htmlReport - one self-contained HTML file (inline CSS and SVG, no scripts, nothing fetched)
 * presenting an experiment: the DMA latency CDF per strategy, time series of IO page faults and
 * pinned bytes, the system costs as bars (CMA allocation failures, huge pages not assembled,
 * migration failures), and the table of every figure, with each run's seed and any failure.
 */
import type { ExperimentResult, StrategySummary } from '../runner';
import { formatDuration } from '../scenario';
import { fmtBytes, fmtCount, fmtNs, fmtPct } from './format';
import { applicableRows } from './rows';
import { PALETTE, barPanels, escapeXml, lineChart, type LineSeries } from './svg';

const MiB = 2 ** 20;

/** The chart ids a report contains (stable, for tests and links). */
export const REPORT_CHARTS = [
  'chart-latency-cdf',
  'chart-iopf',
  'chart-pinned',
  'chart-system-cost',
] as const;

function colorOf(i: number): string {
  return PALETTE[i % PALETTE.length];
}

function seriesOf(
  sums: readonly StrategySummary[],
  pick: (s: StrategySummary) => Array<[number, number]>,
): LineSeries[] {
  return sums.map((s, i) => ({ name: s.strategy, color: colorOf(i), points: pick(s) }));
}

function timeSeries(
  s: StrategySummary,
  values: (t: NonNullable<StrategySummary['series']>) => number[],
  scale = 1,
) {
  const ts = s.series;
  if (!ts) return [];
  const v = values(ts);
  return ts.t.map((t, i) => [t / 1e6, v[i] / scale] as [number, number]);
}

function shortNum(v: number): string {
  return String(Number(v.toPrecision(3)));
}

/**
 * htmlReport - the report of @result.
 * @opts.title: the page title (default: the scenario name).
 *
 * Return: the whole HTML document as text.
 */
export function htmlReport(result: ExperimentResult, opts: { title?: string } = {}): string {
  const sums = result.summary;
  const title = opts.title ?? `svasim: ${result.scenario.name}`;
  const cdf = lineChart(
    seriesOf(sums, (s) => s.dmaLatencyCdf.map(([ns, f]) => [ns, f * 100] as [number, number])).map((x) => ({
      ...x,
      step: true,
    })),
    {
      id: REPORT_CHARTS[0],
      title: 'DMA latency CDF (doorbell to completion)',
      xLabel: 'latency (log scale)',
      yLabel: 'requests at or below (%)',
      xScale: 'log',
      yMax: 100,
      xFormat: (v) => formatDuration(v).replace(' ', '\u00a0'),
      yFormat: (v) => `${v}`,
    },
  );
  const iopf = lineChart(
    seriesOf(sums, (s) => timeSeries(s, (t) => t.iopf_count)),
    {
      id: REPORT_CHARTS[1],
      title: 'IO page faults over time (cumulative)',
      xLabel: 'simulated time (ms)',
      yLabel: 'IO page faults',
      xFormat: shortNum,
      yFormat: (v) => fmtCount(v),
    },
  );
  const pinned = lineChart(
    seriesOf(sums, (s) => timeSeries(s, (t) => t.pinned_bytes, MiB)),
    {
      id: REPORT_CHARTS[2],
      title: 'Pinned memory over time',
      xLabel: 'simulated time (ms)',
      yLabel: 'pinned (MiB)',
      xFormat: shortNum,
      yFormat: shortNum,
    },
  );
  const cost = barPanels(
    [
      {
        title: 'CMA allocation failures',
        values: sums.map((s) =>
          s.metrics?.cma_alloc_success_rate === null || !s.metrics
            ? null
            : 1 - s.metrics.cma_alloc_success_rate,
        ),
        format: (v) => fmtPct(v),
      },
      {
        title: 'huge pages not assembled',
        values: sums.map((s) => s.metrics?.hugepage_failed ?? null),
        format: (v) => fmtCount(v),
      },
      {
        title: 'page migrations failed',
        values: sums.map((s) => s.metrics?.migrate_fail ?? null),
        format: (v) => fmtCount(v),
      },
    ],
    {
      id: REPORT_CHARTS[3],
      title: 'What the rest of the system paid',
      series: sums.map((s, i) => ({ name: s.strategy, color: colorOf(i) })),
    },
  );
  const rows = applicableRows(sums.map((s) => s.metrics));
  const figures =
    `<table class="figures"><thead><tr><th>metric</th>${sums.map((s) => `<th>${escapeXml(s.strategy)}</th>`).join('')}</tr></thead><tbody>` +
    rows
      .map(
        (r) =>
          `<tr class="${r.group}"><td>${escapeXml(r.label)}</td>${sums
            .map((s) => `<td>${escapeXml(s.metrics ? r.format(r.value(s.metrics)) : 'failed')}</td>`)
            .join('')}</tr>`,
      )
      .join('') +
    '</tbody></table>';
  const runs =
    '<table class="runs"><thead><tr><th>strategy</th><th>seed</th><th>requests</th><th>DMA p99</th><th>IO page faults</th><th>pinned peak</th><th>simulated</th><th>host</th><th>outcome</th></tr></thead><tbody>' +
    result.runs
      .map((r) => {
        const m = r.metrics;
        const outcome = r.error ? `failed (${r.error.phase}): ${r.error.message}` : 'ok';
        return (
          `<tr${r.error ? ' class="failed"' : ''}><td>${escapeXml(r.strategy)}</td><td>${r.seed}</td>` +
          `<td>${fmtCount(m?.dma_requests)}</td><td>${fmtNs(m?.dma_latency_ns?.p99)}</td><td>${fmtCount(m?.iopf_count)}</td>` +
          `<td>${fmtBytes(m?.pinned_bytes.peak)}</td><td>${fmtNs(r.simNs)}</td><td>${Math.round(r.wallMs)} ms</td>` +
          `<td>${escapeXml(outcome)}</td></tr>`
        );
      })
      .join('') +
    '</tbody></table>';
  // One note per metric and reason, naming the strategies it applies to unless it is all of them.
  const reasons = new Map<string, string[]>();
  for (const s of sums)
    for (const [k, why] of Object.entries(s.unavailable)) {
      const key = `${k}\u0000${String(why)}`;
      reasons.set(key, [...(reasons.get(key) ?? []), s.strategy]);
    }
  const notes = [...reasons]
    .map(([key, who]) => {
      const [k, why] = key.split('\u0000');
      const whom = who.length === sums.length ? '' : ` (${escapeXml(who.join(', '))})`;
      return `<li><code>${escapeXml(k)}</code>${whom}: ${escapeXml(why)}</li>`;
    })
    .join('');
  const sc = result.scenario;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.meta { color: #555; }
svg.chart { display: block; margin: 1rem 0; max-width: 100%; height: auto; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 1rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.system td:first-child { color: #7a4b00; }
tr.failed td { color: #b00020; }
code { font-size: 0.85em; }
</style>
</head>
<body>
<h1>${escapeXml(title)}</h1>
<p class="meta">${escapeXml(sc.description)}</p>
<p class="meta">${sums.length} strateg${sums.length === 1 ? 'y' : 'ies'} &times; ${result.seeds.length} seed${result.seeds.length === 1 ? '' : 's'} (${escapeXml(result.seeds.join(', '))}),
${escapeXml(formatDuration(result.durationNs))} of simulated time per run; IOMMU profile ${escapeXml(sc.iommu)}; ${sc.machine.cpus} CPUs.</p>
<h2>Latency the application sees</h2>
${cdf}
<h2>IO page faults</h2>
${iopf}
<h2>Pinned memory</h2>
${pinned}
<h2>System costs</h2>
${cost}
<h2>Figures</h2>
<p class="meta">Means over the successful seeds; latency percentiles from the merged histograms.</p>
${figures}
<h2>Runs</h2>
${runs}
${notes ? `<h2>Metrics that do not apply</h2><ul>${notes}</ul>` : ''}
</body>
</html>
`;
}
