#!/usr/bin/env node
// The registry reachable from this project's machines serves only the Linux builds of some
// native optional dependencies (unrs-resolver's bindings, pulled in by jest 30). `npm install`
// then leaves the other platforms' entries out of package-lock.json, and `npm ci` refuses the
// lock as out of sync. This adds the missing optional entries with their os/cpu/libc, so npm ci
// skips them on this platform without fetching. Run it after any `npm install` that rewrites
// the lock: node scripts/lock-optional-platforms.js
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const lockPath = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
const pkgs = lock.packages;

/** Platform constraints from a binding's name, e.g. linux-arm64-musl, win32-x64-msvc, darwin-arm64. */
function platformOf(name) {
  const m =
    /-(android|darwin|freebsd|linux|openharmony|win32|wasm32)-?([a-z0-9]+)?(?:-(gnu|gnueabihf|musl|musleabihf|msvc|eabi))?$/.exec(
      name,
    );
  if (!m) return null;
  const [, os, arch, abi] = m;
  if (os === 'wasm32') return { cpu: ['wasm32'] };
  const cpu = arch === 'arm' || arch === 'eabi' ? 'arm' : arch;
  const out = { os: [os], cpu: [cpu] };
  if (abi === 'gnu' || abi === 'gnueabihf') out.libc = ['glibc'];
  if (abi === 'musl' || abi === 'musleabihf') out.libc = ['musl'];
  return out;
}

let added = 0;
for (const [key, entry] of Object.entries(pkgs)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const nested = `${key}/node_modules/${dep}`;
    const top = `node_modules/${dep}`;
    if (pkgs[nested] || pkgs[top]) continue;
    const platform = platformOf(dep);
    if (!platform) continue;
    pkgs[top] = { version, ...platform, optional: true };
    added++;
  }
}
const sorted = {};
for (const k of Object.keys(pkgs).sort((a, b) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))))
  sorted[k] = pkgs[k];
lock.packages = sorted;
fs.writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
process.stdout.write(`lock-optional-platforms: added ${added} optional platform entries\n`);
