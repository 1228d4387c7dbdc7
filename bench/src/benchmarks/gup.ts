import {
  createKernel,
  FOLL_LONGTERM,
  FOLL_WRITE,
  gupAttach,
  gupState,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  PAGE_SIZE,
  pinUserPages,
  pinUserPagesFast,
  unpinUserPages,
  type Kernel,
} from '@svasim/kernel';
import type { Benchmark } from '../benchmark';

const GiB = 2 ** 30;
const PAGES = GiB / PAGE_SIZE;
/** Pages per call, as `gup_test -n 512` (the CALIBRATION.md 5 runs). */
const PER_CALL = 512;
const RUNS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Wall ns of `fn`. */
function wall(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

/** Simulated ns GUP charged while `fn` ran. */
function simulated(k: Kernel, fn: () => void): number {
  const prev = k.mmCore.chargeHook;
  let ns = 0;
  k.mmCore.chargeHook = (n) => {
    ns += n;
  };
  try {
    fn();
  } finally {
    k.mmCore.chargeHook = prev;
  }
  return ns;
}

/** Pin pages.length pages from `a` in calls of PER_CALL; throws if a call falls short. */
function pinAll(
  mm: ReturnType<Kernel['spawn']>['mm'],
  a: number,
  pages: Int32Array,
  flags: number,
  fast: boolean,
) {
  for (let i = 0; i < pages.length; i += PER_CALL) {
    const n = Math.min(PER_CALL, pages.length - i);
    const sub = pages.subarray(i, i + n);
    const r = fast
      ? pinUserPagesFast(mm, a + i * PAGE_SIZE, n, flags, sub)
      : pinUserPages(mm, a + i * PAGE_SIZE, n, flags, sub);
    if (r !== n) throw new Error(`gup benchmark: pinned ${r} of ${n}`);
  }
}

/** Unpin what pinAll pinned, in calls of PER_CALL. */
function unpinAll(k: Kernel, pages: Int32Array) {
  for (let i = 0; i < pages.length; i += PER_CALL)
    unpinUserPages(k.mmCore, pages.subarray(i, i + PER_CALL), PER_CALL);
}

/** GUP on 1 GiB of present 4 KiB pages (gup_test -a / -L with THP off), wall and simulated. */
function pin4k() {
  const k = createKernel({ memory: { nodes: [{ size: '2GiB' }] } });
  gupAttach(k.mmCore, k);
  const p = k.spawn();
  const a = p.mmap(GiB);
  p.madvise(a, GiB, MADV_NOHUGEPAGE);
  p.touch(a, GiB, { write: true });
  const pages = new Int32Array(PAGES);
  const pinFast: number[] = [];
  const unpin: number[] = [];
  const pinLong: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    pinFast.push(wall(() => pinAll(p.mm, a, pages, FOLL_WRITE, true)));
    unpin.push(wall(() => unpinAll(k, pages)));
    pinLong.push(wall(() => pinAll(p.mm, a, pages, FOLL_WRITE | FOLL_LONGTERM, false)));
    unpinAll(k, pages);
  }
  const simFast = simulated(k, () => pinAll(p.mm, a, pages, FOLL_WRITE, true));
  const simUnpin = simulated(k, () => unpinAll(k, pages));
  const simLong = simulated(k, () => pinAll(p.mm, a, pages, FOLL_WRITE | FOLL_LONGTERM, false));
  unpinAll(k, pages);
  const bad = k.checkInvariants();
  if (bad.length) throw new Error(`gup benchmark left the kernel inconsistent: ${bad[0]}`);
  return {
    pinFast: median(pinFast) / PAGES,
    unpin: median(unpin) / PAGES,
    pinLong: median(pinLong) / PAGES,
    simFast: simFast / PAGES,
    simUnpin: simUnpin / PAGES,
    simLong: simLong / PAGES,
    fastPages: gupState(k.mmCore).stats.fastPages,
  };
}

/** Long-term pin of 64 hugetlb 2 MiB pages (gup_test -HL), simulated us per 2 MiB page. */
function pinHugetlb() {
  const n = 64;
  const k = createKernel({ memory: { nodes: [{ size: '1GiB' }], hugepages: { '2MiB': n } } });
  gupAttach(k.mmCore, k);
  const p = k.spawn();
  const len = n * 2 ** 21;
  const a = p.mmap(len, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
  p.touch(a, len, { write: true });
  const pages = new Int32Array(len / PAGE_SIZE);
  const pin = simulated(k, () => pinAll(p.mm, a, pages, FOLL_WRITE | FOLL_LONGTERM, false));
  const put = simulated(k, () => unpinAll(k, pages));
  return { pinUs: pin / n / 1000, putUs: put / n / 1000 };
}

/** gup: pin_user_pages_fast / unpin_user_pages throughput on 1 GiB of 4 KiB pages. */
export const gupBenchmark: Benchmark = {
  name: 'gup',
  async run() {
    process.stderr.write('gup: 1 GiB of 4 KiB pages...\n');
    const small = pin4k();
    process.stderr.write('gup: hugetlb...\n');
    const huge = pinHugetlb();
    const round = (x: number) => Math.round(x * 10) / 10;
    return {
      pin_fast_ns_per_page: round(small.pinFast),
      unpin_ns_per_page: round(small.unpin),
      pin_longterm_ns_per_page: round(small.pinLong),
      pin_fast_target_ns_per_page: 62,
      unpin_target_ns_per_page: 15,
      sim_pin_fast_ns_per_page: round(small.simFast),
      sim_unpin_ns_per_page: round(small.simUnpin),
      sim_pin_longterm_ns_per_page: round(small.simLong),
      sim_hugetlb_pin_longterm_us_per_2m: round(huge.pinUs),
      sim_hugetlb_unpin_us_per_2m: round(huge.putUs),
    };
  },
};
