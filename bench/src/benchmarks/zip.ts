import { createKernel } from '@svasim/kernel';
import {
  MIB,
  ZIP_PUBLISHED_CURVE,
  ZIP_PUBLISHED_FAULTING,
  zipPlugin,
  zipThroughput,
  type ZipAccelerator,
  type ZipThroughputOptions,
} from '@svasim/accel-zip';
import { openContext } from '@svasim/user';
import type { Benchmark } from '../benchmark';

/** Depths reported (the 1, 10, 30, 60, and 4: the published run without -c). */
const DEPTHS = [1, 4, 10, 30, 60] as const;
/** Input compressed for the wall-time figure: 128 MiB of 8 KiB requests. */
const WALL_BYTES = 128 * MIB;

const gb = (bytesPerS: number) => Math.round(bytesPerS / 1e7) / 100;

/** A Kunpeng-920-socket-like kernel (64 CPUs, smmuv3) with one hisi_zip. */
function rig() {
  const k = createKernel({ cpus: 64, memory: { nodes: [{ size: '1GiB' }] }, plugins: [zipPlugin] });
  return { k, p: k.spawn(), device: k.plugin<ZipAccelerator>('hisi_zip') };
}

async function run(depth: number, opts: Partial<ZipThroughputOptions> & { viaUserLib?: boolean } = {}) {
  const { k, p, device } = rig();
  const ctx = opts.viaUserLib ? openContext(p, 'gzip') : undefined;
  const r = await zipThroughput({
    kernel: k,
    proc: p,
    device: ctx ? undefined : device,
    ctx,
    depth,
    requests: Math.max(150, 7 * depth),
    ...opts,
  });
  if (r.errors) throw new Error(`zip benchmark: ${r.errors} request(s) failed at depth ${depth}`);
  const bad = k.checkInvariants();
  if (bad.length) throw new Error(`zip benchmark left the kernel inconsistent: ${bad[0]}`);
  return r;
}

/**
 * zip: the simulated hisi_zip against Linaro/uadk's published compress curve (simulated time), and
 * the wall time the simulator needs per simulated GB compressed.
 */
export const zipBenchmark: Benchmark = {
  name: 'zip',
  async run() {
    const out: Record<string, unknown> = {};
    const published = new Map(ZIP_PUBLISHED_CURVE.map((x) => [x.depth, x.mibPerS]));
    for (const depth of DEPTHS) {
      process.stderr.write(`zip: depth ${depth}...\n`);
      out[`zip_sim_gbps_at_depth_${depth}`] = gb((await run(depth)).bytesPerS);
      const pub = published.get(depth);
      out[`zip_published_gbps_at_depth_${depth}`] = pub === undefined ? null : gb(pub * MIB);
    }
    out.zip_published_note =
      'perf.rst test_bind_api MB/s = MiB/s; its run without -c has 4 in flight (req_cache_num default), none at 1';
    process.stderr.write('zip: faulting vs pre-faulted at depth 50...\n');
    const f = ZIP_PUBLISHED_FAULTING;
    out.zip_sim_gbps_faulting_depth_50 = gb(
      (await run(f.depth, { prefault: false, requests: 400 })).bytesPerS,
    );
    out.zip_published_gbps_faulting_depth_50 = gb(f.faultingMibPerS * MIB);
    out.zip_sim_gbps_prefaulted_depth_50 = gb((await run(f.depth, { requests: 400 })).bytesPerS);
    out.zip_published_gbps_prefaulted_depth_50 = gb(f.prefaultedMibPerS * MIB);
    for (const depth of [1, 10, 30, 60]) {
      process.stderr.write(`zip: depth ${depth} through @svasim/user...\n`);
      out[`zip_userlib_gbps_at_depth_${depth}`] = gb((await run(depth, { viaUserLib: true })).bytesPerS);
    }

    process.stderr.write('zip: wall time for 128 MiB at depth 60...\n');
    const requests = WALL_BYTES / 8192;
    const t0 = process.hrtime.bigint();
    const r = await run(60, { requests, buffers: 512 });
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    out.wall_s_per_sim_gb = Math.round((wallS / (WALL_BYTES / 1e9)) * 100) / 100;
    out.wall_s_per_sim_gb_note = `measured on ${WALL_BYTES / MIB} MiB (${requests} x 8 KiB gzip of random data, 60 in flight), scaled to 1 GB`;
    out.zip_sim_s_per_wall_s = Math.round((r.elapsedNs / 1e9 / wallS) * 1e4) / 1e4;
    return out;
  },
};
