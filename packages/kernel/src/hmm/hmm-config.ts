import type { Tunable } from '../mm/mm-config';

/** Simulated CPU-time costs of the HMM helpers, in ns (faults and GUP charge their own). */
export interface HmmCosts {
  /** hmm_range_fault: examining one PTE (or one page of a huge entry) and writing its hmm pfn. */
  walkPerPage: number;
  /** make_device_exclusive beyond its GUP: the notifier, the PTE swap and the locking. */
  makeExclusive: number;
}

/** HMM_COST_DEFAULTS - the figures, with their sources. */
export const HMM_COST_DEFAULTS: { [K in keyof HmmCosts]: Tunable<number> } = {
  walkPerPage: {
    value: 15,
    unit: 'ns/page',
    description: 'hmm_range_fault: read one entry of a present range and fill its hmm pfn',
    source: 'estimate: the order of a PTE read plus a store, as zapPerPage (15 ns) and pteCopy (6 ns)',
  },
  makeExclusive: {
    value: 600,
    unit: 'ns',
    description: 'make_device_exclusive after GUP: folio lock, MMU_NOTIFY_EXCLUSIVE, PTE clear and flush',
    source: 'estimate: a minor-fault-sized kernel path (minorFaultZeroPage, CALIBRATION.md 2)',
  },
};
