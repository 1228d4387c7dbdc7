/**
 * The accelerator conformance checks. Each boots a fresh kernel, drives the device the way an
 * application does (through @svasim/user: openContext, prepare, submitSync, submit, release,
 * close), runs every kernel invariant check after each step, and throws a ConformanceFailure
 * saying what went wrong at which step. run.ts collects them into a ConformanceResult;
 * describe.ts makes one jest test of each.
 */
import {
  ERRNO,
  PAGE_SIZE,
  POLLNVAL,
  SyscallError,
  UACCE_DEV_SVA,
  VirtualAccelerator,
  type Plugin,
  type Process,
} from '@svasim/kernel';
import { openContext, type AccelContext, type Completion } from '@svasim/user';
import { errorText, fail } from './failure';
import {
  Session,
  claimsSva,
  makeSample,
  releaseSample,
  resolveConformanceOptions,
  verifySample,
  type InvariantLog,
  type PreparedSample,
  type ResolvedConformanceOptions,
} from './harness';
import type { AcceleratorConformanceTarget, ConformanceOptions } from './types';

/** ConformanceCheckDef - one check: its name and its body (resolves with a summary, throws on failure). */
export interface ConformanceCheckDef {
  readonly name: string;
  run(): Promise<string>;
}

/** The name of the serving check under the strategy plugin @s (null: the default 'none'). */
export function servesCheckName(s: Plugin | null): string {
  return `serves requests under pin strategy ${s ? `plugin '${s.name}'` : "'none'"}`;
}

/**
 * conformanceChecks - the suite for @target, in run order: registers; appears in sysfs and /dev;
 * serves requests under the default strategy and under each of opts.strategies; survives hot
 * removal with queues open; is deterministic for a seed; leaves no invariant violation (the last
 * one sums up the invariant checks run after every step of the others, so run it last).
 * Throws RangeError for bad options.
 */
export function conformanceChecks(
  target: AcceleratorConformanceTarget,
  options: ConformanceOptions = {},
): ConformanceCheckDef[] {
  const opts = resolveConformanceOptions(options);
  const log: InvariantLog = [];
  const checks: ConformanceCheckDef[] = [
    { name: 'registers', run: () => checkRegisters(target, opts, log) },
    { name: 'appears in sysfs and /dev', run: () => checkSysfs(target, opts, log) },
  ];
  for (const strategy of [null, ...opts.strategies]) {
    const name = servesCheckName(strategy);
    checks.push({
      name,
      run: async () => serve(new Session(target, opts, log, name, strategy), []),
    });
  }
  checks.push(
    { name: 'survives hot removal with queues open', run: () => checkHotRemoval(target, opts, log) },
    { name: 'is deterministic for a seed', run: () => checkDeterminism(target, opts, log) },
    {
      name: 'leaves no invariant violation',
      run: async () => {
        if (log.length) throw fail(log.join(' | '));
        return 'kernel.checkInvariants() was [] after every step of every check';
      },
    },
  );
  return checks;
}

async function checkRegisters(
  target: AcceleratorConformanceTarget,
  opts: ResolvedConformanceOptions,
  log: InvariantLog,
): Promise<string> {
  const plugin = target.plugin;
  if (!plugin || typeof plugin.register !== 'function') throw fail('target.plugin is not a plugin');
  if (plugin.kind !== 'accelerator') throw fail(`plugin kind is '${plugin.kind}', expected 'accelerator'`);
  const s = new Session(target, opts, log, 'registers');
  if (!s.kernel.pluginNames().includes(plugin.name))
    throw fail(`kernel.pluginNames() lacks '${plugin.name}'`);
  const inst = s.instance;
  if (inst === undefined || inst === null)
    throw fail(`register() returned nothing: kernel.plugin('${plugin.name}') must be the device instance`);
  if (inst instanceof VirtualAccelerator) {
    if (!inst.uacce) throw fail('the VirtualAccelerator is not realized (no uacce device)');
    if (inst.devPath !== `/dev/${s.device}`)
      throw fail(`devPath is ${inst.devPath}, but the device listing '${target.alg}' is /dev/${s.device}`);
  }
  return `${s.device}${inst instanceof VirtualAccelerator ? ', a realized VirtualAccelerator' : ''}`;
}

async function checkSysfs(
  target: AcceleratorConformanceTarget,
  opts: ResolvedConformanceOptions,
  log: InvariantLog,
): Promise<string> {
  const s = new Session(target, opts, log, 'appears in sysfs and /dev');
  const dev = s.device;
  const api = s.sysfs('api');
  if (api === '' || api === '(null)') throw fail(`api reads '${api}': set the driver's apiVer`);
  const flagsText = s.sysfs('flags');
  const flags = Number(flagsText);
  if (!Number.isInteger(flags) || flags < 0)
    throw fail(`flags reads '${flagsText}', not an unsigned integer`);
  const sva = claimsSva(target, s.instance);
  if (sva && !(flags & UACCE_DEV_SVA))
    throw fail(`flags ${flags} lack UACCE_DEV_SVA (${UACCE_DEV_SVA}) though the device claims SVA`);
  if (!sva && flags & UACCE_DEV_SVA)
    throw fail(`flags ${flags} include UACCE_DEV_SVA though the device does not claim SVA`);
  const algs = s
    .sysfs('algorithms')
    .split('\n')
    .map((a) => a.trim());
  const free = s.availableInstances();
  if (free <= 0) throw fail(`available_instances is ${free} on a fresh kernel`);
  for (const region of ['region_mmio_size', 'region_dus_size']) {
    const text = s.sysfs(region);
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0 || n % PAGE_SIZE !== 0)
      throw fail(`${region} reads '${text}', not a positive multiple of ${PAGE_SIZE}`);
  }
  if (!s.kernel.devices.vfs.lookup(`/dev/${dev}`)) throw fail(`/dev/${dev} does not exist`);
  return `${dev}: api ${api}, flags ${flags}, ${free} queues, algorithms ${algs.join(' ')}`;
}

/** open - openContext on the session's device; ConformanceFailure if it throws. */
function open(s: Session, p: Process): AccelContext {
  try {
    return openContext(p, s.target.alg, { kernel: s.kernel, device: s.device, timeoutNs: s.opts.timeoutNs });
  } catch (e) {
    throw fail(`openContext(proc, '${s.target.alg}') threw: ${errorText(e)}`);
  }
}

/**
 * close - ctx.close(); ConformanceFailure if it throws, except, with @removed, a SyscallError
 * after a teardown that still completed (the fd is closed). On a removed device PUT_Q answers
 * ENXIO; UADK's wd_release_ctx_force reports that and the release goes on, as @svasim/user's
 * close() does before rethrowing the first error.
 */
function close(ctx: AccelContext, when: string, removed = false): string {
  try {
    ctx.close();
    return 'closed';
  } catch (e) {
    if (!removed || !(e instanceof SyscallError)) throw fail(`ctx.close() ${when} threw: ${errorText(e)}`);
    if (ctx.proc.poll(ctx.fd) & POLLNVAL) return `closed (close() reported ${e.code})`;
    throw fail(`ctx.close() ${when} threw ${e.code} and left fd ${ctx.fd} open`);
  }
}

/** What the requests submitted together with ctx.submit ended with, by index. */
interface Outcome {
  c?: Completion;
  err?: unknown;
}

/** submitAll - submit every sample at once from a task of @p (Promise.all); outcomes fill in as they settle. */
function submitAll(p: Process, ctx: AccelContext, many: PreparedSample[]): Array<Outcome | undefined> {
  const out: Array<Outcome | undefined> = new Array(many.length).fill(undefined);
  p.run(async () => {
    await Promise.all(
      many.map((m, i) =>
        ctx.submit(m.sample.req).then(
          (c) => void (out[i] = { c }),
          (err: unknown) => void (out[i] = { err }),
        ),
      ),
    );
  }, `${p.name}:submit`);
  return out;
}

/**
 * serve - one process: open a context, one request with submitSync, then inFlight requests at
 * once with submit (Promise.all), every result verified; release, close (the queue is free
 * again), exit (no page leaked). Pushes every completion's latency to @latencies.
 */
async function serve(s: Session, latencies: number[]): Promise<string> {
  const k = s.kernel;
  const free0 = s.freePages();
  const queues0 = s.availableInstances();
  const p = s.spawn('conformance');
  const ctx = open(s, p);
  s.step('openContext');
  if (ctx.pin !== k.pinStrategy())
    throw fail(`the context uses pin strategy '${ctx.pin.name}', the kernel '${k.pinStrategy().name}'`);
  const queues1 = s.availableInstances();
  if (queues1 !== queues0 - 1)
    throw fail(`available_instances is ${queues1} with one context open, ${queues0} before`);

  const one = makeSample(s, ctx, 0);
  s.step('prepare');
  let c: Completion;
  try {
    c = ctx.submitSync(one.sample.req);
  } catch (e) {
    throw fail(`submitSync threw: ${errorText(e)}`);
  }
  if (c.status === -ERRNO.ETIMEDOUT)
    throw fail(
      `submitSync did not complete within ${s.opts.timeoutNs} ns of simulated time: the device hangs`,
    );
  latencies.push(c.latencyNs);
  verifySample(one, c, p, 'submitSync');
  s.step('submitSync');
  releaseSample(ctx, one);
  s.step('release');

  const n = Math.min(s.opts.inFlight, ctx.layout.sqDepth);
  const many = Array.from({ length: n }, (_, i) => makeSample(s, ctx, i + 1));
  s.step(`prepare of ${n} requests`);
  const out = submitAll(p, ctx, many);
  await s.run(`${n} requests in flight`);
  out.forEach((o, i) => {
    const what = `request ${i + 1} of ${n} in flight together`;
    if (!o)
      throw fail(
        `${what} did not complete within ${s.opts.timeoutNs} ns of simulated time: the device hangs`,
      );
    if (!o.c) throw fail(`${what}: ctx.submit rejected: ${errorText(o.err)}`);
    latencies.push(o.c.latencyNs);
    verifySample(many[i], o.c, p, what);
  });
  s.step(`${n} requests in flight`);
  for (const m of many) releaseSample(ctx, m);
  s.step(`release of ${n} requests`);

  close(ctx, 'after serving');
  s.step('close');
  const queues2 = s.availableInstances();
  if (queues2 !== queues0)
    throw fail(`available_instances is ${queues2} after close, ${queues0} before open: a queue leaked`);
  p.exit();
  s.step('exit');
  await s.run('exit');
  const leaked = free0 - s.freePages();
  if (leaked !== 0)
    throw fail(
      `nr_free_pages is ${leaked > 0 ? `${leaked} lower` : `${-leaked} higher`} after the process exited than before it started`,
    );
  s.step('the leak check');
  return `${1 + n} requests verified on ${s.device} under '${ctx.pin.name}' (latencies ${latencies.join(', ')} ns)`;
}

/** remove - hot-remove the device: the instance's unrealize() when it has one, else kernel.shutdown(). */
function remove(s: Session): string {
  const inst = s.instance as { unrealize?: () => void } | null | undefined;
  try {
    if (inst && typeof inst.unrealize === 'function') {
      inst.unrealize();
      return `kernel.plugin('${s.target.plugin.name}').unrealize()`;
    }
    s.kernel.shutdown();
    return 'kernel.shutdown()';
  } catch (e) {
    throw fail(`hot removal threw: ${errorText(e)}`);
  }
}

/** A late request after the removal: it must fail with an error, not succeed nor wait for the timeout. */
function lateSync(ctx: AccelContext, req: PreparedSample['sample']['req']): string {
  let c: Completion;
  try {
    c = ctx.submitSync(req);
  } catch (e) {
    if (e instanceof SyscallError) return e.code;
    throw fail(`submitSync after the removal threw ${errorText(e)}, not a SyscallError`);
  }
  if (c.status === -ERRNO.ETIMEDOUT)
    throw fail('submitSync after the removal waited for its timeout (-ETIMEDOUT) instead of failing');
  if (c.status >= 0) throw fail(`submitSync after the removal completed with status ${c.status}`);
  return `status ${c.status}`;
}

function outcomeText(o: Outcome): string {
  if (o.c) return `status ${o.c.status}`;
  return o.err instanceof SyscallError ? o.err.code : `error ${errorText(o.err)}`;
}

async function checkHotRemoval(
  target: AcceleratorConformanceTarget,
  opts: ResolvedConformanceOptions,
  log: InvariantLog,
): Promise<string> {
  const name = 'survives hot removal with queues open';
  // The post-removal baseline: the same machine, removed with no process ever started.
  const control = new Session(target, opts, log, `${name} (control)`);
  remove(control);
  await control.run('removal (control)');
  const baseline = control.freePages();

  const s = new Session(target, opts, log, name);
  const p = s.spawn('conformance');
  const idle = s.spawn('conformance-idle');
  const ctx = open(s, p);
  const idleCtx = open(s, idle);
  s.step('openContext x2');
  const n = Math.min(opts.inFlight, ctx.layout.sqDepth);
  const many = Array.from({ length: n }, (_, i) => makeSample(s, ctx, i + 1));
  s.step(`prepare of ${n} requests`);
  const out = submitAll(p, ctx, many);
  try {
    await s.kernel.runFor(opts.removeAfterNs);
  } catch (e) {
    throw fail(`the simulation failed before the removal: ${errorText(e)}`);
  }
  const doneBefore = out.map((o) => o !== undefined);
  if (doneBefore.every(Boolean))
    throw fail(
      `all ${n} requests completed within removeAfterNs (${opts.removeAfterNs} ns): none was in flight at the removal; lower removeAfterNs or make the sample larger`,
    );
  const how = remove(s);
  s.step('hot removal');
  const left = s.kernel.devices.sysfs.readdir('/sys/class/uacce');
  if (Array.isArray(left) && left.includes(s.device))
    throw fail(`/sys/class/uacce/${s.device} is still there after ${how}`);
  if (s.kernel.devices.vfs.lookup(`/dev/${s.device}`))
    throw fail(`/dev/${s.device} is still there after ${how}`);
  await s.run('after the removal');
  s.step('after the removal');

  const ends: string[] = [];
  out.forEach((o, i) => {
    const what = `request ${i + 1} of ${n}`;
    if (!o) throw fail(`${what}, in flight at the removal, never completed: a hang`);
    if (doneBefore[i] || o.c?.status === 0) {
      // Completed before the device went: it must be right.
      if (!o.c) throw fail(`${what} failed before the removal: ${errorText(o.err)}`);
      verifySample(many[i], o.c, p, what);
      return;
    }
    if (o.c && o.c.status >= 0) throw fail(`${what} completed with status ${o.c.status} after the removal`);
    ends.push(outcomeText(o));
  });

  // Later requests on the open context fail at once, sync and async.
  const late = makeSample(s, ctx, n + 1);
  const lateSyncEnd = lateSync(ctx, late.sample.req);
  const lateOut = submitAll(p, ctx, [late]);
  await s.run('a request after the removal');
  const lo = lateOut[0];
  if (!lo) throw fail('ctx.submit after the removal never settled: a hang');
  if (lo.c && lo.c.status === -ERRNO.ETIMEDOUT)
    throw fail('ctx.submit after the removal timed out instead of failing');
  if (lo.c && lo.c.status >= 0)
    throw fail(`ctx.submit after the removal completed with status ${lo.c.status}`);
  s.step('requests after the removal');

  try {
    openContext(p, target.alg, { kernel: s.kernel, device: s.device }).close();
    throw fail('openContext on the removed device succeeded');
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    if (e.code !== 'ENODEV') throw fail(`openContext on the removed device threw ${e.code}, expected ENODEV`);
  }

  for (const m of [...many, late]) releaseSample(ctx, m);
  s.step('release after the removal');
  const closedBusy = close(ctx, 'after the removal', true);
  close(idleCtx, 'of an idle context after the removal', true);
  s.step('close after the removal');
  p.exit();
  idle.exit();
  await s.run('exit after the removal');
  s.step('exit after the removal');
  const leaked = baseline - s.freePages();
  if (leaked !== 0)
    throw fail(
      `nr_free_pages is ${leaked > 0 ? `${leaked} lower` : `${-leaked} higher`} than after removing the device from an unused machine`,
    );
  return `${how} with ${ends.length} of ${n} requests in flight: they ended with ${ends.join(', ')}; later submitSync ${lateSyncEnd}, submit ${outcomeText(lo)}; context ${closedBusy}; no page leaked`;
}

async function checkDeterminism(
  target: AcceleratorConformanceTarget,
  opts: ResolvedConformanceOptions,
  log: InvariantLog,
): Promise<string> {
  const name = 'is deterministic for a seed';
  const a: number[] = [];
  const b: number[] = [];
  await serve(new Session(target, opts, log, name), a);
  await serve(new Session(target, opts, log, name), b);
  if (a.length !== b.length || a.some((x, i) => x !== b[i]))
    throw fail(
      `two runs with seed ${opts.seed} gave different latencies: [${a.join(', ')}] and [${b.join(', ')}] ns`,
    );
  return `two runs with seed ${opts.seed}: latencies [${a.join(', ')}] ns both times`;
}
