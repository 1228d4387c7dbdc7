import { describe, expect, it } from '@jest/globals';
import { VM, VMSTAT_NAMES, Vmstat } from './vmstat';

describe('Vmstat', () => {
  it('pre-registers the known counters in order, at 0', () => {
    const v = new Vmstat();
    expect(VMSTAT_NAMES[0]).toBe('nr_free_pages');
    expect(VMSTAT_NAMES).toContain('htlb_buddy_alloc_fail');
    expect(new Set(VMSTAT_NAMES).size).toBe(VMSTAT_NAMES.length);
    VMSTAT_NAMES.forEach((name, i) => {
      expect(VM[name]).toBe(i);
      expect(v.register(name)).toBe(i);
    });
    expect(Object.keys(v.snapshot())).toEqual(VMSTAT_NAMES);
    expect(Object.values(v.snapshot()).every((x) => x === 0)).toBe(true);
  });

  it('counts by index and reads by name', () => {
    const v = new Vmstat();
    v.inc(VM.pgfault);
    v.inc(VM.pgfault, 4);
    v.dec(VM.pgfault);
    v.set(VM.nr_mlock, 12);
    expect(v.get(VM.pgfault)).toBe(4);
    expect(v.read('pgfault')).toBe(4);
    expect(v.read('nr_mlock')).toBe(12);
    expect(v.read('no_such_counter')).toBe(0);
  });

  it('registers new counters after the known ones, growing as needed', () => {
    const v = new Vmstat();
    const idx = Array.from({ length: 100 }, (_, i) => v.register(`extra_${i}`));
    expect(idx[0]).toBe(VMSTAT_NAMES.length);
    expect(v.register('extra_5')).toBe(idx[5]);
    v.inc(idx[99], 3);
    expect(v.read('extra_99')).toBe(3);
    expect(v.get(VM.pgfault)).toBe(0);
  });

  it('computes derived counters when read, in snapshot too', () => {
    const v = new Vmstat();
    let free = 100;
    v.derive('nr_free_pages', () => free);
    v.derive('nr_zspages', () => 7);
    free = 64;
    expect(v.read('nr_free_pages')).toBe(64);
    expect(v.get(VM.nr_free_pages)).toBe(64);
    const snap = v.snapshot();
    expect(snap.nr_free_pages).toBe(64);
    expect(snap.nr_zspages).toBe(7);
    expect(Object.keys(snap).indexOf('nr_zspages')).toBe(VMSTAT_NAMES.length);
  });
});
