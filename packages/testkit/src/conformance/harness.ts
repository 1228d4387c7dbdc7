/**
 * The conformance suite's machinery: booting a kernel with the target (and a pin strategy),
 * finding its uacce device the way UADK does, checking every invariant after each step, and
 * making sample requests on buffers the suite owns (prepared and released through the context's
 * pin strategy).
 */
import {
  createKernel,
  PAGE_SIZE,
  VirtualAccelerator,
  type Kernel,
  type KernelOptions,
  type PinTarget,
  type Plugin,
  type Process,
} from '@svasim/kernel';
import type { AccelContext, Completion } from '@svasim/user';
import { errorText, fail } from './failure';
import type { AcceleratorConformanceTarget, ConformanceOptions, ConformanceSample } from './types';

/** The machine every check boots unless the target says otherwise. */
export const CONFORMANCE_DEFAULT_MEMORY: NonNullable<KernelOptions['memory']> = {
  nodes: [{ size: '256MiB' }],
};

/** ConformanceOptions with the defaults applied. */
export interface ResolvedConformanceOptions {
  strategies: Plugin[];
  seed: number;
  inFlight: number;
  timeoutNs: number;
  removeAfterNs: number;
  jestTimeoutMs: number;
}

/** resolveConformanceOptions - apply the defaults; RangeError for a value that makes no sense. */
export function resolveConformanceOptions(opts: ConformanceOptions = {}): ResolvedConformanceOptions {
  const r: ResolvedConformanceOptions = {
    strategies: [...(opts.strategies ?? [])],
    seed: opts.seed ?? 1,
    inFlight: opts.inFlight ?? 4,
    timeoutNs: opts.timeoutNs ?? 1_000_000_000,
    removeAfterNs: opts.removeAfterNs ?? 1000,
    jestTimeoutMs: opts.jestTimeoutMs ?? 20_000,
  };
  if (!Number.isInteger(r.inFlight) || r.inFlight < 1)
    throw new RangeError('conformance: inFlight must be >= 1');
  if (!(r.timeoutNs > 0)) throw new RangeError('conformance: timeoutNs must be > 0');
  if (!(r.removeAfterNs >= 0)) throw new RangeError('conformance: removeAfterNs must be >= 0');
  for (const s of r.strategies)
    if (!s || s.kind !== 'pin-strategy')
      throw new RangeError(`conformance: strategies[] holds '${String(s?.name)}', not a pin-strategy plugin`);
  return r;
}

/**
 * InvariantLog - every step whose checkInvariants() was not empty, over a whole suite run (the
 * "leaves no invariant violation" check reports it).
 */
export type InvariantLog = string[];

/**
 * Session - one fresh kernel of one check: the target's plugin (plus a strategy plugin), its
 * device, and step() which fails the check on the first invariant violation.
 */
export class Session {
  readonly kernel: Kernel;
  /** The uacce device name, e.g. 'memcpy_accel-0'. */
  readonly device: string;

  constructor(
    readonly target: AcceleratorConformanceTarget,
    readonly opts: ResolvedConformanceOptions,
    private readonly log: InvariantLog,
    /** The check's name, for the invariant log. */
    private readonly check: string,
    strategy: Plugin | null = null,
  ) {
    this.kernel = bootTarget(target, opts, strategy);
    this.device = findDevice(this.kernel, target);
    this.step('boot');
  }

  /** step - run every invariant check after @label; throws ConformanceFailure on a violation. */
  step(label: string): void {
    const v = this.kernel.checkInvariants();
    if (v.length === 0) return;
    const text = `${this.check}: after ${label}: ${v.slice(0, 3).join('; ')}${v.length > 3 ? ` (+${v.length - 3} more)` : ''}`;
    this.log.push(text);
    throw fail(`invariant violation after ${label}: ${v.slice(0, 3).join('; ')}`);
  }

  /** The plugin's instance (kernel.plugin(name)). */
  get instance(): unknown {
    return this.kernel.plugin(this.target.plugin.name);
  }

  /** sysfs - read /sys/class/uacce/<device>/@attr, trimmed; ConformanceFailure when unreadable. */
  sysfs(attr: string): string {
    try {
      return this.kernel.readSysfs(`/sys/class/uacce/${this.device}/${attr}`).trim();
    } catch (e) {
      throw fail(`/sys/class/uacce/${this.device}/${attr} is not readable: ${errorText(e)}`);
    }
  }

  /** availableInstances - the device's free queues (sysfs available_instances). */
  availableInstances(): number {
    const text = this.sysfs('available_instances');
    const n = Number(text);
    if (!Number.isInteger(n)) throw fail(`available_instances reads '${text}', not an integer`);
    return n;
  }

  /** freePages - vmstat nr_free_pages. */
  freePages(): number {
    return this.kernel.vmstat().nr_free_pages;
  }

  /** spawn - a process for the check (uid 0: every capability, so strategies may mlock freely). */
  spawn(name: string): Process {
    return this.kernel.spawn({ name });
  }

  /**
   * run - run the simulation until idle, at most @ns of simulated time (default: the options'
   * timeout); a task's failure becomes a ConformanceFailure naming @label.
   */
  async run(label: string, ns = this.opts.timeoutNs): Promise<void> {
    try {
      await this.kernel.runUntilIdle(ns);
    } catch (e) {
      throw fail(`${label}: the simulation failed: ${errorText(e)}`);
    }
  }
}

/** bootTarget - createKernel with the target's plugin (and @strategy); ConformanceFailure if it throws. */
export function bootTarget(
  target: AcceleratorConformanceTarget,
  opts: ResolvedConformanceOptions,
  strategy: Plugin | null = null,
): Kernel {
  const plugins = strategy ? [target.plugin, strategy] : [target.plugin];
  try {
    return createKernel({
      memory: CONFORMANCE_DEFAULT_MEMORY,
      ...target.kernelOptions,
      seed: opts.seed,
      plugins,
    });
  } catch (e) {
    throw fail(
      `createKernel({ plugins: [${plugins.map((p) => p.name).join(', ')}] }) threw: ${errorText(e)}`,
    );
  }
}

/**
 * findDevice - the uacce device serving the target: the first /sys/class/uacce entry whose
 * `algorithms` lists target.alg (and, with uaccePrefix, named `<prefix>-<id>`).
 */
export function findDevice(k: Kernel, target: AcceleratorConformanceTarget): string {
  const names = k.devices.sysfs.readdir('/sys/class/uacce');
  const list = Array.isArray(names) ? names : [];
  const listing = list.filter((n) => {
    try {
      return k
        .readSysfs(`/sys/class/uacce/${n}/algorithms`)
        .split('\n')
        .map((s) => s.trim())
        .includes(target.alg);
    } catch {
      return false;
    }
  });
  if (listing.length === 0)
    throw fail(
      `no device in /sys/class/uacce lists algorithm '${target.alg}' (devices: ${list.join(', ') || 'none'})`,
    );
  if (target.uaccePrefix === undefined) return listing[0];
  const re = new RegExp(`^${target.uaccePrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d+$`);
  const hit = listing.find((n) => re.test(n));
  if (!hit)
    throw fail(
      `no device named ${target.uaccePrefix}-<id> lists '${target.alg}' (found: ${listing.join(', ')})`,
    );
  return hit;
}

/** claimsSva - whether the target's device should show UACCE_DEV_SVA. */
export function claimsSva(target: AcceleratorConformanceTarget, instance: unknown): boolean {
  if (target.sva !== undefined) return target.sva;
  if (instance instanceof VirtualAccelerator) return instance.config.sva;
  return true;
}

/** A sample and the buffers the suite gave it. */
export interface PreparedSample {
  sample: ConformanceSample;
  buffers: Array<{ addr: number; len: number }>;
  index: number;
}

/** sampleBytes - @len deterministic bytes for sample @index and @salt (xorshift32, never all zero). */
export function sampleBytes(len: number, index: number, salt = 0): Uint8Array {
  if (!Number.isInteger(len) || len < 0) throw new RangeError(`bytes(${len}): a length >= 0`);
  let x = (0x9e3779b9 ^ Math.imul(index + 1, 0x85ebca6b) ^ Math.imul(salt + 1, 0xc2b2ae35)) >>> 0 || 1;
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** pinTargetOf - the PinTarget a context's strategy sees (what ctx.prepare passes). */
function pinTargetOf(ctx: AccelContext): PinTarget {
  return { kernel: ctx.kernel, proc: ctx.proc, fd: ctx.fd, device: ctx.device };
}

/**
 * makeSample - call target.sample for @index on @ctx's process, then prepare every buffer it
 * allocated through ctx.prepare. A throw from sample(), alloc or prepare is a ConformanceFailure.
 */
export function makeSample(s: Session, ctx: AccelContext, index: number): PreparedSample {
  const buffers: PreparedSample['buffers'] = [];
  const target = pinTargetOf(ctx);
  let sample: ConformanceSample;
  try {
    sample = s.target.sample({
      kernel: s.kernel,
      proc: ctx.proc,
      index,
      alloc: (len: number) => {
        if (!Number.isInteger(len) || len <= 0) throw new RangeError(`alloc(${len}): a length > 0`);
        const addr = ctx.pin.allocBuffer ? ctx.pin.allocBuffer(target, len) : ctx.proc.mmap(len);
        buffers.push({ addr, len });
        return addr;
      },
      bytes: (len: number, salt?: number) => sampleBytes(len, index, salt),
    });
  } catch (e) {
    freeBuffers(ctx, buffers);
    throw fail(`sample(${index}) threw: ${errorText(e)}`);
  }
  if (!sample || !sample.req || typeof sample.verify !== 'function')
    throw fail(`sample(${index}) did not return { req, verify }`);
  for (const b of buffers) {
    try {
      ctx.prepare(b.addr, b.len);
    } catch (e) {
      throw fail(
        `ctx.prepare(0x${b.addr.toString(16)}, ${b.len}) under pin strategy '${ctx.pin.name}' threw: ${errorText(e)}`,
      );
    }
  }
  return { sample, buffers, index };
}

/** verifySample - run the sample's verify(); ConformanceFailure with its complaint. */
export function verifySample(p: PreparedSample, c: Completion, proc: Process, what: string): void {
  let problem: string | void;
  try {
    problem = p.sample.verify(c, proc);
  } catch (e) {
    problem = errorText(e);
  }
  if (problem)
    throw fail(
      `${what}: verify rejected the result: ${problem} (completion status ${c.status}, produced ${c.produced}, latency ${c.latencyNs} ns)`,
    );
}

/** releaseSample - ctx.release every buffer of @p, then free it; ConformanceFailure on a throw. */
export function releaseSample(ctx: AccelContext, p: PreparedSample): void {
  for (const b of p.buffers) {
    try {
      ctx.release(b.addr, b.len);
    } catch (e) {
      throw fail(
        `ctx.release(0x${b.addr.toString(16)}, ${b.len}) under pin strategy '${ctx.pin.name}' threw: ${errorText(e)}`,
      );
    }
  }
  freeBuffers(ctx, p.buffers);
}

function freeBuffers(ctx: AccelContext, buffers: PreparedSample['buffers']): void {
  const target = pinTargetOf(ctx);
  for (const b of buffers) {
    try {
      // A strategy's own buffer goes back its way (one without freeBuffer keeps it till exit).
      if (ctx.pin.allocBuffer) ctx.pin.freeBuffer?.(target, b.addr, b.len);
      else ctx.proc.munmap(b.addr, Math.ceil(b.len / PAGE_SIZE) * PAGE_SIZE);
    } catch (e) {
      throw fail(`freeing the buffer at 0x${b.addr.toString(16)} threw: ${errorText(e)}`);
    }
  }
}
