/**
 * forEachStrategy - run one test body under every pin strategy given, each on fresh kernels:
 * the way svasim compares strategies (API.md: "a strategy is used the same way in every test").
 * Strategies are passed in as plugins (testkit cannot depend on the plugin packages), each
 * optionally with what it needs of the machine, e.g. a non-SVA accelerator for 'vfio':
 *
 *   forEachStrategy([noPinStrategy, mlockStrategy, { plugin: vfioStrategy, accelerators: [memcpyAccelNoSvaPlugin] }],
 *     'copies without losing data', ({ makeKernel }) => { const k = makeKernel(); ... });
 *
 * or, with describe.each: describe.each(strategyCases(list))('%s', (_name, c) => ...).
 */
import { createKernel, type Kernel, type KernelOptions, type Plugin } from '@svasim/kernel';
import { memcpyAccelPlugin } from '../memcpy-accel';
import { jestApi } from './jest-api';

/** A strategy and what its kernels need besides it. */
export interface StrategyCase {
  /** The pin-strategy plugin. */
  plugin: Plugin;
  /** Accelerator plugins loaded before it (default: [memcpyAccelPlugin]). */
  accelerators?: Plugin[];
  /** Kernel options for this strategy, under the ones makeKernel is given. */
  kernel?: KernelOptions;
  /** Test title suffix (default: the plugin's name). */
  title?: string;
}

/** What a body gets. */
export interface StrategyTestContext {
  /** The strategy plugin under test. */
  strategy: Plugin;
  /** Its case, with the defaults filled in. */
  case: Required<Pick<StrategyCase, 'plugin' | 'accelerators' | 'title'>> & { kernel: KernelOptions };
  /**
   * makeKernel - a fresh kernel with the case's accelerators, then the strategy, then
   * @opts.plugins; the case's kernel options under @opts (memory default: one 256 MiB node).
   * Every call boots a new machine.
   */
  makeKernel(opts?: KernelOptions): Kernel;
}

/** Options of forEachStrategy. */
export interface ForEachStrategyOptions {
  /** Kernel options every case starts from. */
  kernel?: KernelOptions;
  /** jest timeout per test, ms. */
  timeout?: number;
}

/** The default machine of strategy tests: small, so booting is cheap. */
export const STRATEGY_TEST_MEMORY: NonNullable<KernelOptions['memory']> = { nodes: [{ size: '256MiB' }] };

function normalize(c: Plugin | StrategyCase): StrategyTestContext['case'] {
  const sc: StrategyCase = 'plugin' in c ? c : { plugin: c };
  return {
    plugin: sc.plugin,
    accelerators: sc.accelerators ?? [memcpyAccelPlugin],
    kernel: sc.kernel ?? {},
    title: sc.title ?? sc.plugin.name,
  };
}

/**
 * strategyContext - the body context for one case (what forEachStrategy hands each test).
 * @base: kernel options under the case's own.
 */
export function strategyContext(c: Plugin | StrategyCase, base: KernelOptions = {}): StrategyTestContext {
  const sc = normalize(c);
  return {
    strategy: sc.plugin,
    case: sc,
    makeKernel(opts: KernelOptions = {}): Kernel {
      const merged: KernelOptions = { memory: STRATEGY_TEST_MEMORY, ...base, ...sc.kernel, ...opts };
      return createKernel({
        ...merged,
        plugins: [
          ...sc.accelerators,
          sc.plugin,
          ...(base.plugins ?? []),
          ...(sc.kernel.plugins ?? []),
          ...(opts.plugins ?? []),
        ],
      });
    },
  };
}

/** strategyCases - [title, context] rows for describe.each / it.each. */
export function strategyCases(
  strategies: ReadonlyArray<Plugin | StrategyCase>,
  base: KernelOptions = {},
): Array<[string, StrategyTestContext]> {
  return strategies.map((s) => {
    const ctx = strategyContext(s, base);
    return [ctx.case.title, ctx];
  });
}

/**
 * forEachStrategy - a describe block @name with one test per strategy, titled by the strategy,
 * each running @body on its own context. Must be called where jest's describe may be (a test
 * file's top level or a describe). Throws Error outside jest, RangeError for an empty list.
 */
export function forEachStrategy(
  strategies: ReadonlyArray<Plugin | StrategyCase>,
  name: string,
  body: (ctx: StrategyTestContext) => void | Promise<void>,
  opts: ForEachStrategyOptions = {},
): void {
  if (!strategies.length) throw new RangeError('forEachStrategy: no strategies');
  const { describe, it } = jestApi();
  const rows = strategyCases(strategies, opts.kernel);
  describe(name, () => {
    for (const [title, ctx] of rows) it(title, () => body(ctx), opts.timeout);
  });
}
