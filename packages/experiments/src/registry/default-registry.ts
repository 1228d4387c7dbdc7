/**
 * defaultRegistry - every device and pin strategy svasim ships, by the names scenario files use:
 * devices by their uacce name ('memcpy_accel', 'hisi_zip', 'hisi_sec2'; the GPU as 'svasim_gpu',
 * /dev/svasim_gpu0), strategies by API.md's
 * names ('none', 'mlock', 'mempinfd', 'uacce-ctrl', 'hugetlb-pool', 'odp', 'short-term',
 * 'migration-control', 'vfio'). The command line and
 * the shipped experiments use it; tests that want a smaller world build their own with
 * createPluginRegistry.
 */
import { cryptoPlugin } from '@svasim/accel-crypto';
import { gpuPlugin } from '@svasim/accel-gpu';
import { zipPlugin } from '@svasim/accel-zip';
import { hugetlbPoolStrategy } from '@svasim/pin-hugetlb-pool';
import { mempinfdPlugin } from '@svasim/pin-mempinfd';
import { migrationControlStrategy } from '@svasim/pin-migration-control';
import { mlockStrategy } from '@svasim/pin-mlock';
import { noPinStrategy } from '@svasim/pin-none';
import { odpStrategy } from '@svasim/pin-odp';
import { shortTermStrategy } from '@svasim/pin-short-term';
import { uacceCtrlPlugin } from '@svasim/pin-uacce-ctrl';
import { vfioStrategy } from '@svasim/pin-vfio';
import {
  createPluginRegistry,
  type BackgroundFactory,
  type DeviceEntry,
  type PluginRegistry,
  type StrategyEntry,
  type WorkloadFactory,
} from '../runner';
import { memcpyAccelDevice } from './memcpy-device';

/** The shipped devices, by scenario name. */
export const DEFAULT_DEVICES: Readonly<Record<string, DeviceEntry>> = Object.freeze({
  // A factory: `config: { sva: false }` gives the device an 'iova' strategy (vfio) needs.
  memcpy_accel: memcpyAccelDevice,
  hisi_zip: zipPlugin,
  hisi_sec2: cryptoPlugin,
  svasim_gpu: gpuPlugin,
});

/** The shipped pin strategies, by API.md name ('none' also works without an entry). */
export const DEFAULT_STRATEGIES: Readonly<Record<string, StrategyEntry>> = Object.freeze({
  none: noPinStrategy,
  mlock: mlockStrategy,
  mempinfd: mempinfdPlugin,
  'uacce-ctrl': uacceCtrlPlugin,
  'hugetlb-pool': hugetlbPoolStrategy,
  odp: odpStrategy,
  'short-term': shortTermStrategy,
  'migration-control': migrationControlStrategy,
  vfio: vfioStrategy,
});

/**
 * defaultRegistry - the shipped devices and strategies, the built-in workloads and background
 * activities, plus @extra (entries of the same name override).
 */
export function defaultRegistry(
  extra: {
    devices?: Record<string, DeviceEntry>;
    strategies?: Record<string, StrategyEntry>;
    workloads?: Record<string, WorkloadFactory>;
    backgrounds?: Record<string, BackgroundFactory>;
  } = {},
): PluginRegistry {
  return createPluginRegistry({
    devices: { ...DEFAULT_DEVICES, ...extra.devices },
    strategies: { ...DEFAULT_STRATEGIES, ...extra.strategies },
    workloads: extra.workloads,
    backgrounds: extra.backgrounds,
  });
}
