/**
 * Hand-written SVG charts for the HTML report (no scripts, no external resources, so the report
 * is one self-contained file): line charts on linear or log axes, and bar-chart panels sharing a
 * legend. Every chart has a title, labelled axes with ticks and one legend entry per series
 * (`<g class="legend-item" data-series="...">`).
 */

/** One line of a line chart. */
export interface LineSeries {
  name: string;
  color: string;
  points: ReadonlyArray<readonly [number, number]>;
  /** Draw as steps (a CDF) rather than straight segments. */
  step?: boolean;
}

/** Options of lineChart. */
export interface LineChartOptions {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  xScale?: 'linear' | 'log';
  /** Fixed y range (default: 0 to the data's maximum). */
  yMax?: number;
  xFormat?: (v: number) => string;
  yFormat?: (v: number) => string;
  width?: number;
  height?: number;
}

/** One panel of a bar chart: a metric, one bar per series (null: not applicable). */
export interface BarPanel {
  title: string;
  values: ReadonlyArray<number | null>;
  format?: (v: number) => string;
}

/** Options of barPanels. */
export interface BarChartOptions {
  id: string;
  title: string;
  /** Series (strategies) in bar order, with their colours. */
  series: ReadonlyArray<{ name: string; color: string }>;
  width?: number;
  height?: number;
}

/** PALETTE - series colours (colour-blind-friendly Tableau 10). */
export const PALETTE = [
  '#4e79a7',
  '#e15759',
  '#59a14f',
  '#f28e2b',
  '#b07aa1',
  '#76b7b2',
  '#edc948',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

/** escapeXml - @s safe inside SVG/HTML text and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const CHAR_W = 6.6;

/**
 * niceTicks - about @n round values (steps of 1, 2 or 5 x 10^k) from at or below @lo to at or
 * above @hi, so an axis drawn from the first to the last covers the data.
 */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const out: number[] = [];
  for (let i = first; i <= last; i++) out.push(Number((i * step).toPrecision(12)));
  return out;
}

/** logTicks - powers of ten (and 2 and 5 times them when the range is short) in [lo, hi]. */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const mults = b - a <= 2 ? [1, 2, 5] : [1];
  for (let e = a; e <= b; e++)
    for (const m of mults) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  return out.length ? out : [lo];
}

/** Legend rows under the plot: items left to right, wrapping. Returns the SVG and its height. */
function legend(
  items: ReadonlyArray<{ name: string; color: string }>,
  x0: number,
  y0: number,
  width: number,
): { svg: string; height: number } {
  let x = x0;
  let y = y0;
  const parts: string[] = [];
  for (const it of items) {
    const w = 24 + it.name.length * CHAR_W + 18;
    if (x + w > x0 + width && x > x0) {
      x = x0;
      y += 20;
    }
    parts.push(
      `<g class="legend-item" data-series="${escapeXml(it.name)}" transform="translate(${x},${y})">` +
        `<rect x="0" y="-9" width="16" height="10" fill="${it.color}"/>` +
        `<text x="22" y="0" font-size="12" ${FONT}>${escapeXml(it.name)}</text></g>`,
    );
    x += w;
  }
  return { svg: `<g class="legend">${parts.join('')}</g>`, height: y - y0 + 20 };
}

function legendHeight(items: ReadonlyArray<{ name: string }>, width: number): number {
  return legend(
    items.map((i) => ({ name: i.name, color: '#000' })),
    0,
    0,
    width,
  ).height;
}

/**
 * lineChart - an SVG line chart of @series.
 *
 * Return: the `<svg class="chart">` element as text; an empty chart says "no data".
 */
export function lineChart(series: readonly LineSeries[], o: LineChartOptions): string {
  const W = o.width ?? 760;
  const H0 = o.height ?? 360;
  const m = { l: 78, r: 24, t: 40, b: 52 };
  const plotW = W - m.l - m.r;
  const legH = legendHeight(series, plotW);
  const H = H0 + legH;
  const plotH = H0 - m.t - m.b;
  const log = o.xScale === 'log';
  const xs = series
    .flatMap((s) => s.points.map((p) => p[0]))
    .filter((v) => Number.isFinite(v) && (!log || v > 0));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => Number.isFinite(v));
  const fx = o.xFormat ?? ((v: number) => String(v));
  const fy = o.yFormat ?? ((v: number) => String(v));
  const parts: string[] = [];
  parts.push(
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600" ${FONT}>${escapeXml(o.title)}</text>`,
  );
  let xlo = xs.length ? Math.min(...xs) : 0;
  let xhi = xs.length ? Math.max(...xs) : 1;
  if (log) {
    xlo = 10 ** Math.floor(Math.log10(xlo || 1));
    xhi = 10 ** Math.ceil(Math.log10(xhi || 10));
    if (xhi <= xlo) xhi = xlo * 10;
  } else if (xhi <= xlo) xhi = xlo + 1;
  let yhi = o.yMax ?? (ys.length ? Math.max(...ys) : 1);
  if (!(yhi > 0)) yhi = 1;
  const yTicks = niceTicks(0, yhi);
  yhi = Math.max(yhi, yTicks[yTicks.length - 1]);
  const xTicks = log ? logTicks(xlo, xhi) : niceTicks(xlo, xhi, 6);
  if (!log) {
    xlo = xTicks[0];
    xhi = xTicks[xTicks.length - 1];
  }
  const X = (v: number) =>
    m.l +
    (log
      ? (Math.log10(v) - Math.log10(xlo)) / (Math.log10(xhi) - Math.log10(xlo))
      : (v - xlo) / (xhi - xlo)) *
      plotW;
  const Y = (v: number) => m.t + plotH - (v / yhi) * plotH;
  // Grid and axes.
  for (const t of yTicks) {
    const y = Y(t).toFixed(1);
    parts.push(`<line x1="${m.l}" x2="${m.l + plotW}" y1="${y}" y2="${y}" stroke="#e3e3e3"/>`);
    parts.push(
      `<text x="${m.l - 6}" y="${y}" dy="4" text-anchor="end" font-size="11" ${FONT}>${escapeXml(fy(t))}</text>`,
    );
  }
  for (const t of xTicks) {
    const x = X(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.t}" y2="${m.t + plotH}" stroke="#f0f0f0"/>`);
    parts.push(
      `<text x="${x}" y="${m.t + plotH + 16}" text-anchor="middle" font-size="11" ${FONT}>${escapeXml(fx(t))}</text>`,
    );
  }
  parts.push(
    `<rect class="plot-area" x="${m.l}" y="${m.t}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
    `<text x="${m.l + plotW / 2}" y="${m.t + plotH + 38}" text-anchor="middle" font-size="12" ${FONT}>${escapeXml(o.xLabel)}</text>`,
    `<text transform="translate(16,${m.t + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12" ${FONT}>${escapeXml(o.yLabel)}</text>`,
  );
  if (xs.length === 0)
    parts.push(
      `<text x="${m.l + plotW / 2}" y="${m.t + plotH / 2}" text-anchor="middle" font-size="13" fill="#888" ${FONT}>no data</text>`,
    );
  for (const s of series) {
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!log || p[0] > 0));
    if (pts.length === 0) continue;
    const coords: string[] = [];
    pts.forEach((p, i) => {
      if (s.step && i > 0) coords.push(`${X(p[0]).toFixed(1)},${Y(pts[i - 1][1]).toFixed(1)}`);
      coords.push(`${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`);
    });
    parts.push(
      `<polyline class="series" data-series="${escapeXml(s.name)}" fill="none" stroke="${s.color}" stroke-width="2" points="${coords.join(' ')}"/>`,
    );
    if (pts.length === 1)
      parts.push(
        `<circle cx="${X(pts[0][0]).toFixed(1)}" cy="${Y(pts[0][1]).toFixed(1)}" r="3" fill="${s.color}"/>`,
      );
  }
  parts.push(legend(series, m.l, H0 - 4, plotW).svg);
  return svg(o.id, o.title, W, H, parts);
}

/**
 * barPanels - side-by-side bar charts, one per panel (each with its own scale), one bar per
 * series, and one legend for all.
 *
 * Return: the `<svg class="chart">` element as text.
 */
export function barPanels(panels: readonly BarPanel[], o: BarChartOptions): string {
  const W = o.width ?? 760;
  const H0 = o.height ?? 300;
  const legH = legendHeight(o.series, W - 40);
  const H = H0 + legH;
  const top = 60;
  const bottom = 36;
  const gap = 36;
  const n = Math.max(1, panels.length);
  const pw = (W - 40 - gap * (n - 1)) / n;
  const ph = H0 - top - bottom;
  const parts: string[] = [
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600" ${FONT}>${escapeXml(o.title)}</text>`,
  ];
  panels.forEach((p, pi) => {
    const x0 = 20 + pi * (pw + gap);
    const vals = p.values.map((v) => (v !== null && Number.isFinite(v) ? v : null));
    const max = Math.max(0, ...vals.map((v) => v ?? 0));
    const ticks = niceTicks(0, max > 0 ? max : 1, 4);
    const hi = Math.max(ticks[ticks.length - 1], max, 1e-12);
    const fmt = p.format ?? ((v: number) => String(v));
    parts.push(
      `<text x="${x0 + pw / 2}" y="${top - 18}" text-anchor="middle" font-size="12" font-weight="600" ${FONT}>${escapeXml(p.title)}</text>`,
      `<line class="axis" x1="${x0}" x2="${x0 + pw}" y1="${top + ph}" y2="${top + ph}" stroke="#888"/>`,
      `<line class="axis" x1="${x0}" x2="${x0}" y1="${top}" y2="${top + ph}" stroke="#888"/>`,
    );
    for (const t of ticks) {
      const y = (top + ph - (t / hi) * ph).toFixed(1);
      parts.push(
        `<line x1="${x0}" x2="${x0 + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`,
        `<text x="${x0 + 3}" y="${y}" dy="-2" font-size="10" fill="#666" ${FONT}>${escapeXml(fmt(t))}</text>`,
      );
    }
    const slot = pw / Math.max(1, vals.length);
    vals.forEach((v, i) => {
      const s = o.series[i];
      const bx = x0 + i * slot + slot * 0.15;
      const bw = slot * 0.7;
      if (v === null) {
        parts.push(
          `<text x="${(bx + bw / 2).toFixed(1)}" y="${top + ph - 4}" text-anchor="middle" font-size="10" fill="#999" ${FONT}>n/a</text>`,
        );
        return;
      }
      const h = (v / hi) * ph;
      parts.push(
        `<rect class="bar" data-series="${escapeXml(s?.name ?? String(i))}" x="${bx.toFixed(1)}" y="${(top + ph - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(h, 0.5).toFixed(1)}" fill="${s?.color ?? '#888'}"><title>${escapeXml(`${s?.name}: ${fmt(v)}`)}</title></rect>`,
        `<text x="${(bx + bw / 2).toFixed(1)}" y="${(top + ph - h - 4).toFixed(1)}" text-anchor="middle" font-size="10" ${FONT}>${escapeXml(fmt(v))}</text>`,
      );
    });
  });
  parts.push(legend(o.series, 20, H0 - 6, W - 40).svg);
  return svg(o.id, o.title, W, H, parts);
}

function svg(id: string, title: string, w: number, h: number, parts: string[]): string {
  return (
    `<svg class="chart" id="${escapeXml(id)}" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${Math.ceil(h)}" ` +
    `viewBox="0 0 ${w} ${Math.ceil(h)}" role="img" aria-label="${escapeXml(title)}"><title>${escapeXml(title)}</title>` +
    `<rect width="100%" height="100%" fill="#fff"/>${parts.join('')}</svg>`
  );
}
