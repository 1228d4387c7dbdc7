/**
 * The algorithms of the simulated HiSilicon SEC2 and the limits its BD (buffer descriptor) puts on
 * them. Names are the kernel crypto API's (what /sys/class/uacce/hisi_sec2-<id>/algorithms lists);
 * a descriptor's `alg` is the index of the name in that list (@svasim/user sends it), so the order
 * of SEC_ALGORITHMS is the device's ABI.
 *
 * Sources: drivers/crypto/hisilicon/sec2/sec_crypto.c (sec_skcipher_cryptlen_ckeck,
 * sec_skcipher_aes_sm4_setkey, sec_aead_spec_check, MAX_INPUT_DATA_LEN, SEC_MAX_AAD_LEN) and
 * Linaro/uadk drv/hisi_sec.c (cipher_len_check, digest_len_check, fill_digest_bd*_alg) and
 * wd_cipher.c / wd_digest.c (cipher_key_len_check, wd_digest_set_key).
 */

/** How the engine treats an algorithm: a block cipher mode, an AEAD, a plain hash or an HMAC. */
export type SecAlgClass = 'skcipher' | 'aead' | 'hash' | 'hmac';

/** One algorithm the device offers. */
export interface SecAlgorithm {
  /** The kernel crypto API name, e.g. 'cbc(aes)'. */
  readonly name: string;
  readonly cls: SecAlgClass;
  /** Cipher mode (skcipher, aead). */
  readonly mode?: 'cbc' | 'ctr' | 'xts' | 'gcm';
  /** Hash function (hash, hmac), as node:crypto names it. */
  readonly hash?: 'sha1' | 'sha256' | 'sha512';
  /** Output size of the hash, bytes. */
  readonly digestSize?: number;
}

/** The algorithms, in the order of the sysfs `algorithms` list (a descriptor's `alg` indexes it). */
export const SEC_ALGORITHMS: readonly SecAlgorithm[] = Object.freeze([
  { name: 'cbc(aes)', cls: 'skcipher', mode: 'cbc' },
  { name: 'ctr(aes)', cls: 'skcipher', mode: 'ctr' },
  { name: 'xts(aes)', cls: 'skcipher', mode: 'xts' },
  { name: 'gcm(aes)', cls: 'aead', mode: 'gcm' },
  { name: 'sha1', cls: 'hash', hash: 'sha1', digestSize: 20 },
  { name: 'sha256', cls: 'hash', hash: 'sha256', digestSize: 32 },
  { name: 'sha512', cls: 'hash', hash: 'sha512', digestSize: 64 },
  { name: 'hmac(sha256)', cls: 'hmac', hash: 'sha256', digestSize: 32 },
] as const satisfies readonly SecAlgorithm[]);

/** The ops the device accepts (ACCEL_OP_NAMES values). */
export const SEC_OPS: readonly string[] = Object.freeze(['encrypt', 'decrypt', 'digest', 'hmac']);

/** secOpFits - whether `op` means something for an algorithm class (otherwise the BD is -EINVAL). */
export function secOpFits(op: string, cls: SecAlgClass): boolean {
  switch (cls) {
    case 'skcipher':
    case 'aead':
      return op === 'encrypt' || op === 'decrypt';
    case 'hash':
      return op === 'digest';
    case 'hmac':
      return op === 'hmac';
  }
}

/** AES block size (crypto/aes.h AES_BLOCK_SIZE). */
export const AES_BLOCK_SIZE = 16;
/** AES key sizes (AES_KEYSIZE_128/192/256). */
export const AES_KEY_SIZES: readonly number[] = Object.freeze([16, 24, 32]);
/**
 * XTS key sizes: two AES-128 or two AES-256 keys. The kernel driver hands a 48-byte key to a
 * software fallback (SEC_XTS_MID_KEY_SIZE) and UADK refuses it (cipher_key_len_check); the
 * hardware BD has no encoding for it, so the device refuses it.
 */
export const XTS_KEY_SIZES: readonly number[] = Object.freeze([32, 64]);
/** IV of cbc/ctr/xts: one AES block. */
export const SKCIPHER_IV_SIZE = 16;
/** gcm(aes) IV (include/crypto/gcm.h GCM_AES_IV_SIZE; the SEC driver's SEC_AIV_SIZE). */
export const GCM_IV_SIZE = 12;
/** The GCM tag: the full 16 bytes (gcm(aes)'s maxauthsize, the crypto API default authsize). */
export const GCM_TAG_SIZE = 16;
/** Largest BD data length: 16 MiB - 512 (MAX_INPUT_DATA_LEN in sec_crypto.c and UADK hisi_sec.c). */
export const SEC_MAX_INPUT_DATA_LEN = 0xfffe00;
/** Largest AEAD associated data (SEC_MAX_AAD_LEN in sec_crypto.c). */
export const SEC_MAX_AAD_LEN = 65535;
/**
 * HMAC key limits: at least 1 byte, at most 64 for SHA-1/SHA-224/SHA-256 (wd_digest_set_key:
 * MAX_HMAC_KEY_SIZE >> 1), and a whole number of 32-bit words, since the BD's a_key_len field
 * counts words (fill_digest_bd2_alg / fill_digest_bd3_alg: key_bytes & WORD_ALIGNMENT_MASK).
 */
export const HMAC_MAX_KEY_SIZE = 64;
