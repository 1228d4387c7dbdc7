/**
 * Simulated CPU-time costs of GUP, as data with their sources (CALIBRATION.md section 5). GUP
 * charges them to the caller through MmCore.charge; faults and migrations it triggers charge
 * their own costs (mm-config.ts, migrate.ts).
 */
import { tunableValues, type Tunable } from '../mm/mm-config';

/** GupCosts - the figures one kernel uses (gupState(core).costs; change them per experiment). */
export interface GupCosts {
  /** Slow path (pin_user_pages, get_user_pages), per 4 KiB page taken. */
  slowPerPage: number;
  /** GUP-fast (pin_user_pages_fast, get_user_pages_fast), per 4 KiB page taken locklessly. */
  fastPerPage: number;
  /** unpin_user_page(s), per 4 KiB page released. */
  unpinPerPage: number;
  /** put_page of a FOLL_GET reference, per page. */
  putPerPage: number;
  /** Pinning one 2 MiB hugetlb page (its 512 subpage entries), slow or fast path. */
  hugetlbPinPer2M: number;
  /** Unpinning one 2 MiB hugetlb page (its 512 subpage entries). */
  hugetlbUnpinPer2M: number;
}

/** GUP_COST_DEFAULTS - every GUP cost with its unit, description and source. */
export const GUP_COST_DEFAULTS: { [K in keyof GupCosts]: Tunable<number> } = {
  slowPerPage: {
    value: 62,
    unit: 'ns/page',
    description: 'pin_user_pages(FOLL_LONGTERM) of an already-faulted 4 KiB page, VMA walk included',
    source:
      'CALIBRATION.md 5: gup_test -LT -m 8192 -n 512, get 130,538 us / 2,097,152 pages (commit a03db236, v6.15)',
  },
  fastPerPage: {
    value: 62,
    unit: 'ns/page',
    description: 'pin_user_pages_fast of a present 4 KiB page (lockless walk, atomic refcount add)',
    source:
      'no single-thread gup_test -a figure is published (CALIBRATION.md 5 gaps); taken equal to the ' +
      'measured slow-path figure, an upper bound (the only published -a figure, 40 threads contending, ' +
      'is ~680 ns/page: commit "mm/gup: use MMF_HAS_PINNED", gup_test -a -m 512 -j 40)',
  },
  unpinPerPage: {
    value: 15,
    unit: 'ns/page',
    description: 'unpin_user_pages per 4 KiB page',
    source: 'CALIBRATION.md 5: gup_test -LT put 31,676 us / 2,097,152 pages (commit a03db236)',
  },
  putPerPage: {
    value: 15,
    unit: 'ns/page',
    description: 'put_page of a get_user_pages reference',
    source: 'same atomic decrement as unpin_user_page: taken equal to unpinPerPage',
  },
  hugetlbPinPer2M: {
    value: 1200,
    unit: 'ns/2MiB page',
    description: 'pinning one 2 MiB hugetlb page (one folio, 512 subpage entries)',
    source:
      'CALIBRATION.md 5: gup_test -HL -m 8192 -n 512, get 4,867 us / 4,096 pages with commit a03db236 ' +
      '(14,391 us, ~3.5 us, before it)',
  },
  hugetlbUnpinPer2M: {
    value: 2600,
    unit: 'ns/2MiB page',
    description: 'unpinning one 2 MiB hugetlb page (512 subpage entries)',
    source: 'CALIBRATION.md 5: gup_test -HL put ~10.5-10.9 ms / 4,096 pages (commit a03db236)',
  },
};

/** gupCostDefaults - a fresh plain-number copy of GUP_COST_DEFAULTS. */
export function gupCostDefaults(): GupCosts {
  return tunableValues(GUP_COST_DEFAULTS) as GupCosts;
}

/** Subpages of a 2 MiB huge page: the unit of the hugetlb figures. */
export const HUGETLB_2M_SUBPAGES = 512;
