/**
 * The few jest functions the strategy helpers need, taken from the globals jest injects at call
 * time (not imported), so that loading @svasim/testkit outside jest (a benchmark, the CLI) does
 * not fail: only calling describePinStrategyConformance or forEachStrategy needs jest.
 */

/** A test body. */
export type TestBody = () => void | Promise<void>;

/** The jest globals used here. */
export interface JestApi {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: TestBody, timeout?: number): void;
}

/**
 * jestApi - jest's describe and it. Throws Error when they are not there (not running under
 * jest, or jest's injectGlobals is off).
 */
export function jestApi(): JestApi {
  const g = globalThis as unknown as Partial<JestApi>;
  if (typeof g.describe !== 'function' || typeof g.it !== 'function')
    throw new Error(
      '@svasim/testkit strategies: describe/it are jest globals; call this from a jest test file',
    );
  return { describe: g.describe.bind(globalThis), it: g.it.bind(globalThis) };
}
