/**
 * LatencyRecorder - an HDR histogram of integer ns (hdr-histogram-js, 3 significant digits,
 * auto-resizing) with what reports need: the API.md summary, a CDF for charts, and a compact
 * encoding so histograms of runs in worker threads can be merged over seeds.
 */
import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type Histogram,
} from 'hdr-histogram-js';
import type { LatencySummary } from './types';

/** Percentiles (0-100) at which a CDF is sampled: fine in the tail, where strategies differ. */
const CDF_PERCENTILES: readonly number[] = (() => {
  const out: number[] = [];
  for (let p = 0; p < 90; p += 2) out.push(p);
  for (let p = 90; p < 99; p += 0.5) out.push(p);
  for (let p = 99; p < 99.9; p += 0.1) out.push(Number(p.toFixed(1)));
  out.push(99.9, 99.95, 99.99, 100);
  return out;
})();

function newHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 2,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
    useWebAssembly: false,
  });
}

/**
 * LatencyRecorder - record latencies, summarise, encode. Made empty or from an encoding; nothing
 * to release (plain JS arrays).
 */
export class LatencyRecorder {
  private readonly h: Histogram;
  /** Exact sum of the values recorded here (the histogram's mean is bucket-rounded); null once decoded or merged. */
  private sum: number | null = 0;

  constructor(encoded?: string) {
    this.h = encoded ? decodeFromCompressedBase64(encoded, 32, false) : newHistogram();
    if (encoded) this.sum = null;
    this.h.autoResize = true;
  }

  /** Values recorded. */
  get count(): number {
    return this.h.totalCount;
  }

  /** record - add one latency; fractions are rounded and values below 1 ns count as 1 ns. */
  record(ns: number): void {
    if (!Number.isFinite(ns)) return;
    const v = Math.max(1, Math.round(ns));
    this.h.recordValue(v);
    if (this.sum !== null) this.sum += v;
  }

  /** add - merge another recorder's values into this one. */
  add(other: LatencyRecorder): void {
    this.h.add(other.h);
    this.sum = this.sum !== null && other.sum !== null ? this.sum + other.sum : null;
  }

  /**
   * summary - p50, p99, p99.9, max, count and mean in integer ns (the mean is exact for values
   * recorded here, bucket-rounded after decoding).
   *
   * Return: null when nothing was recorded.
   */
  summary(): LatencySummary | null {
    const h = this.h;
    if (h.totalCount === 0) return null;
    return {
      p50: h.getValueAtPercentile(50),
      p99: h.getValueAtPercentile(99),
      p999: h.getValueAtPercentile(99.9),
      max: h.maxValue,
      count: h.totalCount,
      mean: Math.round(this.sum !== null ? this.sum / h.totalCount : h.mean),
    };
  }

  /**
   * cdf - points [ns, fraction] of the cumulative distribution, ascending, for a chart.
   *
   * Return: an empty array when nothing was recorded.
   */
  cdf(): Array<[number, number]> {
    if (this.h.totalCount === 0) return [];
    const out: Array<[number, number]> = [];
    const max = this.h.maxValue;
    for (const p of CDF_PERCENTILES) {
      // A percentile answers its bucket's highest equivalent value, which may pass the maximum.
      const v = p === 100 ? max : Math.min(max, this.h.getValueAtPercentile(p));
      const last = out[out.length - 1];
      if (last && last[0] === v) last[1] = p / 100;
      else out.push([v, p / 100]);
    }
    return out;
  }

  /** encode - the histogram as compressed base64 (the HdrHistogram V2 encoding). */
  encode(): string {
    return encodeIntoCompressedBase64(this.h);
  }
}
