import { describe, expect, it } from '@jest/globals';
import { RngStreams } from '../../sim/rng';
import type { IommuProfile, IommuProfileFigure } from '../types';
import {
  DEFAULT_IOMMU_PROFILE,
  IOMMU_PROFILES,
  iommuProfile,
  iopfMedianPathNs,
  iopfServiceCdf,
  iopfServiceQuantileNs,
  sampleIopfServiceNs,
} from './index';

const names = Object.keys(IOMMU_PROFILES);

describe('IOMMU profiles', () => {
  it('ships smmuv3 (the default), vtd and amd-iommuv2, and rejects unknown names', () => {
    expect(names).toEqual(['smmuv3', 'vtd', 'amd-iommuv2']);
    expect(DEFAULT_IOMMU_PROFILE).toBe('smmuv3');
    for (const n of names) expect(iommuProfile(n).name).toBe(n);
    expect(() => iommuProfile('nope')).toThrow(RangeError);
    expect(() => iommuProfile('toString')).toThrow(RangeError);
    expect(() => iommuProfile('nope')).toThrow(/smmuv3, vtd, amd-iommuv2/);
  });

  it('are frozen', () => {
    const p = iommuProfile('smmuv3') as IommuProfile;
    expect(() => {
      p.cpuFaultNs = 1;
    }).toThrow(TypeError);
    expect(Object.isFrozen(p.sources)).toBe(true);
  });

  it.each(names)('%s: every figure is a sane number with a source', (name) => {
    const p = iommuProfile(name);
    const figures = Object.keys(p.figureSources) as IommuProfileFigure[];
    const expected = Object.keys(p).filter(
      (k) => !['name', 'description', 'sources', 'figureSources'].includes(k),
    );
    expect(figures.sort()).toEqual(expected.sort());
    for (const f of figures) {
      expect(p.figureSources[f].length).toBeGreaterThan(10);
      const v = p[f];
      if (typeof v === 'number') {
        expect(Number.isFinite(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
      } else expect(typeof v).toBe('boolean');
    }
    expect(p.sources.length).toBeGreaterThan(0);
    expect(p.iotlbEntries % p.iotlbWays).toBe(0);
    expect(p.atcEntries % p.atcWays).toBe(0);
    expect(p.iopfMinNs).toBeLessThanOrEqual(p.iopfMedianNs);
    expect(p.iopfMedianNs).toBeLessThanOrEqual(p.iopfMaxNs);
    expect(p.iopfTailProb).toBeLessThan(0.5);
  });

  // Vesely et al. (CALIBRATION.md 1): an IO page fault costs 3-80x a CPU fault.
  it.each(names)('%s: the median IO page fault path costs 3-80x the CPU fault', (name) => {
    const p = iommuProfile(name);
    const path = iopfMedianPathNs(p);
    const expected =
      iopfServiceQuantileNs(p, 0.5) +
      p.irqLatencyNs +
      p.irqCoalesceNs +
      p.wqDispatchNs +
      p.responseNs +
      p.retryNs;
    expect(path).toBe(expected);
    const ratio = path / p.cpuFaultNs;
    expect(ratio).toBeGreaterThanOrEqual(3);
    expect(ratio).toBeLessThanOrEqual(80);
  });

  it('smmuv3: the median IO page fault is about 20 us, under the 38 us SMMU RDMA fault', () => {
    const path = iopfMedianPathNs(iommuProfile('smmuv3'));
    expect(path).toBeGreaterThanOrEqual(18000);
    expect(path).toBeLessThan(38000);
  });

  it('vtd: the service-time distribution reproduces the published PRQ histogram', () => {
    const p = iommuProfile('vtd');
    // The measured prq interval includes the dispatch to the iopf workqueue.
    const measuredCdf = (ns: number) => iopfServiceCdf(p, ns - p.wqDispatchNs);
    expect(measuredCdf(10000)).toBeGreaterThan(0.96); // 25,206 of 25,965 in 1-10 us (97.1%)
    expect(measuredCdf(10000)).toBeLessThan(0.985);
    expect(1 - measuredCdf(100000)).toBeGreaterThan(0.012); // 395 above 100 us (1.52%)
    expect(1 - measuredCdf(100000)).toBeLessThan(0.02);
    expect(iopfServiceCdf(p, 999)).toBe(0); // min 1 us
    expect(iopfServiceCdf(p, 556000)).toBe(1); // max 556 us
    const rng = new RngStreams(1).stream('vtd-fit');
    let sum = 0;
    const n = 50000;
    for (let i = 0; i < n; i++) sum += sampleIopfServiceNs(p, rng) + p.wqDispatchNs;
    const mean = sum / n;
    expect(mean).toBeGreaterThan(8000); // average 9 us
    expect(mean).toBeLessThan(10000);
  });

  it('amd-iommuv2: 5.5 us with one fault in flight, about 140 us with 28 (Vesely 5-140 us)', () => {
    const p = iommuProfile('amd-iommuv2');
    const one = iopfMedianPathNs(p);
    expect(one).toBeGreaterThanOrEqual(5000);
    expect(one).toBeLessThan(6000);
    const loaded = one + 28 * p.iopfPerInflightNs;
    expect(loaded).toBeGreaterThan(135000);
    expect(loaded).toBeLessThan(145000);
    expect(loaded / p.cpuFaultNs).toBeLessThanOrEqual(85);
  });

  it('samples deterministically inside the clamp, adding the in-flight contention', () => {
    for (const name of names) {
      const p = iommuProfile(name);
      const a = new RngStreams(7).stream('x');
      const b = new RngStreams(7).stream('x');
      for (let i = 0; i < 2000; i++) {
        const v = sampleIopfServiceNs(p, a, 3);
        expect(v).toBe(sampleIopfServiceNs(p, b, 3));
        expect(v).toBeGreaterThanOrEqual(p.iopfMinNs + 3 * p.iopfPerInflightNs);
        expect(v).toBeLessThanOrEqual(p.iopfMaxNs + 3 * p.iopfPerInflightNs + 1);
        expect(Number.isInteger(v)).toBe(true);
      }
    }
  });

  it('the sampled median agrees with the computed one', () => {
    for (const name of names) {
      const p = iommuProfile(name);
      const rng = new RngStreams(3).stream('median');
      const xs: number[] = [];
      for (let i = 0; i < 20001; i++) xs.push(sampleIopfServiceNs(p, rng));
      xs.sort((x, y) => x - y);
      const median = xs[10000];
      const q = iopfServiceQuantileNs(p, 0.5);
      expect(Math.abs(median - q) / q).toBeLessThan(0.03);
    }
  });
});
