import type { IommuProfile } from '../types';

/**
 * SMMUV3_PROFILE - an Arm SMMUv3 on a Kunpeng-class (HiSilicon) server, with on-chip accelerators
 * (hisi_zip, hisi_sec2) doing SVA through uacce. The default profile.
 *
 * Published numbers are scarce for this path (CALIBRATION.md section 1-2): the IO page fault total
 * is anchored on the ~20 us "SMMUv3 IOPF" figure (unconfirmed) and stays under the 38 us of the
 * ARM SMMU RDMA study; its split into interrupt, dispatch, service, response and retry is an
 * assumption. Sizes and per-lookup latencies of the SMMU's TLBs are not published (CALIBRATION.md
 * section 2 "not found") and are assumptions of the right order.
 */
export const SMMUV3_PROFILE: IommuProfile = {
  name: 'smmuv3',
  description: 'Arm SMMUv3 (Kunpeng-class server, on-chip accelerators with SVA through uacce)',
  sources: [
    'CALIBRATION.md 1: ARM SMMU path minor fault for a small RDMA transfer ~38 us (Psistakis et al., IEEE TPDS 33(12) 2022, A)',
    'CALIBRATION.md 1: ARM SMMUv3 IO page fault "at least 20us+" (thread not found, unconfirmed)',
    'CALIBRATION.md 1: HiSilicon ZIP SVA 1.94 GB/s with faults vs 7.00 GB/s prefaulted (Linaro/uadk docs/perf.rst, P)',
    'CALIBRATION.md 2: minor anonymous fault median ~1.0 us (ddumbying blog, P)',
    'CALIBRATION.md 2: VT-d inv_iotlb max 1 us, inv_devtlb max 2 us (qemu docs qpl-compression.rst, P), used as the order of an SMMU CMD_TLBI + CMD_SYNC',
    'torvalds/linux drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c CMDQ_MAX_TLBI_OPS = 1 << (PAGE_SHIFT - 3)',
    'torvalds/linux drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h EVTQ_MAX_SZ_SHIFT = Q_MIN_SZ_SHIFT - EVTQ_ENT_SZ_SHIFT',
  ],
  iotlbEntries: 2048,
  iotlbWays: 4,
  atcEntries: 64,
  atcWays: 4,
  atcHitNs: 10,
  iotlbHitNs: 100,
  walkPerLevelNs: 100,
  invRangeNs: 1000,
  invAllNs: 1000,
  invAtcNs: 2000,
  invRangeMaxPages: 512,
  prqDepth: 32768,
  irqLatencyNs: 2000,
  irqCoalesceNs: 0,
  wqDispatchNs: 3000,
  responseNs: 2000,
  retryNs: 1000,
  iopfMedianNs: 12000,
  iopfSigma: 0.5,
  iopfMinNs: 2000,
  iopfMaxNs: 1000000,
  iopfPerInflightNs: 1000,
  iopfTailProb: 0,
  iopfTailMedianNs: 0,
  iopfTailSigma: 0,
  cpuFaultNs: 1000,
  pasidBits: 20,
  domainIdBits: 16,
  iovaBits: 48,
  atsDefault: false,
  figureSources: {
    iotlbEntries:
      'assumption: SMMU TBU/TCU TLB sizes are implementation-defined and not published for Kunpeng (CALIBRATION.md 2 "not found"); a main TLB of this order',
    iotlbWays: 'assumption: 4-way, as above',
    atcEntries:
      'assumption: a small PCIe ATC (CALIBRATION.md 2: no published ATC size); Kunpeng on-chip accelerators use SMMU stall, not ATS (atsDefault false)',
    atcWays: 'assumption: 4-way',
    atcHitNs: 'assumption: a device-local lookup of a few cycles',
    iotlbHitNs:
      'assumption: TBU lookup / TCU round trip of an on-chip SMMU, no published figure (CALIBRATION.md 2 "Absolute SMMUv3 ... IOTLB hit/miss ... not found")',
    walkPerLevelNs: 'assumption: one DRAM access (~100 ns) per page-table level, no walk cache',
    invRangeNs:
      'CALIBRATION.md 2: VT-d inv_iotlb 0.1-1 us, max 1 us (P), taken as the order of CMD_TLBI_NH_VA + CMD_SYNC (SMMU CMD_SYNC latency unconfirmed)',
    invAllNs:
      'CALIBRATION.md 2: as invRangeNs; a TLBI by ASID is one command like a range (Vesely: one entry 4.2 us ~ full flush 4.4 us)',
    invAtcNs: 'CALIBRATION.md 2: VT-d inv_devtlb max 2 us (P), taken for CMD_ATC_INV + CMD_SYNC',
    invRangeMaxPages:
      'arm-smmu-v3-sva.c: without ARM_SMMU_FEAT_RANGE_INV a range of CMDQ_MAX_TLBI_OPS (1 << (PAGE_SHIFT - 3) = 512) pages or more becomes a TLBI by ASID',
    prqDepth:
      'arm-smmu-v3.h: EVTQ_MAX_SZ_SHIFT = Q_MIN_SZ_SHIFT (20) - EVTQ_ENT_SZ_SHIFT (5) = 15 -> 32768 stall events (the hardware IDR1.EVTQS may cap it; Kunpeng value not published)',
    irqLatencyNs: 'assumption: MSI delivery plus the threaded event-queue handler waking up, a few us',
    irqCoalesceNs: 'SMMUv3 has no interrupt moderation for its event/PRI queues (IRQ_CTRL only enables them)',
    wqDispatchNs: 'assumption: iopf_queue (WQ_UNBOUND) kworker wake-up after iommu_report_device_fault',
    responseNs:
      'assumption: CMD_RESUME / CMD_PRI_RESP + CMD_SYNC through the command queue, the order of an invalidation (CALIBRATION.md 2)',
    retryNs: 'assumption: the stalled transaction is retried through the TBU (about one miss path)',
    iopfMedianNs:
      'assumption: chosen so the median IO page fault (service + irq + dispatch + response + retry) is ~20 us, CALIBRATION.md 1 "at least 20us+" (unconfirmed), below the 38 us SMMU RDMA fault (A)',
    iopfSigma: 'assumption: moderate spread (p95 ~ 2.3x median)',
    iopfMinNs: 'assumption: handle_mm_fault of a present zero page plus the find_vma, ~2 us',
    iopfMaxNs: 'assumption: 1 ms clamp, the order of the VT-d tail max (556 us, CALIBRATION.md 1)',
    iopfPerInflightNs:
      'assumption: light contention (mmap_lock read side, workqueue) per fault in flight; the WQ_UNBOUND iopf queue services groups in parallel',
    iopfTailProb: 'no tail mode: no published SMMU fault histogram',
    iopfTailMedianNs: 'unused (iopfTailProb 0)',
    iopfTailSigma: 'unused (iopfTailProb 0)',
    cpuFaultNs: 'CALIBRATION.md 2 / top-ten 1: minor anonymous fault median ~1.0 us (ddumbying blog, P)',
    pasidBits: 'SMMUv3 SSIDSIZE is at most 20 bits (the PCIe PASID width)',
    domainIdBits: 'SMMUv3 IDR0.ASID16: 16-bit ASIDs',
    iovaBits: 'arm64 VA_BITS 48 (4-level, 4 KiB granule): the stage-1 input size of a DMA domain',
    atsDefault:
      'Kunpeng on-chip accelerators are platform-style devices using SMMU stall (dma-can-stall), no ATS',
  },
};
