import { describe, expect, it } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import { createKernel, type IRng } from '@svasim/kernel';
import { defaultRegistry } from '../../registry';
import { ScenarioError, validateScenario, type ScenarioInput, type WorkloadSpec } from '../../scenario';
import type { WorkloadContext } from '../activity';
import { runExperiment } from '../experiment';
import type { RunResult } from '../types';
import { CryptoStreamWorkload } from './crypto-stream';
import { makePayload } from './payload';
import type { StreamRequestInfo, StreamSlot } from './request-stream';
import { ZipOffloadWorkload, zipBound } from './zip-offload';

const registry = defaultRegistry();

type WorkloadInput = NonNullable<ScenarioInput['processes']>[number]['workload'];

/** One process running @workload on @device for @duration under each of @strategies. */
async function run(
  device: string,
  workload: WorkloadInput,
  strategies = ['none'],
  duration = '2ms',
): Promise<RunResult[]> {
  const s = validateScenario(
    {
      name: 'w',
      machine: { memory: { nodes: [{ size: '256MiB' }] } },
      devices: [{ name: device }],
      processes: [{ name: 'app', workload }],
      duration,
      strategies,
    },
    'w',
    registry,
  );
  const r = await runExperiment(s, { registry, progress: false, checkInvariants: true });
  for (const x of r.runs) {
    expect(x.error).toBeUndefined();
    expect(x.invariants).toEqual([]);
  }
  return r.runs;
}

/** A deterministic stand-in for a kernel RNG stream. */
function lcg(seed: number): IRng {
  let x = seed >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return {
    int: (a, b) => a + Math.floor(next() * (b - a + 1)),
    float: next,
    exponential: (mean) => -mean * Math.log(1 - next()),
    chance: (p) => next() < p,
  };
}

describe("workload 'zip-offload'", () => {
  it.each(['gzip', 'zlib', 'deflate'] as const)(
    '%s: compresses real data on hisi_zip and the sampled outputs inflate back',
    async (alg) => {
      const [m] = (
        await run('hisi_zip', { kind: 'zip-offload', alg, requestSize: '32KiB', inflight: 2, verifyEvery: 2 })
      ).map((r) => r.metrics!);
      expect(m.dma_requests).toBeGreaterThan(10);
      expect(m.dma_errors).toBe(0);
      // Every second request issued is checked (those still in flight at the end are not counted).
      expect(m.extra.verified).toBeGreaterThanOrEqual(Math.floor(m.dma_requests / 2) - 1);
      expect(m.extra.verified).toBeLessThanOrEqual(Math.ceil(m.dma_requests / 2));
      expect(m.data_mismatch).toBe(0);
      expect(m.dma_bytes).toBe(m.dma_requests * 32 * 1024); // uncompressed bytes
      expect(m.dma_latency_ns!.count).toBe(m.dma_requests);
    },
  );

  it('decompresses too, counting the bytes it produced', async () => {
    const [r] = await run('hisi_zip', {
      kind: 'zip-offload',
      op: 'decompress',
      requestSize: '64KiB',
      compressibility: 0.9,
      verifyEvery: 1,
    });
    const m = r.metrics!;
    expect(m.dma_requests).toBeGreaterThan(5);
    expect(m.extra.verified).toBe(m.dma_requests);
    expect(m.data_mismatch).toBe(0);
    expect(m.dma_bytes).toBe(m.dma_requests * 64 * 1024);
  });

  it('fresh buffers fault on every request, reused ones only when first used; pins fault never', async () => {
    const fresh = {
      kind: 'zip-offload',
      requestSize: '16KiB',
      buffers: 'fresh',
      count: 20,
      compressibility: 0,
    } as const;
    const [none, pinned] = await run('hisi_zip', fresh, ['none', 'mempinfd'], '50ms');
    // 16 KiB of random data gzips to just over 16 KiB: 5 destination pages, each a fault.
    expect(none.metrics!.dma_requests).toBe(20);
    expect(none.metrics!.iopf_count).toBe(20 * 5);
    expect(pinned.metrics!.iopf_count).toBe(0);
    expect(pinned.metrics!.pinned_bytes.peak).toBeGreaterThan(0);
    expect(pinned.metrics!.pinned_bytes.end).toBe(0); // fresh buffers are released after each request
    const [reused] = await run(
      'hisi_zip',
      { ...fresh, buffers: 'reused', workingSet: '256KiB', count: 40 },
      ['none'],
      '50ms',
    );
    // 7 slots (256 KiB / (16 KiB + its gzip bound)), each used 5 or 6 times: only the first use faults.
    const slots = Math.floor((256 * 1024) / (16 * 1024 + zipBound(16 * 1024)));
    expect(slots).toBe(7);
    expect(reused.metrics!.iopf_count).toBe(slots * 5);
    const [warm] = await run('hisi_zip', { ...fresh, buffers: 'reused', workingSet: '256KiB', warm: true });
    expect(warm.metrics!.iopf_count).toBe(0);
  });

  it('freshFraction mixes fresh buffers into a reused pool, deterministically per seed', async () => {
    const spec = {
      kind: 'zip-offload',
      requestSize: '16KiB',
      buffers: 'reused',
      warm: true,
      pool: true,
      workingSet: '512KiB',
      freshFraction: 0.5,
      count: 100,
      compressibility: 0,
    } as const;
    const [a] = await run('hisi_zip', spec, ['none'], '50ms');
    const [b] = await run('hisi_zip', spec, ['none'], '50ms');
    expect(a.metrics!.dma_requests).toBe(100);
    expect({ ...a, wallMs: 0 }).toEqual({ ...b, wallMs: 0 });
    // About half the requests take fresh buffers, each 5 faults.
    expect(a.metrics!.iopf_count % 5).toBe(0);
    expect(a.metrics!.iopf_count / 5).toBeGreaterThan(30);
    expect(a.metrics!.iopf_count / 5).toBeLessThan(70);
  });

  it('check() catches an output that does not inflate to the source', () => {
    const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
    const p = k.spawn();
    const w = new ZipOffloadWorkload(
      validateScenario(
        {
          name: 'x',
          devices: [{ name: 'hisi_zip' }],
          processes: [
            { name: 'a', workload: { kind: 'zip-offload', requestSize: '8KiB', compressibility: 0.5 } },
          ],
          duration: '1ms',
        },
        'x',
      ).processes[0].workload as Extract<WorkloadSpec, { kind: 'zip-offload' }>,
    );
    const probe = w as unknown as {
      setup(c: Partial<WorkloadContext>): void;
      check(proc: unknown, slot: StreamSlot, c: { produced: number }, info: StreamRequestInfo): boolean;
      plain: Buffer[];
    };
    probe.setup({ rng: lcg(1) });
    const info = { n: 3, lane: 0, fresh: false };
    const good = gzipSync(probe.plain[3]);
    const slot = { src: p.mmap(8192), dst: p.mmap(zipBound(8192)) };
    p.write(slot.dst, good);
    expect(probe.check(p, slot, { produced: good.length }, info)).toBe(true);
    expect(probe.check(p, slot, { produced: good.length }, { ...info, n: 2 })).toBe(false); // other data
    good[good.length - 5] ^= 1; // a flipped bit in the CRC trailer
    p.write(slot.dst, good);
    expect(probe.check(p, slot, { produced: good.length }, info)).toBe(false);
    k.shutdown();
  });
});

describe("workload 'crypto-stream'", () => {
  it.each([
    ['cbc(aes)', 'encrypt'],
    ['cbc(aes)', 'decrypt'],
    ['ctr(aes)', 'encrypt'],
    ['xts(aes)', 'encrypt'],
    ['gcm(aes)', 'encrypt'],
    ['gcm(aes)', 'decrypt'],
    ['sha256', undefined],
    ['sha512', undefined],
    ['hmac(sha256)', undefined],
  ] as const)('%s %s on hisi_sec2: every output is what node:crypto gives', async (alg, op) => {
    const [r] = await run('hisi_sec2', {
      kind: 'crypto-stream',
      alg,
      ...(op ? { op } : {}),
      requestSize: '16KiB',
      inflight: 2,
      verifyEvery: 1,
    });
    const m = r.metrics!;
    expect(m.dma_requests).toBeGreaterThan(20);
    expect(m.dma_errors).toBe(0);
    expect(m.extra.verified).toBe(m.dma_requests);
    expect(m.data_mismatch).toBe(0);
    expect(m.dma_bytes).toBe(m.dma_requests * 16 * 1024);
  });

  it.each(['cbc(aes)', 'ctr(aes)'] as const)(
    '%s stream: each lane chains its records as one message',
    async (alg) => {
      const [r] = await run('hisi_sec2', {
        kind: 'crypto-stream',
        alg,
        stream: true,
        requestSize: '4KiB',
        inflight: 3,
        verifyEvery: 1,
      });
      expect(r.metrics!.extra.verified).toBeGreaterThan(20);
      expect(r.metrics!.data_mismatch).toBe(0);
    },
  );

  it('a chained cbc stream is one message: its records decrypt with node:crypto as one', () => {
    // The IV chaining the workload does between records, checked against one cipher call.
    const spec = validateScenario(
      {
        name: 'x',
        devices: [{ name: 'hisi_sec2' }],
        processes: [{ name: 'a', workload: { kind: 'crypto-stream', requestSize: 32, stream: true } }],
        duration: '1ms',
      },
      'x',
    ).processes[0].workload as Extract<WorkloadSpec, { kind: 'crypto-stream' }>;
    const w = new CryptoStreamWorkload(spec);
    const probe = w as unknown as {
      setup(c: Partial<WorkloadContext>): void;
      expected(data: Buffer, iv: Buffer, op: string): Buffer;
      ivFor(info: StreamRequestInfo): Buffer;
      completed(proc: unknown, slot: StreamSlot, c: { status: number }, info: StreamRequestInfo): void;
      key: Buffer;
      plain: Buffer[];
    };
    probe.setup({ rng: lcg(2) });
    const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
    const p = k.spawn();
    const slot = { src: p.mmap(4096), dst: p.mmap(4096) };
    const parts: Buffer[] = [];
    let firstIv: Buffer | null = null;
    for (let n = 1; n <= 3; n++) {
      const info = { n, lane: 0, fresh: false };
      const iv = probe.ivFor(info);
      firstIv ??= iv;
      const ct = probe.expected(probe.plain[n % 4], iv, 'encrypt');
      p.write(slot.dst, ct);
      probe.completed(p, slot, { status: 0 }, info);
      parts.push(ct);
    }
    const whole = probe.expected(
      Buffer.concat([1, 2, 3].map((n) => probe.plain[n % 4])),
      firstIv!,
      'encrypt',
    );
    expect(Buffer.concat(parts).equals(whole)).toBe(true);
    k.shutdown();
  });

  it('refuses requests the device would refuse, before anything runs', () => {
    const bad = (workload: WorkloadInput) => {
      try {
        validateScenario(
          {
            name: 'x',
            devices: [{ name: 'hisi_sec2' }],
            processes: [{ name: 'a', workload }],
            duration: '1ms',
          },
          'x',
          registry,
        );
      } catch (e) {
        if (e instanceof ScenarioError) return e.issues.map((i) => `${i.path}: ${i.message}`);
        throw e;
      }
      return [];
    };
    expect(bad({ kind: 'crypto-stream', alg: 'cbc(aes)', requestSize: 1000 })).toEqual([
      'processes[0].workload.requestSize: cbc(aes) encrypts whole 16-byte blocks: use a multiple of 16',
    ]);
    expect(bad({ kind: 'crypto-stream', alg: 'xts(aes)', requestSize: 4096, keyBytes: 48 })).toEqual([
      'processes[0].workload.keyBytes: xts(aes) takes a 32- or 64-byte key (two AES keys)',
    ]);
    expect(
      bad({ kind: 'crypto-stream', alg: 'sha256', op: 'encrypt', requestSize: 4096, keyBytes: 16 }),
    ).toEqual([
      "processes[0].workload.op: 'sha256' takes op digest, not 'encrypt'",
      'processes[0].workload.keyBytes: sha256 takes no key',
    ]);
    expect(bad({ kind: 'crypto-stream', alg: 'hmac(sha256)', requestSize: 64, keyBytes: 6 })).toEqual([
      'processes[0].workload.keyBytes: hmac(sha256) takes a key of 4 to 64 bytes in whole 32-bit words',
    ]);
    expect(bad({ kind: 'crypto-stream', alg: 'gcm(aes)', requestSize: 4096, stream: true })).toEqual([
      'processes[0].workload.stream: only cbc(aes) and ctr(aes) encryption can be chained as a stream',
    ]);
    expect(bad({ kind: 'crypto-stream', requestSize: '16MiB' })).toEqual([
      'processes[0].workload.requestSize: larger than one request of the device (16776704 bytes)',
    ]);
    expect(bad({ kind: 'crypto-stream', requestSize: 4096, buffers: 'fresh', freshFraction: 0.5 })).toEqual([
      "processes[0].workload.freshFraction: applies to reused buffers ('fresh' buffers are all fresh)",
    ]);
    expect(bad({ kind: 'crypto-stream', alg: 'gcm(aes)', op: 'decrypt', requestSize: 100 })).toEqual([]);
  });
});

describe('makePayload', () => {
  it('is deterministic per stream and compresses as its compressibility says', () => {
    const a = makePayload(lcg(5), 64 * 1024, 0.8);
    expect(a.equals(makePayload(lcg(5), 64 * 1024, 0.8))).toBe(true);
    expect(a.equals(makePayload(lcg(6), 64 * 1024, 0.8))).toBe(false);
    const ratio = (c: number) => gzipSync(makePayload(lcg(7), 64 * 1024, c)).length / (64 * 1024);
    expect(ratio(0)).toBeGreaterThan(1);
    expect(ratio(0.5)).toBeGreaterThan(0.45);
    expect(ratio(0.5)).toBeLessThan(0.6);
    expect(ratio(1)).toBeLessThan(0.1);
    expect(makePayload(lcg(1), 13, 0).length).toBe(13); // not a multiple of anything
  });
});
