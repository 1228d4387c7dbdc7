/**
 * CryptoAccelerator - a HiSilicon SEC2-like crypto engine (drivers/crypto/hisilicon/sec2 in the
 * kernel, Linaro/uadk drv/hisi_sec.c on the user side), registered through uacce as
 * /dev/hisi_sec2-<id> with UACCE_DEV_SVA. The queues, rings, doorbell, DMA through the IOMMU with
 * IO page faults (the key and IV are read before the source) and the completion come from
 * VirtualAccelerator; this class says what an engine does to the bytes (engine.ts) and how long it
 * takes (timing.ts).
 */
import { VirtualAccelerator, type AccelResult, type AccelSqe, type AcceleratorConfig } from '@svasim/kernel';
import type { AccelRequestParams } from '@svasim/kernel';
import { SEC_ALGORITHMS, SEC_OPS } from './algorithms';
import { secCompute } from './engine';
import { SEC_ENGINES, SEC_TIMING, secServiceNs } from './timing';

/**
 * The device's shape. Tests may spread it and override (fewer queues, more engines). The uacce
 * `api` string is the QM's (hisi_qm_v3: a Kunpeng 930-class SEC, the generation whose kernel
 * driver registers ctr(aes) and whose BD3 accepts an empty digest).
 */
export const CRYPTO_ACCEL_CONFIG: AcceleratorConfig = {
  name: 'hisi_sec2',
  parentName: '0000:76:00.0',
  apiVer: 'hisi_qm_v3',
  algorithms: SEC_ALGORITHMS.map((a) => a.name),
  ops: SEC_OPS,
  timing: SEC_TIMING,
  queues: 16,
  engines: SEC_ENGINES,
  // An on-chip Kunpeng accelerator: translations go to the SMMU (stall model), not a PCIe ATC
  // (the smmuv3 profile's atsEntries source).
  ats: false,
};

/** CryptoAccelerator - the device: each request is one BD computed by secCompute. */
export class CryptoAccelerator extends VirtualAccelerator {
  protected process(op: string, src: Uint8Array, sqe: AccelSqe, params: AccelRequestParams): AccelResult {
    const alg = SEC_ALGORITHMS[sqe.alg];
    const r = secCompute({ op, alg, src, key: params.key, iv: params.iv, assoclen: sqe.level });
    if (r.status < 0) return { status: r.status, produced: 0, output: r.output };
    return {
      status: 0,
      produced: r.output.length,
      output: r.output,
      // Hashes and ciphers run at different rates; the bytes moved are the larger side.
      serviceNs: secServiceNs(alg!.cls, Math.max(src.length, r.output.length)),
    };
  }
}
