/**
 * memcpyAccelDevice - the registry's 'memcpy_accel' entry: the reference copy device
 * (@svasim/testkit), with the shape a scenario's `config` asks for. `sva: false` gives the device
 * without UACCE_DEV_SVA that an 'iova' strategy (vfio) needs: its queues translate through the
 * device's DMA domain, so only what the strategy mapped is reachable (a miss aborts the request
 * with -EFAULT), which is how a fork that moves a pinned page away from the process shows up as
 * wrong data instead of an IO page fault (experiment 6).
 */
import type { AcceleratorConfig, Plugin } from '@svasim/kernel';
import { memcpyAccelPlugin, memcpyAccelPluginWith } from '@svasim/testkit';
import type { DeviceOverrides } from '../runner';

/** The configuration keys a scenario may override, with the check each value must pass. */
const KEYS: Record<string, (v: unknown) => boolean> = {
  sva: (v) => typeof v === 'boolean',
  queues: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 1024,
  engines: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 1024,
};

/**
 * memcpyAccelDevice - the plugin for a `devices` entry named 'memcpy_accel' with @overrides.
 *
 * Return: the plain plugin without overrides, else one built with them. Throws RangeError for a
 * count other than 1 (the plugin registers one device) or a key or value it does not take (the
 * run then fails at boot, reporting the message).
 */
export function memcpyAccelDevice(overrides: DeviceOverrides): Plugin {
  if (overrides.count !== 1) throw new RangeError(`memcpy_accel: count must be 1, got ${overrides.count}`);
  const entries = Object.entries(overrides.config);
  if (entries.length === 0) return memcpyAccelPlugin;
  for (const [key, value] of entries) {
    const ok = KEYS[key];
    if (!ok)
      throw new RangeError(`memcpy_accel: unknown config '${key}' (known: ${Object.keys(KEYS).join(', ')})`);
    if (!ok(value)) throw new RangeError(`memcpy_accel: bad config ${key}: ${JSON.stringify(value)}`);
  }
  return memcpyAccelPluginWith(overrides.config as Partial<AcceleratorConfig>);
}
