/**
 * The 'rdma-registration' workload: an RDMA-like application registers a large, sparse region
 * once (ctx.prepare over all of it: a memory registration) and then receives data into a small
 * working set of it: each request is a device write of `accessSize` bytes from the lane's staging
 * buffer (the data off the wire) into one access slot of the working set (an RDMA WRITE landing in
 * the registered region). The device is whatever lists 'memcpy' (memcpy_accel), standing in for
 * an RDMA NIC: svasim has no NIC model, and what is compared is what the registration does to
 * memory, not the network.
 *
 * What the registration costs depends on the run's strategy: a pinning one (mempinfd, vfio...)
 * faults in and pins the whole region at registration (ib_umem_get); 'odp' registers it without
 * touching it, so only the working set ever becomes resident, faulted in by the device on first
 * touch and again after invalidations (reclaim, migration). That is seeds/004's trade: memory
 * saved against fault latency.
 *
 * The working set is `workingSet` bytes, or `workingSetFraction` of the region, or all of it,
 * rounded down to whole access slots (at least one), spread over the region: the region is cut
 * into as many equal strata as there are working-set slots and one slot is drawn in each, from
 * the workload's random stream. `pattern` 'random' draws each request's slot uniformly from the
 * working set; 'sequential' walks it in order. Lanes (`inflight`) run closed loops, each on its
 * own share of the working set (so no two requests in flight write one slot); `rate` caps the
 * requests per simulated second; `count` stops after that many.
 *
 * Metrics (`extra`): region_bytes, working_set_bytes, registration_cpu_ns (CPU time the
 * registration charged), resident_bytes and swapped_bytes of the process at the end,
 * faulting_requests (requests that took IO page faults) and faulting_latency_ns_mean; requests go
 * to the DMA latency histogram, bytes to throughput, wrong data to data_mismatch (each request's
 * 8-byte stamp is checked in the slot).
 */
import {
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  PAGE_SIZE,
  type Process,
  type Task,
} from '@svasim/kernel';
import { openContext, type AccelContext } from '@svasim/user';
import { parseSize, type WorkloadSpec } from '../../scenario';
import type { Workload, WorkloadContext } from '../activity';

/** RdmaRegistrationWorkloadSpec - a parsed 'rdma-registration' workload. */
export type RdmaRegistrationWorkloadSpec = Extract<WorkloadSpec, { kind: 'rdma-registration' }>;

/** The algorithm the device must list: a plain copy is the NIC's DMA write. */
const RDMA_ALG = 'memcpy';

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** The shape of one run's region, from the spec. */
export interface RdmaLayout {
  /** Registered bytes (whole pages). */
  region: number;
  /** Bytes one request writes. */
  access: number;
  /** Access slots in the working set (>= 1). */
  slots: number;
}

/**
 * rdmaLayout - the region, access size and working-set slots of @spec.
 *
 * Return: the layout. Throws RangeError when the access size is 0 or larger than the region.
 */
export function rdmaLayout(spec: RdmaRegistrationWorkloadSpec): RdmaLayout {
  const region = roundUp(parseSize(spec.region), PAGE_SIZE);
  const access = parseSize(spec.accessSize);
  if (access <= 0 || access > region)
    throw new RangeError(`rdma-registration: accessSize must be in (0, region], got ${access}`);
  const all = Math.floor(region / access);
  let ws = region;
  if (spec.workingSet !== undefined) ws = parseSize(spec.workingSet);
  else if (spec.workingSetFraction !== undefined) ws = region * spec.workingSetFraction;
  const slots = Math.min(all, Math.max(1, Math.floor(ws / access)));
  return { region, access, slots };
}

/** The 8-byte stamp of request @n of lane @lane. */
function stamp(n: number, lane: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, n * 1024 + lane, true);
  return b;
}

/** RdmaRegistrationWorkload - see the file comment. Made by rdmaRegistrationWorkload(spec). */
export class RdmaRegistrationWorkload implements Workload {
  private readonly layout: RdmaLayout;
  private issued = 0;
  private nextAt = 0;
  private faulting = 0;
  private faultingNs = 0;
  private w: WorkloadContext | null = null;

  /** Throws RangeError for an access size the region cannot hold. */
  constructor(readonly spec: RdmaRegistrationWorkloadSpec) {
    this.layout = rdmaLayout(spec);
  }

  start(w: WorkloadContext): void {
    this.w = w;
    const { kernel, proc, metrics } = w;
    const { region, access, slots } = this.layout;
    metrics.setCount('region_bytes', region);
    metrics.setCount('working_set_bytes', slots * access);
    proc.run(async (task) => {
      if (!w.running()) return;
      const ctx = openContext(proc, RDMA_ALG, { kernel, device: this.spec.device, mode: 'async' });
      const lanes = this.spec.inflight;
      // The staging buffers (what arrives off the wire), prepared like any DMA buffer.
      const staging: number[] = [];
      for (let lane = 0; lane < lanes; lane++) {
        const b = ctx.allocBuffer(access);
        proc.touch(b, access, { write: true });
        ctx.prepare(b, access);
        staging.push(b);
      }
      // Anonymous, untouched (sparse) and MAP_NORESERVE, as an application reserving a large
      // address range does: heuristic overcommit would refuse a region larger than RAM + swap.
      const base = proc.mmap(region, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE });
      const targets = this.workingSet(w);
      // The registration: the strategy decides what it costs.
      const cpu0 = proc.cpuNs;
      ctx.prepare(base, region);
      metrics.count('registration_cpu_ns', proc.cpuNs - cpu0);
      metrics.observe();
      await task.yield(); // pay for the registration before the first request
      this.nextAt = kernel.now(); // writes arrive once the region is registered
      // Each lane owns the slots i with i % lanes === lane: two requests in flight never write
      // the same slot, so every stamp can be checked.
      for (let lane = 0; lane < lanes; lane++) {
        const mine = targets.filter((_, i) => i % lanes === lane);
        if (mine.length === 0) continue;
        kernel.tasks.spawn(`${proc.name}:rdma${lane}`, (t) =>
          this.lane(w, ctx, t, lane, staging[lane], base, mine),
        );
      }
    }, `${proc.name}:register`);
  }

  stop(): void {
    const w = this.w;
    if (!w) return;
    const m = w.metrics;
    m.setCount('faulting_requests', this.faulting);
    m.setCount('faulting_latency_ns_mean', this.faulting ? Math.round(this.faultingNs / this.faulting) : 0);
    if (w.proc.state === 'running') {
      const st = w.proc.status();
      m.setCount('resident_bytes', st.vmRss);
      m.setCount('swapped_bytes', st.vmSwap);
    }
  }

  /** The working set's slot indices (in access units from the region's start), one per stratum. */
  private workingSet(w: WorkloadContext): Float64Array {
    const { region, access, slots } = this.layout;
    const all = Math.floor(region / access);
    const out = new Float64Array(slots);
    for (let i = 0; i < slots; i++) {
      const lo = Math.floor((i * all) / slots);
      const hi = Math.floor(((i + 1) * all) / slots) - 1;
      out[i] = hi > lo ? w.rng.int(lo, hi) : lo;
    }
    return out;
  }

  private async lane(
    w: WorkloadContext,
    ctx: AccelContext,
    task: Task,
    lane: number,
    src: number,
    base: number,
    targets: Float64Array,
  ): Promise<void> {
    const { kernel, proc, metrics } = w;
    const spec = this.spec;
    const { access } = this.layout;
    const period = spec.rate === undefined ? 0 : 1e9 / spec.rate;
    const stamped = Math.min(8, access);
    let seq = 0;
    while (w.running() && (spec.count === undefined || this.issued < spec.count)) {
      const n = ++this.issued;
      if (period > 0) {
        const at = Math.round(this.nextAt);
        this.nextAt += period;
        const now = kernel.now();
        if (at > now) await task.sleep(at - now);
        if (!w.running()) return;
      }
      proc.task = task; // charge this lane for the process's work until it blocks
      const slot =
        spec.pattern === 'sequential'
          ? targets[seq++ % targets.length]
          : targets[w.rng.int(0, targets.length - 1)];
      const dst = base + slot * access;
      const tag = stamp(n, lane).subarray(0, stamped);
      proc.write(src, tag);
      const c = await ctx.submit({ op: 'copy', alg: RDMA_ALG, src, srcLen: access, dst, dstLen: access });
      proc.task = task;
      metrics.recordRequest(c.status, c.latencyNs, c.status === 0 ? c.consumed : 0);
      if (c.status !== 0) continue;
      if (c.faults > 0) {
        this.faulting++;
        this.faultingNs += c.latencyNs;
      }
      if (!sameBytes(proc, dst, tag)) metrics.recordMismatch();
    }
  }
}

function sameBytes(proc: Process, addr: number, want: Uint8Array): boolean {
  return Buffer.from(proc.read(addr, want.length)).equals(Buffer.from(want));
}

/** rdmaRegistrationWorkload - the WorkloadFactory of kind 'rdma-registration'. */
export function rdmaRegistrationWorkload(spec: WorkloadSpec): Workload {
  if (spec.kind !== 'rdma-registration')
    throw new RangeError(`rdmaRegistrationWorkload: kind '${spec.kind}'`);
  return new RdmaRegistrationWorkload(spec);
}
