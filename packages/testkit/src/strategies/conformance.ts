/**
 * The pin-strategy conformance suite: what every strategy must do whatever its scheme, and the
 * effect it declares, each check on a freshly booted kernel with an accelerator (memcpy_accel by
 * default) and a process using it through @svasim/user (openContext, allocBuffer, prepare,
 * submitSync, release):
 *
 *   strategy   the plugin registers the kernel's pin strategy (under the expected name)
 *   balance    prepare/release twice over: pins (nr_foll_pin_acquired - released), VmLck, VmPin
 *              and IOVA mappings come back to where they were; the copy's data is right
 *   exit       a process that exits with prepared buffers (no release, no close) leaves nothing
 *              pinned, mapped for DMA or held in hugetlb pages
 *   fork       with prepared buffers, fork gives the child the parent's data, the child's writes
 *              do not reach the parent's private buffers, and the device keeps working on the
 *              parent's current data (the COW-vs-pin hazard the ODP thread describes)
 *   prepare    declared effect: IO page faults of a copy into fresh prepared buffers (0 for the
 *              pinning ones), pins or not, which of VmLck / VmPin is charged
 *   migration  declared effect: when mm migrates the prepared buffer's pages (a copy window
 *              left open, as a device would meet it), they move and the device faults, or they
 *              stay and it does not
 *
 * Every check ends with kernel.checkInvariants() empty. describePinStrategyConformance makes a
 * jest describe of them; runPinStrategyConformance runs them and returns a report (no jest).
 */
import {
  IommuDmaDomain,
  PAGE_SIZE,
  completeAllMigrations,
  createKernel,
  type Kernel,
  type KernelOptions,
  type PinStrategy,
  type Plugin,
  type Process,
  type SpawnOptions,
} from '@svasim/kernel';
import { openContext, type AccelContext, type Completion } from '@svasim/user';
import { memcpyAccelPlugin } from '../memcpy-accel';
import { STRATEGY_TEST_MEMORY } from './for-each-strategy';
import { jestApi } from './jest-api';
import { migrateBufferPages } from './migrate-buffer';

/** What a strategy declares about itself; the suite checks it. */
export interface PinStrategyExpectations {
  /** IO page faults of a copy into freshly allocated, prepared buffers: none, or some. */
  faultsAfterPrepare: 0 | 'some';
  /** prepare takes GUP pins (nr_foll_pin_acquired grows, pagemap shows the pages pinned). */
  pins: boolean;
  /**
   * When mm migrates the prepared pages, they stay where they are and the device takes no fault
   * (true), or they move and the device faults on them during the copy window (false).
   */
  survivesMigration: boolean;
  /** Which /proc/PID/status counter prepare charges (RLIMIT_MEMLOCK accounting); default 'none'. */
  charge?: 'vmLck' | 'vmPin' | 'none';
  /** IO page faults of the parent's first device write into its prepared buffer after fork, if declared. */
  faultsAfterFork?: 0 | 'some';
}

/** Options of the suite. */
export interface PinStrategyConformanceOptions {
  /** The strategy's declared effect. */
  expect: PinStrategyExpectations;
  /** The strategy name kernel.pinStrategy() must report (default: not checked). */
  name?: string;
  /** The accelerator plugin: must list 'memcpy' and do 'copy' (default memcpyAccelPlugin). */
  accelerator?: Plugin;
  /** Kernel options of every check's kernel (default memory: one 256 MiB node). */
  kernel?: KernelOptions;
  /**
   * The process using the device (default: uid 1000 with RLIMIT_MEMLOCK 64 MiB, after the device
   * node was opened up to it, as a udev rule would).
   */
  spawn?: SpawnOptions;
  /** Bytes of each of the two buffers (default 64 KiB; whole pages). */
  bufferBytes?: number;
}

/** One check's outcome. */
export interface PinStrategyCheckResult {
  id: string;
  title: string;
  ok: boolean;
  /** Why it failed. */
  error?: string;
  /** Figures the check measured (faults, pinned bytes...). */
  info: Record<string, number>;
}

/** The suite's outcome. */
export interface PinStrategyConformanceReport {
  /** The strategy's name as the kernel reports it ('?' when the kernel could not boot). */
  strategy: string;
  ok: boolean;
  results: PinStrategyCheckResult[];
}

/** One check: throws Error on failure, returns what it measured. */
interface Check {
  id: string;
  title: string;
  run(plugin: Plugin, o: ResolvedOptions): Record<string, number>;
}

interface ResolvedOptions extends Required<Omit<PinStrategyConformanceOptions, 'name'>> {
  name?: string;
}

/** The default process of the checks: an ordinary user with room to lock the buffers. */
export const CONFORMANCE_SPAWN: SpawnOptions = { name: 'app', uid: 1000, rlimits: { memlock: 64 << 20 } };

const WINDOW_NS = 1_000_000;

function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

function noViolations(k: Kernel, when: string): void {
  const v = k.checkInvariants();
  check(v.length === 0, `invariants ${when}: ${v.slice(0, 5).join('; ')}`);
}

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed + (i >> 12)) & 0xff;
  return b;
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** Machine-wide state a strategy must give back. */
interface Held {
  /** Pins taken and not released (nr_foll_pin_acquired - nr_foll_pin_released). */
  pins: number;
  /** IOVA pages mapped in DMA domains. */
  iovaPages: number;
  /** Free hugetlb pages, both sizes. */
  hugeFree: number;
}

function held(k: Kernel): Held {
  const v = k.vmstat();
  let iovaPages = 0;
  for (const d of k.iommu.domains.values()) if (d instanceof IommuDmaDomain) iovaPages += d.mappedPages;
  return {
    pins: (v.nr_foll_pin_acquired ?? 0) - (v.nr_foll_pin_released ?? 0),
    iovaPages,
    hugeFree: k.hugetlb.stats('2MiB').free + k.hugetlb.stats('1GiB').free,
  };
}

/**
 * sameHeld - pins and IOVA mappings are back to @before; with @memory also the free hugetlb pages
 * (only after exit: a pool may keep its memory mapped while the process lives).
 */
function sameHeld(k: Kernel, before: Held, when: string, memory: boolean): void {
  const now = held(k);
  check(now.pins === before.pins, `${when}: ${now.pins - before.pins} page pin(s) still held`);
  check(
    now.iovaPages === before.iovaPages,
    `${when}: ${now.iovaPages - before.iovaPages} IOVA page(s) still mapped`,
  );
  if (memory)
    check(
      now.hugeFree === before.hugeFree,
      `${when}: ${before.hugeFree - now.hugeFree} hugetlb page(s) not given back`,
    );
}

/** Pages of [addr, addr + len) pagemap reports pinned. */
function pinnedPages(p: Process, addr: number, len: number): number {
  let n = 0;
  for (let va = addr; va < addr + len; va += PAGE_SIZE) if (p.pagemap(va).pinned) n++;
  return n;
}

/** A booted machine with the strategy, a process and its context on the accelerator. */
interface Env {
  k: Kernel;
  p: Process;
  ctx: AccelContext;
  strategy: PinStrategy;
  len: number;
}

function boot(plugin: Plugin, o: ResolvedOptions): Env {
  const k = createKernel({
    memory: STRATEGY_TEST_MEMORY,
    ...o.kernel,
    plugins: [o.accelerator, plugin, ...(o.kernel.plugins ?? [])],
  });
  // The device nodes are root's (0600): open them up as a udev rule would.
  const udev = k.spawn({ name: 'udev' });
  const names = k.devices.sysfs.readdir('/sys/class/uacce');
  for (const n of Array.isArray(names) ? (names as string[]) : []) udev.chmod(`/dev/${n}`, 0o666);
  udev.exit();
  const p = k.spawn(o.spawn);
  const ctx = openContext(p, 'memcpy', { kernel: k });
  return { k, p, ctx, strategy: k.pinStrategy(), len: o.bufferBytes };
}

function copy(env: Env, src: number, dst: number, from: AccelContext = env.ctx): Completion {
  const c = from.submitSync({ op: 'copy', alg: 'memcpy', src, srcLen: env.len, dst, dstLen: env.len });
  check(c.status === 0, `copy completed with status ${c.status}`);
  return c;
}

/** Two buffers from the strategy's allocator, src holding @seed's pattern. */
function buffers(env: Env, seed: number): { src: number; dst: number; data: Uint8Array } {
  const src = env.ctx.allocBuffer(env.len);
  const dst = env.ctx.allocBuffer(env.len);
  const data = pattern(env.len, seed);
  env.p.write(src, data);
  return { src, dst, data };
}

const CHECKS: readonly Check[] = [
  {
    id: 'strategy',
    title: 'registers the kernel pin strategy',
    run(plugin, o) {
      check(plugin.kind === 'pin-strategy', `plugin kind is '${plugin.kind}', not 'pin-strategy'`);
      const env = boot(plugin, o);
      const all = env.k.pinStrategies();
      check(all.includes(env.strategy), 'kernel.pinStrategy() is not a strategy the plugin registered');
      check(env.ctx.pin === env.strategy, '@svasim/user does not use the loaded strategy');
      if (o.name !== undefined)
        check(env.strategy.name === o.name, `strategy name '${env.strategy.name}', expected '${o.name}'`);
      noViolations(env.k, 'after boot');
      return { strategies: all.length };
    },
  },
  {
    id: 'balance',
    title: 'prepare and release balance pins, locked memory and DMA mappings',
    run(plugin, o) {
      const env = boot(plugin, o);
      const { k, p, ctx, len } = env;
      const before = held(k);
      const st0 = p.status();
      const { src, dst, data } = buffers(env, 1);
      let pinnedBytes = 0;
      let lockedBytes = 0;
      for (let round = 0; round < 2; round++) {
        ctx.prepare(src, len);
        ctx.prepare(dst, len);
        const during = held(k);
        const st = p.status();
        const pinned = pinnedPages(p, src, len) + pinnedPages(p, dst, len);
        if (o.expect.pins) {
          check(during.pins > before.pins, 'prepare took no pin');
          check(
            pinned === (2 * len) / PAGE_SIZE,
            `${pinned} of ${(2 * len) / PAGE_SIZE} pages pinned after prepare`,
          );
        } else {
          check(during.pins === before.pins, `prepare took ${during.pins - before.pins} pin(s)`);
          check(pinned === 0, `${pinned} pages pinned after prepare`);
        }
        const charge = o.expect.charge ?? 'none';
        check(
          charge === 'vmLck' ? st.vmLck > st0.vmLck : st.vmLck === st0.vmLck,
          `VmLck ${st0.vmLck} -> ${st.vmLck} with charge '${charge}'`,
        );
        check(
          charge === 'vmPin' ? st.vmPin > st0.vmPin : st.vmPin === st0.vmPin,
          `VmPin ${st0.vmPin} -> ${st.vmPin} with charge '${charge}'`,
        );
        pinnedBytes = (during.pins - before.pins) * PAGE_SIZE;
        lockedBytes = st.vmLck - st0.vmLck + st.vmPin - st0.vmPin;
        p.write(
          src,
          data.subarray(0, 1).map((b) => b ^ round),
        );
        copy(env, src, dst);
        check(same(p.read(dst, len), p.read(src, len)), 'the copy is wrong');
        noViolations(k, 'with prepared buffers');
        ctx.release(dst, len);
        ctx.release(src, len);
        const st2 = p.status();
        sameHeld(k, before, 'after release', false);
        check(
          st2.vmLck === st0.vmLck && st2.vmPin === st0.vmPin,
          `VmLck/VmPin ${st2.vmLck}/${st2.vmPin} after release`,
        );
        check(pinnedPages(p, src, len) + pinnedPages(p, dst, len) === 0, 'pages still pinned after release');
        noViolations(k, 'after release');
      }
      ctx.freeBuffer(src, len);
      ctx.freeBuffer(dst, len);
      ctx.close();
      noViolations(k, 'after close');
      return { pinnedBytes, lockedBytes };
    },
  },
  {
    id: 'exit',
    title: 'leaves nothing pinned or mapped after the process exits without releasing',
    run(plugin, o) {
      const env = boot(plugin, o);
      const { k, p, ctx, len } = env;
      // Before anything of the process's buffers exists.
      const before = held(k);
      const { src, dst } = buffers(env, 2);
      ctx.prepare(src, len);
      ctx.prepare(dst, len);
      copy(env, src, dst);
      const during = held(k);
      p.exit();
      check(!k.processList().includes(p), 'the process is still listed');
      sameHeld(k, before, 'after exit', true);
      noViolations(k, 'after exit');
      return { pinsAtExit: during.pins - before.pins };
    },
  },
  {
    id: 'fork',
    title: 'keeps data right across fork with prepared buffers',
    run(plugin, o) {
      const env = boot(plugin, o);
      const { k, p, ctx, len } = env;
      const before = held(k);
      const { src, dst, data: a } = buffers(env, 3);
      ctx.prepare(src, len);
      ctx.prepare(dst, len);
      copy(env, src, dst);
      const child = p.fork();
      check(
        same(child.read(src, len), a) && same(child.read(dst, len), a),
        'the child does not see the data',
      );
      const c = pattern(len, 4);
      child.write(src, c);
      check(same(p.read(src, len), a), "the child's write reached the parent's private buffer");
      const b = pattern(len, 5);
      p.write(src, b);
      const after = copy(env, src, dst);
      check(same(p.read(dst, len), b), "the device did not copy the parent's current data");
      check(same(child.read(dst, len), a), "the device's write reached the child's copy");
      check(same(child.read(src, len), c), "the child's buffer changed under it");
      if (o.expect.faultsAfterFork !== undefined)
        check(
          o.expect.faultsAfterFork === 0 ? after.faults === 0 : after.faults > 0,
          `${after.faults} IO page faults after fork, expected ${o.expect.faultsAfterFork}`,
        );
      noViolations(k, 'after fork');
      ctx.release(dst, len);
      ctx.release(src, len);
      child.exit();
      noViolations(k, "after the child's exit");
      ctx.close();
      p.exit();
      sameHeld(k, before, 'after both exited', true);
      noViolations(k, 'after both exited');
      return { faultsAfterFork: after.faults };
    },
  },
  {
    id: 'prepare',
    title: 'has its declared effect on IO page faults, pins and charges',
    run(plugin, o) {
      const env = boot(plugin, o);
      const { k, p, ctx, len } = env;
      const { src, dst, data } = buffers(env, 6);
      const iopf0 = k.vmstat().iopf_count ?? 0;
      ctx.prepare(src, len);
      ctx.prepare(dst, len);
      const pins = held(k).pins;
      const c = copy(env, src, dst);
      check(same(p.read(dst, len), data), 'the copy is wrong');
      const want = o.expect.faultsAfterPrepare;
      check(
        want === 0 ? c.faults === 0 : c.faults > 0,
        `${c.faults} IO page faults after prepare, expected ${want}`,
      );
      const iopf = (k.vmstat().iopf_count ?? 0) - iopf0;
      check(iopf === c.faults, `iopf_count grew by ${iopf}, the completion counted ${c.faults}`);
      ctx.release(dst, len);
      ctx.release(src, len);
      noViolations(k, 'after release');
      return { faults: c.faults, pinnedBytes: pins * PAGE_SIZE, latencyNs: c.latencyNs };
    },
  },
  {
    id: 'migration',
    title: 'has its declared behaviour when mm migrates the prepared pages',
    run(plugin, o) {
      const env = boot(plugin, o);
      const { k, p, ctx, len } = env;
      const { src, dst } = buffers(env, 7);
      ctx.prepare(src, len);
      ctx.prepare(dst, len);
      copy(env, src, dst);
      const pfns: number[] = [];
      for (let va = dst; va < dst + len; va += PAGE_SIZE) pfns.push(p.pagemap(va).pfn ?? -1);
      const m = migrateBufferPages(k, p, dst, len, { windowNs: WINDOW_NS });
      const b = pattern(len, 8);
      p.write(src, b);
      const c = copy(env, src, dst);
      completeAllMigrations(k.mmCore);
      check(same(p.read(dst, len), b), 'the copy is wrong after the migration');
      let movedPages = 0;
      for (let i = 0; i < pfns.length; i++) if (p.pagemap(dst + i * PAGE_SIZE).pfn !== pfns[i]) movedPages++;
      if (o.expect.survivesMigration) {
        check(movedPages === 0 && m.moved === 0, `${movedPages} prepared page(s) moved`);
        check(c.faults === 0, `${c.faults} IO page faults after the migration attempt`);
      } else {
        check(movedPages > 0 && m.moved > 0, 'no prepared page moved');
        check(c.faults > 0, 'no IO page fault during the migration window');
      }
      noViolations(k, 'after the migration');
      ctx.release(dst, len);
      ctx.release(src, len);
      noViolations(k, 'after release');
      return { moved: m.moved, failed: m.failed, skipped: m.skipped, faults: c.faults };
    },
  },
];

/** The checks' ids and titles, in the order they run. */
export const PIN_STRATEGY_CHECKS: ReadonlyArray<{ id: string; title: string }> = CHECKS.map(
  ({ id, title }) => ({
    id,
    title,
  }),
);

function resolve(o: PinStrategyConformanceOptions): ResolvedOptions {
  const bufferBytes = o.bufferBytes ?? 64 << 10;
  if (!Number.isSafeInteger(bufferBytes) || bufferBytes <= 0 || bufferBytes % PAGE_SIZE)
    throw new RangeError('pin strategy conformance: bufferBytes must be a positive number of whole pages');
  return {
    expect: o.expect,
    name: o.name,
    accelerator: o.accelerator ?? memcpyAccelPlugin,
    kernel: o.kernel ?? {},
    spawn: o.spawn ?? CONFORMANCE_SPAWN,
    bufferBytes,
  };
}

/**
 * runPinStrategyConformance - run every check on @plugin. Returns the report; a failing check
 * is reported, not thrown. Throws RangeError for bad options.
 */
export function runPinStrategyConformance(
  plugin: Plugin,
  opts: PinStrategyConformanceOptions,
): PinStrategyConformanceReport {
  const o = resolve(opts);
  const results: PinStrategyCheckResult[] = [];
  for (const c of CHECKS) {
    try {
      results.push({ id: c.id, title: c.title, ok: true, info: c.run(plugin, o) });
    } catch (e) {
      results.push({
        id: c.id,
        title: c.title,
        ok: false,
        error: e instanceof Error ? e.message : String(e),
        info: {},
      });
    }
  }
  let strategy = '?';
  try {
    strategy = boot(plugin, o).strategy.name;
  } catch {
    // reported by the 'strategy' check
  }
  return { strategy, ok: results.every((r) => r.ok), results };
}

/**
 * describePinStrategyConformance - a jest describe block ('pin strategy conformance: <name>')
 * with one test per check. Call it at the top level of a test file (or in a describe).
 * Throws Error outside jest, RangeError for bad options.
 */
export function describePinStrategyConformance(plugin: Plugin, opts: PinStrategyConformanceOptions): void {
  const o = resolve(opts);
  const { describe, it } = jestApi();
  describe(`pin strategy conformance: ${opts.name ?? plugin.name}`, () => {
    for (const c of CHECKS) it(c.title, () => void c.run(plugin, o));
  });
}
