import { describe, expect, it } from '@jest/globals';
import * as zlib from 'node:zlib';
import { MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, PAGE_SIZE, createKernel } from '@svasim/kernel';
import { openContext } from '@svasim/user';
import {
  ZIP_PUBLISHED_CURVE,
  ZIP_PUBLISHED_FAULTING,
  zipPlugin,
  zipThroughput,
  type ZipAccelerator,
  type ZipThroughputResult,
} from './index';

/**
 * The machine of the published runs: a Kunpeng 920 socket (64 cores; the IOPF workqueue is
 * WQ_UNBOUND and uses them all), the default IOMMU profile (smmuv3).
 */
function boot() {
  const k = createKernel({ cpus: 64, memory: { nodes: [{ size: '512MiB' }] }, plugins: [zipPlugin] });
  return { k, p: k.spawn(), device: k.plugin<ZipAccelerator>('hisi_zip') };
}

async function measure(
  depth: number,
  prefault = true,
  requests = Math.max(150, 7 * depth),
): Promise<ZipThroughputResult> {
  const { k, p, device } = boot();
  expect(k.iommu.profile.name).toBe('smmuv3');
  const r = await zipThroughput({ kernel: k, proc: p, device, depth, requests, prefault });
  expect(r.errors).toBe(0);
  expect(k.checkInvariants()).toEqual([]);
  return r;
}

describe('calibration against Linaro/uadk docs/perf.rst (test_bind_api, 8 KiB gzip compress, SVA)', () => {
  it('throughput against requests in flight: every point within 25%, the endpoints within 5%', async () => {
    const rows: string[] = [];
    let prev = 0;
    for (const [i, { depth, mibPerS }] of ZIP_PUBLISHED_CURVE.entries()) {
      const r = await measure(depth);
      const err = r.mibPerS / mibPerS - 1;
      rows.push(`${depth}\t${mibPerS}\t${r.mibPerS.toFixed(0)}\t${(err * 100).toFixed(1)}%`);
      const endpoint = i === 0 || i === ZIP_PUBLISHED_CURVE.length - 1;
      expect(Math.abs(err)).toBeLessThan(endpoint ? 0.05 : 0.25);
      // More in flight never makes it slower (to rounding at saturation).
      expect(r.mibPerS).toBeGreaterThan(prev * 0.995);
      prev = r.mibPerS;
      expect(r.faultsPerRequest).toBe(0);
    }
    // Deterministic: the same run gives the same figure.
    expect((await measure(30)).bytesPerS).toBe((await measure(30)).bytesPerS);
    process.stdout.write(`depth\tpublished MiB/s\tsimulated\terror\n${rows.join('\n')}\n`);
  });

  it('one request in flight: the device latency of an 8 KiB compress is ~55 us', async () => {
    const r = await measure(1, true, 40);
    expect(r.meanLatencyNs).toBeGreaterThan(50_000);
    expect(r.meanLatencyNs).toBeLessThan(60_000);
    // Little's law with nothing else in the way: throughput = 8 KiB / latency.
    expect(Math.abs(r.bytesPerS * r.meanLatencyNs * 1e-9 - 8192)).toBeLessThan(8192 * 0.02);
  });

  it('faulting on fresh SVA memory (-c 50 without memset) against pre-faulted', async () => {
    const { depth, faultingMibPerS, prefaultedMibPerS } = ZIP_PUBLISHED_FAULTING;
    const fresh = await measure(depth, false, 400);
    const warm = await measure(depth, true, 400);
    // Each 8 KiB of random data gzips to 8215 bytes: three fresh output pages fault per request.
    expect(fresh.faultsPerRequest).toBe(3);
    expect(warm.faultsPerRequest).toBe(0);
    expect(Math.abs(fresh.mibPerS / faultingMibPerS - 1)).toBeLessThan(0.25);
    expect(Math.abs(warm.mibPerS / prefaultedMibPerS - 1)).toBeLessThan(0.1);
    expect(warm.mibPerS / fresh.mibPerS).toBeGreaterThan(2.5);
    process.stdout.write(
      `faulting ${fresh.mibPerS.toFixed(0)} MiB/s (published ${faultingMibPerS}), pre-faulted ${warm.mibPerS.toFixed(0)} (published ${prefaultedMibPerS})\n`,
    );
  });
});

describe('which buffers fault', () => {
  it('fresh buffers fault once per page; MAP_POPULATE or touched ones never', () => {
    const { k, p } = boot();
    const ctx = openContext(p, 'gzip');
    const data = new Uint8Array(Buffer.from('x'.repeat(3000) + 'y'.repeat(3000)).subarray(0, 6000));
    for (let i = 0; i < data.length; i += 7) data[i] = i & 0xff;
    const want = zlib.gzipSync(data);
    const len = 4 * PAGE_SIZE;
    const submit = (src: number, dst: number) =>
      ctx.submitSync({ op: 'compress', alg: 'gzip', src, srcLen: data.length, dst, dstLen: len });

    // Source written by the CPU (present), destination fresh: one fault per output page.
    const src = p.mmap(2 * PAGE_SIZE);
    p.write(src, data);
    const fresh = p.mmap(len);
    const c1 = submit(src, fresh);
    expect(c1).toMatchObject({ status: 0, produced: want.length });
    expect(c1.faults).toBe(Math.ceil(want.length / PAGE_SIZE));
    expect(Buffer.from(p.read(fresh, want.length)).equals(want)).toBe(true);
    // The same destination again: mapped now, no fault.
    expect(submit(src, fresh).faults).toBe(0);

    const populated = p.mmap(len, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE });
    expect(submit(src, populated)).toMatchObject({ status: 0, faults: 0 });
    const touched = p.mmap(len);
    p.touch(touched, len, { write: true });
    expect(submit(src, touched)).toMatchObject({ status: 0, faults: 0 });

    // A source never touched reads the zero page through faults too, then compresses zeros.
    const zeros = p.mmap(2 * PAGE_SIZE);
    const c2 = submit(zeros, populated);
    expect(c2.faults).toBe(2);
    expect(
      Buffer.from(p.read(populated, c2.produced)).equals(zlib.gzipSync(new Uint8Array(data.length))),
    ).toBe(true);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});
