import type { IommuProfile } from '../types';

/**
 * AMD_IOMMUV2_PROFILE - AMD IOMMUv2 with an integrated GPU using ATS and PPR (peripheral page
 * requests), the system of Vesely et al. (ISPASS 2016): an A10-7850K (Kaveri) APU on Linux 4.0.
 *
 * Anchors (CALIBRATION.md section 1, status S): a GPU page fault costs 5 to 140 us depending on how
 * many faults are in flight, against a CPU fault of ~1.7 us on the same system (3-80x); a GPU TLB
 * shootdown costs 4.2 us for one entry and 4.4 us for a full flush.
 *
 * With one fault in flight the median IO page fault here is 5.5 us (3.2x the CPU fault, inside
 * Vesely's 3-80x); each further fault in flight adds iopfPerInflightNs, reaching ~140 us with 28.
 */
export const AMD_IOMMUV2_PROFILE: IommuProfile = {
  name: 'amd-iommuv2',
  description: 'AMD IOMMUv2 with an integrated GPU (Kaveri APU) using ATS and PPR',
  sources: [
    'CALIBRATION.md 1: GPU page fault 5-140 us depending on faults in flight; CPU fault ~1.7 us; "3-80x slower" (Vesely, Basu, Oskin, Loh, Bhattacharjee, ISPASS 2016, S)',
    'CALIBRATION.md 1: GPU TLB shootdown 4.2 us one entry, 4.4 us full flush, serialized (same, S)',
    'torvalds/linux drivers/iommu/amd/amd_iommu_types.h PPR_LOG_ENTRIES 512',
  ],
  iotlbEntries: 512,
  iotlbWays: 4,
  atcEntries: 512,
  atcWays: 16,
  atcHitNs: 100,
  iotlbHitNs: 500,
  walkPerLevelNs: 100,
  invRangeNs: 1000,
  invAllNs: 1200,
  invAtcNs: 3200,
  invRangeMaxPages: 2 ** 40,
  prqDepth: 512,
  irqLatencyNs: 1000,
  irqCoalesceNs: 0,
  wqDispatchNs: 1000,
  responseNs: 1000,
  retryNs: 500,
  iopfMedianNs: 2000,
  iopfSigma: 0.5,
  iopfMinNs: 1000,
  iopfMaxNs: 140000,
  iopfPerInflightNs: 4800,
  iopfTailProb: 0,
  iopfTailMedianNs: 0,
  iopfTailSigma: 0,
  cpuFaultNs: 1700,
  pasidBits: 16,
  domainIdBits: 16,
  iovaBits: 48,
  atsDefault: true,
  figureSources: {
    iotlbEntries: 'assumption: AMD IOMMU TLB size not published',
    iotlbWays: 'assumption: 4-way',
    atcEntries:
      'assumption: the GPU L2 TLB acts as the ATC; a few hundred entries (absolute size not in CALIBRATION.md)',
    atcWays: 'assumption: 16-way',
    atcHitNs:
      'assumption: GPU L2 TLB hit, tens of GPU cycles ("a GPU TLB miss can be an order of magnitude slower", CALIBRATION.md 1, A)',
    iotlbHitNs:
      'assumption: ATS translation request to the on-die IOMMU (absolute GPU ATS latency "not found", CALIBRATION.md 1)',
    walkPerLevelNs: 'assumption: one DRAM access (~100 ns) per level of the shared x86 page table',
    invRangeNs:
      'assumption: INVALIDATE_IOMMU_PAGES + COMPLETION_WAIT ~1 us, so that with invAtcNs a one-entry shootdown is 4.2 us (CALIBRATION.md 1, S)',
    invAllNs: 'CALIBRATION.md 1: full flush 4.4 us (S) minus the ATC part (invAtcNs 3.2 us)',
    invAtcNs:
      'CALIBRATION.md 1: one-entry GPU TLB shootdown 4.2 us (S) minus the IOMMU part (invRangeNs 1 us)',
    invRangeMaxPages:
      'amd/iommu.c build_inv_address: INVALIDATE_IOMMU_PAGES with S=1 covers any naturally aligned power-of-two range; only ranges above 2^52 bytes flush all pages: 2^40 pages',
    prqDepth: 'amd_iommu_types.h PPR_LOG_ENTRIES 512',
    irqLatencyNs: 'assumption: PPR log interrupt to its threaded handler, ~1 us',
    irqCoalesceNs: 'assumption: no coalescing of PPR log interrupts',
    wqDispatchNs: 'assumption: queueing the fault on the IOMMUv2 / iopf workqueue, ~1 us',
    responseNs:
      'assumption: COMPLETE_PPR_REQUEST through the command buffer + COMPLETION_WAIT, the order of an invalidation (~1 us)',
    retryNs: 'assumption: the GPU replays the faulting wavefront access (XNACK replay)',
    iopfMedianNs:
      'CALIBRATION.md 1 (S): chosen so one fault in flight costs 5.5 us in total, the low end of 5-140 us and 3.2x the 1.7 us CPU fault',
    iopfSigma: 'assumption: moderate spread',
    iopfMinNs: 'assumption: handle_mm_fault of an already-present page, ~1 us',
    iopfMaxNs: 'CALIBRATION.md 1: 140 us, the top of the measured range (S)',
    iopfPerInflightNs:
      'CALIBRATION.md 1 (S): (140 - 5.5) us / 28; the number of faults in flight at the top is not in the notes, 28 is an assumption (about two median services per queued fault: PPRs were handled one after another)',
    iopfTailProb: 'no tail mode: the spread comes from faults in flight',
    iopfTailMedianNs: 'unused (iopfTailProb 0)',
    iopfTailSigma: 'unused (iopfTailProb 0)',
    cpuFaultNs: 'CALIBRATION.md 1: CPU page fault ~1.7 us in the same study (S)',
    pasidBits:
      'assumption: 16-bit PASIDs, as amdkfd allocates them (AMD IOMMUv2 PASmax on Kaveri not in CALIBRATION.md)',
    domainIdBits: 'AMD IOMMU device table entry: 16-bit domain ids',
    iovaBits: 'AMD IOMMU v1 page table with 4 levels: 48-bit IOVA',
    atsDefault: 'the integrated GPU uses ATS and PPR (IOMMUv2)',
  },
};
