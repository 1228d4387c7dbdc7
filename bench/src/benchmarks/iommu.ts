import {
  createKernel,
  Device,
  iommuSvaBindDevice,
  iommuSvaUnbindDevice,
  iommuTranslate,
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_SUCCESS,
  MADV_NOHUGEPAGE,
  PAGE_SIZE,
  type Kernel,
  type PageRequest,
} from '@svasim/kernel';
import type { Benchmark } from '../benchmark';

/** The shipped IOMMU profiles, each measured on its own kernel. */
const PROFILES = ['smmuv3', 'vtd', 'amd-iommuv2'] as const;
const RUNS = 5;
/** Pages the translation loop cycles over: no more than the smallest ATC (64 entries), so every access hits. */
const ATC_PAGES = 64;
/** Translations per timed run. */
const TRANSLATIONS = 2_000_000;
/** Page requests per batch of the throughput run (all in flight at once, under every prqDepth). */
const IOPF_BATCH = 1024;
/** Batches per timed run. */
const IOPF_BATCHES = 16;
/** Page requests per profile for the latency distribution, one at a time (nothing else in flight). */
const LATENCY_SAMPLES = 4001;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The value at quantile @q of @xs (nearest rank). */
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

function wall(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

/** A kernel with one SVA-capable device (ATS on) bound to a fresh process and added to kernel.iopf. */
function rig(profile: string, size = '1GiB') {
  const k = createKernel({
    memory: { nodes: [{ size }] },
    sysctl: { transparent_hugepage: 'never' },
    iommu: { profile },
    seed: 1,
  });
  const dev = k.iommu.iommuProbeDevice(new Device({ name: 'acc0' }), { ats: true });
  const p = k.spawn();
  const handle = iommuSvaBindDevice(dev, p.mm);
  if (k.iopf.iopfQueueAddDevice(dev) !== 0) throw new Error('iommu benchmark: iopfQueueAddDevice failed');
  return { k, dev, p, handle, pasid: handle.pasid };
}

function teardown(r: ReturnType<typeof rig>): void {
  r.k.iopf.iopfQueueRemoveDevice(r.dev);
  iommuSvaUnbindDevice(r.handle);
  const bad = r.k.checkInvariants();
  if (bad.length) throw new Error(`iommu benchmark left the kernel inconsistent: ${bad[0]}`);
}

/** Run the scheduler until @done() or nothing is left to run. */
function runUntil(k: Kernel, done: () => boolean): void {
  while (!done() && k.scheduler.pending() > 0) k.scheduler.step();
  if (!done()) throw new Error('iommu benchmark: the scheduler ran dry before every fault completed');
}

/** iommuTranslate on the ATC-hit path, translations per wall second. */
function translations(): { perSec: number; atcHitRate: number } {
  const r = rig('smmuv3', '256MiB');
  const { dev, p, pasid } = r;
  const len = ATC_PAGES * PAGE_SIZE;
  const a = p.mmap(len);
  p.madvise(a, len, MADV_NOHUGEPAGE);
  p.touch(a, len, { write: true });
  // Warm: one walk per page fills the IOTLB and the ATC.
  for (let i = 0; i < ATC_PAGES; i++)
    if (iommuTranslate(dev, pasid, a + i * PAGE_SIZE, true) < 0)
      throw new Error('iommu benchmark: warm-up fault');
  const before = { ...dev.stats };
  const runs: number[] = [];
  let sink = 0;
  for (let run = 0; run < RUNS; run++) {
    runs.push(
      wall(() => {
        for (let i = 0; i < TRANSLATIONS; i++)
          sink += iommuTranslate(dev, pasid, a + (i % ATC_PAGES) * PAGE_SIZE, (i & 1) === 1);
      }),
    );
  }
  if (sink < 0) throw new Error('iommu benchmark: a translation failed');
  const n = dev.stats.translations - before.translations;
  const hits = dev.stats.atcHits - before.atcHits;
  teardown(r);
  return { perSec: TRANSLATIONS / (median(runs) / 1e9), atcHitRate: hits / n };
}

/** IO page faults on fresh pages through kernel.iopf, batches in flight together, faults per wall second. */
function iopfThroughput(): { perSec: number; faults: number } {
  const pages = IOPF_BATCH * IOPF_BATCHES;
  const r = rig('smmuv3', '2GiB');
  const { k, dev, p, pasid } = r;
  const req: PageRequest = {
    flags: IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
    pasid,
    grpid: 0,
    perm: IOMMU_FAULT_PERM_READ | IOMMU_FAULT_PERM_WRITE,
    addr: 0,
  };
  let answered = 0;
  let failed = 0;
  const done = (code: number): void => {
    answered++;
    if (code !== IOMMU_PAGE_RESP_SUCCESS) failed++;
  };
  const runs: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const len = pages * PAGE_SIZE;
    const a = p.mmap(len);
    p.madvise(a, len, MADV_NOHUGEPAGE);
    answered = 0;
    runs.push(
      wall(() => {
        for (let b = 0; b < IOPF_BATCHES; b++) {
          const target = answered + IOPF_BATCH;
          for (let i = 0; i < IOPF_BATCH; i++) {
            req.grpid = i & 0x1ff;
            req.addr = a + (b * IOPF_BATCH + i) * PAGE_SIZE;
            if (!k.iopf.reportPageRequest(dev, req, done)) throw new Error('iommu benchmark: PRQ overflow');
          }
          runUntil(k, () => answered >= target);
        }
      }),
    );
    p.munmap(a, len);
  }
  if (failed) throw new Error(`iommu benchmark: ${failed} page requests answered INVALID`);
  const faults = k.iopf.stats().faults;
  teardown(r);
  return { perSec: pages / (median(runs) / 1e9), faults };
}

/**
 * Simulated latency of IO page faults taken one at a time on fresh pages: from the page request
 * reaching the IOMMU to the device retrying the access (the response plus the profile's retryNs),
 * the path iopfMedianPathNs describes.
 */
function iopfLatency(profile: string) {
  const r = rig(profile, '256MiB');
  const { k, dev, p, pasid } = r;
  const len = LATENCY_SAMPLES * PAGE_SIZE;
  const a = p.mmap(len);
  p.madvise(a, len, MADV_NOHUGEPAGE);
  const prof = k.iommu.profile;
  const req: PageRequest = {
    flags: IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
    pasid,
    grpid: 1,
    perm: IOMMU_FAULT_PERM_READ | IOMMU_FAULT_PERM_WRITE,
    addr: 0,
  };
  const xs: number[] = [];
  let at = -1;
  let code = -1;
  const done = (c: number): void => {
    at = k.now();
    code = c;
  };
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    req.addr = a + i * PAGE_SIZE;
    at = -1;
    const t0 = k.now();
    if (!k.iopf.reportPageRequest(dev, req, done)) throw new Error('iommu benchmark: PRQ overflow');
    runUntil(k, () => at >= 0);
    if (code !== IOMMU_PAGE_RESP_SUCCESS) throw new Error(`iommu benchmark: response ${code}`);
    // The page is now mapped: the retried translation must succeed.
    if (iommuTranslate(dev, pasid, req.addr, true) < 0) throw new Error('iommu benchmark: retry faulted');
    xs.push(at - t0 + prof.retryNs);
  }
  const st = k.iopf.stats();
  teardown(r);
  const med = median(xs);
  return {
    medianNs: med,
    p99Ns: quantile(xs, 0.99),
    ratio: med / prof.cpuFaultNs,
    cpuFaultNs: prof.cpuFaultNs,
    queueP50Ns: st.latency.p50Ns,
  };
}

/** iommu: ATC-hit translation and IO page fault throughput (wall), IOPF latency per profile (simulated). */
export const iommuBenchmark: Benchmark = {
  name: 'iommu',
  async run() {
    const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
    process.stderr.write('iommu: ATC-hit translations...\n');
    const t = translations();
    process.stderr.write('iommu: IO page faults through kernel.iopf...\n');
    const f = iopfThroughput();
    const out: Record<string, unknown> = {
      translations_per_sec: Math.round(t.perSec),
      translations_atc_hit_rate: t.atcHitRate,
      iopf_per_sec: Math.round(f.perSec),
    };
    for (const name of PROFILES) {
      process.stderr.write(`iommu: IOPF latency, profile ${name}...\n`);
      const l = iopfLatency(name);
      const key = name.replace(/-/g, '_');
      out[`iopf_to_cpu_fault_ratio_${name}`] = round(l.ratio, 2);
      out[`iopf_median_ns_${key}`] = l.medianNs;
      out[`iopf_p99_ns_${key}`] = l.p99Ns;
      out[`cpu_fault_ns_${key}`] = l.cpuFaultNs;
    }
    return out;
  },
};
