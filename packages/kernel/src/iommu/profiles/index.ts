/**
 * IOMMU latency/size profiles: one data file per platform, each figure with its source
 * (IommuProfile.figureSources), plus the helpers that read the IO page fault distribution the
 * same way everywhere.
 */
import type { IRng } from '../../sim/types';
import type { IommuProfile } from '../types';
import { AMD_IOMMUV2_PROFILE } from './amd-iommuv2';
import { SMMUV3_PROFILE } from './smmuv3';
import { VTD_PROFILE } from './vtd';

export { AMD_IOMMUV2_PROFILE } from './amd-iommuv2';
export { SMMUV3_PROFILE } from './smmuv3';
export { VTD_PROFILE } from './vtd';

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** The name of the profile a kernel uses when its options name none (KernelOptions.iommu.profile). */
export const DEFAULT_IOMMU_PROFILE = 'smmuv3';

/** IOMMU_PROFILES - every shipped profile by name (frozen; copy one to change it). */
export const IOMMU_PROFILES: Readonly<Record<string, Readonly<IommuProfile>>> = deepFreeze({
  [SMMUV3_PROFILE.name]: SMMUV3_PROFILE,
  [VTD_PROFILE.name]: VTD_PROFILE,
  [AMD_IOMMUV2_PROFILE.name]: AMD_IOMMUV2_PROFILE,
});

/**
 * iommuProfile - the shipped profile called @name ('smmuv3', 'vtd', 'amd-iommuv2').
 * Returns the frozen profile; throws RangeError naming the known profiles for any other name.
 */
export function iommuProfile(name: string): Readonly<IommuProfile> {
  const p = Object.prototype.hasOwnProperty.call(IOMMU_PROFILES, name) ? IOMMU_PROFILES[name] : undefined;
  if (!p)
    throw new RangeError(
      `unknown IOMMU profile '${name}' (known: ${Object.keys(IOMMU_PROFILES).join(', ')})`,
    );
  return p;
}

/** Standard normal CDF (Abramowitz & Stegun 7.1.26 erf, |error| < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/**
 * iopfServiceCdf - P(service time <= @ns) for one IO page fault with nothing else in flight: the
 * body log-normal mixed with the tail mode (iopfTailProb), both clamped to [iopfMinNs, iopfMaxNs].
 */
export function iopfServiceCdf(p: Readonly<IommuProfile>, ns: number): number {
  if (ns < p.iopfMinNs) return 0;
  if (ns >= p.iopfMaxNs) return 1;
  const logNormal = (median: number, sigma: number) =>
    sigma > 0 ? normalCdf(Math.log(ns / median) / sigma) : ns >= median ? 1 : 0;
  const body = logNormal(p.iopfMedianNs, p.iopfSigma);
  if (!(p.iopfTailProb > 0)) return body;
  return (1 - p.iopfTailProb) * body + p.iopfTailProb * logNormal(p.iopfTailMedianNs, p.iopfTailSigma);
}

/**
 * iopfServiceQuantileNs - the @q quantile (0 < q < 1) of the service-time distribution of
 * iopfServiceCdf, found by bisection (to 1 ns).
 */
export function iopfServiceQuantileNs(p: Readonly<IommuProfile>, q: number): number {
  let lo = p.iopfMinNs;
  let hi = p.iopfMaxNs;
  if (iopfServiceCdf(p, lo) >= q) return lo;
  while (hi - lo > 1) {
    const mid = (lo + hi) / 2;
    if (iopfServiceCdf(p, mid) >= q) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * iopfMedianPathNs - the median time of a whole IO page fault with nothing else in flight:
 * the median service time plus the fixed parts of the path (interrupt delivery and its coalescing
 * window, workqueue dispatch, page response, the device's retry). This is what the profile claims
 * against cpuFaultNs (3-80x).
 */
export function iopfMedianPathNs(p: Readonly<IommuProfile>): number {
  return (
    iopfServiceQuantileNs(p, 0.5) +
    p.irqLatencyNs +
    p.irqCoalesceNs +
    p.wqDispatchNs +
    p.responseNs +
    p.retryNs
  );
}

/**
 * sampleIopfServiceNs - draw the service time of one IO page fault from @rng (three draws each
 * call, whatever the outcome, so streams stay aligned): the mixture of iopfServiceCdf plus
 * @inflight * iopfPerInflightNs for the faults already being handled. Returns integer ns.
 */
export function sampleIopfServiceNs(p: Readonly<IommuProfile>, rng: IRng, inflight = 0): number {
  const u1 = 1 - rng.float(); // (0, 1]: log() stays finite
  const u2 = rng.float();
  const pick = rng.float();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  const tail = p.iopfTailProb > 0 && pick < p.iopfTailProb;
  const median = tail ? p.iopfTailMedianNs : p.iopfMedianNs;
  const sigma = tail ? p.iopfTailSigma : p.iopfSigma;
  const service = Math.min(p.iopfMaxNs, Math.max(p.iopfMinNs, median * Math.exp(sigma * z)));
  return Math.round(service + Math.max(0, inflight) * p.iopfPerInflightNs);
}
