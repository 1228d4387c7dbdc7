import { afterEach, describe, expect, it } from '@jest/globals';
import type { MmStruct } from '../mm/mm-struct';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { CpuSet } from '../sim/cpus';
import { PAGE_SIZE, PROT_READ } from '../uapi/mman';
import { iommuSvaHandleMm, IopfQueue } from './iopf';
import { iopfMedianPathNs, SMMUV3_PROFILE } from './profiles';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuProfile,
  type PageRequest,
} from './types';

/**
 * The pipeline's own figures for the exact-timing tests, on top of the shipped SMMUv3 profile: a
 * fixed service time (sigma 0, no tail), a coalescing window and a small-enough queue, so the
 * expected latencies below are sums of these numbers whatever the calibrated profile says.
 */
const FIXED: IommuProfile = {
  ...SMMUV3_PROFILE,
  name: 'smmuv3-fixed',
  prqDepth: 1024,
  irqLatencyNs: 2000,
  irqCoalesceNs: 1000,
  wqDispatchNs: 3000,
  responseNs: 1000,
  retryNs: 1000,
  iopfMedianNs: 5000,
  iopfSigma: 0,
  iopfMinNs: 1000,
  iopfMaxNs: 556_000,
  iopfPerInflightNs: 500,
  iopfTailProb: 0,
  iopfTailMedianNs: 0,
  iopfTailSigma: 0,
  cpuFaultNs: 1000,
};
/** The default profile, as shipped. */
const SMMUV3: IommuProfile = SMMUV3_PROFILE;

const PASID = 7;
const LAST = IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE;
const PV = IOMMU_FAULT_PAGE_REQUEST_PASID_VALID;
const R = IOMMU_FAULT_PERM_READ;
const W = IOMMU_FAULT_PERM_WRITE;

interface Dev {
  name: string;
}

const kernels: Kernel[] = [];
afterEach(() => {
  for (const k of kernels.splice(0)) expect(k.checkInvariants()).toEqual([]);
});

interface Rig {
  k: Kernel;
  p: Process;
  dev: Dev;
  cpus: CpuSet;
  q: IopfQueue<Dev>;
  /** Responses seen by the device: [time, code, tag]. */
  got: Array<[number, number, string]>;
  /** A done callback that records its response under @tag. */
  done(tag: string): (code: number) => void;
  /** Run until nothing but background daemons is scheduled. */
  drain(): void;
}

function rig(profile: IommuProfile = FIXED, opts: { seed?: number; cpus?: number } = {}): Rig {
  const k = createKernel({
    memory: { nodes: [{ size: '256MiB' }] },
    sysctl: { transparent_hugepage: 'never' },
    cpus: opts.cpus ?? 4,
    seed: opts.seed ?? 1,
  });
  kernels.push(k);
  const p = k.spawn();
  const dev: Dev = { name: 'acc0' };
  const cpus = new CpuSet(k.scheduler, k.cpus);
  // A one-bond stand-in for the SVA bonds: dev + PASID -> the process's mm.
  const resolveMm = (d: Dev, pasid: number): MmStruct | null => (d === dev && pasid === PASID ? p.mm : null);
  const q = new IopfQueue<Dev>({
    name: 'smmu0',
    scheduler: k.scheduler,
    cpus,
    profile,
    rng: k.rng,
    vmstat: k.counters,
    resolveMm,
    dmesg: k.log,
    devName: (d) => d.name,
  });
  expect(q.iopfQueueAddDevice(dev)).toBe(0);
  const got: Array<[number, number, string]> = [];
  return {
    k,
    p,
    dev,
    cpus,
    q,
    got,
    done: (tag) => (code) => {
      got.push([k.now(), code, tag]);
    },
    drain: () => {
      while (k.scheduler.pending() > 0) k.scheduler.step();
    },
  };
}

function req(
  addr: number,
  perm: number,
  opts: { last?: boolean; grpid?: number; flags?: number } = {},
): PageRequest {
  return {
    flags: opts.flags ?? PV | (opts.last === false ? 0 : LAST),
    pasid: PASID,
    grpid: opts.grpid ?? 0,
    perm,
    addr,
  };
}

/** The pipeline's fixed part: interrupt, workqueue dispatch and response. */
const BASE = FIXED.irqCoalesceNs + FIXED.irqLatencyNs + FIXED.wqDispatchNs + FIXED.responseNs;

describe('IopfQueue: one fault', () => {
  it('a read fault on an untouched anonymous page maps the zero page and answers SUCCESS after irq + dispatch + service + response', () => {
    const r = rig();
    const a = r.p.mmap(4 * PAGE_SIZE);
    const t0 = r.k.now();
    const iopf0 = r.k.vmstat().iopf_count;
    expect(r.q.reportPageRequest(r.dev, req(a, R), r.done('a'))).toBe(true);
    r.drain();
    const service = r.k.costs.minorFaultZeroPage + FIXED.iopfMedianNs;
    expect(r.got).toEqual([[t0 + BASE + service, IOMMU_PAGE_RESP_SUCCESS, 'a']]);
    const pm = r.p.pagemap(a);
    expect(pm.present).toBe(true);
    expect(pm.zeroPage).toBe(true);
    expect(r.k.vmstat().iopf_count - iopf0).toBe(1);
    expect([...r.p.read(a, 4)]).toEqual([0, 0, 0, 0]);
    expect(r.q.retryNs).toBe(FIXED.retryNs);
    const st = r.q.stats();
    expect(st).toMatchObject({ faults: 1, groups: 1, interrupts: 1, success: 1, invalid: 0, inflight: 0 });
    expect(st.latency.count).toBe(1);
    expect(st.latency.p50Ns).toBe(BASE + service);
  });

  it('a write fault maps a fresh page of the process own, which the process then sees', () => {
    const r = rig();
    const a = r.p.mmap(PAGE_SIZE);
    const free0 = r.k.vmstat().nr_free_pages;
    const t0 = r.k.now();
    r.q.reportPageRequest(r.dev, req(a, R | W), r.done('w'));
    r.drain();
    expect(r.got).toEqual([
      [t0 + BASE + r.k.costs.minorFaultAnon + FIXED.iopfMedianNs, IOMMU_PAGE_RESP_SUCCESS, 'w'],
    ]);
    const pm = r.p.pagemap(a);
    expect(pm.present).toBe(true);
    expect(pm.zeroPage).toBeUndefined();
    expect(pm.pfn).not.toBe(r.k.phys.zeroPfn);
    expect(r.k.vmstat().nr_free_pages).toBe(free0 - 1);
    // The page is the process's: its own writes land in it without another fault.
    const faults0 = r.k.vmstat().pgfault;
    r.p.write(a + 10, new Uint8Array([42]));
    expect(r.k.vmstat().pgfault).toBe(faults0);
    expect(r.p.pagemap(a).pfn).toBe(pm.pfn);
    expect(r.p.read(a + 10, 1)[0]).toBe(42);
  });

  it('a write to a read-only VMA is INVALID and maps nothing', () => {
    const r = rig();
    const a = r.p.mmap(PAGE_SIZE, { prot: PROT_READ });
    r.q.reportPageRequest(r.dev, req(a, W), r.done('ro'));
    r.drain();
    expect(r.got.map((g) => g[1])).toEqual([IOMMU_PAGE_RESP_INVALID]);
    expect(r.p.pagemap(a).present).toBe(false);
    expect(r.q.stats()).toMatchObject({ invalid: 1, success: 0 });
  });

  it('an address with no VMA is INVALID', () => {
    const r = rig();
    const a = r.p.mmap(PAGE_SIZE);
    r.p.munmap(a, PAGE_SIZE);
    r.q.reportPageRequest(r.dev, req(a, R), r.done('hole'));
    r.drain();
    expect(r.got.map((g) => g[1])).toEqual([IOMMU_PAGE_RESP_INVALID]);
  });

  it('a fault whose mm died before the kworker ran is INVALID', () => {
    const r = rig();
    const a = r.p.mmap(PAGE_SIZE);
    r.q.reportPageRequest(r.dev, req(a, R | W), r.done('dead'));
    r.k.scheduler.after(FIXED.irqCoalesceNs + FIXED.irqLatencyNs + 1, () => r.p.exit());
    r.drain();
    expect(r.got.map((g) => g[1])).toEqual([IOMMU_PAGE_RESP_INVALID]);
    expect(r.q.stats().mmNs).toBe(0);
  });

  it('a request without PASID_VALID, or for a PASID with no bond, is INVALID without reaching the workqueue', () => {
    const r = rig();
    const a = r.p.mmap(PAGE_SIZE);
    const t0 = r.k.now();
    r.q.reportPageRequest(r.dev, { ...req(a, R), flags: LAST }, r.done('nopasid'));
    r.q.reportPageRequest(r.dev, { ...req(a, R), pasid: PASID + 1 }, r.done('unbound'));
    r.drain();
    const irqAndResponse = t0 + FIXED.irqCoalesceNs + FIXED.irqLatencyNs + FIXED.responseNs;
    expect(r.got).toEqual([
      [irqAndResponse, IOMMU_PAGE_RESP_INVALID, 'nopasid'],
      [irqAndResponse, IOMMU_PAGE_RESP_INVALID, 'unbound'],
    ]);
    expect(r.q.stats()).toMatchObject({ faults: 2, groups: 0, invalid: 2 });
    expect(r.k.dmesg().some((l) => l.includes('acc0: iopf (pasid 8) without domain attached'))).toBe(true);
  });

  it('iommuSvaHandleMm checks the PASID and the VMA permissions before faulting', () => {
    const r = rig();
    const ro = r.p.mmap(PAGE_SIZE, { prot: PROT_READ });
    expect(iommuSvaHandleMm({ ...req(ro, R), flags: LAST }, r.p.mm)).toBe(IOMMU_PAGE_RESP_INVALID);
    expect(iommuSvaHandleMm(req(ro, W), r.p.mm)).toBe(IOMMU_PAGE_RESP_INVALID);
    r.p.charge(0);
    const cpu0 = r.p.cpuNs;
    const prev = r.k.setCurrent(r.p);
    try {
      expect(iommuSvaHandleMm(req(ro, R), r.p.mm)).toBe(IOMMU_PAGE_RESP_SUCCESS);
    } finally {
      r.k.setCurrent(prev);
    }
    // Called directly, the fault charges whoever is current (the queue redirects it to a CPU).
    expect(r.p.cpuNs - cpu0).toBe(r.k.costs.minorFaultZeroPage);
    expect(r.p.pagemap(ro).zeroPage).toBe(true);
  });
});

describe('IopfQueue: groups', () => {
  it('a LAST_PAGE group of 4 is handled in one work item with one response', () => {
    const r = rig();
    const a = r.p.mmap(4 * PAGE_SIZE);
    const t0 = r.k.now();
    for (let i = 0; i < 3; i++)
      r.q.reportPageRequest(
        r.dev,
        req(a + i * PAGE_SIZE, R | W, { last: false, grpid: 3 }),
        r.done(`partial${i}`),
      );
    r.q.reportPageRequest(r.dev, req(a + 3 * PAGE_SIZE, R | W, { grpid: 3 }), r.done('last'));
    r.drain();
    const perFault = r.k.costs.minorFaultAnon + FIXED.iopfMedianNs;
    expect(r.got).toEqual([[t0 + BASE + 4 * perFault, IOMMU_PAGE_RESP_SUCCESS, 'last']]);
    for (let i = 0; i < 4; i++) expect(r.p.pagemap(a + i * PAGE_SIZE).present).toBe(true);
    let items = 0;
    for (let c = 0; c < r.cpus.nrCpus; c++) items += r.cpus.completedItems(c);
    expect(items).toBe(1);
    expect(r.q.stats()).toMatchObject({ faults: 4, groups: 1, interrupts: 1, success: 1 });
  });

  it('errors are sticky: the first INVALID stops the group and the rest are not faulted in', () => {
    const r = rig();
    const a = r.p.mmap(3 * PAGE_SIZE);
    const hole = r.p.mmap(PAGE_SIZE);
    r.p.munmap(hole, PAGE_SIZE);
    r.q.reportPageRequest(r.dev, req(a, W, { last: false, grpid: 1 }));
    r.q.reportPageRequest(r.dev, req(hole, W, { last: false, grpid: 1 }));
    r.q.reportPageRequest(r.dev, req(a + PAGE_SIZE, W, { last: false, grpid: 1 }));
    r.q.reportPageRequest(r.dev, req(a + 2 * PAGE_SIZE, W, { grpid: 1 }), r.done('g1'));
    r.drain();
    expect(r.got.map((g) => [g[1], g[2]])).toEqual([[IOMMU_PAGE_RESP_INVALID, 'g1']]);
    expect(r.p.pagemap(a).present).toBe(true);
    expect(r.p.pagemap(a + PAGE_SIZE).present).toBe(false);
    expect(r.p.pagemap(a + 2 * PAGE_SIZE).present).toBe(false);
    // Two faults were handled (the good one and the hole), so two service times.
    expect(r.q.stats().cpuNs).toBe(r.k.costs.minorFaultAnon + 2 * FIXED.iopfMedianNs);
  });

  it('partials of different groups are sorted by grpid; a group only takes its own', () => {
    const r = rig();
    const a = r.p.mmap(4 * PAGE_SIZE);
    r.q.reportPageRequest(r.dev, req(a, R, { last: false, grpid: 1 }));
    r.q.reportPageRequest(r.dev, req(a + PAGE_SIZE, R, { last: false, grpid: 2 }));
    r.q.reportPageRequest(r.dev, req(a + 2 * PAGE_SIZE, R, { grpid: 2 }), r.done('g2'));
    r.drain();
    expect(r.got.map((g) => g[2])).toEqual(['g2']);
    expect(r.p.pagemap(a).present).toBe(false);
    expect(r.p.pagemap(a + PAGE_SIZE).present).toBe(true);
    expect(r.q.inflight()).toBe(1);
    r.q.reportPageRequest(r.dev, req(a + 3 * PAGE_SIZE, R, { grpid: 1 }), r.done('g1'));
    r.drain();
    expect(r.got.map((g) => g[2])).toEqual(['g2', 'g1']);
    expect(r.p.pagemap(a).present).toBe(true);
    expect(r.q.inflight()).toBe(0);
  });

  it('groups run on different CPUs and complete out of order (WQ_UNBOUND)', () => {
    const r = rig(FIXED, { cpus: 2 });
    const a = r.p.mmap(8 * PAGE_SIZE);
    for (let i = 0; i < 3; i++)
      r.q.reportPageRequest(r.dev, req(a + i * PAGE_SIZE, W, { last: false, grpid: 10 }));
    r.q.reportPageRequest(r.dev, req(a + 3 * PAGE_SIZE, W, { grpid: 10 }), r.done('big'));
    r.q.reportPageRequest(r.dev, req(a + 4 * PAGE_SIZE, W, { grpid: 11 }), r.done('small'));
    r.drain();
    expect(r.got.map((g) => g[2])).toEqual(['small', 'big']);
    expect(r.cpus.completedItems(0)).toBe(1);
    expect(r.cpus.completedItems(1)).toBe(1);
    expect(r.q.stats().interrupts).toBe(1);
  });

  it('with every CPU busy, a group waits for a kworker', () => {
    const r = rig(FIXED, { cpus: 1 });
    const a = r.p.mmap(2 * PAGE_SIZE);
    const t0 = r.k.now();
    r.q.reportPageRequest(r.dev, req(a, W, { grpid: 1 }), r.done('first'));
    r.q.reportPageRequest(r.dev, req(a + PAGE_SIZE, W, { grpid: 2 }), r.done('second'));
    r.drain();
    // Both see the other in flight; the second starts when the first leaves the CPU.
    const perFault = r.k.costs.minorFaultAnon + FIXED.iopfMedianNs + FIXED.iopfPerInflightNs;
    expect(r.got).toEqual([
      [t0 + BASE + perFault, IOMMU_PAGE_RESP_SUCCESS, 'first'],
      [t0 + BASE + 2 * perFault - FIXED.iopfPerInflightNs, IOMMU_PAGE_RESP_SUCCESS, 'second'],
    ]);
  });
});

describe('IopfQueue: interrupts and the hardware queue', () => {
  it('requests arriving within the coalescing window share one interrupt', () => {
    const r = rig();
    const a = r.p.mmap(16 * PAGE_SIZE);
    const step = FIXED.irqCoalesceNs / 10;
    for (let i = 0; i < 8; i++)
      r.k.scheduler.after(i * step, () =>
        r.q.reportPageRequest(r.dev, req(a + i * PAGE_SIZE, R, { grpid: i }), r.done(`${i}`)),
      );
    r.drain();
    expect(r.got.length).toBe(8);
    expect(r.q.stats().interrupts).toBe(1);
    r.q.reportPageRequest(r.dev, req(a + 9 * PAGE_SIZE, R), r.done('later'));
    r.drain();
    expect(r.q.stats().interrupts).toBe(2);
  });

  it('on overflow the hardware drops requests, auto-answers LAST_PAGE ones SUCCESS, and the driver discards partials', () => {
    const r = rig({ ...FIXED, prqDepth: 4 });
    const a = r.p.mmap(8 * PAGE_SIZE);
    const t0 = r.k.now();
    r.q.reportPageRequest(r.dev, req(a, W, { last: false, grpid: 9 }), r.done('partial9'));
    for (let i = 1; i <= 3; i++)
      expect(r.q.reportPageRequest(r.dev, req(a + i * PAGE_SIZE, W, { grpid: i }), r.done(`g${i}`))).toBe(
        true,
      );
    expect(r.q.queuedRequests()).toBe(4);
    // The queue is full: the LAST_PAGE request of group 9 and another request are lost.
    expect(r.q.reportPageRequest(r.dev, req(a + 4 * PAGE_SIZE, W, { grpid: 9 }), r.done('last9'))).toBe(
      false,
    );
    expect(r.q.reportPageRequest(r.dev, req(a + 5 * PAGE_SIZE, W, { grpid: 5 }), r.done('g5'))).toBe(false);
    r.drain();
    const tags = r.got.map((g) => g[2]);
    expect(tags.slice(0, 2)).toEqual(['last9', 'g5']);
    expect(r.got[0]).toEqual([t0 + FIXED.responseNs, IOMMU_PAGE_RESP_SUCCESS, 'last9']);
    expect(tags.sort()).toEqual(['g1', 'g2', 'g3', 'g5', 'last9']);
    for (const i of [1, 2, 3]) expect(r.p.pagemap(a + i * PAGE_SIZE).present).toBe(true);
    for (const i of [0, 4, 5]) expect(r.p.pagemap(a + i * PAGE_SIZE).present).toBe(false);
    expect(r.q.stats()).toMatchObject({
      overflows: 2,
      overflowEvents: 1,
      autoResponses: 2,
      discardedPartials: 1,
      inflight: 0,
    });
    expect(r.k.dmesg().some((l) => l.includes('smmu0: PRIQ overflow detected -- requests lost'))).toBe(true);
    // The device retries after the auto-response: the queue takes requests again.
    expect(r.q.reportPageRequest(r.dev, req(a + 4 * PAGE_SIZE, W, { grpid: 9 }), r.done('retry9'))).toBe(
      true,
    );
    r.drain();
    expect(r.got.at(-1)?.slice(1)).toEqual([IOMMU_PAGE_RESP_SUCCESS, 'retry9']);
    expect(r.p.pagemap(a + 4 * PAGE_SIZE).present).toBe(true);
  });

  it('PASID stop markers are discarded without a response', () => {
    const r = rig();
    r.q.reportPageRequest(
      r.dev,
      { flags: PV | LAST, pasid: PASID, grpid: 0, perm: 0, addr: 0 },
      r.done('stop'),
    );
    r.drain();
    expect(r.got).toEqual([]);
    expect(r.q.stats()).toMatchObject({ stopMarkers: 1, faults: 0, inflight: 0 });
  });
});

describe('IopfQueue: device removal and flush', () => {
  it('iopfQueueRemoveDevice answers pending groups INVALID once and frees partials; later requests are INVALID', () => {
    const r = rig();
    const a = r.p.mmap(4 * PAGE_SIZE);
    r.q.reportPageRequest(r.dev, req(a, W, { last: false, grpid: 1 }), r.done('partial'));
    r.q.reportPageRequest(r.dev, req(a + PAGE_SIZE, W, { grpid: 2 }), r.done('g2'));
    // Once the IRQ thread has queued group 2, remove the device before the kworker runs.
    r.k.scheduler.after(FIXED.irqCoalesceNs + FIXED.irqLatencyNs + 1, () => r.q.iopfQueueRemoveDevice(r.dev));
    r.drain();
    expect(r.got.map((g) => [g[1], g[2]])).toEqual([[IOMMU_PAGE_RESP_INVALID, 'g2']]);
    expect(r.q.hasDevice(r.dev)).toBe(false);
    expect(r.q.stats()).toMatchObject({ discardedPartials: 1, inflight: 0 });
    r.q.reportPageRequest(r.dev, req(a + 2 * PAGE_SIZE, W), r.done('after'));
    r.drain();
    expect(r.got.at(-1)?.slice(1)).toEqual([IOMMU_PAGE_RESP_INVALID, 'after']);
    expect(r.q.iopfQueueFlushDev(r.dev)).toBeLessThan(0);
  });

  it('iopfQueueFlushDev handles the device faults at once; responses still arrive at their time', () => {
    const r = rig();
    const a = r.p.mmap(2 * PAGE_SIZE);
    const t0 = r.k.now();
    r.q.reportPageRequest(r.dev, req(a, W, { grpid: 1 }), r.done('g1'));
    r.q.reportPageRequest(r.dev, req(a + PAGE_SIZE, W, { last: false, grpid: 2 }));
    expect(r.p.pagemap(a).present).toBe(false);
    expect(r.q.iopfQueueFlushDev(r.dev)).toBe(0);
    expect(r.k.now()).toBe(t0);
    expect(r.p.pagemap(a).present).toBe(true);
    expect(r.p.pagemap(a + PAGE_SIZE).present).toBe(false);
    r.drain();
    // The flush ran the IRQ thread at t0 (the driver drains its hardware queue first), so only the
    // workqueue dispatch, the CPU time (one other fault, the partial, in flight) and the response remain.
    const cpu = r.k.costs.minorFaultAnon + FIXED.iopfMedianNs + FIXED.iopfPerInflightNs;
    expect(r.got).toEqual([
      [t0 + FIXED.wqDispatchNs + cpu + FIXED.responseNs, IOMMU_PAGE_RESP_SUCCESS, 'g1'],
    ]);
    expect(r.q.iopfQueueDiscardPartial()).toBe(0);
    expect(r.q.inflight()).toBe(0);
  });

  it('iopfQueueAddDevice refuses a device twice', () => {
    const r = rig();
    expect(r.q.iopfQueueAddDevice(r.dev)).toBe(-16);
    r.q.iopfQueueFree();
    expect(r.q.hasDevice(r.dev)).toBe(false);
  });
});

describe('IopfQueue: CPU time, determinism and calibration', () => {
  it('the fault CPU time lands on the CPU model, not on the process or whoever is current', () => {
    const r = rig();
    const a = r.p.mmap(2 * PAGE_SIZE);
    const cpu0 = r.p.cpuNs;
    r.q.reportPageRequest(r.dev, req(a, W, { grpid: 1 }), r.done('w'));
    const prev = r.k.setCurrent(r.p);
    try {
      r.drain();
    } finally {
      r.k.setCurrent(prev);
    }
    expect(r.got.length).toBe(1);
    expect(r.p.cpuNs).toBe(cpu0);
    const st = r.q.stats();
    expect(st.mmNs).toBe(r.k.costs.minorFaultAnon);
    expect(st.cpuNs).toBe(r.k.costs.minorFaultAnon + FIXED.iopfMedianNs);
    expect(r.cpus.totalBusyNs()).toBe(st.cpuNs);
  });

  const latencies = (seed: number): number[] => {
    const r = rig(SMMUV3, { seed });
    const a = r.p.mmap(64 * PAGE_SIZE);
    const out: number[] = [];
    for (let i = 0; i < 64; i++)
      r.k.scheduler.after(i * 3000, () => {
        const t = r.k.now();
        r.q.reportPageRequest(r.dev, req(a + i * PAGE_SIZE, i % 2 ? R : W, { grpid: i % 512 }), () =>
          out.push(r.k.now() - t),
        );
      });
    r.drain();
    return out;
  };

  it('is deterministic: the same seed gives the same latencies, another seed others', () => {
    const one = latencies(42);
    expect(one.length).toBe(64);
    expect(latencies(42)).toEqual(one);
    expect(latencies(43)).not.toEqual(one);
  });

  it('an IO page fault costs 3-80x a CPU fault with the default smmuv3 profile (CALIBRATION.md 1)', () => {
    const r = rig(SMMUV3);
    const n = 400;
    const a = r.p.mmap(n * PAGE_SIZE);
    // Spread out: no contention, the single-fault latency Vesely et al. compare.
    for (let i = 0; i < n; i++)
      r.k.scheduler.after(i * 1_000_000, () =>
        r.q.reportPageRequest(r.dev, req(a + i * PAGE_SIZE, W, { grpid: i % 512 })),
      );
    r.drain();
    const st = r.q.stats();
    expect(st.latency.count).toBe(n);
    // The device sees the response, then retries: that is the whole IO page fault.
    const p50 = st.latency.p50Ns + SMMUV3.retryNs;
    const ratio = p50 / SMMUV3.cpuFaultNs;
    expect(ratio).toBeGreaterThanOrEqual(3);
    expect(ratio).toBeLessThanOrEqual(80);
    // The same against the simulated CPU fault itself.
    const cpuFault = r.k.costs.minorFaultAnon;
    expect(p50 / cpuFault).toBeGreaterThanOrEqual(3);
    expect(p50 / cpuFault).toBeLessThanOrEqual(80);
    // And it is the path the profile claims, plus the fault's own CPU time.
    const claimed = iopfMedianPathNs(SMMUV3) + cpuFault;
    expect(Math.abs(p50 - claimed) / claimed).toBeLessThan(0.1);
    const fixedPath = SMMUV3.irqCoalesceNs + SMMUV3.irqLatencyNs + SMMUV3.wqDispatchNs + SMMUV3.responseNs;
    expect(st.latency.minNs).toBeGreaterThanOrEqual(fixedPath + cpuFault + SMMUV3.iopfMinNs);
    expect(st.latency.p99Ns).toBeGreaterThan(st.latency.p50Ns);
    expect(st.latency.maxNs).toBeGreaterThanOrEqual(st.latency.p99Ns);
  });

  it('latency grows with the number of faults in flight (Vesely: 5-140 us)', () => {
    const r = rig(FIXED, { cpus: 4 });
    const n = 64;
    const a = r.p.mmap(n * PAGE_SIZE);
    for (let i = 0; i < n; i++) r.q.reportPageRequest(r.dev, req(a + i * PAGE_SIZE, W, { grpid: i }));
    r.drain();
    const st = r.q.stats();
    expect(st.latency.count).toBe(n);
    expect(st.latency.maxNs).toBeGreaterThan(5 * st.latency.minNs);
    expect(r.cpus.totalBusyNs()).toBe(st.cpuNs);
  });
});
