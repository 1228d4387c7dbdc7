/**
 * `svasim list [--json]`: what a scenario may name in this build - accelerator plugins (devices),
 * pin strategies, IOMMU profiles, workload and background kinds - and the shipped scenarios.
 */
import { IOMMU_PROFILES, type Plugin } from '@svasim/kernel';
import { WORKLOAD_KINDS, defaultRegistry, type DeviceEntry, type StrategyEntry } from '@svasim/experiments';
import type { CliIo } from './io';
import { shippedScenarios } from './scenarios';

/** What the shipped devices are, and the workload that drives each. */
const DEVICE_NOTES: Readonly<Record<string, string>> = {
  memcpy_accel: "reference copy device (@svasim/testkit), alg 'memcpy'; workload 'memcpy'",
  hisi_zip: "HiSilicon-ZIP-like compressor (@svasim/accel-zip): deflate, zlib, gzip; workload 'zip-offload'",
  hisi_sec2:
    "HiSilicon SEC2-like crypto (@svasim/accel-crypto): AES cbc/ctr/xts/gcm, SHA, HMAC; workload 'crypto-stream'",
};

/** The listing, as `--json` prints it. */
export interface Listing {
  devices: Array<{ name: string; plugins: string[]; note: string }>;
  strategies: Array<{ name: string; plugins: string[] }>;
  profiles: Array<{ name: string; description: string }>;
  workloads: Array<{ kind: string; available: boolean }>;
  backgrounds: string[];
  scenarios: Array<{ id: string; name: string; description: string; file: string }>;
}

function pluginNames(e: DeviceEntry | StrategyEntry): string[] {
  if (typeof e === 'function') return ['(factory)'];
  return (Array.isArray(e) ? (e as readonly Plugin[]) : [e as Plugin]).map((p) => p.name);
}

/** listing - everything `svasim list` shows, from the shipped registry and scenarios. */
export function listing(): Listing {
  const reg = defaultRegistry();
  return {
    devices: [...reg.devices].map(([name, e]) => ({
      name,
      plugins: pluginNames(e),
      note: DEVICE_NOTES[name] ?? '',
    })),
    strategies: [...reg.strategies].map(([name, e]) => ({ name, plugins: pluginNames(e) })),
    profiles: Object.values(IOMMU_PROFILES).map((p) => ({ name: p.name, description: p.description })),
    workloads: WORKLOAD_KINDS.map((kind) => ({ kind, available: reg.workloads.has(kind) })),
    backgrounds: [...reg.backgrounds.keys()],
    scenarios: shippedScenarios().map(({ id, name, description, file }) => ({ id, name, description, file })),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i].length))) ?? [];
  return rows
    .map(
      (r) =>
        '  ' +
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
          .join('  ')
          .trimEnd() +
        '\n',
    )
    .join('');
}

/** listCommand - print the listing (plain text, or one JSON document with @json). Return: 0. */
export function listCommand(opts: { json?: boolean }, io: CliIo): number {
  const l = listing();
  if (opts.json) {
    io.out(JSON.stringify(l, null, 2) + '\n');
    return 0;
  }
  io.out(
    'devices (scenario `devices[].name`):\n' +
      table(l.devices.map((d) => [d.name, d.note])) +
      '\nstrategies (scenario `strategies`, --strategies):\n' +
      table(l.strategies.map((s) => [s.name, `plugin ${s.plugins.join(' + ')}`])) +
      '\nIOMMU profiles (scenario `iommu`):\n' +
      table(l.profiles.map((p) => [p.name, p.description])) +
      '\nworkloads (scenario `processes[].workload.kind`):\n' +
      table(l.workloads.map((w) => [w.kind, w.available ? 'available' : 'not available in this build'])) +
      '\nbackground activities (scenario `background[].kind`):\n' +
      table([[l.backgrounds.join(', ')]]) +
      '\nshipped scenarios (svasim run NAME):\n' +
      (l.scenarios.length
        ? table(l.scenarios.map((s) => [s.id, s.description]))
        : '  (none found: the scenarios/ folder is missing)\n'),
  );
  return 0;
}
