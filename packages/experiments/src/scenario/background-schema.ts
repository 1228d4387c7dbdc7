/**
 * Background activity: what the rest of the system does while the workloads run, a union on
 * `kind`. Each entry may say when it starts (`start`, default 0). Implementations live in
 * runner/background; they use kernel APIs only (docs/mm.md), never an accelerator plugin.
 */
import { z } from 'zod';
import { Duration, Fraction, Name, Rate, Size } from './fields';

const start = Duration.default(0).meta({
  description: 'when the activity begins (simulated time from boot)',
});

/** 'fragmentation' - fill free memory page by page from two processes and free one's pages. */
export const FragmentationSchema = z.strictObject({
  kind: z.literal('fragmentation'),
  start,
  fill: Fraction.default(0.5).meta({ description: 'share of free memory to fill before freeing half of it' }),
  grain: z
    .number()
    .int()
    .min(1)
    .max(512)
    .default(1)
    .meta({ description: 'pages each process takes in turn (1: every other page is freed)' }),
  node: z.number().int().nonnegative().optional(),
});

/** 'compaction' - compact all memory periodically (echo 1 > compact_memory), or tune proactiveness. */
export const CompactionSchema = z.strictObject({
  kind: z.literal('compaction'),
  start,
  every: Duration.default('50ms'),
  proactiveness: z.number().int().min(0).max(100).optional().meta({
    description: 'set vm.compaction_proactiveness at start (kcompactd) instead of compacting by hand',
  }),
});

/** 'thp' - THP mode and an eager khugepaged; optional memory another process keeps THP-eligible. */
export const ThpSchema = z.strictObject({
  kind: z.literal('thp'),
  start,
  mode: z.enum(['always', 'madvise', 'never']).optional(),
  khugepagedEvery: Duration.default('10ms').meta({ description: 'run a khugepaged pass this often' }),
  pagesToScan: z.number().int().positive().optional(),
  churn: Size.optional().meta({
    description: 'memory a helper process maps and touches sparsely for khugepaged',
  }),
});

/**
 * 'numa-imbalance' - move processes between nodes so NUMA balancing migrates their memory after
 * them (the scanner runs at `scanEvery`, fast enough for runs of milliseconds).
 */
export const NumaImbalanceSchema = z.strictObject({
  kind: z.literal('numa-imbalance'),
  start,
  every: Duration.default('20ms'),
  processes: z
    .array(Name)
    .optional()
    .meta({ description: 'process names to move (default: every workload process)' }),
  scanEvery: Duration.default('2ms').meta({
    description:
      "run the NUMA scanner (task_numa_work) on the moved processes this often; the kernel's own daemon waits 1 s",
  }),
});

/** 'cma-alloc' - another driver allocating contiguous CMA memory (a camera's buffers). */
export const CmaAllocSchema = z.strictObject({
  kind: z.literal('cma-alloc'),
  start,
  sizes: z.array(Size).min(1).meta({ description: 'allocation sizes, used in turn' }),
  rate: Rate.meta({ description: 'allocations per simulated second' }),
  hold: Duration.default('5ms').meta({ description: 'how long each allocation is kept' }),
});

/**
 * 'hugepage-alloc' - grow the hugetlb pool at run time (echo N+1 > nr_hugepages), or probe every
 * aligned range for whether a huge page could be assembled there.
 */
export const HugepageAllocSchema = z.strictObject({
  kind: z.literal('hugepage-alloc'),
  start,
  size: z.enum(['2MiB', '1GiB']),
  every: Duration.default('10ms'),
  count: z.number().int().positive().default(1).meta({ description: 'attempts (with probe: passes)' }),
  node: z.number().int().nonnegative().optional(),
  probe: z.boolean().default(false).meta({
    description:
      'instead of growing the pool, try to assemble a page in every aligned range of the zones huge pages of this size come from (alloc_contig_range on each) and give each one back at once: the share of ranges that can be assembled',
  }),
});

/** 'memory-offline' - take memory blocks offline (and back online) as hot-unplug would. */
export const MemoryOfflineSchema = z.strictObject({
  kind: z.literal('memory-offline'),
  start,
  node: z.number().int().nonnegative().default(0),
  offset: Size.meta({ description: 'byte offset in the node (a multiple of 128 MiB)' }),
  size: Size.default('128MiB'),
  every: Duration.default('20ms'),
  count: z.number().int().positive().default(1).meta({ description: 'attempts' }),
  timeout: Duration.default('10ms').meta({
    description: 'give up an attempt after this much simulated time',
  }),
  online: z.boolean().default(true).meta({ description: 'bring the memory back online after a success' }),
});

/** 'memory-pressure' - a process growing its memory and touching it (reclaim, swap). */
export const MemoryPressureSchema = z.strictObject({
  kind: z.literal('memory-pressure'),
  start,
  size: Size.meta({ description: 'memory the process grows to' }),
  chunk: Size.default('2MiB').meta({ description: 'bytes touched per step' }),
  every: Duration.default('1ms').meta({ description: 'time between steps' }),
  node: z.number().int().nonnegative().optional(),
});

/** 'fork-storm' - a process forking repeatedly; children write and exit. */
export const ForkStormSchema = z.strictObject({
  kind: z.literal('fork-storm'),
  start,
  target: Name.optional().meta({
    description: 'process that forks (default: a helper process with its own memory)',
  }),
  memory: Size.default('16MiB').meta({ description: "the helper's memory (ignored with a target)" }),
  every: Duration.default('5ms'),
  children: z.number().int().min(1).max(64).default(1),
  childLifetime: Duration.default('1ms'),
  childWrites: Size.default(0).meta({ description: 'bytes each child writes (COW copies)' }),
});

/** BackgroundSchema - the union of every background activity, discriminated by `kind`. */
export const BackgroundSchema = z.discriminatedUnion(
  'kind',
  [
    FragmentationSchema,
    CompactionSchema,
    ThpSchema,
    NumaImbalanceSchema,
    CmaAllocSchema,
    HugepageAllocSchema,
    MemoryOfflineSchema,
    MemoryPressureSchema,
    ForkStormSchema,
  ],
  {
    error:
      "kind must be one of 'fragmentation', 'compaction', 'thp', 'numa-imbalance', 'cma-alloc', " +
      "'hugepage-alloc', 'memory-offline', 'memory-pressure', 'fork-storm'",
  },
);

/** BackgroundSpec - one parsed background activity. */
export type BackgroundSpec = z.infer<typeof BackgroundSchema>;
/** BackgroundKind - a background activity's `kind`. */
export type BackgroundKind = BackgroundSpec['kind'];
/** BackgroundOf - the parsed spec of background kind @K. */
export type BackgroundOf<K extends BackgroundKind> = Extract<BackgroundSpec, { kind: K }>;
