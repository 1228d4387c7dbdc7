/**
 * @svasim/pin-migration-control - the 'migration-control' pin strategy: a per-process switch under
 * which compaction, NUMA balancing and khugepaged leave the process's locked pages alone while
 * CMA and memory offline still migrate them (seeds/001; see README.md).
 * `createKernel({ plugins: [accel, migrationControlStrategy] })`.
 */
import { PIN_STRATEGY, definePlugin, type Kernel } from '@svasim/kernel';
import { MigrationControlStrategy } from './migration-control';

export {
  MigrationControlStrategy,
  PRCTL_SYSCALL,
  PR_GET_MIGRATION_CONTROL,
  PR_SET_MIGRATION_CONTROL,
  type MigrationControlStats,
} from './migration-control';

/**
 * migrationControlStrategy - the plugin: registers a MigrationControlStrategy under PIN_STRATEGY
 * (also what kernel.plugin('pin-migration-control') returns); realize() adds the prctl options.
 */
export const migrationControlStrategy = definePlugin({
  name: 'pin-migration-control',
  kind: 'pin-strategy',
  register({ container, kernel }) {
    const strategy = new MigrationControlStrategy(kernel as Kernel);
    container.registerInstance(PIN_STRATEGY, strategy);
    return strategy;
  },
});
