/**
 * strategies - swapping pin strategies per test: forEachStrategy / strategyCases (one body under
 * every strategy, fresh kernels), the pin-strategy conformance suite every strategy passes
 * (describePinStrategyConformance / runPinStrategyConformance), and what they need: accelerators
 * without SVA for 'iova' strategies and a way to migrate a buffer's pages.
 */
export * from './jest-api';
export * from './accelerators';
export * from './migrate-buffer';
export * from './for-each-strategy';
export * from './conformance';
