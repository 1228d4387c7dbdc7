/**
 * The 'crypto-stream' workload: an openssl-like application (a TLS terminator, `openssl speed
 * -engine uadk`) streaming data through a crypto accelerator (@svasim/accel-crypto's hisi_sec2)
 * with @svasim/user: each request encrypts (or decrypts, digests, MACs) `requestSize` bytes of
 * random data with `inflight` requests in flight, in fresh or reused buffers prepared through the
 * run's pin strategy (RequestStreamWorkload).
 *
 * IVs: each request gets its own (the workload's random IV with the request number in its first
 * four bytes, so ctr counters never overlap), as TLS records do; with `stream` a lane's requests
 * are one message instead, chained as UADK chains the BDs of a long request: cbc takes the last
 * ciphertext block as the next IV, ctr advances the counter by the blocks done. Decryption
 * decrypts ciphertexts made at set-up with node:crypto (gcm: ciphertext || tag).
 *
 * One request in `verifyEvery` is checked against node:crypto (data_mismatch otherwise): the
 * device computes on the real bytes, so a request that read or wrote the wrong page shows.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import type { Process } from '@svasim/kernel';
import type { AccelRequest, Completion } from '@svasim/user';
import {
  cryptoIvBytes,
  cryptoKeyBytes,
  cryptoOp,
  isCipher,
  type CryptoStreamWorkloadSpec,
  type WorkloadSpec,
} from '../../scenario';
import type { Workload, WorkloadContext } from '../activity';
import { makePayload, randomBytes } from './payload';
import { RequestStreamWorkload, type StreamRequestInfo, type StreamSlot } from './request-stream';

/** Distinct payloads a workload cycles through. */
const PAYLOADS = 4;
const TAG = 16;
const BLOCK = 16;

const DIGEST_BYTES: Record<string, number> = { sha1: 20, sha256: 32, sha512: 64, 'hmac(sha256)': 32 };

/** nodeCipher - node:crypto's name for @alg with a @keyBytes key. */
function nodeCipher(alg: string, keyBytes: number): string {
  const mode = alg.slice(0, alg.indexOf('('));
  const bits = (mode === 'xts' ? keyBytes / 2 : keyBytes) * 8;
  return `aes-${bits}-${mode}`;
}

/** addCounter - @iv as a 128-bit big-endian counter advanced by @blocks (ctr's next IV). */
function addCounter(iv: Buffer, blocks: number): Buffer {
  const out = Buffer.from(iv);
  let carry = blocks;
  for (let i = out.length - 1; i >= 0 && carry > 0; i--) {
    const v = out[i] + (carry % 256);
    out[i] = v & 0xff;
    carry = Math.floor(carry / 256) + (v >> 8);
  }
  return out;
}

/** CryptoStreamWorkload - see the file comment. Made by cryptoStreamWorkload(spec). */
export class CryptoStreamWorkload extends RequestStreamWorkload<CryptoStreamWorkloadSpec> {
  private readonly op = cryptoOp(this.spec);
  private readonly keyBytes = cryptoKeyBytes(this.spec);
  private readonly ivBytes = cryptoIvBytes(this.spec.alg);
  private key: Buffer = Buffer.alloc(0);
  private baseIv: Buffer = Buffer.alloc(0);
  private plain: Buffer[] = [];
  /** Decryption sources (ciphertext, gcm: || tag), one per payload, and their IVs. */
  private sealed: Buffer[] = [];
  private sealedIv: Buffer[] = [];
  /** Each lane's next IV when `stream`. */
  private readonly laneIv = new Map<number, Buffer>();

  protected get alg(): string {
    return this.spec.alg;
  }

  private get gcm(): boolean {
    return this.spec.alg === 'gcm(aes)';
  }

  protected srcBytes(): number {
    return this.op === 'decrypt' && this.gcm ? this.len + TAG : this.len;
  }

  protected dstBytes(): number {
    if (!isCipher(this.spec.alg)) return DIGEST_BYTES[this.spec.alg];
    return this.op === 'encrypt' && this.gcm ? this.len + TAG : this.len;
  }

  protected setup(w: WorkloadContext): void {
    this.key = randomBytes(w.rng, this.keyBytes);
    this.baseIv = randomBytes(w.rng, this.ivBytes);
    for (let i = 0; i < PAYLOADS; i++) this.plain.push(makePayload(w.rng, this.len, 0));
    if (this.op === 'decrypt') {
      this.sealedIv = this.plain.map((_, i) => this.derivedIv(i + 1));
      this.sealed = this.plain.map((b, i) => this.expected(b, this.sealedIv[i], 'encrypt'));
    }
  }

  private which(info: StreamRequestInfo): number {
    return info.n % PAYLOADS;
  }

  /** The IV of request @n when not streaming: the base IV with @n in its first four bytes. */
  private derivedIv(n: number): Buffer {
    const iv = Buffer.from(this.baseIv);
    iv.writeUInt32BE((iv.readUInt32BE(0) ^ n) >>> 0, 0);
    return iv;
  }

  private ivFor(info: StreamRequestInfo): Buffer {
    if (this.ivBytes === 0) return Buffer.alloc(0);
    if (this.op === 'decrypt') return this.sealedIv[this.which(info)];
    if (!this.spec.stream) return this.derivedIv(info.n);
    let iv = this.laneIv.get(info.lane);
    if (!iv) this.laneIv.set(info.lane, (iv = this.derivedIv(info.lane + 1)));
    return iv;
  }

  /** What node:crypto gives for @data with @iv and @op (the device's result, byte for byte). */
  private expected(data: Buffer, iv: Buffer, op: string): Buffer {
    const alg = this.spec.alg;
    if (!isCipher(alg)) {
      if (alg === 'hmac(sha256)') return createHmac('sha256', this.key).update(data).digest();
      return createHash(alg).update(data).digest();
    }
    const name = nodeCipher(alg, this.keyBytes);
    if (op === 'encrypt') {
      const c = createCipheriv(name, this.key, iv);
      if (alg === 'cbc(aes)') c.setAutoPadding(false);
      const parts: Buffer[] = [c.update(data), c.final()];
      if (this.gcm) parts.push((c as unknown as { getAuthTag(): Buffer }).getAuthTag());
      return Buffer.concat(parts);
    }
    const d = createDecipheriv(name, this.key, iv);
    if (alg === 'cbc(aes)') d.setAutoPadding(false);
    if (this.gcm) {
      (d as unknown as { setAuthTag(t: Buffer): void }).setAuthTag(data.subarray(data.length - TAG));
      return Buffer.concat([d.update(data.subarray(0, data.length - TAG)), d.final()]);
    }
    return Buffer.concat([d.update(data), d.final()]);
  }

  protected fill(proc: Process, slot: StreamSlot, info: StreamRequestInfo): AccelRequest {
    const i = this.which(info);
    const src = this.op === 'decrypt' ? this.sealed[i] : this.plain[i];
    proc.write(slot.src, src);
    const req: AccelRequest = {
      op: this.op,
      alg: this.spec.alg,
      src: slot.src,
      srcLen: src.length,
      dst: slot.dst,
      dstLen: this.dstBytes(),
    };
    if (this.keyBytes > 0) req.key = this.key;
    if (this.ivBytes > 0) req.iv = this.ivFor(info);
    return req;
  }

  protected override countedBytes(): number {
    return this.len;
  }

  protected verifies(info: StreamRequestInfo): boolean {
    return this.spec.verifyEvery > 0 && info.n % this.spec.verifyEvery === 0;
  }

  protected check(proc: Process, slot: StreamSlot, c: Completion, info: StreamRequestInfo): boolean {
    const i = this.which(info);
    const want =
      this.op === 'decrypt' ? this.plain[i] : this.expected(this.plain[i], this.ivFor(info), this.op);
    return Buffer.from(proc.read(slot.dst, c.produced)).equals(want);
  }

  protected override completed(
    proc: Process,
    slot: StreamSlot,
    c: Completion,
    info: StreamRequestInfo,
  ): void {
    if (!this.spec.stream || c.status !== 0) return;
    const iv = this.ivFor(info);
    const next =
      this.spec.alg === 'cbc(aes)'
        ? Buffer.from(proc.read(slot.dst + this.len - BLOCK, BLOCK))
        : addCounter(iv, Math.ceil(this.len / BLOCK));
    this.laneIv.set(info.lane, next);
  }
}

/** cryptoStreamWorkload - the WorkloadFactory of kind 'crypto-stream'. */
export function cryptoStreamWorkload(spec: WorkloadSpec): Workload {
  if (spec.kind !== 'crypto-stream') throw new RangeError(`cryptoStreamWorkload: kind '${spec.kind}'`);
  return new CryptoStreamWorkload(spec);
}
