/**
 * The parameters a 'crypto-stream' workload implies (the op and key length its algorithm takes
 * when the scenario does not say) and the rules hisi_sec2 enforces on them, so that a scenario
 * asking for a request the device would refuse is refused before anything runs
 * (plugins/accel-crypto/README.md, "Algorithms and their rules").
 */
import type { CryptoStreamWorkloadSpec } from './workload-schema';

/** The largest request one BD carries: 16 MiB - 512 (MAX_INPUT_DATA_LEN). */
export const CRYPTO_MAX_REQUEST = 16 * 2 ** 20 - 512;

type Alg = CryptoStreamWorkloadSpec['alg'];
type Op = NonNullable<CryptoStreamWorkloadSpec['op']>;

const CIPHERS: ReadonlySet<Alg> = new Set(['cbc(aes)', 'ctr(aes)', 'xts(aes)', 'gcm(aes)']);

/** isCipher - whether @alg encrypts (as opposed to a digest or a MAC). */
export function isCipher(alg: Alg): boolean {
  return CIPHERS.has(alg);
}

/** cryptoOp - the op of @w: its `op`, else encrypt / digest / hmac by algorithm. */
export function cryptoOp(w: Pick<CryptoStreamWorkloadSpec, 'alg' | 'op'>): Op {
  if (w.op !== undefined) return w.op;
  if (isCipher(w.alg)) return 'encrypt';
  return w.alg === 'hmac(sha256)' ? 'hmac' : 'digest';
}

/** cryptoKeyBytes - the key length of @w: `keyBytes`, else 16 (AES-128), 32 (xts, hmac), 0. */
export function cryptoKeyBytes(w: Pick<CryptoStreamWorkloadSpec, 'alg' | 'keyBytes'>): number {
  if (w.keyBytes !== undefined) return w.keyBytes;
  if (w.alg === 'xts(aes)' || w.alg === 'hmac(sha256)') return 32;
  return isCipher(w.alg) ? 16 : 0;
}

/** cryptoIvBytes - the IV length @alg takes: 12 for gcm, 16 for the other ciphers, else 0. */
export function cryptoIvBytes(alg: Alg): number {
  if (alg === 'gcm(aes)') return 12;
  return isCipher(alg) ? 16 : 0;
}

/**
 * cryptoIssues - what hisi_sec2 would refuse in @w with request size @bytes: an op the algorithm
 * has no meaning for, a key length it does not take, a length that is not whole blocks, a stream
 * the workload cannot chain.
 *
 * Return: [field, message] pairs (field relative to the workload); empty when all is well.
 */
export function cryptoIssues(w: CryptoStreamWorkloadSpec, bytes: number | null): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const op = cryptoOp(w);
  const cipher = isCipher(w.alg);
  if (cipher && op !== 'encrypt' && op !== 'decrypt')
    out.push(['op', `'${w.alg}' takes op encrypt or decrypt, not '${op}'`]);
  if (!cipher && w.alg !== 'hmac(sha256)' && op !== 'digest')
    out.push(['op', `'${w.alg}' takes op digest, not '${op}'`]);
  if (w.alg === 'hmac(sha256)' && op !== 'hmac') out.push(['op', `'${w.alg}' takes op hmac, not '${op}'`]);
  const key = cryptoKeyBytes(w);
  if (w.alg === 'xts(aes)') {
    if (key !== 32 && key !== 64)
      out.push(['keyBytes', 'xts(aes) takes a 32- or 64-byte key (two AES keys)']);
  } else if (cipher) {
    if (key !== 16 && key !== 24 && key !== 32)
      out.push(['keyBytes', `${w.alg} takes a 16-, 24- or 32-byte key`]);
  } else if (w.alg === 'hmac(sha256)') {
    if (key < 4 || key > 64 || key % 4 !== 0)
      out.push(['keyBytes', 'hmac(sha256) takes a key of 4 to 64 bytes in whole 32-bit words']);
  } else if (key !== 0) out.push(['keyBytes', `${w.alg} takes no key`]);
  if (bytes !== null) {
    if (bytes > CRYPTO_MAX_REQUEST)
      out.push(['requestSize', `larger than one request of the device (${CRYPTO_MAX_REQUEST} bytes)`]);
    if (w.alg === 'cbc(aes)' && bytes % 16 !== 0)
      out.push(['requestSize', 'cbc(aes) encrypts whole 16-byte blocks: use a multiple of 16']);
    if (w.alg === 'xts(aes)' && bytes < 16) out.push(['requestSize', 'xts(aes) needs at least 16 bytes']);
  }
  if (w.stream && !((w.alg === 'cbc(aes)' || w.alg === 'ctr(aes)') && op === 'encrypt'))
    out.push(['stream', 'only cbc(aes) and ctr(aes) encryption can be chained as a stream']);
  return out;
}
