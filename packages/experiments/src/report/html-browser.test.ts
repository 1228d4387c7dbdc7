/**
 * The HTML report in a real browser: Debian's Chromium driven by playwright-core (which ships no
 * browser of its own). CHROMIUM_PATH overrides /usr/bin/chromium; scripts/ensure-chromium.sh
 * installs it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { runExperiment } from '../runner';
import { validateScenario } from '../scenario';
import { testRegistry } from '../test-support/strategies';
import { REPORT_CHARTS, htmlReport } from './html';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let browser: Browser | null = null;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `no Chromium at ${CHROMIUM}: run scripts/ensure-chromium.sh (or set CHROMIUM_PATH) for the HTML report test`,
    );
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}, 30_000);

afterAll(async () => {
  await browser?.close();
});

describe('HTML report in Chromium', () => {
  it('renders every chart, with one legend entry per strategy and no console errors', async () => {
    const registry = testRegistry();
    const strategies = ['none', 'prefault'];
    const s = validateScenario(
      {
        name: 'browser',
        machine: { memory: { nodes: [{ size: '128MiB' }] } },
        devices: [{ name: 'memcpy_accel' }],
        processes: [
          { name: 'app', workload: { kind: 'memcpy', requestSize: '16KiB', inflight: 2, buffers: 'fresh' } },
        ],
        duration: '1ms',
        strategies,
      },
      'browser',
      registry,
    );
    const result = await runExperiment(s, { registry, progress: false });
    const dir = mkdtempSync(join(tmpdir(), 'svasim-report-'));
    const file = join(dir, 'report.html');
    writeFileSync(file, htmlReport(result));

    const page = await browser!.newPage({ viewport: { width: 1000, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
    await page.goto(pathToFileURL(file).href);
    const charts = await page.$$eval('svg.chart', (els) =>
      els.map((e) => {
        const r = e.getBoundingClientRect();
        return {
          id: e.id,
          width: r.width,
          height: r.height,
          legend: [...e.querySelectorAll('.legend-item')].map((l) => l.getAttribute('data-series')),
          marks: e.querySelectorAll('polyline.series, rect.bar').length,
        };
      }),
    );
    expect(charts.map((c) => c.id)).toEqual([...REPORT_CHARTS]);
    for (const c of charts) {
      expect(c.width).toBeGreaterThan(100);
      expect(c.height).toBeGreaterThan(100);
      expect(c.legend).toEqual(strategies);
    }
    // Every strategy has its line in the CDF and the time series.
    for (const id of ['chart-latency-cdf', 'chart-iopf', 'chart-pinned'])
      expect(charts.find((c) => c.id === id)!.marks).toBe(strategies.length);
    const title = await page.title();
    expect(title).toBe('svasim: browser');
    const shot = join(dir, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    await page.close();
    expect(errors).toEqual([]);
  }, 20_000);
});
