/**
 * Workloads: what a scenario's processes do with their accelerators, a union on `kind`.
 *
 * The kinds of issue 7 item 2. 'memcpy' (the reference copy device, @svasim/testkit's
 * memcpy_accel), 'zip-offload' (an nginx-like zlib offload to hisi_zip) and 'crypto-stream' (an
 * openssl-like cipher or digest stream to hisi_sec2) are implemented in runner/workloads. The
 * fields of the others are complete here so scenario files and editors can use them, and a
 * scenario naming one is refused as "not available in this build" until an implementation is
 * registered (PluginRegistry.workloads):
 * - 'gpu-atomics': a GPU kernel doing atomics to system memory;
 * - 'rdma-registration': an RDMA-like memory registration over a large sparse buffer of which a
 *   small working set is used (pinned registration against ODP, chosen by the strategy).
 */
import { z } from 'zod';
import { Duration, Fraction, Name, Rate, Size } from './fields';
import { ResidentWorkloadSchema } from './resident-schema';

/** The fields every request-stream workload shares (an application submitting buffers). */
const requestStream = {
  start: Duration.default(0).meta({
    description: 'when the application starts (opens its context, allocates its buffers), from boot',
  }),
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
  pool: z.boolean().default(false).meta({
    description:
      'reused buffers carved from one mapping (a buffer pool, which THP can back with huge pages) instead of a mapping each; ignored when the strategy allocates buffers itself (hugetlb-pool)',
  }),
  warm: z.boolean().default(false).meta({
    description:
      "reused buffers' destinations are written once by the CPU when allocated (a long-running server's warm pool), so the device's first use of them takes no IO page fault",
  }),
  freshFraction: Fraction.optional().meta({
    description:
      "with reused buffers: share of requests that map, prepare and release fresh buffers instead (new connections); 'fresh' is 1",
  }),
};

/** How often request-stream workloads check an output (0: never). */
const verifyEvery = z.number().int().nonnegative().default(16).meta({
  description:
    'check one request in this many: its output round-trips to the source (0: never; counts data_mismatch)',
});

/** 'memcpy' - copies through the reference copy device (memcpy_accel, algorithm 'memcpy'). */
export const MemcpyWorkloadSchema = z.strictObject({
  kind: z.literal('memcpy'),
  ...requestStream,
  verify: z
    .boolean()
    .default(false)
    .meta({ description: 'stamp each source and check the copy (counts data_mismatch)' }),
});

/**
 * 'zip-offload' - an nginx-like zlib offload to a zip device (hisi_zip): each request compresses
 * (or decompresses) `requestSize` bytes of generated data, `compressibility` of which is text.
 */
export const ZipOffloadWorkloadSchema = z.strictObject({
  kind: z.literal('zip-offload'),
  ...requestStream,
  alg: z.enum(['deflate', 'zlib', 'gzip']).default('gzip'),
  op: z.enum(['compress', 'decompress']).default('compress'),
  level: z.number().int().min(1).max(9).optional().meta({
    description: "zlib level (default: zlib's default, 6; nginx's gzip_comp_level default is 1)",
  }),
  compressibility: Fraction.default(0.5).meta({ description: 'share of the source that compresses away' }),
  verifyEvery,
});

/** The algorithms of 'crypto-stream' (hisi_sec2's sysfs list). */
export const CRYPTO_STREAM_ALGS = [
  'cbc(aes)',
  'ctr(aes)',
  'xts(aes)',
  'gcm(aes)',
  'sha1',
  'sha256',
  'sha512',
  'hmac(sha256)',
] as const;

/**
 * 'crypto-stream' - an openssl-like cipher or digest stream to a crypto device (hisi_sec2): each
 * request encrypts, decrypts, digests or MACs `requestSize` bytes of random data.
 */
export const CryptoStreamWorkloadSchema = z.strictObject({
  kind: z.literal('crypto-stream'),
  ...requestStream,
  alg: z.enum(CRYPTO_STREAM_ALGS).default('cbc(aes)'),
  op: z.enum(['encrypt', 'decrypt', 'digest', 'hmac']).optional().meta({
    description: "default: 'encrypt' for ciphers, 'digest' for sha*, 'hmac' for hmac(sha256)",
  }),
  keyBytes: z.number().int().min(0).max(128).optional().meta({
    description: 'key length (default: 16 for cbc/ctr/gcm, 32 for xts and hmac, none for digests)',
  }),
  stream: z.boolean().default(false).meta({
    description:
      "chain each lane's requests as one stream, as UADK does between BDs (cbc: the last ciphertext block is the next IV; ctr: the counter advances); cbc(aes) and ctr(aes) encryption only",
  }),
  verifyEvery,
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
    ResidentWorkloadSchema,
  ],
  {
    error:
      "kind must be one of 'memcpy', 'zip-offload', 'crypto-stream', 'gpu-atomics', 'rdma-registration', 'resident'",
  },
);

/** WORKLOAD_KINDS - every kind the schema knows, in the union's order. */
export const WORKLOAD_KINDS = [
  'memcpy',
  'zip-offload',
  'crypto-stream',
  'gpu-atomics',
  'rdma-registration',
  'resident',
] as const;

/** WorkloadSpec - one parsed workload. */
export type WorkloadSpec = z.infer<typeof WorkloadSchema>;
/** WorkloadKind - a workload's `kind`. */
export type WorkloadKind = WorkloadSpec['kind'];
/** MemcpyWorkloadSpec - a parsed 'memcpy' workload. */
export type MemcpyWorkloadSpec = z.infer<typeof MemcpyWorkloadSchema>;
/** ZipOffloadWorkloadSpec - a parsed 'zip-offload' workload. */
export type ZipOffloadWorkloadSpec = z.infer<typeof ZipOffloadWorkloadSchema>;
/** CryptoStreamWorkloadSpec - a parsed 'crypto-stream' workload. */
export type CryptoStreamWorkloadSpec = z.infer<typeof CryptoStreamWorkloadSchema>;
/** RequestStreamWorkloadSpec - a workload submitting buffers to a uacce device. */
export type RequestStreamWorkloadSpec =
  MemcpyWorkloadSpec | ZipOffloadWorkloadSpec | CryptoStreamWorkloadSpec;
