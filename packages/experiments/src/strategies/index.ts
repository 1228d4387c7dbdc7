/**
 * Pin strategies that exist for experiments only (counterparts the shipped strategies are
 * compared with), kept out of defaultRegistry: pass EXPERIMENT_STRATEGIES to
 * defaultRegistry({ strategies }) to use them.
 */
import type { StrategyEntry } from '../runner';
import { gupPinStrategy } from './gup-pin';

export * from './gup-pin';

/** EXPERIMENT_STRATEGIES - the experiment-only strategies, by scenario name. */
export const EXPERIMENT_STRATEGIES: Readonly<Record<string, StrategyEntry>> = Object.freeze({
  'gup-pin': gupPinStrategy,
});
