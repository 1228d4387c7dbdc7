import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createKernel, PageFrames, PAGE_SIZE } from '@svasim/kernel';
import type { Benchmark } from '../benchmark';

const GiB = 2 ** 30;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** First-touch anonymous write faults on 1 GiB (262,144 faults) of a fresh mapping. */
function faultsPerSec(): number {
  // THP off: this measures 4 KiB first-touch faults (a 1 GiB mapping would otherwise get 2 MiB pages).
  const k = createKernel({
    memory: { nodes: [{ size: '4GiB' }] },
    sysctl: { transparent_hugepage: 'never' },
  });
  const p = k.spawn();
  const warm = p.mmap(64 * 2 ** 20);
  p.touch(warm, 64 * 2 ** 20, { write: true });
  p.munmap(warm, 64 * 2 ** 20);
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const a = p.mmap(GiB);
    const t0 = process.hrtime.bigint();
    p.touch(a, GiB, { write: true });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    runs.push(GiB / PAGE_SIZE / s);
    p.munmap(a, GiB);
  }
  return median(runs);
}

/** Boot time and RSS of a 64 GiB two-node machine, each in a fresh process; the median of three. */
function boot64g(): { ms: number; rssMb: number } {
  const probe = join(__dirname, '..', 'probes', 'boot64g.js');
  const runs = [0, 1, 2].map(() => JSON.parse(execFileSync(process.execPath, [probe], { encoding: 'utf8' })));
  return { ms: median(runs.map((r) => r.ms)), rssMb: median(runs.map((r) => r.rssMb)) };
}

/** mm: fault throughput, page metadata size, boot of a large machine. */
export const mmBenchmark: Benchmark = {
  name: 'mm',
  async run() {
    process.stderr.write('mm: anonymous faults...\n');
    const faults = faultsPerSec();
    process.stderr.write('mm: 64 GiB boot...\n');
    const boot = boot64g();
    return {
      faults_per_sec: Math.round(faults),
      metadata_bytes_per_page: PageFrames.bytesPerPage(),
      boot_64g_ms: Math.round(boot.ms),
      boot_64g_rss_mb: Math.round(boot.rssMb),
    };
  },
};
