/**
 * The names and numbers of the zip device's interface: its algorithms (in sysfs order, since a
 * descriptor's `alg` is an index into that list), its ops, the compression levels a descriptor may
 * carry, and the hardware shape taken from the kernel's hisi_zip driver.
 */

/**
 * ZIP_ALGORITHMS - the sysfs `algorithms` list, in order: @svasim/user sends the index of the
 * request's alg here as sqe.alg. 'deflate' is raw deflate (RFC 1951, node's deflateRawSync), 'zlib'
 * the zlib wrapper (RFC 1950, deflateSync), 'gzip' the gzip wrapper (RFC 1952, gzipSync): UADK's
 * alg names for the HW_DEFLATE, HW_ZLIB and HW_GZIP request types (drv/hisi_comp.c).
 */
export const ZIP_ALGORITHMS = Object.freeze(['deflate', 'zlib', 'gzip'] as const);

/** A name of ZIP_ALGORITHMS. */
export type ZipAlgorithm = (typeof ZIP_ALGORITHMS)[number];

/** ZIP_OPS - the ops the device accepts (ACCEL_OP_NAMES values); others complete -EOPNOTSUPP. */
export const ZIP_OPS = Object.freeze(['compress', 'decompress'] as const);

/**
 * ZIP_LEVEL_DEFAULT - sqe.level 0: zlib's default level (Z_DEFAULT_COMPRESSION, which zlib runs
 * as level 6). A descriptor built without a level (@svasim/user's `level` absent) gets it.
 */
export const ZIP_LEVEL_DEFAULT = 0;
/** ZIP_LEVEL_MAX - sqe.level 1..9 is that zlib level; above it the request completes -EINVAL. */
export const ZIP_LEVEL_MAX = 9;
/**
 * The zlib level sqe.level 0 stands for. zlib's own level 0 (stored blocks only) cannot be asked
 * for: 0 means "default", as an unset field should.
 */
export const ZIP_ZLIB_DEFAULT_LEVEL = 6;

/**
 * ZIP_WINDOW_BITS - the deflate window, fixed at 32 KiB (2^15): the hardware's window (UADK's
 * win_sz default WD_COMP_WS_32K; the UADK compression PMD documents "Window size support: 32K").
 * Compress and decompress both use it, so output matches node:zlib's defaults.
 */
export const ZIP_WINDOW_BITS = 15;

/**
 * Compression and decompression cores of one Kunpeng 920 ZIP (drivers/crypto/hisilicon/zip/
 * zip_main.c: HZIP_COMP_CORE_NUM 2, HZIP_DECOMP_CORE_NUM 6).
 */
export const HZIP_COMP_CORE_NUM = 2;
export const HZIP_DECOMP_CORE_NUM = 6;
