/**
 * ZIP_CONFIG - the shape of the simulated HiSilicon ZIP as the VirtualAccelerator base takes it.
 */
import { ACCEL_SQE_F_STREAM, ACCEL_SQE_F_STREAM_END, type AcceleratorConfig } from '@svasim/kernel';
import { ZIP_ALGORITHMS, ZIP_OPS } from './constants';
import { ZIP_CORE_MODEL, ZIP_TIMING } from './timing';

/**
 * ZIP_CONFIG - /dev/hisi_zip-<id> with UACCE_DEV_SVA, api 'hisi_qm_v2' (what hisi_qm_uacce_register
 * sets for a Kunpeng 920 QM: HISI_QM_API_VER2_BASE), the three deflate formats, compress and
 * decompress, stream descriptors. Tests may spread it and override (fewer queues, other timing).
 *
 * - ats false: Kunpeng's on-chip accelerators stall in the SMMU instead of using PCIe ATS (the
 *   smmuv3 profile's atsDefault); every translation goes to the SMMU's TLB.
 * - queues 16: an illustrative share of the PF's queues (zip_main.c HZIP_PF_DEF_Q_NUM is 64), so
 *   tests can open many contexts; the count has no effect on throughput (perf.rst: "-q,
 *   multi-queue has no impact to performance").
 * - ringDepth 1024: the QM's queue depth (hisi_qm QM_Q_DEPTH 1024), so 70 requests in flight fit
 *   in one queue as in the published runs.
 */
export const ZIP_CONFIG: AcceleratorConfig = Object.freeze({
  name: 'hisi_zip',
  parentName: '0000:75:00.0',
  apiVer: 'hisi_qm_v2',
  algorithms: ZIP_ALGORITHMS,
  ops: ZIP_OPS,
  timing: ZIP_TIMING,
  queues: 16,
  engines: ZIP_CORE_MODEL.slots,
  ringDepth: 1024,
  sva: true,
  ats: false,
  sqeFlags: ACCEL_SQE_F_STREAM | ACCEL_SQE_F_STREAM_END,
});
