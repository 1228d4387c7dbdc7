import {
  MIGRATE_SYNC,
  MR_NUMA_MISPLACED,
  GFP_HIGHUSER_MOVABLE,
  PAGE_SIZE,
  __GFP_THISNODE,
  compactionCounters,
  createKernel,
  emptyMigrateStats,
  fragmentationScoreNode,
  isolateLruFolio,
  migratePages,
  putbackMovableFolio,
} from '@svasim/kernel';
import type { Benchmark } from '../benchmark';

/** Share of free memory each of the two processes of the fragmentation step faults in. */
const FILL = 0.45;

/**
 * A fragmented 16 GiB machine, deterministically: two processes fault 4 KiB pages in strict
 * alternation (THP off) until 90% of memory is used, so consecutive pfns belong to processes A,
 * B, A, B...; then B exits and every other page of that 90% is free. No 2 MiB block is free
 * except above the filled part.
 */
function fragmented16g() {
  const k = createKernel({
    memory: { nodes: [{ size: '16GiB' }] },
    sysctl: { transparent_hugepage: 'never' },
  });
  const a = k.spawn();
  const b = k.spawn();
  const pages = Math.floor(k.phys.nrFreePages() * FILL);
  const ma = a.mmap(pages * PAGE_SIZE);
  const mb = b.mmap(pages * PAGE_SIZE);
  for (let i = 0; i < pages; i++) {
    a.touch(ma + i * PAGE_SIZE, PAGE_SIZE, { write: true });
    b.touch(mb + i * PAGE_SIZE, PAGE_SIZE, { write: true });
  }
  b.exit();
  return { k, pages };
}

/** Wall time of migrating @n 4 KiB pages between nodes with migratePages, batches of 32. */
function migratePagesPerSec(n: number): number {
  const k = createKernel({
    memory: { nodes: [{ size: '2GiB' }, { size: '2GiB' }] },
    sysctl: { transparent_hugepage: 'never' },
  });
  const p = k.spawn({ node: 0 });
  const addr = p.mmap(n * PAGE_SIZE);
  p.touch(addr, n * PAGE_SIZE, { write: true });
  const pfns: number[] = [];
  for (let i = 0; i < n; i++) pfns.push(p.pagemap(addr + i * PAGE_SIZE).pfn!);
  const toNode1 = (_src: number, order: number) =>
    k.phys.allocPages(GFP_HIGHUSER_MOVABLE | __GFP_THISNODE, order, 1);
  const t0 = process.hrtime.bigint();
  let moved = 0;
  for (let i = 0; i < n; i += 32) {
    const batch = pfns.slice(i, i + 32).filter((f) => isolateLruFolio(k.mmCore, f));
    const stats = emptyMigrateStats();
    migratePages(k.mmCore, batch, toNode1, MIGRATE_SYNC, MR_NUMA_MISPLACED, stats);
    for (const f of stats.failedFolios) putbackMovableFolio(k.mmCore, f);
    moved += stats.succeeded;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (moved !== n) throw new Error(`migrate_pages benchmark: moved ${moved} of ${n}`);
  return n / s;
}

/** compaction: a full compact_memory of a fragmented 16 GiB machine, and raw migration speed. */
export const compactionBenchmark: Benchmark = {
  name: 'compaction',
  async run() {
    process.stderr.write('compaction: fragmenting 16 GiB...\n');
    const t0 = process.hrtime.bigint();
    const { k } = fragmented16g();
    const fragMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const score0 = fragmentationScoreNode(k.mmCore, 0);
    process.stderr.write(
      `compaction: fragmented in ${Math.round(fragMs)} ms (score ${score0}); compacting...\n`,
    );
    const t1 = process.hrtime.bigint();
    k.compactMemory();
    const compactMs = Number(process.hrtime.bigint() - t1) / 1e6;
    const c = compactionCounters(k.mmCore);
    const score1 = fragmentationScoreNode(k.mmCore, 0);
    const bad = k.checkInvariants();
    if (bad.length) throw new Error(`compaction benchmark: invariants broken: ${bad[0]}`);
    process.stderr.write('compaction: migrate_pages between nodes...\n');
    const rate = migratePagesPerSec(262_144);
    return {
      compact_16g_ms: Math.round(compactMs),
      compact_16g_pages_migrated: c.migrated,
      compact_16g_sim_ms: Math.round(c.costNs / 1e6),
      compact_16g_score_before: score0,
      compact_16g_score_after: score1,
      migrate_pages_per_sec: Math.round(rate),
    };
  },
};
