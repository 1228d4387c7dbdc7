/**
 * zipThroughput - the workload of the published hisi_zip figures (Linaro/uadk test_bind_api -o perf)
 * run on the simulated device: `depth` compress requests of `blockSize` bytes kept in flight on one
 * queue, each on its own slice of a large pseudo-random input buffer (written by the CPU, so
 * present) and its own 2 x blockSize slice of an output buffer (EXPANSION_RATIO 2), which is either
 * touched first (the memset "hack" of perf.rst: pre-faulted) or fresh (every request's output
 * faults in the SMMU). Used by the calibration test and the zip benchmark.
 *
 * Two ways to drive it:
 * - as test_bind_api does (default): its own queue, and the next request submitted the moment a
 *   completion arrives (wd_recv_sync sleeps in poll() until the queue's interrupt, so the program
 *   reacts to each completion; what that wake-up costs is inside the calibrated per-request time).
 *   The client takes the device's onInterrupt hook for the run.
 * - through an @svasim/user context (`ctx`): its async submit, whose completions are found by
 *   polling with backoff (500 ns doubling to 50 us), so the program's own delays add to each
 *   request. The context is typed structurally so this plugin does not depend on the user library.
 */
import {
  ACCEL_CQE,
  ACCEL_DB_SQ_TAIL,
  ACCEL_OP_COMPRESS,
  ACCEL_QUEUE_CTRL,
  ACCEL_SQE,
  MADV_NOHUGEPAGE,
  MAP_SHARED,
  O_RDWR,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  UACCE_CMD_PUT_Q,
  UACCE_CMD_START_Q,
  UACCE_QFRT_DUS,
  UACCE_QFRT_MMIO,
  accelDusLayout,
  type AccelCqe,
  type Kernel,
  type Process,
  type VirtualAccelerator,
} from '@svasim/kernel';

/** The request fields zipThroughput sends (a subset of @svasim/user's AccelRequest). */
export interface ZipThroughputRequest {
  op: 'compress';
  alg: string;
  src: number;
  srcLen: number;
  dst: number;
  dstLen: number;
  level?: number;
}

/** The completion fields zipThroughput reads (a subset of @svasim/user's Completion). */
export interface ZipThroughputCompletion {
  status: number;
  produced: number;
  faults: number;
  latencyNs: number;
}

/** Anything that submits a request and resolves with its completion in simulated time. */
export interface ZipSubmitter {
  submit(req: ZipThroughputRequest): Promise<ZipThroughputCompletion>;
}

export interface ZipThroughputOptions {
  kernel: Kernel;
  /** The process whose memory the buffers are in (and that opens the queue or owns @ctx). */
  proc: Process;
  /** The device (test_bind_api mode: its queue is opened and its interrupt hook taken). */
  device?: VirtualAccelerator;
  /** Drive through this @svasim/user context instead (its poll-with-backoff completion path). */
  ctx?: ZipSubmitter;
  /** Requests kept in flight (test_bind_api -c). */
  depth: number;
  /** Requests in all. */
  requests: number;
  /** Bytes per request (test_bind_api -b; default 8192). */
  blockSize?: number;
  /** Distinct buffer slices, reused round-robin (default: one per request, as test_bind_api). */
  buffers?: number;
  /** Touch the output buffer before the run (default true); false: every output page faults. */
  prefault?: boolean;
  /** Algorithm (default 'gzip', test_bind_api's default) and level (default 0: zlib's default). */
  alg?: string;
  level?: number;
  /** Completions left out of the measured window at the start (default 2 x depth). */
  warmup?: number;
  /** Seed of the input data (default 1). */
  seed?: number;
}

export interface ZipThroughputResult {
  /** Input bytes compressed per simulated second over the measured window. */
  bytesPerS: number;
  /** The same in MiB/s, the unit of UADK's "MB/s". */
  mibPerS: number;
  /** Requests completed, and how many with a negative status. */
  completed: number;
  errors: number;
  /** IO page requests per request (all requests). */
  faultsPerRequest: number;
  /** Mean doorbell-to-completion latency, ns. */
  meanLatencyNs: number;
  /** Output bytes over input bytes. */
  ratio: number;
  /** Simulated ns from the first submit to the last completion. */
  elapsedNs: number;
}

/** Fill @buf with xorshift32 bytes from @seed (deterministic, no Math.random). */
function pseudoRandom(buf: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < buf.length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    for (let j = 0; j < 4 && i + j < buf.length; j++) buf[i + j] = (x >>> (8 * j)) & 0xff;
  }
}

/** What both drivers record per completion. */
interface Tally {
  times: number[];
  errors: number;
  faults: number;
  latency: number;
  produced: number;
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

/**
 * test_bind_api's loop on a raw queue: fill @depth requests, then for every completion (on the
 * device interrupt) take it and send the next.
 */
async function runRaw(
  o: ZipThroughputOptions,
  dev: VirtualAccelerator,
  next: (i: number) => ZipThroughputRequest,
  t: Tally,
): Promise<void> {
  const { kernel: k, proc: p } = o;
  const alg = o.alg ?? 'gzip';
  if (!dev.devPath) throw new Error('zipThroughput: the device is not realized');
  const name = dev.devPath.slice('/dev/'.length);
  const algIndex = k.readSysfs(`/sys/class/uacce/${name}/algorithms`).split('\n').indexOf(alg);
  if (algIndex < 0) throw new Error(`zipThroughput: ${name} does not list '${alg}'`);
  const dusSize = Number(k.readSysfs(`/sys/class/uacce/${name}/region_dus_size`).trim());
  const fd = p.open(`/dev/${name}`, O_RDWR);
  const rw = PROT_READ | PROT_WRITE;
  const mmio = p.mmap(PAGE_SIZE, { prot: rw, flags: MAP_SHARED, fd, offset: UACCE_QFRT_MMIO * PAGE_SIZE });
  const dus = p.mmap(dusSize, { prot: rw, flags: MAP_SHARED, fd, offset: UACCE_QFRT_DUS * PAGE_SIZE });
  p.ioctl(fd, UACCE_CMD_START_Q);
  const layout = accelDusLayout(ACCEL_QUEUE_CTRL.decode(p.read(dus, ACCEL_QUEUE_CTRL.size)).sq_depth);
  const n = o.requests;
  const depth = Math.min(o.depth, layout.sqDepth);
  let tail = 0;
  let sent = 0;
  let done = 0;
  const send = (): void => {
    const r = next(sent);
    p.write(
      dus + layout.sqOff + (tail % layout.sqDepth) * ACCEL_SQE.size,
      ACCEL_SQE.encode({
        op: ACCEL_OP_COMPRESS,
        alg: algIndex,
        flags: 0,
        tag: ++sent,
        src: r.src,
        dst: r.dst,
        src_len: r.srcLen,
        dst_len: r.dstLen,
        key: 0,
        iv: 0,
        key_len: 0,
        iv_len: 0,
        level: r.level ?? 0,
      }),
    );
    tail = (tail + 1) >>> 0;
    p.write(mmio + ACCEL_DB_SQ_TAIL, u32(tail));
  };
  const reap = (): void => {
    const c = ACCEL_QUEUE_CTRL.decode(p.read(dus, ACCEL_QUEUE_CTRL.size));
    let head = c.cq_head;
    while (head !== c.cq_tail) {
      const cqe: AccelCqe = ACCEL_CQE.decode(
        p.read(dus + layout.cqOff + (head % layout.cqDepth) * ACCEL_CQE.size, ACCEL_CQE.size),
      );
      head = (head + 1) >>> 0;
      done++;
      t.times.push(k.now());
      if (cqe.status < 0) t.errors++;
      t.faults += cqe.faults;
      t.latency += Number(cqe.latency_ns);
      t.produced += cqe.produced;
    }
    p.write(dus + ACCEL_QUEUE_CTRL.offsetOf('cq_head'), u32(head));
    while (sent < n && sent - done < depth) send();
  };
  const prev = dev.onInterrupt;
  dev.onInterrupt = () => reap();
  try {
    while (sent < n && sent < depth) send();
    await k.runUntilIdle();
  } finally {
    dev.onInterrupt = prev;
    p.ioctl(fd, UACCE_CMD_PUT_Q);
    p.munmap(dus, dusSize);
    p.munmap(mmio, PAGE_SIZE);
    p.close(fd);
  }
}

/** The same loop through an @svasim/user context, run as a task of the process. */
async function runCtx(
  o: ZipThroughputOptions,
  ctx: ZipSubmitter,
  next: (i: number) => ZipThroughputRequest,
  t: Tally,
): Promise<void> {
  const { kernel: k, proc: p } = o;
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < o.requests) {
      const c = await ctx.submit(next(sent++));
      t.times.push(k.now());
      if (c.status < 0) t.errors++;
      t.faults += c.faults;
      t.latency += c.latencyNs;
      t.produced += c.produced;
    }
  };
  const task = p.run(async () => {
    await Promise.all(Array.from({ length: Math.max(1, o.depth) }, worker));
  }, 'zip-throughput');
  await k.runUntilIdle();
  await task.done;
}

/**
 * zipThroughput - run the workload to completion (it drives the kernel with runUntilIdle) and
 * measure the steady-state throughput: input bytes of the completions after the warm-up over the
 * time they took. Needs `device` or `ctx`. Rejects if the kernel run fails; request errors are
 * counted, not thrown. The buffers (and the raw queue) are released afterwards.
 */
export async function zipThroughput(o: ZipThroughputOptions): Promise<ZipThroughputResult> {
  const { kernel: k, proc: p } = o;
  const block = o.blockSize ?? 8192;
  const n = o.requests;
  const depth = Math.max(1, Math.min(o.depth, n));
  const slots = Math.max(1, Math.min(n, o.buffers ?? n));
  const stride = 2 * block;
  const warmup = Math.max(1, Math.min(o.warmup ?? 2 * depth, n - 1));

  const src = p.mmap(slots * block);
  const dst = p.mmap(slots * stride);
  // 4 KiB pages, as the malloc'd buffers of the published runs fault page by page.
  p.madvise(src, slots * block, MADV_NOHUGEPAGE);
  p.madvise(dst, slots * stride, MADV_NOHUGEPAGE);
  const data = new Uint8Array(slots * block);
  pseudoRandom(data, o.seed ?? 1);
  p.write(src, data);
  if (o.prefault ?? true) p.touch(dst, slots * stride, { write: true });

  const next = (i: number): ZipThroughputRequest => {
    const slot = i % slots;
    return {
      op: 'compress',
      alg: o.alg ?? 'gzip',
      src: src + slot * block,
      srcLen: block,
      dst: dst + slot * stride,
      dstLen: stride,
      level: o.level ?? 0,
    };
  };
  const t: Tally = { times: [], errors: 0, faults: 0, latency: 0, produced: 0 };
  const t0 = k.now();
  try {
    if (o.ctx) await runCtx({ ...o, depth }, o.ctx, next, t);
    else if (o.device) await runRaw({ ...o, depth }, o.device, next, t);
    else throw new TypeError('zipThroughput: give `device` or `ctx`');
  } finally {
    p.munmap(src, slots * block);
    p.munmap(dst, slots * stride);
  }

  const times = t.times;
  const first = times[Math.min(warmup, times.length) - 1] ?? t0;
  const last = times[times.length - 1] ?? t0;
  const counted = times.length - Math.min(warmup, times.length);
  const bytesPerS = last > first ? (counted * block * 1e9) / (last - first) : 0;
  const completed = times.length;
  return {
    bytesPerS,
    mibPerS: bytesPerS / (1 << 20),
    completed,
    errors: t.errors,
    faultsPerRequest: t.faults / Math.max(1, completed),
    meanLatencyNs: t.latency / Math.max(1, completed),
    ratio: t.produced / Math.max(1, (completed - t.errors) * block),
    elapsedNs: last - t0,
  };
}
