/**
 * secCompute - what one SEC2 engine does with a BD's bytes: check the parameters the way the
 * hardware (and UADK's driver in front of it) does, then compute the result with node:crypto, so
 * every output is byte-identical to OpenSSL's.
 *
 * Layouts (the kernel crypto API's, include/crypto/aead.h, which UADK's hisi_sec.c follows for
 * flat buffers: the MAC sits right after the data):
 *
 *   skcipher encrypt/decrypt   src = data                      dst = data (same length)
 *   gcm(aes) encrypt           src = AAD || plaintext          dst = AAD || ciphertext || tag
 *   gcm(aes) decrypt           src = AAD || ciphertext || tag  dst = AAD || plaintext
 *   digest / hmac              src = message                   dst = digest
 *
 * The AAD length travels in the descriptor's `level` field (the aead_request's assoclen); 0 means
 * no AAD. Whole blocks only, never padding (setAutoPadding(false)).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import { ERRNO } from '@svasim/kernel';
import {
  AES_BLOCK_SIZE,
  AES_KEY_SIZES,
  GCM_IV_SIZE,
  GCM_TAG_SIZE,
  HMAC_MAX_KEY_SIZE,
  SEC_MAX_AAD_LEN,
  SEC_MAX_INPUT_DATA_LEN,
  SKCIPHER_IV_SIZE,
  XTS_KEY_SIZES,
  secOpFits,
  type SecAlgorithm,
} from './algorithms';

/** What a BD completes with: 0 and the bytes for dst, or -errno and nothing. */
export interface SecResult {
  status: number;
  output: Uint8Array;
}

/** The request as the engine sees it after the DMA engine read the key, the IV and the source. */
export interface SecRequest {
  op: string;
  /** Undefined when the descriptor's alg index is out of range. */
  alg: SecAlgorithm | undefined;
  src: Uint8Array;
  key: Uint8Array;
  iv: Uint8Array;
  /** The descriptor's `level`: the AEAD's associated data length (0 for everything else). */
  assoclen: number;
}

const EMPTY = new Uint8Array(0);
const fail = (errno: number): SecResult => ({ status: -errno, output: EMPTY });
const ok = (output: Uint8Array): SecResult => ({ status: 0, output });

/**
 * secCompute - run one request. Never throws for bad input: a parameter the BD cannot carry
 * completes -EINVAL, a GCM tag that does not verify -EBADMSG. Context: the engine, in simulated
 * time (pure function of its arguments, so deterministic).
 */
export function secCompute(req: SecRequest): SecResult {
  const { op, alg, src, key, iv, assoclen } = req;
  // An alg index the device does not list, or an op that means nothing for it (UADK's
  // fill_cipher_bd*_mode / fill_digest_bd*_alg answer -WD_EINVAL for an alg or mode they cannot
  // encode).
  if (!alg || !secOpFits(op, alg.cls)) return fail(ERRNO.EINVAL);
  if (src.length > SEC_MAX_INPUT_DATA_LEN) return fail(ERRNO.EINVAL);
  // Only the AEAD has associated data.
  if (assoclen !== 0 && alg.cls !== 'aead') return fail(ERRNO.EINVAL);
  switch (alg.cls) {
    case 'skcipher':
      return skcipher(op === 'encrypt', alg.mode as 'cbc' | 'ctr' | 'xts', src, key, iv);
    case 'aead':
      return gcm(op === 'encrypt', src, key, iv, assoclen);
    case 'hash':
      // A plain digest's BD has no key or IV field to fill.
      if (key.length || iv.length) return fail(ERRNO.EINVAL);
      return ok(createHash(alg.hash!).update(src).digest());
    case 'hmac':
      if (iv.length) return fail(ERRNO.EINVAL);
      if (key.length === 0 || key.length > HMAC_MAX_KEY_SIZE || key.length % 4) return fail(ERRNO.EINVAL);
      return ok(createHmac(alg.hash!, key).update(src).digest());
  }
}

function sameHalves(key: Uint8Array): boolean {
  const h = key.length / 2;
  return Buffer.from(key.buffer, key.byteOffset, h).equals(Buffer.from(key.buffer, key.byteOffset + h, h));
}

function skcipher(
  encrypt: boolean,
  mode: 'cbc' | 'ctr' | 'xts',
  src: Uint8Array,
  key: Uint8Array,
  iv: Uint8Array,
): SecResult {
  if (iv.length !== SKCIPHER_IV_SIZE) return fail(ERRNO.EINVAL);
  if (mode === 'xts') {
    if (!XTS_KEY_SIZES.includes(key.length)) return fail(ERRNO.EINVAL);
    // xts_verify_key refuses identical halves in FIPS mode or with CRYPTO_TFM_REQ_FORBID_WEAK_KEYS;
    // OpenSSL 3 refuses them always. The device takes the strict side (README).
    if (sameHalves(key)) return fail(ERRNO.EINVAL);
  } else if (!AES_KEY_SIZES.includes(key.length)) return fail(ERRNO.EINVAL);
  // UADK's cipher_len_check: no empty BD; cbc whole blocks; xts at least one block (a partial
  // final block is ciphertext stealing, done by the hardware); ctr any length.
  if (src.length === 0) return fail(ERRNO.EINVAL);
  if (mode === 'cbc' && src.length % AES_BLOCK_SIZE) return fail(ERRNO.EINVAL);
  if (mode === 'xts' && src.length < AES_BLOCK_SIZE) return fail(ERRNO.EINVAL);
  const bits = mode === 'xts' ? key.length * 4 : key.length * 8;
  const name = `aes-${bits}-${mode}`;
  const c = encrypt ? createCipheriv(name, key, iv) : createDecipheriv(name, key, iv);
  c.setAutoPadding(false);
  return ok(concat(c.update(src), c.final()));
}

function gcm(
  encrypt: boolean,
  src: Uint8Array,
  key: Uint8Array,
  iv: Uint8Array,
  assoclen: number,
): SecResult {
  if (!AES_KEY_SIZES.includes(key.length) || iv.length !== GCM_IV_SIZE) return fail(ERRNO.EINVAL);
  if (assoclen > SEC_MAX_AAD_LEN || assoclen > src.length) return fail(ERRNO.EINVAL);
  const name = `aes-${key.length * 8}-gcm` as 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';
  const aad = src.subarray(0, assoclen);
  if (encrypt) {
    const c = createCipheriv(name, key, iv, { authTagLength: GCM_TAG_SIZE });
    if (assoclen) c.setAAD(aad);
    const body = concat(c.update(src.subarray(assoclen)), c.final());
    return ok(concat(aad, body, c.getAuthTag()));
  }
  // crypto_aead_decrypt: a ciphertext shorter than the tag is -EINVAL.
  if (src.length - assoclen < GCM_TAG_SIZE) return fail(ERRNO.EINVAL);
  const d = createDecipheriv(name, key, iv, { authTagLength: GCM_TAG_SIZE });
  d.setAuthTag(src.subarray(src.length - GCM_TAG_SIZE));
  if (assoclen) d.setAAD(aad);
  const body = d.update(src.subarray(assoclen, src.length - GCM_TAG_SIZE));
  try {
    // The ICV check: a mismatch is what the SEC driver's sec_cb_status_check reports (-EBADMSG).
    return ok(concat(aad, body, d.final()));
  } catch {
    return fail(ERRNO.EBADMSG);
  }
}

/** Concatenate without Buffer.concat's extra copy when there is one part. */
function concat(...parts: Uint8Array[]): Uint8Array {
  const nonEmpty = parts.filter((p) => p.length);
  if (nonEmpty.length === 1) return nonEmpty[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
