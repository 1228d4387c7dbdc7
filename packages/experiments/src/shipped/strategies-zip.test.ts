/**
 * Issue 6's "must show": one zip workload, the same bytes and requests, run under every pin
 * strategy svasim ships, from this one file. Each strategy gets a fresh kernel; the process
 * allocates its buffers the strategy's way (ctx.allocBuffer), prepares them, compresses, checks
 * the output inflates back, releases and exits. Printed per strategy: IO page faults taken by the
 * device, bytes pinned while prepared, VmLck while prepared, and what is left afterwards.
 */
import { describe, expect, it } from '@jest/globals';
import { gunzipSync } from 'node:zlib';
import { ZIP_CONFIG, ZipAccelerator, zipPlugin } from '@svasim/accel-zip';
import { PAGE_SIZE, createKernel, definePlugin, type Kernel, type Plugin } from '@svasim/kernel';
import { openContext } from '@svasim/user';
import { DEFAULT_STRATEGIES } from '../registry';

const REQUESTS = 8;
const LEN = 64 * 1024;

/** The zip device without SVA, for the one strategy ('vfio') whose DMA uses IOVAs. */
const zipNoSvaPlugin = definePlugin({
  name: 'hisi_zip',
  kind: 'accelerator',
  register: ({ kernel }) => new ZipAccelerator(kernel as Kernel, { ...ZIP_CONFIG, sva: false }),
});

/** Half text-like, half noise: compresses to about half, so the output spans several pages. */
function input(i: number): Uint8Array {
  const words = ['page', 'pin', 'fault', 'iommu', 'sva', 'dma', 'cma', 'thp', 'migrate', 'zone'];
  const out = new Uint8Array(LEN);
  let x = 0x9e3779b9 ^ i;
  for (let o = 0; o < LEN;) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const w = words[x % words.length] + ' ';
    for (let j = 0; j < w.length && o < LEN; j++) out[o++] = o < LEN / 2 ? w.charCodeAt(j) : x >>> 24;
  }
  return out;
}

interface Row {
  strategy: string;
  iopf: number;
  pinnedKiB: number;
  lockedKiB: number;
  pinsLeft: number;
  lockedLeft: number;
}

function runUnder(name: string, strategy: Plugin | readonly Plugin[]): Row {
  const accel = name === 'vfio' ? zipNoSvaPlugin : zipPlugin;
  const k = createKernel({
    seed: 7,
    memory: { nodes: [{ size: '512MiB' }], hugepages: { '2MiB': 16 } },
    plugins: [accel, ...(Array.isArray(strategy) ? strategy : [strategy as Plugin])],
  });
  // A udev rule's job: let an unprivileged process open the device nodes.
  const udev = k.spawn({ name: 'udevd' });
  udev.chmod('/dev/hisi_zip-0', 0o666);
  if (name === 'uacce-ctrl') udev.chmod('/dev/uacce_ctrl', 0o666);
  udev.exit();
  const p = k.spawn({ uid: 1000, rlimits: { memlock: 64 << 20 } });
  const ctx = openContext(p, 'gzip');
  const bufs: Array<{ src: number; dst: number; data: Uint8Array }> = [];
  for (let i = 0; i < REQUESTS; i++) {
    const src = ctx.allocBuffer(LEN);
    const dst = ctx.allocBuffer(LEN);
    const data = input(i);
    p.write(src, data);
    ctx.prepare(src, LEN);
    ctx.prepare(dst, LEN);
    bufs.push({ src, dst, data });
  }
  const v0 = k.vmstat();
  const pinnedKiB = ((v0.nr_foll_pin_acquired - v0.nr_foll_pin_released) * PAGE_SIZE) / 1024;
  const lockedKiB = p.status().vmLck / 1024;
  let iopf = 0;
  for (const b of bufs) {
    const c = ctx.submitSync({
      op: 'compress',
      alg: 'gzip',
      src: b.src,
      srcLen: LEN,
      dst: b.dst,
      dstLen: LEN,
    });
    expect(c.status).toBe(0);
    expect(Buffer.from(gunzipSync(p.read(b.dst, c.produced))).equals(Buffer.from(b.data))).toBe(true);
    iopf += c.faults;
  }
  for (const b of bufs) {
    ctx.release(b.src, LEN);
    ctx.release(b.dst, LEN);
  }
  const v1 = k.vmstat();
  const row: Row = {
    strategy: name,
    iopf,
    pinnedKiB,
    lockedKiB,
    pinsLeft: v1.nr_foll_pin_acquired - v1.nr_foll_pin_released,
    lockedLeft: p.status().vmLck,
  };
  ctx.close();
  p.exit();
  expect(k.checkInvariants()).toEqual([]);
  k.shutdown();
  return row;
}

describe('one zip workload under every pin strategy', () => {
  const rows: Row[] = [];

  for (const [name, strategy] of Object.entries(DEFAULT_STRATEGIES))
    it(`${name}: compresses exactly, and release leaves nothing pinned or locked`, () => {
      const row = runUnder(name, strategy);
      rows.push(row);
      expect(row.pinsLeft).toBe(0);
      expect(row.lockedLeft).toBe(0);
    });

  it('shows the trade-off: plain SVA faults, the pinning strategies do not; only some pin', () => {
    const by = new Map(rows.map((r) => [r.strategy, r]));
    // Every destination is fresh: without help, the device faults on each page it writes (about
    // half of LEN per request).
    expect(by.get('none')!.iopf).toBeGreaterThanOrEqual((REQUESTS * LEN) / PAGE_SIZE / 4);
    for (const s of [
      'mlock',
      'mempinfd',
      'uacce-ctrl',
      'hugetlb-pool',
      'short-term',
      'migration-control',
      'vfio',
    ])
      expect(by.get(s)!.iopf).toBe(0);
    // Long-term pins: mempinfd, uacce_ctrl and vfio pin every prepared byte; the others pin nothing.
    const all = (2 * REQUESTS * LEN) / 1024;
    for (const s of ['mempinfd', 'uacce-ctrl', 'vfio']) expect(by.get(s)!.pinnedKiB).toBe(all);
    for (const s of ['none', 'mlock', 'hugetlb-pool', 'odp', 'short-term', 'migration-control'])
      expect(by.get(s)!.pinnedKiB).toBe(0);
    const table = [
      'strategy           iopf  pinned KiB  locked KiB',
      ...rows.map(
        (r) =>
          `${r.strategy.padEnd(18)} ${String(r.iopf).padStart(4)}  ${String(r.pinnedKiB).padStart(10)}  ${String(r.lockedKiB).padStart(10)}`,
      ),
    ].join('\n');
    console.log(
      `one zip workload (${REQUESTS} x ${LEN / 1024} KiB gzip, fresh buffers) per strategy:\n${table}`,
    );
  });
});
