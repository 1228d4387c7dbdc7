import { describe, expect, it } from '@jest/globals';
import { Dmesg, formatPrintkTime } from './dmesg';
import { Tracepoints } from './tracepoints';

function clock(): { now(): number; t: number } {
  return {
    t: 0,
    now() {
      return this.t;
    },
  };
}

describe('Dmesg', () => {
  it('stamps lines like the kernel: [%5lu.%06lu]', () => {
    expect(formatPrintkTime(0)).toBe('[    0.000000] ');
    expect(formatPrintkTime(1_234_567_890)).toBe('[    1.234567] ');
    expect(formatPrintkTime(123_456_000_999_999)).toBe('[123456.000999] ');
    const c = clock();
    const d = new Dmesg(c);
    d.printk('Linux version 6.12-svasim');
    c.t = 2_500_000_000;
    d.printk('uacce: hisi_zip registered');
    expect(d.lines()).toEqual([
      '[    0.000000] Linux version 6.12-svasim',
      '[    2.500000] uacce: hisi_zip registered',
    ]);
  });

  it('keeps a bounded ring, dropping the oldest lines', () => {
    const d = new Dmesg(clock(), { capacity: 3 });
    for (let i = 0; i < 5; i++) d.printk(`line ${i}`);
    expect(d.lines().map((l) => l.slice(15))).toEqual(['line 2', 'line 3', 'line 4']);
    d.clear();
    expect(d.lines()).toEqual([]);
    expect(new Dmesg(clock()).lines()).toEqual([]);
  });

  it('rate-limits per key: burst 10 per 5 s, then reports the suppressed count', () => {
    const c = clock();
    const d = new Dmesg(c);
    const printed: boolean[] = [];
    for (let i = 0; i < 13; i++) {
      c.t = i * 100_000_000; // 0 .. 1.2 s: one window
      printed.push(d.printkRatelimited('iommu_fault', `fault ${i}`));
    }
    expect(printed.filter(Boolean)).toHaveLength(10);
    expect(printed[10]).toBe(false);
    expect(d.printkRatelimited('other_site', 'independent key')).toBe(true);
    c.t = 5_000_000_000; // window started at 0 lasts until 5 s inclusive
    expect(d.printkRatelimited('iommu_fault', 'still suppressed')).toBe(false);
    c.t = 6_000_000_000;
    expect(d.printkRatelimited('iommu_fault', 'fault after window')).toBe(true);
    const lines = d.lines();
    expect(lines).toHaveLength(13);
    expect(lines[10]).toBe('[    1.200000] independent key');
    expect(lines[11]).toBe('[    6.000000] iommu_fault: 4 callbacks suppressed');
    expect(lines[12]).toBe('[    6.000000] fault after window');
  });

  it('emits the printk tracepoint', () => {
    const tp = new Tracepoints();
    const seen: string[] = [];
    tp.on('printk', (e) => seen.push(e.line));
    new Dmesg(clock(), {}, tp).printk('hello');
    expect(seen).toEqual(['[    0.000000] hello']);
  });
});
