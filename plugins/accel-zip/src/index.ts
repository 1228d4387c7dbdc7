/**
 * @svasim/accel-zip - a HiSilicon-ZIP-like compression accelerator for svasim: /dev/hisi_zip-<id>
 * through uacce with SVA, algorithms 'deflate', 'zlib' and 'gzip', compress and decompress,
 * stateless and streaming, results byte-identical to node:zlib, timing calibrated on Linaro/uadk's
 * published figures. See README.md.
 */
export * from './constants';
export * from './timing';
export * from './config';
export { ZIP_EBADDATA, ZlibStream, zlibCompress, zlibDecompress, zlibStreamsSupported } from './zlib-engine';
export type { ZlibOutcome } from './zlib-engine';
export * from './zip-accelerator';
export * from './plugin';
export * from './throughput';
