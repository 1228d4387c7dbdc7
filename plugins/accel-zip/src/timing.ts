/**
 * The zip device's service-time model and its figures. Every figure names its source or says
 * 'assumption:'; README.md ("Calibration") shows how the published curve gives them.
 *
 * A request holds one of the device's request slots (the base class's `engines`) from the start
 * of its source DMA to the end of its destination DMA. In between, its engine time is
 *
 *   queueing for a core of its kind + bytes / coreBytesPerS + perRequestNs
 *
 * where the core pools are the ZIP's 2 compression and 6 decompression cores, compress is charged
 * on the input bytes and decompress on the output bytes. The cores bound the device's throughput
 * (7.3 GB/s of 8 KiB compress requests); the fixed perRequestNs is most of what one request sees
 * at low load, which is why throughput grows with the requests in flight.
 */
import type { AccelTiming } from '@svasim/kernel';
import { HZIP_COMP_CORE_NUM, HZIP_DECOMP_CORE_NUM } from './constants';

/** 2^20: UADK's test programs print "MB/s" computed as bytes / 1024 / 1024 per second. */
export const MIB = 1 << 20;

/**
 * ZIP_PUBLISHED_CURVE - Linaro/uadk docs/perf.rst, `test_bind_api -b 8192 -s 81920000 -o perf -c N`
 * (SVA, output buffer pre-faulted by memset): compress throughput in MiB/s (the program's "MB/s"
 * is bytes / 1024 / 1024 per second) against N, the requests kept in flight on one queue. The
 * first line of perf.rst has no -c: that run used test_bind_api's default req_cache_num = 4
 * (test/test_lib.h, REQ_CACHE_NUM 4 in every version of the test), so it is the point at 4 in
 * flight, not 1 (at 1 it would imply 14.7 us per request where every other point implies 52-61 us).
 */
export const ZIP_PUBLISHED_CURVE: ReadonlyArray<{ depth: number; mibPerS: number }> = Object.freeze([
  { depth: 4, mibPerS: 556.533 },
  { depth: 10, mibPerS: 1381.276 },
  { depth: 20, mibPerS: 3134.403 },
  { depth: 30, mibPerS: 4316.537 },
  { depth: 40, mibPerS: 5617.674 },
  { depth: 50, mibPerS: 6715.231 },
  { depth: 60, mibPerS: 7245.201 },
  { depth: 70, mibPerS: 7271.5 },
]);

/**
 * ZIP_PUBLISHED_FAULTING - the same perf.rst, `-c 50` without the memset hack, so every request's
 * output lands on fresh pages and faults in the SMMU: 1942.876 MiB/s, against 7002.958 MiB/s with
 * the memset (pre-faulted).
 */
export const ZIP_PUBLISHED_FAULTING = Object.freeze({
  depth: 50,
  faultingMibPerS: 1942.876,
  prefaultedMibPerS: 7002.958,
});

/** The core and slot model of the device (the part AccelTiming has no fields for). */
export interface ZipCoreModel {
  /** Compression cores and one core's rate on input bytes, bytes/s. */
  compressCores: number;
  compressCoreBytesPerS: number;
  /** Decompression cores and one core's rate on output bytes, bytes/s. */
  decompressCores: number;
  decompressCoreBytesPerS: number;
  /** Requests the device works on at once (the base's engines). */
  slots: number;
  sources: Record<
    'compressCores' | 'compressCoreBytesPerS' | 'decompressCores' | 'decompressCoreBytesPerS' | 'slots',
    string
  >;
}

/** Saturated 8 KiB compress throughput of the published curve (depth 70), bytes/s. */
const SATURATION_BPS = 7271.5 * MIB;

/** ZIP_CORE_MODEL - the figures of the cores and request slots. */
export const ZIP_CORE_MODEL: ZipCoreModel = Object.freeze({
  compressCores: HZIP_COMP_CORE_NUM,
  compressCoreBytesPerS: SATURATION_BPS / HZIP_COMP_CORE_NUM,
  decompressCores: HZIP_DECOMP_CORE_NUM,
  decompressCoreBytesPerS: SATURATION_BPS / HZIP_COMP_CORE_NUM,
  slots: 64,
  sources: Object.freeze({
    compressCores: 'drivers/crypto/hisilicon/zip/zip_main.c: HZIP_COMP_CORE_NUM 2 (Kunpeng 920)',
    compressCoreBytesPerS:
      'Linaro/uadk docs/perf.rst: 8 KiB compress saturates at 7271.5 MiB/s (-c 70, -c 60 7245); shared by the 2 cores',
    decompressCores: 'drivers/crypto/hisilicon/zip/zip_main.c: HZIP_DECOMP_CORE_NUM 6 (Kunpeng 920)',
    decompressCoreBytesPerS:
      'assumption: a decompression core produces output at the rate a compression core consumes input; no published hisi_zip decompress figure (CALIBRATION.md 6 "not found")',
    slots:
      'assumption: up to 64 requests in progress at once across the cores (not published); it must exceed the ~52 in flight at the knee of the published curve or the curve would flatten early',
  }),
});

/**
 * ZIP_TIMING - the AccelTiming of the device. throughputBytesPerS is the compress cores'
 * aggregate (the base uses it only for requests whose service time the device does not set);
 * perRequestNs is the fixed part of a request's engine time, fitted so that simulated requests see
 * the published per-request time at low load.
 */
export const ZIP_TIMING: AccelTiming = Object.freeze({
  throughputBytesPerS: SATURATION_BPS,
  perRequestNs: 51_500,
  doorbellNs: 1_000,
  sources: Object.freeze({
    throughputBytesPerS:
      'Linaro/uadk docs/perf.rst: 7271.5 MiB/s of 8 KiB compress requests at 70 in flight (both compression cores busy)',
    perRequestNs:
      'fit to perf.rst (README "Calibration"): its points at 4-50 in flight imply 50-58 us from submit to the program seeing the completion (Little: depth x 8 KiB / throughput); this is that minus the core time (2.1 us), the doorbell and the DMA translations, which the simulator charges separately. Not a hardware specification: the published figures do not split the device latency from the interrupt and wake-up of the test program, so both are in here',
    doorbellNs: 'assumption: a posted 64-bit MMIO doorbell store reaching the QM and the SQE fetch, ~1 us',
  }),
}) as AccelTiming;
