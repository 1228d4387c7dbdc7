import { describe, expect, it } from '@jest/globals';
import { fnv1a32, RngStreams } from './rng';

const draw = (streams: RngStreams, name: string, n = 8): number[] =>
  Array.from({ length: n }, () => streams.stream(name).int(0, 1_000_000));

describe('RngStreams', () => {
  it('hashes names with 32-bit FNV-1a', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('gives the same sequence for the same seed and name', () => {
    expect(draw(new RngStreams(42), 'dev0')).toEqual(draw(new RngStreams(42), 'dev0'));
  });

  it('gives different sequences for different names and different seeds', () => {
    const s = new RngStreams(42);
    expect(draw(s, 'dev0')).not.toEqual(draw(s, 'dev1'));
    expect(draw(new RngStreams(42), 'dev0')).not.toEqual(draw(new RngStreams(43), 'dev0'));
    expect(draw(new RngStreams(1), 'x')).not.toEqual(draw(new RngStreams(2 ** 32 + 1), 'x'));
  });

  it('does not depend on stream creation order or on draws in other streams', () => {
    const a = new RngStreams(7);
    const first = draw(a, 'iommu');
    const b = new RngStreams(7);
    draw(b, 'zip', 100);
    b.stream('crypto').float();
    expect(draw(b, 'iommu')).toEqual(first);
  });

  it('returns the same stream object for a name', () => {
    const s = new RngStreams(1);
    expect(s.stream('a')).toBe(s.stream('a'));
    expect(s.seed).toBe(1);
    expect(() => new RngStreams(0.5)).toThrow(RangeError);
  });

  it('draws within range with the expected means', () => {
    const r = new RngStreams(3).stream('stats');
    const n = 20_000;
    let fsum = 0;
    let esum = 0;
    let hits = 0;
    for (let i = 0; i < n; i++) {
      const f = r.float();
      expect(f >= 0 && f < 1).toBe(true);
      fsum += f;
      const e = r.exponential(1000);
      expect(e >= 0 && Number.isFinite(e)).toBe(true);
      esum += e;
      if (r.chance(0.25)) hits++;
      const k = r.int(-3, 3);
      expect(Number.isInteger(k) && k >= -3 && k <= 3).toBe(true);
    }
    expect(fsum / n).toBeCloseTo(0.5, 1);
    expect(esum / n / 1000).toBeCloseTo(1, 1);
    expect(hits / n).toBeCloseTo(0.25, 1);
    expect(r.chance(0)).toBe(false);
    expect(r.chance(1)).toBe(true);
    expect(() => r.int(2, 1)).toThrow(RangeError);
  });
});
