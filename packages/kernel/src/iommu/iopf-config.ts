/**
 * Tunables of the IO page fault pipeline that are not latency figures. The latencies and the
 * queue depth come from the IOMMU profile (IommuProfile in types.ts), which cites its sources;
 * what is here only names the random stream and sets the precision of the statistics.
 */
import { tunableValues, type Tunable } from '../mm/mm-config';

/** IopfConfig - one IopfQueue's settings (IopfQueueOptions.config overrides the defaults). */
export interface IopfConfig {
  /** Name of the kernel RNG stream the service times are drawn from. */
  rngStream: string;
  /**
   * Precision of the latency histogram: each power of two of nanoseconds is split into
   * 2^latencySubBucketBits buckets, so a percentile is exact to within 2^-latencySubBucketBits.
   */
  latencySubBucketBits: number;
}

/** IOPF_CONFIG_DEFAULTS - every IopfConfig setting with its unit, description and source. */
export const IOPF_CONFIG_DEFAULTS: { [K in keyof IopfConfig]: Tunable<IopfConfig[K]> } = {
  rngStream: {
    value: 'iopf',
    unit: 'name',
    description: 'RNG stream of the IO page fault service-time draws',
    source:
      'ARCHITECTURE.md "Time and determinism": one named stream per component, so IOPF draws never perturb other streams',
  },
  latencySubBucketBits: {
    value: 5,
    unit: 'bits',
    description: 'latency histogram sub-buckets per power of two (5: percentiles within 1/32, ~3%)',
    source:
      'HdrHistogram-style log-linear buckets; 3% is well inside the 3-80x spread being measured (CALIBRATION.md 1)',
  },
};

/** iopfConfigDefaults - a fresh plain-value copy of IOPF_CONFIG_DEFAULTS. */
export function iopfConfigDefaults(): IopfConfig {
  return tunableValues(IOPF_CONFIG_DEFAULTS) as IopfConfig;
}
