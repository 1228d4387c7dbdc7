/**
 * The SEC2 engine's service-time figures. CALIBRATION.md section 6 looked for Kunpeng 920 SEC AES
 * throughput and found no published figure (it is in the "Gaps" list), so every figure here is an
 * assumption, chosen to be of the same order as the measured figures of the sibling HiSilicon ZIP
 * engine on the same QM queue framework (Linaro/uadk docs/perf.rst: 0.56 GB/s with one 8 KiB
 * request in flight, about 7 GB/s with 60 in flight). Replace them when a measurement appears.
 */
import { accelServiceNs, type AccelTiming } from '@svasim/kernel';
import type { SecAlgClass } from './algorithms';

/** Cipher (cbc/ctr/xts) and AEAD (gcm) figures of one engine; the base's default timing. */
export const SEC_TIMING: AccelTiming = {
  throughputBytesPerS: 2.5e9,
  perRequestNs: 3000,
  doorbellNs: 200,
  sources: {
    throughputBytesPerS:
      'assumption: 2.5 GB/s of AES per engine (10 GB/s for the 4 engines), no published Kunpeng SEC figure found (CALIBRATION.md section 6, Gaps)',
    perRequestNs:
      'assumption: ~3 us per BD for descriptor fetch, key/IV load and completion write, of the order of one small hisi_zip request (Linaro/uadk docs/perf.rst); not measured',
    doorbellNs: 'assumption: a posted MMIO write to the QM doorbell reaching the device, ~0.2 us',
  },
};

/** Hash and HMAC figures of one engine (sha1, sha256, sha512, hmac(sha256)). */
export const SEC_HASH_TIMING: AccelTiming = {
  throughputBytesPerS: 2e9,
  perRequestNs: 3000,
  doorbellNs: 200,
  sources: {
    throughputBytesPerS:
      'assumption: 2 GB/s of SHA-2 per engine, a little below AES as in software implementations; no published Kunpeng SEC figure found (CALIBRATION.md section 6)',
    perRequestNs: 'assumption: same per-BD cost as the cipher path',
    doorbellNs: 'assumption: same doorbell as the cipher path',
  },
};

/** Engines of the device (the base shares them among the queues). */
export const SEC_ENGINES = 4;
/** Engines' source. */
export const SEC_ENGINES_SOURCE =
  'assumption: 4 engines, not published for SEC2; a device-wide figure of about 10 GB/s of AES';

/**
 * secServiceNs - engine busy time for a request of class `cls` moving `bytes` (the larger of
 * input and output): perRequestNs + bytes / throughput of the class.
 */
export function secServiceNs(cls: SecAlgClass, bytes: number): number {
  return accelServiceNs(cls === 'hash' || cls === 'hmac' ? SEC_HASH_TIMING : SEC_TIMING, bytes);
}
