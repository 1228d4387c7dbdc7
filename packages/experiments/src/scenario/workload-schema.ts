/**
 * Workloads: what a scenario's processes do with their accelerators, a union on `kind`.
 *
 * 'memcpy' drives the reference copy device (@svasim/testkit's memcpy_accel) and is implemented
 * in runner/workloads. The other kinds are the workloads of issue 7 item 2; their fields are
 * complete here so scenario files and editors can use them now, and the runner refuses them
 * until an implementation is registered (PluginRegistry.workloads):
 * - 'zip-offload': an nginx-like zlib offload to a HiSilicon-ZIP-like device;
 * - 'crypto-stream': an openssl-like cipher/digest stream to a SEC-like device;
 * - 'gpu-atomics': a GPU kernel doing atomics to system memory;
 * - 'rdma-registration': an RDMA-like memory registration over a large sparse buffer of which a
 *   small working set is used (pinned registration against ODP, chosen by the strategy).
 */
import { z } from 'zod';
import { Duration, Fraction, Name, Rate, Size } from './fields';

/** The fields every request-stream workload shares (an application submitting buffers). */
const requestStream = {
  device: Name.optional().meta({
    description: "the uacce device to use (e.g. 'memcpy_accel-0'); default: the one with most free queues",
  }),
  requestSize: Size.meta({ description: 'bytes per request (source length)' }),
  inflight: z
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(1)
    .meta({ description: 'requests in flight (closed loop)' }),
  buffers: z
    .enum(['fresh', 'reused'])
    .default('reused')
    .meta({ description: "'fresh': new buffers mapped for every request; 'reused': a pool prepared once" }),
  workingSet: Size.optional().meta({
    description:
      'bytes of buffers cycled through (reused buffers); default: just enough for the requests in flight',
  }),
  count: z.number().int().positive().optional().meta({ description: 'stop after this many requests' }),
  rate: Rate.optional().meta({
    description: 'requests per simulated second (default: as fast as completions allow)',
  }),
};

/** 'memcpy' - copies through the reference copy device (memcpy_accel, algorithm 'memcpy'). */
export const MemcpyWorkloadSchema = z.strictObject({
  kind: z.literal('memcpy'),
  ...requestStream,
  verify: z
    .boolean()
    .default(false)
    .meta({ description: 'stamp each source and check the copy (counts data_mismatch)' }),
});

/** 'zip-offload' - an nginx-like zlib offload (placeholder: fields only until implemented). */
export const ZipOffloadWorkloadSchema = z.strictObject({
  kind: z.literal('zip-offload'),
  ...requestStream,
  alg: z.enum(['deflate', 'zlib', 'gzip']).default('gzip'),
  op: z.enum(['compress', 'decompress']).default('compress'),
  level: z.number().int().min(1).max(9).optional(),
  compressibility: Fraction.default(0.5).meta({ description: 'share of the source that compresses away' }),
});

/** 'crypto-stream' - an openssl-like cipher or digest stream (placeholder until implemented). */
export const CryptoStreamWorkloadSchema = z.strictObject({
  kind: z.literal('crypto-stream'),
  ...requestStream,
  alg: z
    .enum(['cbc(aes)', 'ctr(aes)', 'xts(aes)', 'gcm(aes)', 'sha1', 'sha256', 'sha512', 'hmac(sha256)'])
    .default('cbc(aes)'),
  op: z.enum(['encrypt', 'decrypt', 'digest', 'hmac']).default('encrypt'),
  keyBytes: z.number().int().min(0).max(128).optional(),
  stream: z.boolean().default(false).meta({ description: 'chain requests as one stream (stateful context)' }),
});

/** 'gpu-atomics' - a GPU kernel doing atomics to system memory (placeholder until implemented). */
export const GpuAtomicsWorkloadSchema = z.strictObject({
  kind: z.literal('gpu-atomics'),
  device: Name.optional(),
  buffer: Size.meta({ description: 'system memory the kernel operates on' }),
  threads: z
    .number()
    .int()
    .min(1)
    .max(1 << 20)
    .default(1024),
  atomicsPerLaunch: z.number().int().positive().default(4096),
  pattern: z.enum(['sequential', 'random']).default('random'),
  hostTouchEvery: Duration.optional().meta({ description: 'the CPU also writes the buffer this often' }),
  count: z.number().int().positive().optional().meta({ description: 'kernel launches' }),
  rate: Rate.optional().meta({ description: 'kernel launches per simulated second' }),
});

/** 'rdma-registration' - registration of a large sparse buffer, small working set (placeholder). */
export const RdmaRegistrationWorkloadSchema = z.strictObject({
  kind: z.literal('rdma-registration'),
  device: Name.optional(),
  region: Size.meta({ description: 'registered virtual region (sparse: only the working set is touched)' }),
  workingSet: Size.optional(),
  workingSetFraction: Fraction.optional().meta({
    description: 'working set as a share of the region (e.g. 0.1)',
  }),
  accessSize: Size.default('4KiB'),
  pattern: z.enum(['sequential', 'random']).default('random'),
  inflight: z.number().int().min(1).max(1024).default(1),
  count: z.number().int().positive().optional(),
  rate: Rate.optional(),
});

/** WorkloadSchema - the union of every workload kind, discriminated by `kind`. */
export const WorkloadSchema = z.discriminatedUnion(
  'kind',
  [
    MemcpyWorkloadSchema,
    ZipOffloadWorkloadSchema,
    CryptoStreamWorkloadSchema,
    GpuAtomicsWorkloadSchema,
    RdmaRegistrationWorkloadSchema,
  ],
  {
    error: "kind must be one of 'memcpy', 'zip-offload', 'crypto-stream', 'gpu-atomics', 'rdma-registration'",
  },
);

/** WORKLOAD_KINDS - every kind the schema knows, in the union's order. */
export const WORKLOAD_KINDS = [
  'memcpy',
  'zip-offload',
  'crypto-stream',
  'gpu-atomics',
  'rdma-registration',
] as const;

/** WorkloadSpec - one parsed workload. */
export type WorkloadSpec = z.infer<typeof WorkloadSchema>;
/** WorkloadKind - a workload's `kind`. */
export type WorkloadKind = WorkloadSpec['kind'];
/** MemcpyWorkloadSpec - a parsed 'memcpy' workload. */
export type MemcpyWorkloadSpec = z.infer<typeof MemcpyWorkloadSchema>;
